# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What became of a transaction an earlier run sent (or signed) and never saw mined.

A row records such a transaction before it leaves: its hash, its nonce and its signed bytes. Before anything is
paid again, the next run asks here: mined (its receipt), never to be mined (dead), or still possibly mined
(pending: nothing more may be paid). Unknown to the node is not dead: another node behind the same URL may hold
it, or it was dropped and can be sent again. Dead is when the account's mined nonce passed it without its
receipt, or when the node does not know it and no nonce was recorded to wait on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import PaymentError

MINED, DEAD, PENDING = "mined", "dead", "pending"


class Sent(NamedTuple):
    state: str  # MINED, DEAD or PENDING
    receipt: dict[str, Any] | None = None  # when MINED
    why: str = ""  # when DEAD or PENDING: a clause saying why


def settle_sent(chain: Any, tx: str, nonce: Any, raw: Any, *, until: float, resend: bool,
                warn: Callable[[str], None], what: str) -> Sent:
    """The fate of ``tx`` (``what`` names it in warnings). ``chain`` is a StreamChain; ``until`` how long (a
    ``time.monotonic()`` value) to wait for a receipt first. With ``resend``, a pending transaction the node does
    not know is sent again from ``raw`` (only if those bytes are that transaction)."""
    receipt = chain.receipt(tx, until, check=False)
    if receipt is not None:
        return Sent(MINED, receipt)
    recorded = isinstance(nonce, int) and not isinstance(nonce, bool)
    if recorded and chain.nonce("latest") > nonce:
        # Its nonce is used: by this very transaction, mined meanwhile, or by another one.
        receipt = chain.receipt(tx, 0.0, check=False)
        if receipt is not None:
            return Sent(MINED, receipt)
        return Sent(DEAD, why=f"its nonce {nonce} was used by another transaction of the account, so it never will be "
                              "mined")
    if chain.known(tx):
        return Sent(PENDING, why="it is still waiting to be mined")
    if not recorded:
        return Sent(DEAD, why=f"it is unknown to payments RPC {chain.rpc_url}, so it was never mined")
    if resend and isinstance(raw, str):
        try:
            chain.rebroadcast(raw, tx)
        except PaymentError as exc:
            warn(f"sending {what} {tx} again failed: {exc.msg}")
    return Sent(PENDING, why=f"it is not mined yet (its nonce {nonce} is still free" + (", and it was sent again)"
                                                                                        if resend else ")"))
