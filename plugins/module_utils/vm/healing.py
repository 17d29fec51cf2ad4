# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a VM whose provider stopped answering is given up on, and settled once that provider answers again:
golem_fleet replaces such a member (``replace_unreachable_after``); golem_vm only gives its VM up
(``abandon_unreachable_after``), never by default.

* The first time a member's provider does not answer (refused, reset, timed out, a gateway's 502-504), the
  time is recorded on the row (``unreachable_since``); the next answer, whatever it says, clears it.
* With ``replace_unreachable_after``, a member silent for longer than that whose advert is also gone from
  discovery is abandoned: the row takes status ``abandoned`` (never forgotten without the provider's word),
  the stream the collection opened is terminated (the unvested deposit comes back; the provider keeps what
  vested), and the fleet creates a stand-in. A provider discovery still lists, or one discovery cannot tell
  about, is never given up on.
* An abandoned row is settled when its provider answers again: a proven 404 forgets it; a VM still there (it
  was replaced) is deleted, then the row is forgotten. Its stream is terminated first if that failed before.

Every step is in the task's actions, in the result's ``abandoned`` / ``settled`` entries (what, why, money
moved) and in the row's history (state/history.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    GolemError,
    IdentityError,
    ProviderError,
    UnsupportedProvider,
    ValidationError,
)
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import lookup
from ansible_collections.golem.vm.plugins.module_utils.state.history import event, with_event
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED
from ansible_collections.golem.vm.plugins.module_utils.vm.outcome import Outcome
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import recorded_placement
from ansible_collections.golem.vm.plugins.module_utils.vm.retire import Retirement
from ansible_collections.golem.vm.plugins.module_utils.vm.services import VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.waits import SETTLE_SECONDS, delete_verified

UNREACHABLE_SINCE = "unreachable_since"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# A gateway in front of a provider answers these when the provider behind it does not.
_GATEWAY_STATUSES = (502, 503, 504)


def check_duration(value: Any, field: str) -> float | None:
    """Seconds from ``90``, ``90s``, ``10m``, ``2h`` or ``1d``; None stays None (off)."""
    if value is None:
        return None
    found = _DURATION.fullmatch(str(value).strip().lower())
    if found is None or float(found.group(1)) <= 0:
        raise ValidationError(f"{field} {value!r} is not a duration: give seconds, or a number with s, m, h or d "
                              "(for example 10m)", field=field, value=value)
    return float(found.group(1)) * _UNITS[found.group(2)]


def unanswered(exc: GolemError) -> bool:
    """Whether a failed lookup means the provider did not answer at all (rather than answering with an error,
    or being someone else: those are never reasons to give up on a member)."""
    return (isinstance(exc, ProviderError) and not isinstance(exc, (IdentityError, UnsupportedProvider))
            and exc.status in (None, *_GATEWAY_STATUSES))


def advertised_in(discovery: Callable[[], Any], warn: Callable[[str], None]) -> Callable[[VMRecord], bool | None]:
    """Whether discovery still lists a VM's provider (by id, else by address); None when it cannot tell. Discovery
    is asked once, on first use."""
    listed: list[set[str]] = []

    def advertised(record: VMRecord) -> bool | None:
        if not listed:
            try:
                ads = discovery().list_advertisements(on_invalid=lambda _pid, _exc: None)
            except GolemError as exc:
                warn(f"discovery could not list the providers, so no VM was given up on: {exc.msg}")
                return None
            listed.append({(ad.provider_id or "").lower() for ad in ads} | {ad.ip_address for ad in ads})
        return (record.provider_id.lower() if record.provider_id else record.provider_ip) in listed[0]

    return advertised


class Healing:
    """One fleet run's healing steps; ``advertised(record)`` says whether discovery still lists the member's
    provider (None: discovery could not tell)."""

    def __init__(self, services: VMServices, *, replace_after: float | None,
                 advertised: Callable[[VMRecord], bool | None], now: Callable[[], float] = time.time,
                 option: str = "replace_unreachable_after") -> None:
        """``option`` names ``replace_after`` in messages."""
        self.option = option
        self.services = services
        self.replace_after = replace_after
        self.advertised = advertised
        self.now = now

    # -- a running member's lookup -----------------------------------------------------------
    @staticmethod
    def http_options(record: VMRecord) -> dict[str, Any]:
        """A provider the row already records as silent is asked once, without the retries that ride out a
        passing failure: the first failure had them, and each later run asks again anyway."""
        return {"retries": 0} if record.config.get(UNREACHABLE_SINCE) is not None else {}

    def answered(self, record: VMRecord) -> None:
        """Its provider answered: a first failure recorded on the row is over (bookkeeping, not a change)."""
        if record.config.get(UNREACHABLE_SINCE) is None or self.services.check_mode:
            return
        self.services.store.set_status(record.name, record.status, unreachable_since=None, history=with_event(
            record.config, event("answered", f"provider {recorded_placement(record).describe()} answered again")))

    def silent_for(self, record: VMRecord, exc: GolemError) -> float:
        """Seconds its provider has not answered; the first failure is recorded on the row (not in check mode)."""
        since, now = record.config.get(UNREACHABLE_SINCE), self.now()
        if isinstance(since, int) and not isinstance(since, bool) and 0 < since <= now:
            return now - since
        if not self.services.check_mode:
            self.services.store.set_status(record.name, record.status, unreachable_since=int(now), history=with_event(
                record.config, event("unreachable", f"provider {recorded_placement(record).describe()} did not answer: "
                                                    f"{exc.msg}")))
        return 0.0

    def due(self, record: VMRecord, exc: GolemError) -> str | None:
        """Why the member is to be abandoned now; None to leave it (with a warning saying why)."""
        silent = self.silent_for(record, exc)
        where = recorded_placement(record).describe()
        if self.replace_after is None or silent < self.replace_after:
            return None
        listed = self.advertised(record)
        if listed is None:
            self.services.warn(f"fleet member {record.name}'s provider {where} has not answered for {silent:.0f} s, but "
                               "discovery could not tell whether it still advertises: the member was left alone")
            return None
        if listed:
            self.services.warn(f"fleet member {record.name}'s provider {where} has not answered for {silent:.0f} s but "
                               "still advertises: the member was left alone")
            return None
        return (f"provider {where} has not answered for {silent:.0f} s ({self.option} {self.replace_after:g} s) "
                "and its advert is gone from discovery")

    # -- abandoning and settling (each in a worker thread) ----------------------------------------
    def abandon(self, record: VMRecord, why: str, replacement: str, out: Outcome) -> dict[str, Any]:
        """Give the member up: status abandoned, then its stream terminated. Raises GolemError when the stream
        cannot be terminated now: the row stays abandoned, recording the stream, and the next run settles it."""
        entry: dict[str, Any] = {"name": record.name, "provider": recorded_placement(record).describe(), "why": why,
                                 "replaced_by": replacement, "stream_id": record.stream_id, "refund_wei": None}
        out.changed = True
        if self.services.check_mode:
            out.actions.append(f"would abandon fleet member {record.name} ({why}) and replace it with {replacement}")
            self._would_terminate(record, out)
            return entry
        now = self.services.store.set_status(
            record.name, ABANDONED, abandoned_at=int(self.now()), replaced_by=replacement,
            history=with_event(record.config, event("abandoned", f"{why}; replaced by {replacement}")))
        out.actions.append(f"abandoned fleet member {record.name} ({why}); {replacement} replaces it")
        entry["refund_wei"] = self._terminate(now or record, out)
        return entry

    def settle(self, record: VMRecord, out: Outcome) -> dict[str, Any] | None:
        """An abandoned row, once its provider answers: its VM deleted if still there, then the row forgotten.
        None while the provider is still silent."""
        where = recorded_placement(record)
        entry: dict[str, Any] = {"name": record.name, "provider": where.describe(), "stream_id": record.stream_id,
                                 "refund_wei": self._terminate(record, out)}
        record = self.services.store.get(record.name) or record
        client = self.services.provider_client(where, **self.http_options(record))
        client.set_deadline(self.services.deadline)
        try:
            remote = lookup(client, record.name, record.provider_id, self.services.identity)
        except GolemError as exc:
            if unanswered(exc):
                return None
            raise
        entry["vm_deleted"] = remote is not None
        out.changed = True
        if remote is not None:
            if self.services.check_mode:
                out.actions.append(f"would delete abandoned VM {record.name} on provider {where.describe()}, which "
                                   "answers again")
            else:
                delete_verified(client, record.name, self.services.deadline.end, settle=SETTLE_SECONDS)
                out.actions.append(f"deleted abandoned VM {record.name} on provider {where.describe()}, which answers "
                                   "again (a stand-in replaced it)")
        elif not self.services.check_mode:
            out.actions.append(f"provider {where.describe()} answers again and no longer has abandoned VM {record.name}")
        Retirement(self.services, out).forget(record)
        return entry

    def _would_terminate(self, record: VMRecord, out: Outcome) -> None:
        payments = self.services.payments
        if payments is not None and payments.owns_stream(record):
            out.actions.append(f"would terminate payment stream {record.stream_id} of VM {record.name} (the unvested "
                               "deposit comes back)")

    def _terminate(self, record: VMRecord, out: Outcome) -> int | None:
        """The refund of the member's stream, terminated now (None: none of ours to terminate)."""
        payments = self.services.payments
        if payments is None or not payments.owns_stream(record):
            return None
        if self.services.check_mode:
            self._would_terminate(record, out)
            return None
        refund = payments.release(record, out.actions.append)
        out.changed = True
        tx = self.services.stream_report(record.name).get("terminate_tx")
        current = self.services.store.get(record.name) or record
        self.services.store.set_status(record.name, current.status, stream_terminated=True, history=with_event(
            current.config, event("stream_terminated", f"payment stream {record.stream_id} terminated: {refund or 0} "
                                                       "wei came back", wei=refund or 0, tx=tx)))
        return refund

    # -- golem_vm's one VM ----------------------------------------------------------------------
    def give_up_on_vm(self, record: VMRecord, exc: ProviderError, out: Outcome) -> VMRecord:
        """golem_vm's VM whose provider did not answer: abandoned when due (the row returned, status abandoned);
        otherwise ``exc`` is raised again, saying how long the provider has been silent."""
        why = self.due(record, exc) if unanswered(exc) else None
        if why is None:
            raise exc
        entry = self.abandon(record, why, "nothing (golem_vm does not replace a VM)", out)
        out.abandoned = entry
        return self.services.store.get(record.name) or record

    def settle_vm(self, record: VMRecord, out: Outcome) -> None:
        """golem_vm's abandoned VM: settled (its row forgotten) if its provider answers; ProviderError if not."""
        if self.settle(record, out) is None:
            why = record.config.get("error") or "its provider stopped answering"
            raise ProviderError(f"VM {record.name} was abandoned ({why}) and its provider {recorded_placement(record).describe()} "
                                "still does not answer: the row stays until it does (its stream is terminated)")
