# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The create transaction: plan, row before the call, POST, job poll, cleanup or settling.

Invariants (each one a way a paid-for VM could otherwise be lost):
* the row is written before the create call, so no VM exists without one;
* after a failed call the VM is deleted and the row removed, or the row is kept with
  status ``error`` when the VM may still exist (the next run settles it);
* a placement whose create failed is left for the next one only when its VM is known gone.

The payment step plugs in through ``CreateHooks`` (create_hooks.py): ``before_post`` (e.g. open a
stream for this provider; what it returns goes into the request and the row), ``after_failure``
(e.g. terminate that stream once the VM is known not to exist), the check-mode bill and a stream
carried over from an unfinished create.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import glm_per_month
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    GolemError, PaymentPending, ProviderError, StateError, TaskTimeout, ValidationError)
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES, ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.provider.models import DEFAULT_IMAGE, CreateJob, VMInfo, build_create_request
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.create_hooks import CreateHooks
from ansible_collections.golem.vm.plugins.module_utils.vm.outcome import Outcome
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement
from ansible_collections.golem.vm.plugins.module_utils.vm.services import VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.waits import (
    CLEANUP_SECONDS, SETTLE_SECONDS, SETTLE_UNKNOWN, JobFailed, VMWaiter, delete_verified)
from ansible_collections.golem.vm.plugins.module_utils.vm.want import Want

# What a failed create call tells about the VM (see CreateTransaction._cleanup).
REJECTED, FINISHED, UNKNOWN = "rejected", "finished", "unknown"


class CreateTransaction:
    def __init__(self, want: Want, services: VMServices, *, client_for: Callable[[Placement], Any], waiter: VMWaiter,
                 out: Outcome) -> None:
        self.want = want
        self.services = services
        self.client_for = client_for
        self.waiter = waiter
        self.out = out
        self.hooks: CreateHooks = services.payments or CreateHooks()
        # Set while the name's lock is held: raises if the lock may have been lost (a dropped session).
        self.guard: Callable[[], None] | None = None

    def _act(self, text: str) -> None:
        self.out.actions.append(text)

    @property
    def spec(self) -> ResourceSpec:
        return self.want.spec or SIZES["small"]

    def run(self, placements: list[Placement], *, on_taken: Callable[[Placement, Any, VMInfo], VMRecord]
            ) -> VMRecord:
        """Create on the first placement that succeeds. A VM of this name already on a provider goes
        to ``on_taken`` (adopt it, or refuse): creating the name again would orphan it upstream."""
        failures: list[str] = []
        for placement in placements:
            client = self.client_for(placement)
            existing = client.get_vm(self.want.name, missing_ok=True)
            if existing is not None:
                return on_taken(placement, client, existing)
            if self.services.check_mode:
                return self.plan(placement, client)
            try:
                return self._create_on(placement, client)
            except TaskTimeout:
                raise
            except GolemError as exc:
                if self.want.pinned is not None or self.services.store.get(self.want.name) is not None:
                    # A row still there means the VM may exist: trying elsewhere would reuse the name.
                    raise
                failures.append(f"{placement.describe()}: {exc.msg}")
                self._act(f"provider {placement.describe()} failed the create: {exc.msg}")
        raise ProviderError(f"no provider could create VM {self.want.name}: " + "; ".join(failures)
                            if failures else f"no provider to create VM {self.want.name} on")

    def config(self, placement: Placement, spec: ResourceSpec) -> dict[str, Any]:
        """The row's config: the CLI reads the first keys; the rest are ours and it ignores them."""
        config: dict[str, Any] = {
            "cpu": spec.cpu,
            "memory": spec.memory,
            "storage": spec.storage,
            "ssh_port": None,
            "provider_id": placement.provider_id,
            "provider_port": placement.port,
            "country": placement.country,
            "ssh_user": self.want.ssh_user,
            "ssh_private_key_path": self.want.private_key_path,
            "ssh_public_key": self.want.public_key,
            "ssh_key_fingerprint": self.want.key_fingerprint,
            "image": self.want.image or DEFAULT_IMAGE,
            "size": self.want.size,
            # Always written, even empty: rows that carry the key were written by golem.vm 0.2 or later.
            "labels": dict(self.want.labels or {}),
        }
        if placement.advertised:
            # What the member costs at the prices it was placed by (its stream's rate is fixed at them; None: the
            # advert has no GLM prices), so a fleet run can show it without asking discovery again.
            config["glm_per_month"] = glm_per_month(placement.pricing, spec)
        if self.want.stream_id is not None:
            config["stream_id"] = self.want.stream_id
        config.update(self.hooks.carried(self.want.name, placement))
        return config

    def plan(self, placement: Placement, client: Any) -> VMRecord:
        """Check mode: what would be sent, what it would pay, and the row it would make; nothing is signed or sent."""
        spec = self.spec
        # First: a provider a real run would refuse (over the price cap, say) fails check mode the same way.
        self.out.bill = self.hooks.bill(placement, client, spec)
        self.out.changed = True
        self.out.request = {
            "method": "POST",
            "url": f"http://{placement.ip}:{placement.port}/api/v1/vms?async=true",
            "body": {
                "name": self.want.name,
                "resources": spec.as_dict(),
                "ssh_key": self.want.public_key or "(the collection's default key, generated on first use)",
                "image": self.want.image or DEFAULT_IMAGE,
                "stream_id": self.want.stream_id,
            },
        }
        self._act(f"would create VM {self.want.name} on provider {placement.describe()}")
        return VMRecord(self.want.name, placement.ip or "", self.want.name, "creating", self.config(placement, spec))

    def _create_on(self, placement: Placement, client: Any) -> VMRecord:
        name, spec = self.want.name, self.spec
        request = build_create_request(name=name, resources=spec.as_dict(), ssh_key=self.want.public_key,
                                       image=self.want.image or DEFAULT_IMAGE, stream_id=self.want.stream_id)
        record = VMRecord(name, placement.ip or "", name, "creating", self.config(placement, spec))
        changed_before, actions_before = self.out.changed, len(self.out.actions)
        self.services.store.upsert(record)
        self.out.changed = True
        try:
            fields = self.hooks.before_post(placement, client, spec, self._note, self._act, name)
            if fields:
                self.services.store.set_status(name, "creating", **fields)
                if fields.get("stream_id") is not None:
                    request = request.model_copy(update={"stream_id": fields["stream_id"]})
        except (PaymentPending, StateError) as exc:
            # Money may have left and the row holds its transaction (or the state is what failed): the row stays
            # as it is for the next run to settle, and no other provider is tried, which would pay again.
            self._hold(exc)
            raise
        except GolemError as exc:
            self._cleanup(client, placement, exc.msg, REJECTED)  # nothing was sent to the provider
            if len(self.out.actions) == actions_before and self.services.store.get(name) is None:
                # Refused before any money moved or any call left (no key, no prices): the row came and went.
                self.out.changed = changed_before
            raise
        try:
            if self.guard is not None:
                self.guard()  # the last moment another run could have taken the name over
            # A synchronous (MVP) provider answers only when the VM runs: give it the whole budget.
            answer = client.create_vm(request, timeout=max(self.services.deadline.remaining(), 1.0))
        except TaskTimeout:
            # Only the budget check before sending raises this (a read timeout is a ProviderError):
            # the create never left, so there is nothing to look for.
            self._cleanup(client, placement, "wait_timeout ran out before the create call was sent", REJECTED)
            raise
        except GolemError as exc:
            self._cleanup(client, placement, exc.msg, _create_outcome(exc))
            raise
        if isinstance(answer, CreateJob):
            self.services.store.set_status(name, "creating", job_id=answer.job_id, api="jobs")
            self._act(f"created VM {name} on provider {placement.describe()} (job {answer.job_id})")
            try:
                self.waiter.job(client, answer.job_id)
            except TaskTimeout:
                raise  # the row says creating, with the job: a re-run picks it up
            except JobFailed as exc:
                self._cleanup(client, placement, exc.msg, FINISHED)
                raise
            except ProviderError as exc:
                # Polling failed, not the job: it may still be queued or running.
                self._cleanup(client, placement, exc.msg, UNKNOWN)
                raise
            # Upstream marks a job ready once its VM runs with an SSH proxy: no need to ask for the VM too.
            port = None
        else:
            self._act(f"created VM {name} on provider {placement.describe()} (synchronous API)")
            port = answer.ssh_port
            self.services.store.set_status(name, "creating", api="sync")
        try:
            ssh_port, ssh_host = self.waiter.endpoint(client, placement.ip or "",
                                                      allow_foreign=self.want.allow_foreign_ssh_host)
        except ValidationError as exc:
            # The VM exists and may be paid for: it stays recorded, with no endpoint that Ansible or a file
            # could use, so state=absent deletes it.
            self.services.store.set_status(name, "error", error=exc.msg, ssh_host=None, ssh_port=None, job_id=None)
            self._act(f"kept VM {name} recorded with status error: its provider's SSH endpoint was refused")
            raise
        record = self.services.store.set_status(name, "running", ssh_port=ssh_port or port,
                                                ssh_host=ssh_host, job_id=None) or record
        if self.want.wait:
            self.waiter.ssh(record, new=True)
        return record

    def _cleanup(self, client: Any, placement: Placement, reason: str, outcome: str) -> None:
        """After a failed create: delete the VM and its row, or keep the row with status error.

        ``outcome`` says what is known of the create: REJECTED (nothing was made), FINISHED (the
        provider is done with it, so a 404 means gone) or UNKNOWN (its answer was lost: it may
        still be queued there, invisible for a while).
        """
        name = self.want.name
        if outcome != REJECTED:
            # Cleanup gets its own short budget: the task's may be what ran out.
            client.set_deadline(Deadline(CLEANUP_SECONDS))
            try:
                seen = delete_verified(client, name, time.monotonic() + CLEANUP_SECONDS,
                                       settle=SETTLE_SECONDS if outcome == FINISHED else SETTLE_UNKNOWN)
            except GolemError as exc:
                self._keep(placement, f"{reason}; deleting it failed too: {exc.msg}",
                           f"could not delete the failed VM {name} on {placement.describe()}: recorded it with "
                           "status error")
                return
            finally:
                client.set_deadline(self.services.deadline)
            if not seen and outcome == UNKNOWN:
                # Never seen, but never proven absent either: the row stays until a run settles it.
                self._keep(placement, f"{reason}; the provider does not show the VM, but the create may still be "
                           "queued there; the next run checks again",
                           f"kept VM {name} recorded with status error: the provider may still create it")
                return
        try:
            self.hooks.after_failure(placement, self.services.store.get(name), vm_gone=True, act=self._act)
        except GolemError as exc:
            self._keep(placement, f"{reason}; then {exc.msg}",
                       f"kept VM {name} recorded with status error: {exc.msg}")
            return
        self.services.store.delete(name)
        if outcome != REJECTED:
            self._act(f"deleted the failed VM {name} on provider {placement.describe()}")

    def _note(self, updates: dict[str, Any]) -> None:
        """Record something on the row at once (a transaction about to be sent): only while the name is still
        this run's, and never into nothing, since what is noted may be money."""
        if self.guard is not None:
            self.guard()
        if self.services.store.set_status(self.want.name, "creating", **updates) is None:
            raise StateError(f"the row of VM {self.want.name} vanished from {self.services.store.location} while it was being "
                             "created; nothing more was sent")

    def _hold(self, exc: GolemError) -> None:
        try:
            self.services.store.set_status(self.want.name, "error", error=exc.msg)
        except StateError:
            return  # the state is what failed: the row says what it said, which the next run settles
        self._act(f"kept VM {self.want.name} recorded with status error, with its payment not settled yet")

    def _keep(self, placement: Placement, error: str, action: str) -> None:
        record = self.services.store.set_status(self.want.name, "error", error=error)
        self._act(action)
        try:
            self.hooks.after_failure(placement, record, vm_gone=False, act=self._act)
        except GolemError as exc:
            self._act(f"VM {self.want.name}: {exc.msg}")


def _create_outcome(exc: GolemError) -> str:
    """What a failed create call says about the VM: REJECTED, FINISHED or UNKNOWN."""
    if exc.status is not None and 400 <= exc.status < 500:
        return REJECTED  # refused before anything was made
    if "connection refused" in exc.msg:
        return REJECTED  # nothing listened, so nothing was sent
    if exc.status is not None and exc.status >= 500 and exc.status not in (502, 503, 504):
        return FINISHED  # the provider's own error answer: it is done with the request
    # No answer, a broken one, a 2xx we could not read, or a gateway's 502/503/504: the
    # provider may have accepted the create and may still be working on it.
    return UNKNOWN
