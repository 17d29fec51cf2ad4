# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the local Golem network is made of: addresses, versions, prices, paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GOLEM_DEVNET_CACHE", "/var/cache/golem-vm-devnet"))
RUN = Path(os.environ.get("GOLEM_DEVNET_DIR", str(REPO / ".devnet"))).resolve()
ROOTFS = CACHE / "rootfs-bookworm"
CHAIN_TOOLS = CACHE / "chain"
ANVIL = CHAIN_TOOLS / "anvil"
SOLCJS = CHAIN_TOOLS / "solc" / "node_modules" / "solc" / "solc.js"
# The upstream requestor CLI, for interop tests only.
REQUESTOR_VENV = "requestor-0.1.58-abi0.1.1"

# The loopback /16 this network lives in: discovery, providers and chains on NET.0.x, VMs on
# NET.1.x. Another value (e.g. 127.1) runs a second network beside the first, in another
# checkout, without sharing an address.
NET = os.environ.get("GOLEM_DEVNET_NET", "127.0")
if not (NET.startswith("127.") and NET.count(".") == 1 and NET.split(".")[1].isdigit()
        and 0 <= int(NET.split(".")[1]) <= 254):
    raise SystemExit(f"GOLEM_DEVNET_NET={NET!r}: give a loopback /16 prefix such as 127.0 or 127.1")
VM_NET = f"{NET}.1."
DISCOVERY_IP = f"{NET}.0.1"
DISCOVERY_PORT = 9001
DISCOVERY_URL = f"http://{DISCOVERY_IP}:{DISCOVERY_PORT}"
DISCOVERY_VERSION = "0.1.25"
# Discovery rate-limits per client address; the network's own traffic comes from here
# so it never eats the requestor's share of NET.0.1.
CONTROL_SOURCE_IP = f"{NET}.0.9"
PROVIDER_PORT = 7466
ADVERTISE_EVERY = float(os.environ.get("GOLEM_DEVNET_ADVERTISE_EVERY", "30"))
ZERO_ADDRESS = "0x" + "0" * 40
# The local Golem Base (reference §7.5): anvil runs the chain, devnet/golembase_node.py serves the
# golembase_* API in front of it, under the provider's virtualenv (golem-base-sdk 0.1.0's own libraries).
GOLEM_BASE_CHAIN_ID = 0x6013A  # the 0.1.x network's chain id
GOLEM_BASE_ANVIL_IP = f"{NET}.0.12"
GOLEM_BASE_IP = f"{NET}.0.13"
GOLEM_BASE_PORT = 8545
GOLEM_BASE_RPC_URL = f"http://{GOLEM_BASE_IP}:{GOLEM_BASE_PORT}/rpc"
GOLEM_BASE_WS_URL = f"ws://{GOLEM_BASE_IP}:{GOLEM_BASE_PORT}/rpc/ws"
GOLEM_BASE_VENV = "provider-0.1.63-abi0.1.1"
# Providers' GOLEM_BASE_ADVERTISEMENT_INTERVAL: an advert lives 2x this many blocks (1 s each). Upstream checks
# every max(30 s, interval/3) and extends once at most 2/5 of that is left, so its last check before the
# expiry may find only interval/15 blocks left (at 60 or less, none). 150: 10 blocks to spare, and an advert
# of a stopped provider is gone after 5 minutes, as on central discovery.
GOLEM_BASE_ADVERTISE_EVERY = int(os.environ.get("GOLEM_DEVNET_GOLEM_BASE_INTERVAL", "150"))


@dataclass(frozen=True)
class Provider:
    key: str
    ip: str
    country: str
    version: str
    port_range: tuple[int, int]
    usd: tuple[float, float, float] | None  # per core, per GB RAM, per GB storage, a month
    glm: tuple[float, float, float] | None
    # The host this provider sees (cpu, memory GB, disk GB); None: host_size(), as every standing provider.
    host: tuple[int, int, int] | None = None

    @property
    def size(self) -> dict[str, int]:
        """The emulated host this provider counts its free resources from."""
        return dict(zip(("cpu", "memory", "storage"), self.host)) if self.host else host_size()

    @property
    def api(self) -> str:
        """'jobs' for the current async API, 'sync' for the MVP-era one."""
        return "sync" if self.version.startswith("0.1.3") else "jobs"

    @property
    def venv(self) -> str:
        """The virtualenv (scripts/install-devnet.sh): 0.1.63 with the streaming ABI pinned to 0.1.1."""
        return f"provider-{self.version}" + ("-abi0.1.1" if self.api == "jobs" else "")

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{PROVIDER_PORT}"


PROVIDERS = (
    Provider("se", f"{NET}.0.2", "SE", "0.1.63", (20000, 23000), (5.0, 2.0, 0.1), (20.0, 8.0, 0.4)),
    Provider("us", f"{NET}.0.3", "US", "0.1.63", (23000, 26000), (7.0, 3.0, 0.15), (28.0, 12.0, 0.6)),
    # The MVP-era synchronous API; its advertisement carries no platform and no pricing.
    Provider("de", f"{NET}.0.4", "DE", "0.1.31", (26000, 29000), None, None),
)

# Started only when a test asks (`devnet ctl start nl-low`), so the standing network above stays what every
# other test sees: three paying providers in one country at three prices, on small hosts, so placement by
# price and by free room can be watched. Only central discovery lists them (devnetd posts their adverts, as
# for the others), and devnetd withdraws an advert when its spare stops: nothing of theirs outlives a test.
SPARE_PROVIDERS = (
    Provider("nl-low", f"{NET}.0.5", "NL", "0.1.63", (29000, 30000), (3.0, 1.0, 0.05), (12.0, 4.0, 0.2), (2, 8, 100)),
    Provider("nl-mid", f"{NET}.0.6", "NL", "0.1.63", (30000, 31000), (4.0, 1.5, 0.08), (16.0, 6.0, 0.3), (2, 8, 100)),
    Provider("nl-high", f"{NET}.0.7", "NL", "0.1.63", (31000, 32000), (6.0, 2.5, 0.12), (24.0, 10.0, 0.5),
             (8, 16, 200)),
)


def host_size() -> dict[str, int]:
    """The emulated host each provider sees (each counts the whole host on its own)."""
    return {
        "cpu": int(os.environ.get("GOLEM_DEVNET_HOST_CPUS", "32")),
        "memory": int(os.environ.get("GOLEM_DEVNET_HOST_MEMORY_GB", "64")),
        "storage": int(os.environ.get("GOLEM_DEVNET_HOST_DISK_GB", "1000")),
    }


def venv(name: str) -> Path:
    return CACHE / "venvs" / name


def provider_by_key(key: str) -> Provider:
    for prov in PROVIDERS + SPARE_PROVIDERS:
        if prov.key == key:
            return prov
    raise KeyError(key)
