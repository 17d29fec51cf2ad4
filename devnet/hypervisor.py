# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sandbox VMs behind the devnet's ``multipass`` command.

A VM is a bubblewrap sandbox, as root, on its own overlay of a debootstrapped Debian
rootfs, with sshd as its main process on its own loopback address VM_NET.N:22 (127.0.1.N by default). The
overlay lives only in the sandbox's mount namespace, so a VM that ends leaves no mount
behind; its upper directory is the VM's disk and survives stop/start. The daemon that
owns this object is the sandboxes' parent and reaps them (bwrap --die-with-parent).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml
from layout import VM_NET

GiB = 1024 ** 3
READY_TIMEOUT = 60.0


class CommandError(Exception):
    """A multipass command failed; the text is what multipass would print on stderr."""


@dataclass
class Instance:
    name: str
    owner: str
    ip: str
    cpus: int
    memory_gb: int
    disk_gb: int
    hostname: str
    directory: Path
    state: str = "Stopped"
    deleted: bool = False
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    def info(self) -> dict:
        if self.state == "Running":
            return {
                "state": "Running",
                "ipv4": [self.ip],
                "cpu_count": str(self.cpus),
                "memory": {"total": self.memory_gb * GiB, "used": 32 * 1024 * 1024},
                "disks": {"sda1": {"total": str(self.disk_gb * GiB), "used": str(300 * 1024 * 1024)}},
                "release": "Debian GNU/Linux 12 (bookworm)",
                "image_release": "devnet sandbox",
            }
        # Real multipass leaves hypervisor fields blank for an instance that is not running.
        return {
            "state": "Deleted" if self.deleted else self.state,
            "ipv4": [],
            "cpu_count": "",
            "memory": {},
            "disks": {"sda1": {}},
            "release": "",
            "image_release": "devnet sandbox",
        }


def _cloud_init_keys(text: str | None) -> tuple[list[str], str | None]:
    if not text:
        return [], None
    data = yaml.safe_load(text) or {}
    keys = list(data.get("ssh_authorized_keys") or [])
    for user in data.get("users") or []:
        if isinstance(user, dict) and user.get("name") == "root":
            keys.extend(user.get("ssh_authorized_keys") or [])
    unique = list(dict.fromkeys(k.strip() for k in keys if isinstance(k, str) and k.strip()))
    return unique, data.get("hostname")


def _size(value: str, flag: str) -> int:
    text = value.strip().upper()
    for suffix, factor in (("G", 1), ("GB", 1), ("M", 1 / 1024), ("MB", 1 / 1024)):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return max(1, round(int(text[: -len(suffix)]) * factor))
    if text.isdigit():
        return max(1, round(int(text) / GiB))
    raise CommandError(f"Invalid {flag} value: {value}")


class Hypervisor:
    def __init__(self, rootfs: Path, state_dir: Path, on_change: Callable[[], None] | None = None) -> None:
        self.rootfs = rootfs
        self.state_dir = state_dir
        self.instances: dict[str, Instance] = {}
        self.on_change = on_change or (lambda: None)
        self._lock = asyncio.Lock()

    # -- capacity, for the advertisements ------------------------------------------
    def allocated(self, owner: str) -> dict[str, int]:
        used = {"cpu": 0, "memory": 0, "storage": 0}
        for inst in self.instances.values():
            if inst.owner == owner and not inst.deleted:
                used["cpu"] += inst.cpus
                used["memory"] += inst.memory_gb
                used["storage"] += inst.disk_gb
        return used

    # -- the multipass command line ------------------------------------------------
    async def handle(self, owner: str, argv: list[str], cloud_init: str | None) -> tuple[int, str, str]:
        if not argv:
            return 1, "", "Usage: multipass <command>\n"
        command, args = argv[0], argv[1:]
        try:
            if command == "version":
                return 0, "multipass   1.14.1+golem-devnet\nmultipassd  1.14.1+golem-devnet\n", ""
            async with self._lock:
                handler = getattr(self, "cmd_" + command, None)
                if handler is None:
                    return 1, "", f"Unknown command: '{command}'\n"
                out = await handler(owner, args, cloud_init)
            return 0, out, ""
        except CommandError as exc:
            return 1, "", f"{exc}\n"

    def _get(self, owner: str, name: str) -> Instance:
        inst = self.instances.get(name)
        if inst is None or inst.owner != owner:
            raise CommandError(f'instance "{name}" does not exist')
        return inst

    @staticmethod
    def _opt(args: list[str], flag: str, default: str | None = None) -> str | None:
        if flag in args:
            idx = args.index(flag)
            if idx + 1 < len(args):
                return args[idx + 1]
            raise CommandError(f"Option '{flag}' needs a value")
        return default

    def _free_ip(self) -> str:
        taken = {inst.ip for inst in self.instances.values()}
        for n in range(1, 255):
            if VM_NET + str(n) not in taken:
                return VM_NET + str(n)
        raise CommandError(f"launch failed: no free address left in {VM_NET}0/24")

    async def cmd_launch(self, owner: str, args: list[str], cloud_init: str | None) -> str:
        name = self._opt(args, "--name")
        if not name:
            raise CommandError("launch failed: --name is required by the devnet")
        if name in self.instances:
            raise CommandError(f'instance "{name}" already exists')
        keys, hostname = _cloud_init_keys(cloud_init)
        inst = Instance(
            name=name,
            owner=owner,
            ip=self._free_ip(),
            cpus=int(self._opt(args, "--cpus", "1")),
            memory_gb=_size(self._opt(args, "--memory", "1G"), "--memory"),
            disk_gb=_size(self._opt(args, "--disk", "5G"), "--disk"),
            hostname=(hostname or name)[:63],
            directory=self.state_dir / name,
        )
        self.instances[name] = inst
        try:
            self._prepare_disk(inst, keys)
            await self._boot(inst)
        except BaseException:
            await self._destroy(inst)
            raise
        self.on_change()
        return f"Launched: {name}\n"

    async def cmd_info(self, owner: str, args: list[str], cloud_init: str | None) -> str:
        names = [a for a in args if not a.startswith("--") and a != self._opt(args, "--format")]
        if not names:
            raise CommandError("Name argument or --all is required")
        out = {}
        for name in names:
            out[name] = self._get(owner, name).info()
        if self._opt(args, "--format", "table") == "json":
            return json.dumps({"errors": [], "info": out}, indent=4) + "\n"
        return "".join(f"Name: {n}\nState: {i['state']}\nIPv4: {' '.join(i['ipv4'])}\n" for n, i in out.items())

    async def cmd_list(self, owner: str, args: list[str], cloud_init: str | None) -> str:
        rows = [
            {"name": i.name, "state": i.info()["state"], "ipv4": i.info()["ipv4"], "release": "Debian 12"}
            for i in self.instances.values()
            if i.owner == owner
        ]
        return json.dumps({"list": rows}, indent=4) + "\n"

    async def cmd_stop(self, owner: str, args: list[str], cloud_init: str | None) -> str:
        names = [a for a in args if not a.startswith("--")]
        targets = [i for i in self.instances.values() if i.owner == owner] if "--all" in args else [
            self._get(owner, n) for n in names]
        for inst in targets:
            if not inst.deleted:
                await self._halt(inst)
        return ""

    async def cmd_start(self, owner: str, args: list[str], cloud_init: str | None) -> str:
        for name in [a for a in args if not a.startswith("--")]:
            inst = self._get(owner, name)
            if inst.deleted:
                raise CommandError(f'instance "{name}" is deleted')
            if inst.state != "Running":
                await self._boot(inst)
        return ""

    async def cmd_delete(self, owner: str, args: list[str], cloud_init: str | None) -> str:
        purge = "--purge" in args
        for name in [a for a in args if not a.startswith("--")]:
            inst = self._get(owner, name)
            await self._halt(inst)
            inst.deleted = True
            if purge:
                await self._destroy(inst)
        self.on_change()
        return ""

    async def cmd_purge(self, owner: str, args: list[str], cloud_init: str | None) -> str:
        for inst in [i for i in self.instances.values() if i.owner == owner and i.deleted]:
            await self._destroy(inst)
        return ""

    # -- sandboxes -------------------------------------------------------------------
    def _prepare_disk(self, inst: Instance, keys: list[str]) -> None:
        upper = inst.directory / "upper"
        (inst.directory / "work").mkdir(parents=True, exist_ok=True)
        ssh_dir = upper / "root" / ".ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(upper / "root", 0o700)
        os.chmod(ssh_dir, 0o700)
        auth = ssh_dir / "authorized_keys"
        auth.write_text("".join(k + "\n" for k in keys))
        os.chmod(auth, 0o600)
        etc_ssh = upper / "etc" / "ssh"
        (etc_ssh / "sshd_config.d").mkdir(parents=True, exist_ok=True)
        host_key = etc_ssh / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{inst.hostname}",
                        "-f", str(host_key)], check=True, capture_output=True)
        # Debian's sshd_config reads this drop-in first, and the first value of a setting wins.
        (etc_ssh / "sshd_config.d" / "00-golem-devnet.conf").write_text(
            f"ListenAddress {inst.ip}:22\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
        )
        (upper / "etc" / "hostname").write_text(inst.hostname + "\n")
        (upper / "etc" / "hosts").write_text(f"127.0.0.1 localhost\n{inst.ip} {inst.hostname}\n")

    async def _boot(self, inst: Instance) -> None:
        merged = inst.directory / "merged"
        merged.mkdir(exist_ok=True)
        overlay = (f"lowerdir={self.rootfs},upperdir={inst.directory / 'upper'},"
                   f"workdir={inst.directory / 'work'}")
        bwrap = [
            "bwrap", "--die-with-parent", "--unshare-pid", "--unshare-uts", "--unshare-ipc",
            "--hostname", inst.hostname, "--bind", str(merged), "/",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run", "--tmpfs", "/tmp",
            "/bin/sh", "-c", "mkdir -p -m0755 /run/sshd && exec /usr/sbin/sshd -D -e",
        ]
        # Debian's bwrap (0.8) cannot mount overlays itself, so the overlay is mounted in a
        # private mount namespace that unshare creates and bwrap then inherits: when the
        # sandbox ends, the namespace and its mount go with it, and the host never sees it.
        script = f"mount -t overlay overlay -o {shlex.quote(overlay)} {shlex.quote(str(merged))} && exec " + \
            " ".join(shlex.quote(a) for a in bwrap)
        cmd = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script]
        log = open(inst.directory / "console.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            inst.process = await asyncio.create_subprocess_exec(
                *cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if inst.process.returncode is not None:
                break
            if await _banner(inst.ip, 22):
                inst.state = "Running"
                asyncio.get_running_loop().create_task(self._watch(inst, inst.process))
                return
            await asyncio.sleep(0.02)
        tail = (inst.directory / "console.log").read_text(errors="replace")[-400:]
        await self._halt(inst)
        raise CommandError(f"launch failed: {inst.name} did not start sshd on {inst.ip}:22: "
                           f"{shlex.quote(tail.strip())}")

    async def _watch(self, inst: Instance, process: asyncio.subprocess.Process) -> None:
        await process.wait()
        if inst.process is process:
            inst.process = None
            inst.state = "Stopped"

    async def _halt(self, inst: Instance) -> None:
        process, inst.process = inst.process, None
        inst.state = "Stopped"
        if process is None or process.returncode is not None:
            return
        # Kill the sandbox's PID-namespace init rather than the outer bwrap: the kernel then
        # reaps everything inside, the outer bwrap reaps the init and exits, and we reap it.
        # Killing the outer one first would orphan the init to PID 1 as a zombie.
        for child in _children(process.pid):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            await asyncio.wait_for(process.wait(), 5)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()

    async def _destroy(self, inst: Instance) -> None:
        await self._halt(inst)
        self.instances.pop(inst.name, None)
        await asyncio.to_thread(shutil.rmtree, inst.directory, True)

    async def shutdown(self) -> None:
        for inst in list(self.instances.values()):
            await self._halt(inst)


async def _banner(host: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        line = await asyncio.wait_for(reader.readline(), 1.0)
        return line.startswith(b"SSH-")
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def banner_sync(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            return conn.makefile("rb").readline().startswith(b"SSH-")
    except OSError:
        return False
