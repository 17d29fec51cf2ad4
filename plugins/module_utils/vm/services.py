# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every VM of one task works with, in one object: the module builds it once, and a fleet's members,
each Lifecycle and its create transaction share it rather than each taking the same ten arguments."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity
from ansible_collections.golem.vm.plugins.module_utils.state.backend import StateBackend
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import KnownHosts

if TYPE_CHECKING:  # payments are built only by a task that may pay
    from ansible_collections.golem.vm.plugins.module_utils.vm.payments import StreamPayments

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value built on first use, once, whichever thread asks first; every copy of the services that holds
    this object (a fleet's members each get one) shares the one value."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None
        self._done = False

    def get(self) -> T:
        with self._lock:
            if not self._done:
                self._value, self._done = self._build(), True
            return self._value  # type: ignore[return-value]

    def peek(self) -> T | None:
        """The value if it was built; None otherwise, and nothing is built."""
        return self._value


@dataclass(frozen=True)
class VMServices:
    """``provider_client(placement, **http_options)`` builds a provider's client (the options override the
    task's: ``retries=0`` for one try); ``identity`` proves a provider's 404s are its
    own (shared, each provider is proved once a task); ``lazy_payments`` makes what pays a create (None: nothing
    is paid) on first use, so a run that finds its VM as asked never imports the payment code."""

    store: StateBackend
    known_hosts: KnownHosts
    deadline: Deadline
    provider_client: Callable[..., Any]
    warn: Callable[[str], None]
    check_mode: bool = False
    identity: ProviderIdentity = field(default_factory=ProviderIdentity)
    lazy_payments: Lazy[StreamPayments | None] | None = None
    run_command: Callable[..., Any] | None = None

    @property
    def payments(self) -> StreamPayments | None:
        return self.lazy_payments.get() if self.lazy_payments is not None else None

    def stream_report(self, name: str) -> dict[str, Any]:
        """What was paid for ``name`` this run; {} when nothing was (payments never built included)."""
        payments = self.lazy_payments.peek() if self.lazy_payments is not None else None
        return payments.report.get(name, {}) if payments is not None else {}
