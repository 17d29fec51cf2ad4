# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_stream's work on one stream: top it up to a runway, terminate it, or only show it.

Reads first, then decides (stream_runway), then pays at most one transaction. What a run reports
comes from the chain: the stream is read again after a transaction is mined, and a refund is
what the contract's books give at the block that mined the termination. Check mode reads the
same and sends nothing. The provider's own view (GET /api/v1/vms/NAME/stream) is a courtesy: it
is asked last, only for a VM's stream, and its failure never fails the task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.runway import (
    diff_view,
    ended_reason,
    exists,
    plan_top_up,
    refund_at,
    remaining_seconds,
    terminated,
)
from ansible_collections.golem.vm.plugins.module_utils.chain.sent import MINED, PENDING, settle_sent
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import ZERO_ADDRESS, glm_per_month_of
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, PaymentError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import API_PREFIX, segment
from ansible_collections.golem.vm.plugins.module_utils.state.backend import StateBackend
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED, STATUSES
from ansible_collections.golem.vm.plugins.module_utils.vm.stream_target import StreamTarget

KEY_HINT = "ethereum_private_key (or GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY)"


def stream_result(stream: Any, contract: str) -> dict[str, Any]:
    """The chain's view, as RV(stream) documents it."""
    view = stream.view()
    view["contract"] = contract
    view["remaining_seconds"] = remaining_seconds(stream)
    view["ended"] = ended_reason(stream) is not None
    return view


def provider_view(client: Any, name: str) -> dict[str, Any]:
    """What the VM's provider says of its stream; an error becomes the reason, never a failure."""
    path = f"{API_PREFIX}/vms/{segment(name)}/stream"
    try:
        data = client.http.call("GET", path, missing_ok=True).data
    except GolemError as exc:
        return {"verified": None, "reason": exc.msg, "remaining_seconds": None, "stream_id": None}
    if not isinstance(data, dict):
        reason = (f"the provider has no stream mapped to VM {name} (HTTP 404); it forgets the mapping when it "
                  "deletes the VM")
        return {"verified": None, "reason": reason, "remaining_seconds": None, "stream_id": None}
    computed = data.get("computed") if isinstance(data.get("computed"), dict) else {}
    return {"verified": bool(data.get("verified")), "reason": str(data.get("reason") or ""),
            "remaining_seconds": computed.get("remaining_seconds"), "stream_id": data.get("stream_id")}


class StreamTask:
    """One golem_stream run. ``chain`` is a StreamChain (reads without a key; pays with one)."""

    def __init__(self, target: StreamTarget, chain: Any, *, store: StateBackend, check_mode: bool,
                 deadline: Deadline, warn: Callable[[str], None], max_glm_per_month: float | None = None) -> None:
        """A stream whose rate costs more than ``max_glm_per_month`` a month is not topped up (None: no cap)."""
        self.target = target
        self.max_glm_per_month = max_glm_per_month
        self.chain = chain
        self.store = store
        self.check_mode = check_mode
        self.deadline = deadline
        self.warn = warn
        self.changed = False
        self.actions: list[str] = []
        self.result: dict[str, Any] = {"top_up": {}, "refunded_wei": None, "tx": None}
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}

    def _act(self, text: str) -> None:
        self.actions.append(("would " if self.check_mode else "") + text)

    def read(self) -> Any:
        self.chain.check_contract(self.target.contract)
        stream = self.chain.read(self.target.contract, self.target.stream_id)
        if not exists(stream):
            raise ValidationError(
                f"stream {self.target.stream_id} does not exist at StreamPayment {self.target.contract} (from "
                f"{self.target.contract_from}) on payments RPC {self.chain.rpc_url}; check stream_id and the chain",
                field="stream_id", value=self.target.stream_id)
        record = self.target.record
        if record is not None and record.provider_id and not terminated(stream) \
                and stream.recipient.lower() != record.provider_id.lower():
            self.warn(f"stream {stream.stream_id} pays {stream.recipient}, not VM {record.name}'s provider "
                      f"{record.provider_id}")
        self.before = diff_view(stream)
        return stream

    def _need_sender(self, stream: Any, doing: str, verb: str) -> None:
        """Only the sender tops a stream up; only sender or recipient terminate it. Checked before paying."""
        me = self.chain.address
        if me == ZERO_ADDRESS:
            if not self.check_mode:
                raise ValidationError(f"{doing} {self.target.describe} needs {KEY_HINT}: the key of its sender "
                                      f"{stream.sender}", field="ethereum_private_key")
            return
        if stream.sender.lower() != me.lower():
            raise ValidationError(f"{self.target.describe} was opened by {stream.sender}; only that account can "
                                  f"{verb} it, and {KEY_HINT} is the key of {me}",
                                  field="ethereum_private_key")

    def _mined(self, tx: str, what: str) -> dict[str, Any]:
        receipt = self.chain.receipt(tx, self.deadline.end)
        if receipt is None:
            raise GolemError(f"the transaction {tx} {what} was not mined within wait_timeout ({self.deadline.seconds:g}"
                             f" s) by the payments node at {self.chain.rpc_url} (payments_rpc_url); check it on "
                             "chain before running again: once it is mined, a new run finds the stream changed")
        return receipt

    # -- state=present ---------------------------------------------------------------------------
    def present(self, runway_hours: int | None, below_seconds: int | None) -> Any:
        record = self.target.record
        if runway_hours is not None and record is not None and record.status == ABANDONED:
            # golem_fleet terminated its stream and replaced it: a member given up on is never paid more.
            raise ValidationError(f"VM {record.name} has status {ABANDONED}: golem_fleet gave up on it and replaced "
                                  f"it, so its stream {self.target.stream_id} is not topped up; remove its row, or "
                                  "create the VM again", field="name", value=record.name)
        if runway_hours is not None:
            self._settle_sent_top_up()
        stream = self.read()
        if runway_hours is None or below_seconds is None:
            self.after = self.before
            return stream
        why = ended_reason(stream)
        if why is not None:
            raise ValidationError(
                f"{self.target.describe} {why}: an ended stream cannot be topped up or revived (the provider "
                "deletes a VM whose stream has ended); create the VM again with golem_vm, which opens a new stream",
                field="runway_hours", value=runway_hours)
        plan = plan_top_up(stream, runway_hours, below_seconds)
        if plan is None:
            self.after = self.before
            return stream
        monthly = glm_per_month_of(stream.rate)
        if self.max_glm_per_month is not None and monthly > self.max_glm_per_month:
            raise PaymentError(f"{self.target.describe} pays {stream.rate} wei/s, {monthly:g} GLM a month, over "
                               f"max_glm_per_month {self.max_glm_per_month:g}; it was not topped up",
                               field="max_glm_per_month", value=self.max_glm_per_month)
        self._need_sender(stream, "Topping up", "top up")
        self.changed = True
        what = (f"{self.target.describe} by {plan.amount_wei} wei ({plan.seconds_added} s at {stream.rate} wei/s): "
                f"{plan.remaining_seconds_before} s of runway were left, {runway_hours} h after")
        self.result["top_up"] = plan.as_dict()
        if self.check_mode:
            self.actions.append(f"would top up {what}")
            self.after = diff_view(stream, stop_time=plan.stop_time_after, deposit=plan.deposit_wei_after)
            return stream
        tx = self.chain.top_up(self.target.contract, self.target.stream_id, plan.amount_wei,
                               before_send=self._note_sending if record is not None else None)
        self.result["tx"] = self.result["top_up"]["tx"] = tx
        self._mined(tx, f"topping up stream {self.target.stream_id} by {plan.amount_wei} wei")
        if record is not None:
            self._note_sending(None, None, None)
        self.actions.append(f"topped up {what}")
        now = self.chain.read(self.target.contract, self.target.stream_id)
        self.after = diff_view(now)
        return now

    def _note_sending(self, tx: str | None, nonce: int | None, raw: str | None) -> None:
        """On the VM's row before a top-up leaves (signed, its nonce held), and cleared once it is mined: a top-up
        whose answer or receipt an earlier run lost is settled before another is paid, so none is paid twice."""
        record = self.target.record
        if record is not None:
            self.store.set_status(record.name, record.status, top_up_tx=tx, top_up_nonce=nonce, top_up_raw=raw)

    def _settle_sent_top_up(self) -> None:
        """The top-up an earlier run sent and did not see mined: mined, or never to be, before anything more is
        paid; one that may still be mined fails the task (sent again when the node does not know it, outside
        check mode), and pays nothing."""
        record = self.target.record
        tx = record.config.get("top_up_tx") if record is not None else None
        if record is None or not isinstance(tx, str):
            return
        sent = settle_sent(self.chain, tx, record.config.get("top_up_nonce"), record.config.get("top_up_raw"),
                           until=0.0, resend=not self.check_mode, warn=self.warn, what=f"the top-up of VM {record.name}")
        if sent.state == PENDING:
            raise PaymentError(f"the top-up {tx} of VM {record.name}'s stream {self.target.stream_id}, sent by an "
                               f"earlier run, is not mined yet: nothing more is paid until it is ({sent.why}); the row "
                               "keeps it and the next run settles it", field="runway_hours")
        self._act(f"settle the top-up {tx} an earlier run sent: " + ("it was mined" if sent.state == MINED
                                                                     else f"it never will be ({sent.why})"))
        if not self.check_mode:
            self._note_sending(None, None, None)

    # -- state=absent ----------------------------------------------------------------------------
    def absent(self) -> Any:
        stream = self.read()
        if terminated(stream):
            self.after = self.before
            self._note_terminated(f"stream {stream.stream_id} was terminated already")
            return stream
        if refund_at(stream, stream.now) == 0:
            # Ran out (or halted with nothing left): terminating would only pay the provider what vested.
            self.after = self.before
            self.result["refunded_wei"] = 0
            return stream
        self._need_sender(stream, "Terminating", "terminate")
        self.changed = True
        estimate = refund_at(stream, stream.now)
        if self.check_mode:
            self.actions.append(f"would terminate {self.target.describe}: about {estimate} wei back to {stream.sender}")
            self.result["refunded_wei"] = estimate
            self.after = diff_view(stream, stop_time=min(stream.stop_time, stream.now), ended=True)
            return stream
        tx = self.chain.terminate(self.target.contract, self.target.stream_id)
        self.result["tx"] = tx
        receipt = self._mined(tx, f"terminating stream {self.target.stream_id}")
        # The contract settles at the block that mined it: what had not vested by then came back.
        refund = refund_at(stream, self.chain.block_time(receipt["blockNumber"]))
        self.result["refunded_wei"] = refund
        self.actions.append(f"terminated {self.target.describe}: {refund} wei back to {stream.sender}")
        now = self.chain.read(self.target.contract, self.target.stream_id)
        self.after = diff_view(now)
        self._note_terminated(None)
        return now

    def _note_terminated(self, why: str | None) -> None:
        """Record on the VM's row that its stream is over, so golem_vm does not try to settle it again."""
        record = self.target.record
        if record is None or record.config.get("stream_terminated") or record.stream_id != self.target.stream_id:
            return
        if record.status not in STATUSES:
            self.warn(f"VM {record.name}'s row has status {record.status!r}; stream_terminated was not recorded")
            return
        if why is not None:
            self.changed = True
            self._act(f"record on VM {record.name}'s row that {why}")
        if not self.check_mode:
            self.store.set_status(record.name, record.status, stream_terminated=True)
