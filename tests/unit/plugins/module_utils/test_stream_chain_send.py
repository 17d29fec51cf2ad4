# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A payment is signed, recorded, then sent, and sent once: what the node answers decides nothing twice.

The node is a fake JSON-RPC dispatcher in place of StreamChain.rpc (the real chain is in the
integration tests); signing is eth-account's, for real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from ansible_collections.golem.vm.plugins.module_utils.chain.contract import NodeRefused, StreamChain
from ansible_collections.golem.vm.plugins.module_utils.chain.network import GWEI, check_chain_id, check_fee_cap
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import PaymentError, PaymentPending

KEY = "0x" + "11" * 32
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
RECIPIENT = "0x" + "22" * 20


class Node:
    """Answers by method; ``send`` is a list of what each eth_sendRawTransaction does: "ok", "lost" (it
    arrived, the answer did not), "drop" (it never arrived, no answer), "refuse"."""

    def __init__(self, chain_id: int = 31310, priority: int = GWEI, base: int = GWEI) -> None:
        self.chain_id, self.priority, self.base = chain_id, priority, base
        self.send: list[str] = []
        self.pool: set[str] = set()
        self.log: list[tuple[str, Any]] = []

    def __call__(self, method: str, *params: Any, read: bool = True) -> Any:
        self.log.append((method, params[0] if params else None))
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "eth_estimateGas":
            return hex(150_000)
        if method == "eth_maxPriorityFeePerGas":
            return hex(self.priority)
        if method == "eth_getBlockByNumber":
            return {"baseFeePerGas": hex(self.base), "timestamp": "0x1"}
        if method == "eth_getBalance":
            return hex(10 ** 20)
        if method == "eth_getTransactionCount":
            return "0x0"
        if method == "eth_getCode":
            return "0x6001"
        if method == "eth_getTransactionByHash":
            return {"hash": "x"} if self.pool else None
        if method == "eth_getTransactionReceipt":
            return None
        if method == "eth_sendRawTransaction":
            what = self.send.pop(0) if self.send else "ok"
            if what == "refuse":
                raise NodeRefused("payments RPC refused eth_sendRawTransaction: insufficient funds for gas")
            if what == "gateway-error":  # a JSON-RPC error from a gateway that had passed it on
                self.pool.add(params[0])
                raise NodeRefused("payments RPC refused eth_sendRawTransaction: internal error")
            if what == "nonce-used":
                raise NodeRefused("payments RPC refused eth_sendRawTransaction: nonce too low")
            if what in ("ok", "lost"):
                self.pool.add(params[0])
            if what in ("lost", "drop"):
                raise PaymentError("payments RPC: HTTP 502 Bad Gateway", status=502)
            return "0xwhatever"
        raise AssertionError(method)

    def sends(self) -> list[Any]:
        return [p for m, p in self.log if m == "eth_sendRawTransaction"]


def chain_with(node: Node, tmp_path: Path, seconds: float = 5, **kwargs: Any) -> StreamChain:
    chain = StreamChain("http://127.0.0.10:8545", KEY, lock_dir=str(tmp_path), deadline=Deadline(seconds), **kwargs)
    chain.rpc = node  # type: ignore[method-assign]
    return chain


def test_the_hash_is_recorded_before_the_transaction_leaves(tmp_path):
    node = Node()
    chain = chain_with(node, tmp_path)
    seen: list[tuple[str, int]] = []
    tx = chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9,
                    before_send=lambda h, nonce, raw: seen.append((h, nonce, len(node.sends()))))
    assert seen == [(tx, 0, 0)], "recorded once, with its nonce, before any send"
    assert len(node.sends()) == 1


def test_a_lost_answer_is_resolved_by_hash_and_the_same_transaction_is_never_paid_twice(tmp_path):
    node = Node()
    node.send = ["lost"]
    chain = chain_with(node, tmp_path)
    recorded: list[str] = []
    tx = chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9, before_send=lambda h, _n, _r: recorded.append(h))
    assert recorded == [tx] and len(node.sends()) == 1, "found by its hash: not sent again"


def test_a_send_that_never_arrived_is_sent_again_as_the_very_same_transaction(tmp_path):
    node = Node()
    node.send = ["drop"]
    chain = chain_with(node, tmp_path)
    recorded: list[str] = []
    tx = chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9, before_send=lambda h, _n, _r: recorded.append(h))
    raws = node.sends()
    assert recorded == [tx] and len(raws) == 2 and raws[0] == raws[1], "the same signed bytes: one nonce, one payment"


class Mempool(Node):
    """One node two controllers pay through: it keeps transactions by hash and by nonce as geth and anvil do
    (the same bytes again are "already known"; other bytes at a taken nonce are refused)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_nonce: dict[int, str] = {}

    def __call__(self, method: str, *params: Any, read: bool = True) -> Any:
        if method == "eth_getTransactionCount":
            return hex(len(self.by_nonce))
        if method == "eth_sendRawTransaction":
            self.log.append((method, params[0]))
            nonce = _decoded_nonce(params[0])
            if self.by_nonce.get(nonce) == params[0]:
                raise NodeRefused("payments RPC refused eth_sendRawTransaction: already known")
            if nonce in self.by_nonce:
                raise NodeRefused("payments RPC refused eth_sendRawTransaction: replacement transaction underpriced")
            self.by_nonce[nonce] = params[0]
            return "0xwhatever"
        return super().__call__(method, *params, read=read)


def _decoded_nonce(raw: str) -> int:
    from eth_account.typed_transactions import TypedTransaction  # pylint: disable=import-outside-toplevel
    from hexbytes import HexBytes  # pylint: disable=import-outside-toplevel
    return TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["nonce"]


def test_two_controllers_paying_the_same_terms_at_the_same_nonce_send_two_transactions(tmp_path):
    # Two controllers (two lock files) share the account and pay the same provider the same deposit and
    # rate. The second signs while the first holds its signed, unsent transaction at the same nonce.
    node = Mempool()
    first, second = chain_with(node, tmp_path / "one"), chain_with(node, tmp_path / "two")
    recorded: dict[str, list[str]] = {"first": [], "second": []}

    def meanwhile(tx: str, _nonce: int, _raw: str) -> None:
        recorded["first"].append(tx)
        if len(recorded["first"]) == 1:
            recorded["second"].append(second.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9))

    tx = first.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9, before_send=meanwhile)
    assert tx != recorded["second"][0], "two payments, two transactions: never one stream for two VMs"
    assert sorted(node.by_nonce) == [0, 1] and {tx, *recorded["second"]} == {
        "0x" + keccak(hexstr=raw).hex() for raw in node.by_nonce.values()}


def test_an_answer_lost_for_good_is_pending_with_its_hash(tmp_path):
    node = Node()
    node.send = ["drop"] * 1000
    chain = chain_with(node, tmp_path, seconds=0.6)
    recorded: list[str] = []
    with pytest.raises(PaymentPending) as caught:
        chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9, before_send=lambda h, _n, _r: recorded.append(h))
    assert caught.value.tx == recorded[0] and "did not confirm it" in caught.value.msg
    assert len(set(node.sends())) == 1, "only ever the one transaction"


def test_an_unknown_json_rpc_error_on_send_is_not_taken_as_a_refusal(tmp_path):
    node = Node()
    node.send = ["gateway-error"]
    chain = chain_with(node, tmp_path)
    tx = chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9)
    assert tx and len(node.sends()) == 1, "looked up by hash and found: it went through the gateway"


def test_a_lost_send_whose_nonce_is_then_used_stays_pending_for_the_next_run(tmp_path):
    node = Node()
    node.send = ["drop", "nonce-used"]
    chain = chain_with(node, tmp_path)
    with pytest.raises(PaymentPending):
        chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9)


def test_only_the_recorded_transaction_is_ever_sent_again(tmp_path):
    node = Node()
    chain = chain_with(node, tmp_path)
    with pytest.raises(PaymentError, match="are not that transaction"):
        chain.rebroadcast("0x02f8", "0x" + "00" * 32)
    assert node.sends() == []


def test_a_refused_send_is_not_pending(tmp_path):
    node = Node()
    node.send = ["refuse"]
    chain = chain_with(node, tmp_path)
    with pytest.raises(PaymentError, match="was refused: .*insufficient funds") as caught:
        chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9)
    assert not isinstance(caught.value, PaymentPending)


def test_a_fee_over_the_cap_is_refused_with_the_figures_before_signing(tmp_path):
    node = Node(priority=500 * GWEI, base=2 * GWEI)
    chain = chain_with(node, tmp_path, max_fee_wei=check_fee_cap(100))
    recorded: list[str] = []
    with pytest.raises(PaymentError, match=r"up to 504 gwei a gas \(base 2, priority 500\), over "
                                           r"max_fee_per_gas_gwei 100") as caught:
        chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9, before_send=lambda h, _n, _r: recorded.append(h))
    assert caught.value.field == "max_fee_per_gas_gwei"
    assert recorded == [] and node.sends() == []


@pytest.mark.parametrize("found, kwargs, match", [
    (1, {"network": "l2.holesky"}, r"chain id 1 \(Ethereum, real money\), but payments network l2\.holesky pays "
                                   r"with test money"),
    (137, {"network": "l2.holesky"}, r"Polygon PoS"),
    (560048, {"network": "l2.holesky", "chain_id": 560048}, r"Ethereum Hoodi\), where upstream's newer protocol "
                                                            r"pays in GLM .* not supported by this version"),
    (31310, {"network": "l2.holesky", "chain_id": 31337}, r"serves chain id 31310, not payments_chain_id 31337"),
    (31310, {"network": "l2.holesky", "recorded_chain_ids": lambda: [31337]},
     r"earlier payments on payments network l2\.holesky in this state were made on chain 31337"),
])
def test_the_wrong_chain_is_refused_before_anything_is_signed(tmp_path, found, kwargs, match):
    node = Node(chain_id=found)
    chain = chain_with(node, tmp_path, **kwargs)
    with pytest.raises(PaymentError, match=match):
        chain.open(CONTRACT, RECIPIENT, 10 ** 15, 10 ** 9, before_send=lambda *signed: pytest.fail("signed"))
    assert node.sends() == []


def test_the_users_chain_id_wins_and_the_state_record_is_kept_per_network():
    check_chain_id(1, network="l2.holesky", pinned=1, recorded=[31310], url="u")  # the user said so
    check_chain_id(31310, network="l2.holesky", pinned=None, recorded=[31310], url="u")
    check_chain_id(31310, network="other", pinned=None, recorded=[], url="u")


@pytest.mark.parametrize("cap", [0, -1, float("nan"), float("inf"), True, "5", 10 ** 7])
def test_a_bad_fee_cap_is_named(cap):
    with pytest.raises(Exception, match="max_fee_per_gas_gwei"):
        check_fee_cap(cap)
