# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every VM of one task works with, in one object: the module builds it once, and a fleet's members,
each Lifecycle and its create transaction share it rather than each taking the same ten arguments."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity
from ansible_collections.golem.vm.plugins.module_utils.state.backend import StateBackend
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import KnownHosts
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement

if TYPE_CHECKING:  # payments are built only by a task that may pay
    from ansible_collections.golem.vm.plugins.module_utils.vm.payments import StreamPayments


@dataclass(frozen=True)
class VMServices:
    """``provider_client(placement)`` builds a provider's client; ``identity`` proves a provider's 404s are its
    own (shared, each provider is proved once a task); ``build_payments()`` makes what pays a create (None:
    nothing is paid), on first use, so a run that finds its VM as asked never imports the payment code."""

    store: StateBackend
    known_hosts: KnownHosts
    deadline: Deadline
    provider_client: Callable[[Placement], Any]
    warn: Callable[[str], None]
    check_mode: bool = False
    identity: ProviderIdentity = field(default_factory=ProviderIdentity)
    build_payments: Callable[[], StreamPayments] | None = None
    run_command: Callable[..., Any] | None = None
    _built: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def payments(self) -> StreamPayments | None:
        if self.build_payments is None:
            return None
        with self._lock:  # a fleet's members ask from their own threads; one chain client serves them all
            if "payments" not in self._built:
                self._built["payments"] = self.build_payments()
            return self._built["payments"]

    def stream_report(self, name: str) -> dict[str, Any]:
        """What was paid for ``name`` this run; {} when nothing was (payments never built included)."""
        payments = self._built.get("payments")
        return payments.report.get(name, {}) if payments is not None else {}
