# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local network's chains: anvil processes (from the npm package, scripts/install-devnet.sh) and
a small JSON-RPC client for them. Standard library only, so devnetd needs nothing more to drive them.
"""

from __future__ import annotations

import http.client
import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import layout

_ids = itertools.count(1)


class RpcError(Exception):
    """A JSON-RPC error answer; ``code`` and ``data`` as the node sent them."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error.get('message')} (code {error.get('code')})")
        self.code = error.get("code")
        self.data = error.get("data")


def rpc(url: str, method: str, *params: Any, timeout: float = 10.0, source_ip: str | None = None) -> Any:
    """One JSON-RPC call over HTTP; returns ``result`` or raises RpcError / OSError."""
    parts = urlsplit(url)
    source = (source_ip, 0) if source_ip else None
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout, source_address=source)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": list(params)})
        conn.request("POST", parts.path or "/", body=body, headers={"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    if "error" in answer:
        raise RpcError(method, answer["error"])
    return answer["result"]


@dataclass(frozen=True)
class Chain:
    """One anvil chain of the network: where it listens and what it is."""

    name: str
    ip: str
    port: int
    chain_id: int
    block_time: int = 1

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def argv(self) -> list[str]:
        # --silent: anvil logs every call otherwise, a line per block at 1 s blocks.
        return [str(layout.ANVIL), "--host", self.ip, "--port", str(self.port), "--chain-id", str(self.chain_id),
                "--block-time", str(self.block_time), "--silent"]

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        return rpc(self.url, method, *params, timeout=timeout, source_ip=layout.CONTROL_SOURCE_IP)
