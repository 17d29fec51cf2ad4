# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A refresh, providers' half: each VM's live status from its provider, concurrently, in one time budget.

Used by the inventory's ``refresh: true`` and golem_vm_info's, through vm/refresh.py.

Only ``GET /api/v1/vms/NAME`` is ever sent. The list endpoint ``GET /api/v1/vms`` would be one call
per provider, but upstream providers drop the name mapping of every VM whose launch is still in
flight while they answer it, killing those creates.

A provider that cannot be reached marks its VMs unreachable; the rest of its VMs are not asked,
so a dead provider costs one connection attempt, not one per VM. A VM is reported missing only
when its own provider says so (module_utils.provider_identity); anything else that answers at
the address makes the VM's provider unreachable, with the reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    GolemError,
    IdentityError,
    INSTALL,
    MissingLibraryError,
    ProviderError,
    TaskTimeout,
)
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED
from ansible_collections.golem.vm.plugins.module_utils.vm.filters import MISSING

Endpoint = tuple[str, int]


@dataclass(frozen=True)
class LiveStatus:
    """What a refresh learnt about one VM from its provider."""

    reachable: bool
    status: str | None = None  # the provider's status, MISSING on 404, None when not learnt
    error: str | None = None

    def to_list(self) -> list[Any]:
        return [self.reachable, self.status, self.error]

    @classmethod
    def from_list(cls, data: Any) -> LiveStatus:
        reachable, status, error = data
        return cls(bool(reachable), None if status is None else str(status), None if error is None else str(error))


def effective_status(record: VMRecord, live: LiveStatus | None) -> str:
    """The status that filters and groups go by: the provider's, when a refresh learnt it.

    An abandoned row stays abandoned: golem_fleet gave up on the VM and stopped paying for it, so a provider
    that answers again saying it runs does not make it one of the VMs that run."""
    if record.status == ABANDONED:
        return ABANDONED
    return live.status if live is not None and live.status is not None else record.status


@dataclass
class RefreshReport:
    live: dict[str, LiveStatus]
    providers: int
    unreachable: dict[Endpoint, str]
    seconds: float


def require_libraries() -> None:
    """Raise MissingLibraryError when a refresh cannot run here. Imported late: plain listing must not pay for
    requests."""
    from ansible_collections.golem.vm.plugins.module_utils.foundation import http
    from ansible_collections.golem.vm.plugins.module_utils.provider import models

    if not http.HAS_REQUESTS:
        raise MissingLibraryError(http.REQUESTS_LIBRARY, http.REQUESTS_IMPORT_ERROR, reason="to refresh",
                                  note=INSTALL)
    if not models.HAS_PYDANTIC:
        raise MissingLibraryError(models.PYDANTIC_LIBRARY, models.PYDANTIC_IMPORT_ERROR, reason="to refresh",
                                  note=INSTALL)


class _Refresher:
    def __init__(self, timeout: float, default_port: int, discovery_url: str, request_timeout: float,
                 validate_certs: bool) -> None:
        from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity

        self.deadline = Deadline(timeout, option="refresh_timeout")
        self.timeout = min(timeout, request_timeout)
        self.validate_certs = validate_certs
        self.default_port = default_port
        self.discovery_url = discovery_url
        self.lock = threading.Lock()
        self.dead: dict[Endpoint, str] = {}
        self.clients: list = []
        self.local = threading.local()
        # One proof per provider for all threads; discovery is asked only for MVP-era providers.
        self.identity = ProviderIdentity(self.discovery)

    def discovery(self):  # -> DiscoveryClient
        from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient

        client = DiscoveryClient(self.discovery_url, timeout=self.timeout, retries=0,
                                 validate_certs=self.validate_certs)
        client.http.deadline = self.deadline
        with self.lock:
            self.clients.append(client)
        return client

    def endpoint(self, record: VMRecord) -> Endpoint:
        return record.provider_ip, record.provider_port or self.default_port

    def client(self, endpoint: Endpoint):  # -> ProviderClient, typed loosely to keep the import late
        # requests.Session is not documented as thread-safe, so each worker thread has its own per provider.
        per_thread = getattr(self.local, "clients", None)
        if per_thread is None:
            per_thread = self.local.clients = {}
        client = per_thread.get(endpoint)
        if client is None:
            from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient

            # No retries: a retry after a read timeout would wait the whole budget again, and the
            # next listing asks anew anyway.
            client = ProviderClient(endpoint[0], endpoint[1], timeout=self.timeout, retries=0,
                                    validate_certs=self.validate_certs)
            client.set_deadline(self.deadline)
            per_thread[endpoint] = client
            with self.lock:
                self.clients.append(client)
        return client

    def ask(self, record: VMRecord) -> LiveStatus:
        endpoint = self.endpoint(record)
        with self.lock:
            dead = self.dead.get(endpoint)
        if dead is not None:
            return LiveStatus(False, None, dead)
        from ansible_collections.golem.vm.plugins.module_utils.provider.identity import lookup

        try:
            vm = lookup(self.client(endpoint), record.name, record.provider_id, self.identity)
        except IdentityError as exc:  # not the recorded provider: never "missing"
            return LiveStatus(False, None, exc.msg)
        except TaskTimeout as exc:
            return self.mark_unreachable(endpoint, exc.msg)
        except ProviderError as exc:
            if exc.status is None:  # no HTTP answer at all: refused, timed out, unresolvable
                return self.mark_unreachable(endpoint, exc.msg)
            return LiveStatus(True, None, exc.msg)
        except GolemError as exc:  # an answer that is not a VM
            return LiveStatus(True, None, exc.msg)
        if vm is None:
            return LiveStatus(True, MISSING, None)
        return LiveStatus(True, str(getattr(vm.status, "value", vm.status)), None)

    def mark_unreachable(self, endpoint: Endpoint, why: str) -> LiveStatus:
        with self.lock:
            why = self.dead.setdefault(endpoint, why)
        return LiveStatus(False, None, why)

    def close(self) -> None:
        for client in self.clients:
            client.close()


def refresh(
    records: Sequence[VMRecord], *, timeout: float, concurrency: int, default_port: int = 7466,
    discovery_url: str = settings.DEFAULT_DISCOVERY_URL, request_timeout: float | None = None,
    validate_certs: bool = True,
) -> RefreshReport:
    """Ask each record's provider for its VM, at most ``concurrency`` at a time, all within ``timeout`` s.

    One request waits at most ``request_timeout`` s (default: the whole budget). A VM without an answer
    when the budget runs out is reported unreachable; nothing raises.
    """
    started = time.monotonic()
    refresher = _Refresher(timeout, default_port, discovery_url,
                           timeout if request_timeout is None else request_timeout, validate_certs)
    live: dict[str, LiveStatus] = {}
    endpoints = {refresher.endpoint(r) for r in records}
    if records:
        pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(records))), thread_name_prefix="golem")
        futures: dict[Future, VMRecord] = {pool.submit(refresher.ask, r): r for r in records}
        try:
            wait(futures, timeout=max(0.0, refresher.deadline.remaining()))
        finally:
            # Requests are bounded by the same deadline, so running ones end almost at once.
            pool.shutdown(wait=False, cancel_futures=True)
        late = f"no answer within refresh_timeout ({timeout:g} s)"
        for future, record in futures.items():
            if not future.done() or future.cancelled():
                live[record.name] = refresher.mark_unreachable(refresher.endpoint(record), late)
            elif future.exception() is not None:
                live[record.name] = LiveStatus(False, None, f"refresh failed: {future.exception()}")
            else:
                live[record.name] = future.result()
        # Stragglers are past the deadline already; the wait is bounded by one request's tail.
        pool.shutdown(wait=True)
        refresher.close()
    return RefreshReport(live, len(endpoints), dict(refresher.dead), time.monotonic() - started)
