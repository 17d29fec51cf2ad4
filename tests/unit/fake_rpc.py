# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A payment chain's JSON-RPC for unit tests: the StreamPayment reads (streams(id), the latest block, code).

Answers are encoded with eth-abi from the function signature, independently of the collection's code,
so a decoder that drifts from the 0.1.x contract's 9 fields fails. Single calls and batches are both
served; every request is logged. Transactions are refused: the tests that use this one must not pay.
"""

from __future__ import annotations

import json
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from werkzeug import Request, Response

ZERO = "0x" + "0" * 40
STREAM_TYPES = ["address", "address", "address", "uint128", "uint128", "uint128", "uint256", "uint256", "bool"]
SELECTOR = keccak(text="streams(uint256)")[:4].hex()


class FakeRPC:
    def __init__(self, contract: str, now: int = 1_800_000_000, chain_id: int = 31310) -> None:
        self.contract, self.now, self.chain_id = contract.lower(), now, chain_id
        self.streams: dict[int, dict[str, Any]] = {}
        self.calls: list[str] = []  # every method asked, in order
        self.batches = 0
        self.batch_support = True

    def add(self, stream_id: int, *, sender: str, recipient: str, left: int, rate: int, elapsed: int = 600,
            halted: bool = False) -> None:
        start, stop = self.now - elapsed, self.now + left
        self.streams[stream_id] = {"sender": sender, "recipient": recipient, "start": start, "stop": stop,
                                   "rate": rate, "deposit": (stop - start) * rate, "withdrawn": 0, "halted": halted}

    def _answer(self, item: dict[str, Any]) -> dict[str, Any]:
        method, params = item["method"], item.get("params", [])
        self.calls.append(method)
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": item.get("id")}
        if method == "eth_chainId":
            reply["result"] = hex(self.chain_id)
        elif method == "eth_getBlockByNumber":
            reply["result"] = {"number": "0x10", "timestamp": hex(self.now), "baseFeePerGas": "0x1"}
        elif method == "eth_getCode":
            reply["result"] = "0x6080" if params[0].lower() == self.contract else "0x"
        elif method == "eth_call" and params[0]["data"][2:10] == SELECTOR:
            if params[0]["to"].lower() != self.contract:
                reply["result"] = "0x"
            else:
                s = self.streams.get(int(params[0]["data"][10:], 16))
                values = [ZERO, ZERO, ZERO, 0, 0, 0, 0, 0, False] if s is None else [
                    ZERO, s["sender"], s["recipient"], s["start"], s["stop"], s["rate"], s["deposit"], s["withdrawn"],
                    s["halted"]]
                reply["result"] = "0x" + encode(STREAM_TYPES, values).hex()
        else:
            reply["error"] = {"code": -32000, "message": f"the fake chain does not do {method}"}
        return reply

    def handler(self, request: Request) -> Response:
        body = json.loads(request.data)
        if isinstance(body, list):
            self.batches += 1
            if not self.batch_support:
                answer: Any = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batches disabled"}}
            else:
                # Out of order, as a JSON-RPC server may answer a batch: ids, not positions, match them up.
                answer = [self._answer(item) for item in reversed(body)]
        else:
            answer = self._answer(body)
        return Response(json.dumps(answer), content_type="application/json")
