# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paying for a VM: a stream opened before its create call, and terminated when the VM is gone.

Money is data here. A stream the collection opens is always either recorded on the VM's row
(``stream_id``, or ``stream_tx`` while its transaction is unmined) or terminated, whatever fails:
* the row exists before the stream is opened (CreateTransaction writes it first), and the
  transaction hash is noted in it before the receipt is awaited;
* a failed create terminates the stream only once its VM is known not to exist; when it cannot,
  the row stays (status error) with the stream, and the next run settles it;
* destroying, stopping or losing a VM terminates its stream after the VM is gone, then forgets
  the row; a termination that fails keeps the row, so nothing is forgotten while money is locked.
Only streams this account opened are terminated; a stream given with ``stream_id`` and opened by
another account is the user's, and is left alone with a warning.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.golem.vm.plugins.module_utils.chain.network import check_contract
from ansible_collections.golem.vm.plugins.module_utils.chain.runway import refund_at
from ansible_collections.golem.vm.plugins.module_utils.chain.sent import PENDING, settle_sent
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import (
    DEFAULT_MAX_GLM_PER_MONTH, StreamTerms, bill_of, check_cap, over_cap, requires_payment, stream_terms, succeeded)
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    GolemError, IdentityError, NotSent, PaymentError, PaymentPending, TaskTimeout)
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.create_hooks import CreateHooks
from ansible_collections.golem.vm.plugins.module_utils.vm.payment_options import chain_factory
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement

if TYPE_CHECKING:  # the chain's module imports eth-account: only a task that pays loads it
    from ansible_collections.golem.vm.plugins.module_utils.chain.contract import StreamChain
    from ansible_collections.golem.vm.plugins.module_utils.chain.runway import ChainStream

# How long settling a stream may take when the task's own budget is gone (a failed create's cleanup).
SETTLE_SECONDS = 20.0
# A stream an unfinished create left is used again only with this much runway: else a new one is cheaper
# than a VM the provider deletes a moment later.
CARRY_MIN_SECONDS = 60


class StreamPayments(CreateHooks):
    """One task's payments: shared by the Lifecycles of a fleet (thread-safe)."""

    def __init__(self, chain: Callable[[], StreamChain] | None, *, hours: int, deadline: Deadline,
                 pricing_for: Callable[[Placement, str], dict[str, Any] | None], given_stream: int | None,
                 warn: Callable[[str], None], can_pay: bool = True, max_glm_per_month: float | None = None,
                 network: str | None = None, contract: str | None = None) -> None:
        """``chain()`` builds the chain client on first use (None: no chain at all); without ``can_pay``
        (no key) it only reads. ``pricing_for(placement, provider_id)`` gives the provider's advertised prices;
        a stream dearer than ``max_glm_per_month`` a month is never opened, nor one in another StreamPayment
        contract than ``contract`` (else the one documented for payments ``network``)."""
        self._chain_factory = chain
        self._can_pay = can_pay and chain is not None
        self._chain: StreamChain | None = None
        self.hours = hours
        self.deadline = deadline
        self.pricing_for = pricing_for
        self.given_stream = given_stream
        self.warn = warn
        self.max_glm_per_month = max_glm_per_month
        self.network = network
        self.contract = contract
        # Streams an earlier run opened for a create that never finished, kept for this run's create: name ->
        # (the row's stream, settled to its id; that stream as the chain has it).
        self._carried: dict[str, tuple[VMRecord, ChainStream]] = {}
        # tx hash -> the stream it opened (None: none); settling asks the chain once per task.
        self._settled: dict[str, int | None] = {}
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None
        # What each VM's stream did this task, for the result (refunds, top-ups): name -> dict.
        self.report: dict[str, dict[str, Any]] = {}

    @property
    def can_pay(self) -> bool:
        return self._can_pay

    def chain(self) -> StreamChain:
        with self._lock:
            if self._chain is None:
                if self._chain_factory is None or not self._can_pay:
                    raise PaymentError("paying a provider needs ethereum_private_key (or "
                                       "GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY), the account the streams are paid from",
                                       field="ethereum_private_key")
                self._chain = self._chain_factory()
            return self._chain

    def warm_up(self) -> None:
        """Build the chain client in the background while discovery is asked: its libraries take about as
        long to import as the rest of the create's set-up. A failure is left for chain() to report."""
        if not self._can_pay or self._chain is not None or self._warming is not None:
            return
        self._warming = threading.Thread(target=self._build_quietly, name="golem-payments-warm-up", daemon=True)
        self._warming.start()

    def _build_quietly(self) -> None:
        try:
            self.chain()
        except GolemError:
            pass

    def _record(self, name: str, **data: Any) -> None:
        with self._lock:
            self.report.setdefault(name, {}).update(data)

    # -- create: the bill, before the POST, and after a failure ---------------------------------------
    def _terms(self, placement: Placement, client: Any, spec: ResourceSpec) -> tuple[Any, StreamTerms] | None:
        """The provider's info and what a stream to it costs; None when it takes no payment (or a stream was
        given). Raises PaymentError when it cannot be paid within the cap: nothing has been sent then."""
        if self.given_stream is not None:
            return None  # a stream opened elsewhere is passed through as given
        info = client.provider_info()
        if info is None or not requires_payment(info.stream_payment_address):
            return None  # an MVP-era provider, or one whose owner turned payments off
        if placement.provider_id and info.provider_id.lower() != placement.provider_id.lower():
            # The recipient is who discovery said the provider is; never pay whoever answers instead.
            raise IdentityError(f"provider {placement.describe()} answers GET /api/v1/provider/info as "
                                f"{info.provider_id}; no stream was opened to it", url=client.http.base_url)
        pricing = self.pricing_for(placement, info.provider_id)
        terms = stream_terms(pricing, spec, self.hours)
        if terms is None:
            raise PaymentError(f"provider {placement.describe()} ({info.provider_id}) requires payment, but no GLM "
                               "prices of it could be found in discovery, so no stream rate can be computed; give "
                               "stream_id of a stream you opened to it")
        check_contract(info.stream_payment_address, given=self.contract, provider=info.provider_id,
                       network=self.network)
        why = over_cap(pricing, spec, self.max_glm_per_month)
        if why is not None:
            raise PaymentError(f"provider {placement.describe()}: {why}; no stream was opened to it",
                               field="max_glm_per_month", value=self.max_glm_per_month)
        return info, terms

    def bill(self, placement: Placement, client: Any, spec: ResourceSpec) -> dict[str, Any] | None:
        """What creating on ``placement`` would pay, for check mode and the diff; None when it pays nothing.
        Only reads (the provider's info); raises as before_post would, so check mode refuses what a run would."""
        found = self._terms(placement, client, spec)
        if found is None:
            return None
        info, terms = found
        return bill_of(terms, self.hours, info.provider_id, info.stream_payment_address)

    def before_post(self, placement: Placement, client: Any, spec: ResourceSpec,
                    note: Callable[[dict[str, Any]], None], act: Callable[[str], None], name: str) -> dict[str, Any]:
        found = self._terms(placement, client, spec)
        if found is None:
            return {}
        info, terms = found
        reused = self._reuse(name, info.provider_id, terms, act)
        if reused is not None:
            return {"stream_id": reused, "stream_tx": None}
        contract = info.stream_payment_address
        chain = self.chain()
        signed: list[str] = []

        def record(tx: str, nonce: int, raw: str) -> None:
            # Signed, not sent: a run killed once it is sent finds it on the row, and settles it. The signed bytes
            # are public once sent; with the nonce they let the next run tell a lost transaction from a dead one.
            note({"stream_tx": tx, "stream_nonce": nonce, "stream_raw_tx": raw, "stream_id": None,
                  "stream_terminated": None, "stream_contract": contract, "stream_sender": chain.address,
                  "stream_opened": True, "stream_rate_wei": terms.rate_wei, "stream_deposit_wei": terms.deposit_wei,
                  "stream_chain_id": chain.chain_id(), "payments_network": self.network})
            signed.append(tx)

        try:
            tx = chain.open(contract, info.provider_id, terms.deposit_wei, terms.rate_wei, before_send=record)
        except NotSent:
            if signed:
                note({"stream_opened": False, "stream_tx": None, "stream_raw_tx": None})  # nothing was paid
            raise
        except PaymentPending as exc:
            raise PaymentPending(f"{exc.msg}; it is recorded on VM {name}'s row, and the next run settles it without "
                                 "paying again", tx=exc.tx) from None
        except PaymentError as exc:
            if not signed:
                raise  # before signing: nothing can have been sent
            raise PaymentPending(f"the stream transaction {signed[-1]} to {info.provider_id} may have been sent "
                                 f"({exc.msg}); it is recorded on VM {name}'s row, and the next run settles it without "
                                 "paying again", tx=signed[-1]) from None
        receipt = None
        try:
            receipt = chain.receipt(tx, self.deadline.end, check=False)
            stream_id = None if receipt is None or not succeeded(receipt) else chain.created_stream(receipt, contract)
        except (PaymentError, TaskTimeout) as exc:
            raise PaymentPending(f"the stream transaction {tx} to {info.provider_id} was sent, but what it did could "
                                 f"not be read: {exc.msg}; it is recorded, and the next run settles it without paying "
                                 "again", tx=tx) from None
        if receipt is not None and not succeeded(receipt):
            note({"stream_opened": False, "stream_tx": None})
            raise PaymentError(f"the transaction {tx} opening a stream to {info.provider_id} reverted at payments "
                               f"RPC {chain.rpc_url}: no stream was opened (only its gas was paid)")
        if stream_id is None:
            raise PaymentPending(f"the transaction {tx} opening a stream to {info.provider_id} was not mined within "
                                 f"wait_timeout by the payments node at {chain.rpc_url} (payments_rpc_url); it is "
                                 "recorded, and the next run settles it without paying again", tx=tx)
        act(f"opened payment stream {stream_id} to provider {info.provider_id}: {terms.deposit_wei} wei for "
            f"{self.hours} h at {terms.rate_wei} wei/s")
        self._record(name, stream_id=stream_id, deposit_wei=terms.deposit_wei, rate_wei_per_second=terms.rate_wei)
        return {"stream_id": stream_id, "stream_tx": None, "stream_raw_tx": None, "stream_nonce": None}

    # -- a create an earlier run paid for but did not finish ------------------------------------------
    def carry(self, record: VMRecord, act: Callable[[str], None]) -> bool:
        """Keep the stream of ``record`` (a create that never finished, its VM gone) for creating it again:
        True when it is ours, opened, alive and paying the row's provider. The row then keeps it."""
        if record.status not in ("creating", "error") or not self.owns_stream(record) or not self._can_pay:
            return False
        chain = self.chain()
        with chain.budget(max(self.deadline.remaining(), SETTLE_SECONDS)):
            stream = self._row_stream(record, chain)
        if stream is None:
            return False
        stream_id = stream.stream_id
        provider = str(record.config.get("provider_id") or "")
        if stream.sender.lower() != chain.address.lower() or stream.recipient.lower() != provider.lower() \
                or stream.halted or stream.remaining_seconds < CARRY_MIN_SECONDS:
            return False
        config = {**record.config, "stream_id": int(stream_id), "stream_tx": None, "stream_raw_tx": None}
        self._carried[record.name] = (replace(record, config=config), stream)
        act(f"kept payment stream {stream_id} of VM {record.name}, which an earlier run opened for a create that did "
            f"not finish ({stream.remaining_seconds} s of it left), to pay for creating it again")
        return True

    def carried(self, name: str, placement: Placement) -> dict[str, Any]:
        """The stream keys a new row for ``name`` on ``placement`` starts with, so a carried stream stays recorded
        throughout. A create that goes to another provider first terminates it (raising when it cannot: the old
        row, which records it, then stays)."""
        kept = self._carried.get(name)
        if kept is None:
            return {}
        record, stream = kept
        if (placement.provider_id or "").lower() != stream.recipient.lower():
            self._carried.pop(name, None)
            self.release(record, self.warn)
            return {}
        return {key: value for key, value in record.config.items() if key.startswith("stream_")
                or key == "payments_network"}

    def _reuse(self, name: str, provider_id: str, terms: StreamTerms, act: Callable[[str], None]) -> int | None:
        """The carried stream's id when it pays ``provider_id`` what this create would, for long enough; else it
        is terminated (the row still records it) and a new one opened, so a VM is never paid twice."""
        kept = self._carried.pop(name, None)
        if kept is None:
            return None
        record, stream = kept
        if stream.recipient.lower() == provider_id.lower() and stream.rate == terms.rate_wei \
                and stream.remaining_seconds >= min(self.hours * 3600, CARRY_MIN_SECONDS * 30):
            act(f"paid VM {name} with payment stream {stream.stream_id}, opened by an earlier run")
            return stream.stream_id
        self.release(record, act)
        return None

    def after_failure(self, placement: Placement, record: VMRecord | None, vm_gone: bool,
                      act: Callable[[str], None]) -> None:
        if record is not None:
            self._carried.pop(record.name, None)  # a failed create's stream is settled here, never reused
        if record is None or not vm_gone:
            return  # a VM that may exist keeps its stream, recorded on its row
        refund = self.release(record, act)
        if refund is not None:
            act(f"the create failed, so payment stream {record.stream_id or record.config.get('stream_id')} was "
                f"terminated before going on")

    # -- a VM gone or stopped: terminate its stream ----------------------------------------------------
    def owns_stream(self, record: VMRecord) -> bool:
        """Whether the row records a stream this collection opened (which it must settle before forgetting)."""
        return bool(record.config.get("stream_opened")) and not record.config.get("stream_terminated") and bool(
            record.config.get("stream_id") is not None or record.config.get("stream_tx"))

    def release(self, record: VMRecord, act: Callable[[str], None]) -> int | None:
        """Terminate the stream of ``record``'s VM, which is known gone or stopped; the refund in wei.

        None when there was nothing to terminate. Raises PaymentError when it cannot be settled now
        (an unmined transaction, an unreachable chain): the caller keeps the row for the next run.
        """
        config = record.config
        if not self.owns_stream(record):
            if config.get("stream_id") is not None and not config.get("stream_opened") \
                    and not config.get("stream_terminated"):
                self.warn(f"VM {record.name}'s stream {config['stream_id']} was given to the collection, not "
                          "opened by it; it was left as it is")
            return None
        chain = self.chain()
        with chain.budget(max(self.deadline.remaining(), SETTLE_SECONDS)):
            return self._terminate(record, chain, act)

    def _row_stream(self, record: VMRecord, chain: StreamChain) -> ChainStream | None:
        """The stream the row records, as the chain has it; its opening transaction settled first when the row
        has only that (None: it opened no stream)."""
        contract = str(record.config.get("stream_contract") or "")
        stream_id = record.config.get("stream_id")
        if stream_id is None:
            stream_id = self._settle_opening(record, chain, contract)
            if stream_id is None:
                return None
        return chain.read(contract, int(stream_id))

    def _terminate(self, record: VMRecord, chain: StreamChain, act: Callable[[str], None]) -> int | None:
        contract = str(record.config.get("stream_contract") or "")
        stream = self._row_stream(record, chain)
        if stream is None:
            return None
        stream_id = stream.stream_id
        if stream.sender.lower() != chain.address.lower():
            self.warn(f"VM {record.name}'s stream {stream_id} was opened by {stream.sender}, not by this account "
                      f"{chain.address}; it was left as it is")
            return None
        if stream.recipient.lower() == "0x" + "0" * 40 or refund_at(stream, stream.now) <= 0:
            return 0  # terminated already, or ran out to the last wei: nothing is left to refund
        # A halted stream (stopTime moved to the halt) or one that ran out with a top-up's remainder still
        # holds deposit that only terminate gives back.
        tx = chain.terminate(contract, int(stream_id))
        receipt = chain.receipt(tx, time.monotonic() + max(self.deadline.remaining(), SETTLE_SECONDS))
        if receipt is None:
            raise PaymentError(f"the transaction {tx} terminating stream {stream_id} was not mined in time; the "
                               "row keeps the stream and the next run checks again")
        when = chain.block_time(receipt["blockNumber"])
        refund = refund_at(stream, when)
        act(f"terminated payment stream {stream_id}: {refund} wei back to {chain.address}")
        self._record(record.name, stream_id=int(stream_id), refunded_wei=refund, terminated=True, terminate_tx=tx)
        return refund

    def why_gone(self, record: VMRecord) -> str | None:
        """Why a paid VM vanished, as the chain tells: its stream ran out or was halted (else None)."""
        contract, stream_id = record.config.get("stream_contract"), record.config.get("stream_id")
        if self._chain_factory is None or not contract or stream_id is None:
            return None
        try:
            with self._lock:
                chain = self._chain = self._chain or self._chain_factory()
            stream = chain.read(str(contract), int(stream_id))
        except GolemError:
            return None  # a reason is a courtesy; its absence must not fail the task
        if stream.halted:
            return f"its payment stream {stream_id} was halted"
        # Its stop time, not its runway: upstream's terminate() leaves stopTime, and its provider runs the VM till then.
        if stream.stop_time <= stream.now:
            return (f"its payment stream {stream_id} ran out at chain time {stream.stop_time}, and the provider "
                    "deletes a VM whose stream has ended")
        return None

    def _settle_opening(self, record: VMRecord, chain: StreamChain, contract: str) -> int | None:
        """The stream id of a transaction that was sent but not seen mined; None when it opened nothing."""
        tx = str(record.config.get("stream_tx"))
        if tx in self._settled:
            return self._settled[tx]
        self._settled[tx] = found = self._settle_tx(record, chain, contract, tx)
        return found

    def _settle_tx(self, record: VMRecord, chain: StreamChain, contract: str, tx: str) -> int | None:
        sent = settle_sent(chain, tx, record.config.get("stream_nonce"), record.config.get("stream_raw_tx"),
                           until=time.monotonic() + SETTLE_SECONDS, resend=True, warn=self.warn,
                           what=f"VM {record.name}'s stream transaction")
        if sent.state == PENDING:
            raise PaymentError(f"VM {record.name}'s stream transaction {tx} is pending: {sent.why}; the row keeps it "
                               "and the next run settles it")
        if sent.receipt is None:
            self.warn(f"VM {record.name}'s stream transaction {tx} opened no stream: {sent.why}")
            return None
        if not succeeded(sent.receipt):
            self.warn(f"VM {record.name}'s stream transaction {tx} reverted: it opened no stream")
            return None
        return chain.created_stream(sent.receipt, contract)


def pricing_lookup(discovery: Callable[[], Any]) -> Callable[[Placement, str], dict[str, Any] | None]:
    """A placement's advertised prices: carried from discovery, or asked for by the id the provider gives."""

    def pricing(placement: Placement, provider_id: str) -> dict[str, Any] | None:
        if placement.pricing is not None:
            return placement.pricing
        try:
            ad = discovery().get_advertisement(placement.provider_id or provider_id)
        except GolemError:
            return None
        return ad.pricing.model_dump() if ad is not None and ad.pricing is not None else None

    return pricing


def build_payments(params: dict[str, Any], *, local_dir: str, deadline: Deadline, discovery: Callable[[], Any],
                   warn: Callable[[str], None], store: Any = None) -> StreamPayments:
    """golem_vm's and golem_fleet's payments (their options checked by prepare_task): a lazy chain client, the
    adverts' prices. ``local_dir`` holds this controller's nonce lock (beside the state file)."""
    return StreamPayments(chain_factory(params, lock_dir=local_dir, deadline=deadline, store=store),
                          can_pay=bool(params.get("ethereum_private_key")), hours=params["payment_hours"],
                          deadline=deadline, pricing_for=pricing_lookup(discovery),
                          given_stream=params.get("stream_id"), warn=warn,
                          max_glm_per_month=check_cap(params.get("max_glm_per_month", DEFAULT_MAX_GLM_PER_MONTH)),
                          network=params.get("payments_network"), contract=params.get("stream_payment_address"))
