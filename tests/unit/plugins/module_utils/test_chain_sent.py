# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A transaction an earlier run sent and never saw mined is mined, dead or pending, by one rule for a stream's
opening and a top-up alike: nothing is paid again while it may still be mined."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.chain.sent import DEAD, MINED, PENDING, settle_sent
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import PaymentError

TX = "0x" + "ab" * 32
RECEIPT = {"transactionHash": TX, "status": "0x1"}


class Node:
    """The node's view: receipts, its pool, the account's mined nonce; what was sent again."""

    rpc_url = "http://127.0.0.10:8545"

    def __init__(self, *, mined: bool = False, pooled: bool = False, used: int = 0, mined_late: bool = False,
                 refuse: bool = False) -> None:
        self.mined, self.pooled, self.used, self.mined_late, self.refuse = mined, pooled, used, mined_late, refuse
        self.receipts = 0
        self.resent: list[tuple[str, str]] = []

    def receipt(self, tx: str, until: float, *, check: bool = True) -> dict[str, Any] | None:
        self.receipts += 1
        return RECEIPT if self.mined or (self.mined_late and self.receipts > 1) else None

    def known(self, tx: str) -> bool:
        return self.pooled

    def nonce(self, block: str = "pending") -> int:
        return self.used

    def rebroadcast(self, raw: str, tx: str) -> None:
        if self.refuse:
            raise PaymentError("already known")
        self.resent.append((raw, tx))


def settle(node: Node, nonce: Any = 4, raw: Any = "0xraw", resend: bool = True, warnings: list[str] | None = None):
    return settle_sent(node, TX, nonce, raw, until=0.0, resend=resend,
                       warn=(warnings if warnings is not None else []).append, what="the top-up")


def test_a_mined_transaction_gives_its_receipt_and_nothing_is_sent() -> None:
    node = Node(mined=True)
    assert settle(node) == (MINED, RECEIPT, "") and node.resent == []


def test_one_still_in_the_pool_is_pending_and_not_sent_again() -> None:
    node = Node(pooled=True)
    sent = settle(node)
    assert sent.state == PENDING and "waiting to be mined" in sent.why and node.resent == []


def test_one_the_node_lost_with_its_nonce_still_free_is_sent_again_and_pending() -> None:
    node = Node(used=4)
    sent = settle(node)
    assert sent.state == PENDING and node.resent == [("0xraw", TX)] and "nonce 4 is still free" in sent.why


def test_check_mode_sends_nothing_again() -> None:
    node = Node(used=4)
    assert settle(node, resend=False).state == PENDING and node.resent == []


def test_a_refused_resend_is_a_warning_and_still_pending() -> None:
    warnings: list[str] = []
    assert settle(Node(refuse=True), warnings=warnings).state == PENDING
    assert len(warnings) == 1 and "the top-up" in warnings[0] and TX in warnings[0]


def test_a_used_nonce_means_mined_meanwhile_or_dead() -> None:
    assert settle(Node(used=5, mined_late=True)).state == MINED
    dead = settle(Node(used=5))
    assert dead.state == DEAD and dead.receipt is None and "nonce 4 was used" in dead.why


@pytest.mark.parametrize("nonce", [None, "4", True])
def test_unknown_with_no_nonce_to_wait_on_was_never_mined(nonce: Any) -> None:
    node = Node(used=9)
    sent = settle(node, nonce=nonce)
    assert sent.state == DEAD and "unknown to payments RPC" in sent.why and node.resent == []
