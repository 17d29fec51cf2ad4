# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON-RPC 2.0 over the collection's one HTTP client: one call, or many calls in one batch.

The envelope is written here once - a request, an answer's result or fault, a batch's answers matched
to its calls by id - and every JSON-RPC client of the collection builds on it: JsonRpc below, the
payment chain's client (which words and retries its own errors) and the refresh's batched stream reads.

A batch is one HTTP request however many calls it holds (up to the node's batch limit), which is
what keeps a Golem Base lookup at two requests. No web3 here: reads need nothing but JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError

if TYPE_CHECKING:  # only a type here; the stream reads import this module before they need a client
    from ansible_collections.golem.vm.plugins.module_utils.foundation.http import HttpClient

METHOD_NOT_FOUND = -32601
# geth refuses batches of more than 1000 calls (--rpc.batch-request-limit); golem-base-geth is a geth.
BATCH_LIMIT = 1000


class RpcFault(NamedTuple):
    """A JSON-RPC error answer: the node's code and message, and its data (as text, "" without any)."""

    code: int | None
    message: str
    data: str = ""

    def __str__(self) -> str:
        return f"{self.message} (JSON-RPC error {self.code})" if self.code is not None else self.message


Call = tuple[str, Sequence[Any]]
# What a caller makes of an error answer to ``method``: the exception to raise.
Refusal = Callable[[str, RpcFault], GolemError]


def request(index: int, method: str, params: Sequence[Any]) -> dict[str, Any]:
    """One call's request object; ``index`` is its id, which its answer carries back."""
    return {"jsonrpc": "2.0", "id": index, "method": method, "params": list(params)}


def batch_request(calls: Sequence[Call]) -> list[dict[str, Any]]:
    """A batch of ``calls``, numbered from 0 in order: batch_answers matches the answers by that number."""
    return [request(index, method, params) for index, (method, params) in enumerate(calls)]


def is_answer(answer: Any) -> bool:
    """Whether ``answer`` is shaped like one call's answer (a result or an error member)."""
    return isinstance(answer, dict) and ("result" in answer or "error" in answer)


def outcome(answer: dict[str, Any]) -> Any:
    """One call's result, or its RpcFault when the node answered with an error."""
    error = answer.get("error")
    return answer.get("result") if error is None else fault(error)


def fault(error: Any) -> RpcFault:
    """An answer's ``error`` member; a node that sends a bare string gets it as the message."""
    if not isinstance(error, dict):
        return RpcFault(None, str(error))
    code = error.get("code")
    return RpcFault(code if isinstance(code, int) else None, str(error.get("message") or "no message"),
                    str(error.get("data") or ""))


def batch_answers(answer: list[Any], count: int) -> list[Any]:
    """The answers to calls 0 to ``count`` - 1 of a batch, by id (a node may answer in any order); None for
    a call the node did not answer."""
    by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
    return [by_id.get(index) for index in range(count)]


class JsonRpc:
    """Calls on the node at ``http.base_url``; ``refused`` words the error a call's fault becomes."""

    def __init__(self, http: HttpClient, *, name: str, refused: Refusal) -> None:
        """``name`` names the node in messages, e.g. "Golem Base http://127.0.0.1:8545/rpc"."""
        self.http = http
        self.name = name
        self.refused = refused

    def call(self, method: str, *params: Any) -> Any:
        """One call's result; an error answer raises what ``refused`` makes of it."""
        answer = self.http.request("POST", "", json_body=request(0, method, params))
        result = self._outcome(method, answer)
        if isinstance(result, RpcFault):
            raise self.refused(method, result)
        return result

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Each call's result or RpcFault, in the order of ``calls``: one HTTP request per BATCH_LIMIT calls.

        A fault of one call is returned, not raised, so the caller decides what it costs; an answer
        that is not a batch answer at all (a node that takes no batches answers with one error) raises.
        """
        out: list[Any] = []
        for start in range(0, len(calls), BATCH_LIMIT):
            chunk = calls[start:start + BATCH_LIMIT]
            answer = self.http.request("POST", "", json_body=batch_request(chunk))
            what = f"a batch of {len(chunk)} calls ({chunk[0][0]}, ...)"
            if isinstance(answer, dict) and "error" in answer:
                raise self.refused(what, fault(answer["error"]))
            if not isinstance(answer, list):
                raise self._not_jsonrpc(what, answer)
            for index, ((method, _params), item) in enumerate(zip(chunk, batch_answers(answer, len(chunk)))):
                out.append(RpcFault(None, f"the batch answer has no answer to call {index} ({method})")
                           if item is None else self._outcome(method, item))
        return out

    def _outcome(self, method: str, answer: Any) -> Any:
        if not is_answer(answer):
            raise self._not_jsonrpc(method, answer)
        return outcome(answer)

    def _not_jsonrpc(self, what: str, answer: Any) -> GolemError:
        return self.http.error_class(
            f"{self.name} answered {what} with {type(answer).__name__}, not a JSON-RPC 2.0 answer; "
            "is it a JSON-RPC endpoint?",
            url=self.http.base_url, method="POST", response=json.dumps(answer)[:500])
