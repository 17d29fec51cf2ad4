# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulated host the local network's upstream servers run on.

Loaded by Python at start-up from PYTHONPATH (only the devnet daemon sets it, only for
the upstream servers). It changes three things about the machine they see, nothing in
their code:

* capacity: upstream providers size themselves with psutil from the real host, which
  on a 2-core machine allows one or two VMs. GOLEM_DEVNET_HOST_CPUS / _MEMORY_GB /
  _DISK_GB make psutil report a larger host, as the hypervisor is stood in too;
* addresses: servers that listen on 0.0.0.0 (upstream's SSH proxy) listen on the
  process's own loopback address (GOLEM_DEVNET_BIND_IP) instead;
* the outside world: the upstream provider asks public what-is-my-IP services and
  chain RPCs. Only 127.0.0.0/8 may be reached from here, so every other name or
  address fails at once, as on an offline machine, instead of sending a packet.

One upstream bug is worked around, because it hangs the provider for good: web3 7.13 (pinned
by provider 0.1.63) shares one class-level threading.Lock between its sync and async HTTP
session managers (web3.py issue #3867, still in 7.16 and 8.0). The provider's create route
checks the payment stream with sync web3 on its event loop while its Golem Base advertiser
(async web3, run on every VM change) holds that lock across an await: the loop blocks on the
lock, the holder never resumes. The fix upstream's issue proposes is applied: one lock per
session manager, so the sync and the async client no longer share it.
"""

import ipaddress
import os
import socket
import sys
import threading

_GiB = 1024 ** 3


def _patch_psutil() -> None:
    cpus = os.environ.get("GOLEM_DEVNET_HOST_CPUS")
    if not cpus:
        return
    try:
        import psutil
    except ImportError:
        return
    mem = int(os.environ.get("GOLEM_DEVNET_HOST_MEMORY_GB", "64")) * _GiB
    disk = int(os.environ.get("GOLEM_DEVNET_HOST_DISK_GB", "1000")) * _GiB
    real_vm = psutil.virtual_memory
    real_disk = psutil.disk_usage

    def cpu_count(logical=True):
        return int(cpus)

    def virtual_memory():
        real = real_vm()
        return real._replace(total=mem, available=mem, free=mem, used=0, percent=0.0)

    def disk_usage(path):
        real = real_disk(path)
        return real._replace(total=disk, used=0, free=disk, percent=0.0)

    psutil.cpu_count = cpu_count
    psutil.virtual_memory = virtual_memory
    psutil.disk_usage = disk_usage


def _is_loopback(host) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _patch_network() -> None:
    bind_ip = os.environ.get("GOLEM_DEVNET_BIND_IP")
    if not bind_ip:
        return
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_bind = socket.socket.bind

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode()
        if not _is_loopback(host) and host not in ("0.0.0.0", "::"):
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: offline (golem devnet allows loopback only)")
        return real_getaddrinfo(host, *args, **kwargs)

    def _guard(address):
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise OSError(101, f"Network is unreachable: {address[0]} (golem devnet allows loopback only)")

    def connect(self, address):
        _guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        _guard(address)
        return real_connect_ex(self, address)

    def bind(self, address):
        if isinstance(address, tuple) and address[0] in ("", "0.0.0.0", "::"):
            if self.family == socket.AF_INET6:
                address = ("::1",) + tuple(address[1:])
            else:
                address = (bind_ip,) + tuple(address[1:])
        return real_bind(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.bind = bind


class _Web3LockFix:
    """Import hook: patches web3's HTTPSessionManager as it is imported (only processes that use web3)."""

    target = "web3._utils.http_session_manager"

    def find_spec(self, name, path=None, target=None):
        if name != self.target:
            return None
        import importlib.machinery

        sys.meta_path.remove(self)
        try:
            spec = importlib.machinery.PathFinder.find_spec(name, path)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def patched(module):
            exec_module(module)
            manager = module.HTTPSessionManager
            init = manager.__init__

            def __init__(self, *args, **kwargs):
                init(self, *args, **kwargs)
                self._lock = threading.Lock()

            manager.__init__ = __init__

        spec.loader.exec_module = patched
        return spec


_patch_psutil()
_patch_network()
if os.environ.get("GOLEM_DEVNET_OWNER"):  # the providers, the only servers that use web3
    sys.meta_path.insert(0, _Web3LockFix())
