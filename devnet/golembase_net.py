# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""devnetd's side of the local Golem Base: what runs it, how providers are pointed at it and
paid for, and how to tell that their adverts are on it. Standard library only (devnetd's own).
"""

from __future__ import annotations

from typing import Any

import layout
from anvil import Chain, rpc

CHAIN = Chain("golem-base-anvil", layout.GOLEM_BASE_ANVIL_IP, layout.GOLEM_BASE_PORT, layout.GOLEM_BASE_CHAIN_ID)
# Gas for a provider's adverts, set before it starts: its first advertiser cycle runs right
# after start-up, and its start-up faucet check skips the faucet above 0.01 ETH.
PROVIDER_FUNDS_WEI = 100 * 10 ** 18


def children() -> list[tuple[str, list[str], str, str]]:
    """(name, argv, bind address, JSON-RPC URL to wait for) of each process, in start order."""
    python = layout.venv(layout.GOLEM_BASE_VENV) / "bin" / "python"
    node = [str(python), str(layout.REPO / "devnet" / "golembase_node.py"), "--host", layout.GOLEM_BASE_IP,
            "--port", str(layout.GOLEM_BASE_PORT), "--anvil", CHAIN.url]
    return [(CHAIN.name, CHAIN.argv(), CHAIN.ip, CHAIN.url),
            ("golem-base", node, layout.GOLEM_BASE_IP, layout.GOLEM_BASE_RPC_URL)]


def provider_settings() -> dict[str, Any]:
    """GOLEM_PROVIDER_* settings that make a 0.1.63 provider run upstream's own Golem Base advertiser."""
    return {
        "ADVERTISER_TYPE": "golem_base",
        "GOLEM_BASE_RPC_URL": layout.GOLEM_BASE_RPC_URL,
        # A real ws:// URL now: the start-up faucet check connects and finds the funds at once.
        "GOLEM_BASE_WS_URL": layout.GOLEM_BASE_WS_URL,
        "GOLEM_BASE_ADVERTISEMENT_INTERVAL": layout.GOLEM_BASE_ADVERTISE_EVERY,
    }


def fund(address: str) -> None:
    CHAIN.call("anvil_setBalance", address, hex(PROVIDER_FUNDS_WEI))


def adverts(provider_id: str) -> list[dict[str, Any]]:
    """The provider adverts of ``provider_id`` that the stand-in returns, as requestors query."""
    query = f'golem_type="provider" && golem_provider_id="{provider_id}"'
    return rpc(layout.GOLEM_BASE_RPC_URL, "golembase_queryEntities", query, timeout=5,
               source_ip=layout.CONTROL_SOURCE_IP)


def status() -> dict[str, Any]:
    return {"rpc_url": layout.GOLEM_BASE_RPC_URL, "ws_url": layout.GOLEM_BASE_WS_URL,
            "chain_id": layout.GOLEM_BASE_CHAIN_ID, "anvil_url": CHAIN.url,
            "advertisement_interval": layout.GOLEM_BASE_ADVERTISE_EVERY}
