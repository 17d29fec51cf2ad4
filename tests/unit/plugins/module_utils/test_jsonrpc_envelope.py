# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JSON-RPC envelope every client of the collection shares: requests, results, faults, batch answers by id."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.jsonrpc import (
    RpcFault,
    batch_answers,
    batch_request,
    is_answer,
    outcome,
)


def test_a_batch_is_numbered_in_order_and_its_answers_are_matched_by_id() -> None:
    body = batch_request([("eth_chainId", []), ("eth_getBalance", ["0x1", "latest"])])
    assert body == [{"jsonrpc": "2.0", "id": 0, "method": "eth_chainId", "params": []},
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0x1", "latest"]}]
    answers = [{"id": 1, "result": "0x5"}, "junk", {"id": 0, "result": "0x1"}]
    assert batch_answers(answers, 3) == [{"id": 0, "result": "0x1"}, {"id": 1, "result": "0x5"}, None]


@pytest.mark.parametrize(("answer", "expected"), [
    ({"id": 0, "result": "0x1"}, "0x1"),
    ({"id": 0, "result": "0x1", "error": None}, "0x1"),
    ({"id": 0, "error": {"code": -32601, "message": "the method x does not exist", "data": "d"}},
     RpcFault(-32601, "the method x does not exist", "d")),
    ({"id": 0, "error": {"code": "x"}}, RpcFault(None, "no message")),
    ({"id": 0, "error": "busy"}, RpcFault(None, "busy")),
])
def test_an_answer_is_its_result_or_its_fault(answer: dict[str, Any], expected: Any) -> None:
    assert is_answer(answer) and outcome(answer) == expected


def test_a_fault_names_its_code_when_it_has_one() -> None:
    assert str(RpcFault(-32000, "nonce too low")) == "nonce too low (JSON-RPC error -32000)"
    assert str(RpcFault(None, "busy")) == "busy" and not is_answer({"id": 0}) and not is_answer([1])
