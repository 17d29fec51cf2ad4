# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for tests against the local network's Golem Base (no collection code).

``seed`` puts entities of any content on the chain (devnet/golembase_seed.py: signed storage
transactions, as a provider would send them); ``upstream_cli`` runs the upstream requestor CLI
against the network's Golem Base with nothing but loopback reachable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from .devnet_helpers import REPO, status

sys.path.insert(0, str(REPO / "devnet"))
import layout  # noqa: E402  (devnet/layout.py: where the upstream virtualenvs are)

PROVIDER_PYTHON = layout.venv(layout.GOLEM_BASE_VENV) / "bin" / "python"
GOLEM_CLI = layout.venv(layout.REQUESTOR_VENV) / "bin" / "golem"


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.code = error.get("code")


def _rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback test URLs
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RpcError(answer["error"])
    return answer["result"]


def golem_base(method: str, *params: Any) -> Any:
    """One JSON-RPC call to the network's Golem Base."""
    return _rpc(status()["golem_base"]["rpc_url"], method, *params)


def chain(method: str, *params: Any) -> Any:
    """One call to the anvil behind it (anvil_setBalance, anvil_mine: what a real node has not).
    Mining ahead ages the providers' adverts too: upstream renews one only once 60 blocks or fewer are left."""
    return _rpc(status()["golem_base"]["anvil_url"], method, *params)


def head() -> int:
    return int(golem_base("eth_blockNumber"), 16)


def loopback_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for upstream Python tools in which only 127.0.0.0/8 can be reached
    (devnet/hostshim/sitecustomize.py, as the network's own servers have it)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO / "devnet" / "hostshim"),
        "GOLEM_DEVNET_BIND_IP": status()["control_source_ip"], **extra,
    }


def seed(*txs: dict[str, Any], home: Path = Path("/tmp")) -> list[dict[str, Any]]:
    """Signs and sends storage transactions (format: devnet/golembase_seed.py) and waits for them."""
    result = subprocess.run(
        [str(PROVIDER_PYTHON), str(REPO / "devnet" / "golembase_seed.py"), status()["golem_base"]["rpc_url"]],
        input=json.dumps(list(txs)), capture_output=True, text=True, timeout=120, check=False,
        env=loopback_env(home))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def upstream_cli(home: Path, *args: str, rpc_url: str | None = None) -> subprocess.CompletedProcess:
    """The upstream `golem` CLI with its golem-base discovery driver on the network's Golem Base
    (JSON-RPC over HTTP at ``rpc_url`` if given, e.g. a proxy in front of it)."""
    gb = status()["golem_base"]
    env = loopback_env(
        home,
        GOLEM_REQUESTOR_DISCOVERY_DRIVER="golem-base",
        GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL=rpc_url or gb["rpc_url"],
        GOLEM_REQUESTOR_GOLEM_BASE_WS_URL=gb["ws_url"],
        GOLEM_REQUESTOR_NETWORK="mainnet",
        # Only for the CLI's created_at_block estimate; the providers' own interval.
        GOLEM_REQUESTOR_ADVERTISEMENT_INTERVAL=str(gb["advertisement_interval"]),
    )
    return subprocess.run([str(GOLEM_CLI), *args], capture_output=True, text=True, timeout=120, check=False,
                          env=env)


def new_account() -> tuple[str, str]:
    """A fresh key and its address, funded on the Golem Base chain so it can write entities."""
    from eth_account import Account

    account = Account.create()
    chain("anvil_setBalance", account.address, hex(10 ** 18))
    return "0x" + account.key.hex().removeprefix("0x"), account.address


def advert(provider_id: str, ip: str, *, country: str = "FI", cpu: int = 4, btl: int = 120,
           strings: dict[str, Any] | None = None, numbers: dict[str, Any] | None = None,
           drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """One create of a provider advert as upstream's GolemBaseAdvertiser writes it (reference §1.2), on the
    network the tests' requestors read (mainnet, l2.holesky); ``strings``/``numbers`` replace annotations,
    ``drop`` leaves some of the usual ones out. Prices are high, so no placement in another test ever picks it."""
    base_strings: dict[str, Any] = {
        "golem_type": "provider", "golem_network": "mainnet", "golem_payments_network": "l2.holesky",
        "golem_provider_id": provider_id, "golem_ip_address": ip, "golem_country": country,
        "golem_provider_name": "seeded", "golem_platform": "x86_64", "golem_price_currency": "USD/GLM",
        "golem_price_usd_core_month": "500.0", "golem_price_usd_ram_gb_month": "200.0",
        "golem_price_usd_storage_gb_month": "10.0", "golem_price_glm_core_month": "2000.0",
        "golem_price_glm_ram_gb_month": "800.0", "golem_price_glm_storage_gb_month": "40.0"}
    base_numbers: dict[str, Any] = {"golem_cpu": cpu, "golem_memory": 8, "golem_storage": 100}
    kept_strings = {**{k: v for k, v in base_strings.items() if k not in drop}, **(strings or {})}
    kept_numbers = {**{k: v for k, v in base_numbers.items() if k not in drop}, **(numbers or {})}
    return {"btl": btl, "data": "", "strings": [[k, v] for k, v in kept_strings.items()],
            "numbers": [[k, v] for k, v in kept_numbers.items()]}
