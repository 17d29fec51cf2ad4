# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON-RPC 2.0 over the collection's one HTTP client: one call, or many calls in one batch.

A batch is one HTTP request however many calls it holds (up to the node's batch limit), which is
what keeps a Golem Base lookup at two requests. No web3 here: reads need nothing but JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import HttpClient

METHOD_NOT_FOUND = -32601
# geth refuses batches of more than 1000 calls (--rpc.batch-request-limit); golem-base-geth is a geth.
BATCH_LIMIT = 1000


class RpcFault(NamedTuple):
    """A JSON-RPC error answer: the node's code and message."""

    code: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.message} (JSON-RPC error {self.code})" if self.code is not None else self.message


Call = tuple[str, Sequence[Any]]
# What a caller makes of an error answer to ``method``: the exception to raise.
Refusal = Callable[[str, RpcFault], GolemError]


class JsonRpc:
    """Calls on the node at ``http.base_url``; ``refused`` words the error a call's fault becomes."""

    def __init__(self, http: HttpClient, *, name: str, refused: Refusal) -> None:
        """``name`` names the node in messages, e.g. "Golem Base http://127.0.0.1:8545/rpc"."""
        self.http = http
        self.name = name
        self.refused = refused

    def call(self, method: str, *params: Any) -> Any:
        """One call's result; an error answer raises what ``refused`` makes of it."""
        answer = self.http.request("POST", "", json_body=_request(0, method, params))
        outcome = self._outcome(method, answer)
        if isinstance(outcome, RpcFault):
            raise self.refused(method, outcome)
        return outcome

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Each call's result or RpcFault, in the order of ``calls``: one HTTP request per BATCH_LIMIT calls.

        A fault of one call is returned, not raised, so the caller decides what it costs; an answer
        that is not a batch answer at all (a node that takes no batches answers with one error) raises.
        """
        out: list[Any] = []
        for start in range(0, len(calls), BATCH_LIMIT):
            chunk = calls[start:start + BATCH_LIMIT]
            answer = self.http.request("POST", "", json_body=[_request(i, m, p) for i, (m, p) in enumerate(chunk)])
            what = f"a batch of {len(chunk)} calls ({chunk[0][0]}, ...)"
            if isinstance(answer, dict) and "error" in answer:
                raise self.refused(what, _fault(answer["error"]))
            if not isinstance(answer, list):
                raise self._not_jsonrpc(what, answer)
            by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
            for index, (method, _params) in enumerate(chunk):
                item = by_id.get(index)
                out.append(RpcFault(None, f"the batch answer has no answer to call {index} ({method})")
                           if item is None else self._outcome(method, item))
        return out

    def _outcome(self, method: str, answer: Any) -> Any:
        if not isinstance(answer, dict) or not ("result" in answer or "error" in answer):
            raise self._not_jsonrpc(method, answer)
        if answer.get("error") is not None:
            return _fault(answer["error"])
        return answer.get("result")

    def _not_jsonrpc(self, what: str, answer: Any) -> GolemError:
        return self.http.error_class(
            f"{self.name} answered {what} with {type(answer).__name__}, not a JSON-RPC 2.0 answer; "
            "is it a JSON-RPC endpoint?",
            url=self.http.base_url, method="POST", response=json.dumps(answer)[:500])


def _request(index: int, method: str, params: Sequence[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": index, "method": method, "params": list(params)}


def _fault(error: Any) -> RpcFault:
    if not isinstance(error, dict):
        return RpcFault(None, str(error))
    code = error.get("code")
    return RpcFault(code if isinstance(code, int) else None, str(error.get("message") or "no message"))
