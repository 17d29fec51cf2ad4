# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_fleet's runway step: every paid member whose stream runs low is topped up, as golem_stream tops one up.

Each member is one StreamTask on the stream its row records, so the rule (chain.runway.plan_top_up: a stream with
less than the threshold left is brought to exactly ``runway_hours``, to the wei), the checks before paying (the
stream runs, this account opened it, its rate is within ``max_glm_per_month``) and the sending are golem_stream's
own. Only running members whose stream the collection opened are considered: an abandoned, stopped or failed
member is never paid more. One member that cannot be read or paid is a failure of that member alone.

A top-up is recorded in the member's row history (``topped_up``, with the wei and the transaction) once it is
mined; check mode reads every stream, sends nothing and returns the bill.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.runway import ChainStream, plan_top_up
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import ZERO_ADDRESS, glm_per_month_of
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError
from ansible_collections.golem.vm.plugins.module_utils.state.backend import StateBackend
from ansible_collections.golem.vm.plugins.module_utils.state.history import event, with_event
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import VMStatus
from ansible_collections.golem.vm.plugins.module_utils.vm.payment_options import chain_factory
from ansible_collections.golem.vm.plugins.module_utils.vm.services import VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.stream_target import row_target
from ansible_collections.golem.vm.plugins.module_utils.vm.stream_task import StreamTask


@dataclass
class RunwayResult:
    """What the step did (or, in check mode, would do): each top-up, and each member it could not see to."""

    check_mode: bool
    max_glm_per_month: float | None
    topped_up: list[dict[str, Any]] = field(default_factory=list)  # sorted by name
    failures: dict[str, str] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.topped_up)

    def bill(self) -> dict[str, Any]:
        """The top-ups' bill: each member's, their total, and the cap each stream's rate was held to."""
        members = {t["name"]: {k: v for k, v in t.items() if k not in ("name", "tx")} for t in self.topped_up}
        return {"members": members, "wei": sum(t["wei"] for t in self.topped_up),
                "max_glm_per_month": self.max_glm_per_month}

    def failure_message(self) -> str:
        return (f"{len(self.failures)} fleet members' streams could not be topped up: "
                + "; ".join(f"{name}: {why}" for name, why in sorted(self.failures.items())))


def _line(name: str, stream_id: int | None, contract: str | None, plan: dict[str, Any], rate: int) -> dict[str, Any]:
    """One top-up as the result and the bill show it; ``plan`` is a TopUp's dict (with its ``tx`` once sent)."""
    return {"name": name, "stream_id": stream_id, "contract": contract,
            "remaining_seconds_before": plan["remaining_seconds_before"],
            "remaining_seconds_after": plan["remaining_seconds_after"], "seconds_added": plan["seconds_added"],
            "hours_added": round(plan["seconds_added"] / 3600, 4), "wei": plan["amount_wei"],
            "rate_wei_per_second": rate, "glm_per_month": glm_per_month_of(rate), "tx": plan.get("tx")}


def paid_members(rows: list[VMRecord], owns_stream: Callable[[VMRecord], bool]) -> list[VMRecord]:
    """The members a top-up may pay: running, readable, with a stream the collection opened."""
    return sorted((r for r in rows if r.ok and r.status == VMStatus.RUNNING.value and owns_stream(r)),
                  key=lambda r: r.name)


class FleetRunway:
    """``chain()`` gives the chain client (built once, only when a member is paid; one without a key reads and
    check mode needs no more); ``runway_hours`` and ``below_seconds`` are checked (stream_target's
    check_runway_options)."""

    def __init__(self, chain: Callable[[], Any], *, store: StateBackend, deadline: Deadline,
                 warn: Callable[[str], None], runway_hours: int, below_seconds: int, check_mode: bool,
                 max_glm_per_month: float | None, parallelism: int = 1) -> None:
        self.chain = chain
        self.store = store
        self.deadline = deadline
        self.warn = warn
        self.runway_hours = runway_hours
        self.below_seconds = below_seconds
        self.check_mode = check_mode
        self.max_glm_per_month = max_glm_per_month
        self.parallelism = max(1, parallelism)

    def run(self, members: list[VMRecord]) -> RunwayResult:
        """Top up ``members`` (paid_members' choice) whose runway is low; each member's failure is its own."""
        result = RunwayResult(self.check_mode, self.max_glm_per_month)
        if not members:
            return result
        try:
            chain = self.chain()
        except GolemError as exc:
            result.failures.update({r.name: exc.msg for r in members})
            return result
        with ThreadPoolExecutor(max_workers=min(self.parallelism, len(members)),
                                thread_name_prefix="golem-fleet-runway") as pool:
            outcomes = list(pool.map(lambda r: self._one(chain, r), members))
        for record, (entry, actions, error) in zip(members, outcomes):
            result.actions.extend(actions)
            if entry is not None:
                result.topped_up.append(entry)
            if error is not None:
                result.failures[record.name] = error
        return result

    def _one(self, chain: Any, record: VMRecord) -> tuple[dict[str, Any] | None, list[str], str | None]:
        """One member: the top-up made (or that would be), what was done, and why it failed; never raises, so one
        member's failure does not hide the others'."""
        task: StreamTask | None = None
        try:
            target = row_target(record)
            if target is None:
                return None, [], (f"VM {record.name}'s row names no StreamPayment contract (stream_contract), so its "
                                  "stream is not topped up; golem_stream with stream_payment_address can")
            task = StreamTask(target, chain, store=self.store, check_mode=self.check_mode, deadline=self.deadline,
                              warn=self.warn, max_glm_per_month=self.max_glm_per_month)
            stream = task.present(self.runway_hours, self.below_seconds)
            plan = task.result["top_up"]
            if not plan:
                return None, task.actions, None
            entry = _line(record.name, target.stream_id, target.contract, plan, stream.rate)
            # Paid by now: a row that cannot be written fails the member, and the top-up is still reported.
            return entry, task.actions, None if self.check_mode else self._remember(record.name, entry)
        except GolemError as exc:
            return None, task.actions if task is not None else [], exc.msg
        # Anything else is this member's failure too: one bad row must not cost the others their top-up.
        except Exception as exc:  # pylint: disable=broad-except
            return None, task.actions if task is not None else [], f"{type(exc).__name__}: {exc}"

    def _remember(self, name: str, entry: dict[str, Any]) -> str | None:
        """The top-up in the member's row history (read again first, so an entry written meanwhile is kept); why it
        could not be written, else None."""
        detail = (f"its runway was {entry['remaining_seconds_before']} s, below the fleet's top-up threshold "
                  f"{self.below_seconds} s: stream {entry['stream_id']} was topped up by {entry['seconds_added']} s to "
                  f"{self.runway_hours} h")
        unrecorded = f"its stream was topped up ({entry['wei']} wei, transaction {entry['tx']}), but"
        try:
            row = self.store.get(name)
            if row is None or not row.ok:
                return f"{unrecorded} its row is gone or unreadable, so the history does not say so"
            self.store.set_status(name, row.status, history=with_event(row.config, event(
                "topped_up", detail, wei=entry["wei"], tx=entry["tx"])))
        except GolemError as exc:
            return f"{unrecorded} its row history could not be written: {exc.msg}"
        return None

    def new_members(self, bills: dict[str, dict[str, Any]], result: RunwayResult) -> None:
        """Check mode: the top-ups that members which would be created get in the same run, after their stream is
        opened for its payment hours (as of that moment; a run pays for the seconds its creation took too)."""
        for name, bill in sorted(bills.items()):
            opened = ChainStream(stream_id=0, token=ZERO_ADDRESS, sender=ZERO_ADDRESS, recipient=ZERO_ADDRESS,
                                 start_time=0, stop_time=int(bill["payment_hours"]) * 3600,
                                 rate=int(bill["rate_wei_per_second"]), deposit=int(bill["deposit_wei"]), withdrawn=0,
                                 halted=False, now=0)
            plan = plan_top_up(opened, self.runway_hours, self.below_seconds)
            if plan is None:
                continue
            result.topped_up.append(_line(name, None, bill.get("stream_payment_address"), plan.as_dict(), opened.rate))
            result.actions.append(f"would top up the stream of new VM {name} by {plan.amount_wei} wei "
                                  f"({plan.seconds_added} s): its payment hours are below the top-up threshold")
        result.topped_up.sort(key=lambda t: t["name"])


def top_up_fleet(services: VMServices, params: dict[str, Any], rows: list[VMRecord], below_seconds: int, *,
                 local_dir: str, bills: dict[str, dict[str, Any]]) -> RunwayResult:
    """golem_fleet's step after Fleet.run(): ``rows`` are the members as the run left them (in check mode, as it
    would), ``bills`` what check mode bills the members it would create. Paid from the fleet's own chain client;
    without a key, streams are read (check mode, or a run with nothing to pay) and paying fails per member."""
    payments = services.payments
    if payments is None:
        return RunwayResult(services.check_mode, None)
    reader = chain_factory(params, lock_dir=local_dir, deadline=services.deadline, store=services.store)
    step = FleetRunway(payments.chain if payments.can_pay else reader, store=services.store,
                       deadline=services.deadline, warn=services.warn, runway_hours=params["runway_hours"],
                       below_seconds=below_seconds, check_mode=services.check_mode,
                       max_glm_per_month=payments.max_glm_per_month, parallelism=params["parallelism"])
    result = step.run(paid_members(rows, payments.owns_stream))
    if services.check_mode:
        step.new_members(bills, result)
    return result
