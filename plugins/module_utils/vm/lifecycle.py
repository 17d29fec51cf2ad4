# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What golem_vm does for each state, from our record and the provider's own answer.

Rules that hold everywhere below:
* a VM is looked up by name with GET /vms/NAME only: listing a provider's VMs while a
  create is pending there makes upstream kill that create;
* a row is forgotten only when the recorded provider itself says the VM is gone
  (provider/identity.lookup); anything else at its address fails the task and changes nothing;
* creating is one transaction (create.py); check mode sends no write call and writes no
  file; one Deadline bounds the whole task; every removal of a row or a host key is a change;
* a row with a payment stream the collection opened is forgotten only after that stream is
  terminated (payments.py); destroying or stopping a VM terminates its stream once the VM is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    ProviderError,
    StateError,
    ValidationError,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import lookup
from ansible_collections.golem.vm.plugins.module_utils.provider.models import VMInfo
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED
from ansible_collections.golem.vm.plugins.module_utils.vm.healing import Healing
from ansible_collections.golem.vm.plugins.module_utils.vm.outcome import Outcome
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement, recorded_placement
from ansible_collections.golem.vm.plugins.module_utils.vm.retire import Retirement
from ansible_collections.golem.vm.plugins.module_utils.vm.services import VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.waits import SETTLE_SECONDS, BannerProbe, VMWaiter, delete_verified
from ansible_collections.golem.vm.plugins.module_utils.vm.want import Want, check_create_inputs, creation_only_differences

if TYPE_CHECKING:
    from ansible_collections.golem.vm.plugins.module_utils.state.backend import NameLock
    from ansible_collections.golem.vm.plugins.module_utils.vm.create import CreateTransaction


class HalfMade(ProviderError):
    """A VM of a create that failed, which its provider cannot give SSH access to."""


class Lifecycle:
    def __init__(self, want: Want, services: VMServices, *, candidates: Callable[[Placement | None], list[Placement]],
                 healing: Healing | None = None) -> None:
        """``candidates(preferred)`` lists the placements to try, ``preferred`` first; ``healing`` gives the VM up
        when its provider stays silent (None: never)."""
        self.want = want
        self.services = services
        self._candidates = candidates
        self.out = Outcome()
        self.waiter = VMWaiter(want.name, deadline=services.deadline, known_hosts=services.known_hosts,
                               check_mode=services.check_mode, act=self._act, run_command=services.run_command,
                               on_keys=self._share_keys)
        self.retire = Retirement(services, self.out)
        self.healing = healing or Healing(services, replace_after=None, advertised=lambda _record: None)
        self._creation: CreateTransaction | None = None

    @property
    def creation(self) -> CreateTransaction:
        if self._creation is None:
            # Imported here: a run that finds its VM as asked never loads the create path.
            from ansible_collections.golem.vm.plugins.module_utils.vm.create import CreateTransaction

            self._creation = CreateTransaction(self.want, self.services, client_for=self.client, waiter=self.waiter,
                                               out=self.out)
        return self._creation

    # -- entry ---------------------------------------------------------------------------
    def run(self, record: VMRecord | None) -> VMRecord | None:
        handler = {
            "present": self.present,
            "started": self.started,
            "stopped": self.stopped,
            "absent": self.absent,
        }[self.want.state]
        return handler(record)

    def _locked(self) -> AbstractContextManager[NameLock]:
        """The name's lock, for what changes the VM or its row, waited for within the task's time."""
        return self.services.store.lock(self.want.name, timeout=max(0.0, self.services.deadline.remaining()))

    def _act(self, text: str) -> None:
        self.out.actions.append(text)

    def client(self, placement: Placement) -> Any:
        client = self.services.provider_client(placement)
        client.set_deadline(self.services.deadline)
        return client

    def _lookup(self, record: VMRecord) -> tuple[Any, VMInfo | None]:
        """The client of the record's provider, and the VM there (None: that provider says it has none)."""
        placement = recorded_placement(record)
        client = self.client(placement)
        pinned = self.want.pinned
        # The user's own provider_ip/provider_port vouch for an address no id was recorded for.
        vouched = pinned is not None and pinned.provider_id is None and (pinned.ip, pinned.port) == (
            placement.ip, placement.port)
        remote = lookup(client, self.want.name, record.provider_id, self.services.identity, vouched=vouched)
        job_id = record.config.get("job_id")
        if remote is None and record.status == "creating" and job_id:
            # Another run's create the provider has not reserved the name for yet reads as 404.
            remote = self.waiter.appeared(client, str(job_id))
        return client, remote

    # -- present / started -------------------------------------------------------------------
    def present(self, record: VMRecord | None, *, create: bool = True, again: bool = True) -> VMRecord | None:
        preferred = replacing = None
        carried = False
        if record is not None and record.status == ABANDONED:
            # Given up on (its stream terminated): only its provider's word ends it, then a new VM is made.
            self.healing.settle_vm(record, self.out)
            record = None
        if record is not None:
            placement = recorded_placement(record)
            # The SSH check of a re-run overlaps the provider call instead of following it.
            probe = BannerProbe(record) if self.want.wait and record.status == "running" else None
            try:
                client, remote = self._lookup(record)
            except ProviderError as exc:
                if self.healing.replace_after is None:
                    raise
                return self.healing.give_up_on_vm(record, exc, self.out)
            self.healing.answered(record)
            half_made = None
            if remote is not None:
                diffs = creation_only_differences(self.want, record, recorded_placement(record).describe())
                if diffs:
                    self.services.warn(f"VM {self.want.name} exists and these can only be set at creation, so they were "
                                       f"left as they are: {'; '.join(diffs)}. Destroy and re-create the VM to change them.")
                record = self._set_labels(record)
                try:
                    return self._converge(record, client, remote, probe)
                except HalfMade as exc:
                    if not create:
                        raise
                    half_made = exc.msg
            why = half_made or (self.services.payments.why_gone(record) if self.services.payments is not None else None)
            if not create:
                if record.status == "stopped":
                    why = ("it was stopped, and a stopped VM cannot start again: VM on Golem providers have no start "
                           "endpoint" + (f"; {why}" if why else ""))
                raise ProviderError(
                    f"VM {self.want.name} is recorded on provider {placement.describe()} but the provider no longer "
                    f"has it{f' ({why})' if why else ''}; run with state=present to create it again, or state=absent "
                    "to forget it", url=client.http.base_url)
            gone = (f"VM {self.want.name} was recorded but is {'unusable on' if half_made else 'gone from'} "
                    f"provider {placement.describe()}" + (f": {why}" if why else ""))
            self.retire.check_payable(record)
            if self.services.check_mode:
                self._act(gone)
                self.retire.forget(record)
            else:
                # Under the name's lock, and only if the row is still the one read: another run (a second
                # controller) may hold the lock to create this VM right now, or have repaired it already.
                with self._locked() as held:
                    current = self.services.store.get(self.want.name)
                    same = record.same_vm(current)
                    if same:
                        self._act(gone)
                        self.retire.settle_lost_create(record, client)
                        held.verify()  # a lost lock (PostgreSQL) may already be another run's: change nothing
                        # A create that paid and never finished: its stream pays for this one, the row keeps it.
                        carried = self.services.payments is not None and self.services.payments.carry(record, self._act)
                        if not carried:
                            self.retire.release(record)
                            held.verify()
                            self.retire.forget(record)
                if not same and current is not None:
                    return self.present(self._changed(current, again), create=create, again=False)
                replacing = record if carried else None
            # Repair in place when the user did not pin a provider: the old one first.
            preferred = placement
        elif not create:
            raise ValidationError(
                f"VM {self.want.name} is not recorded in {self.services.store.location}; use state=present to create it",
                field="name",
                value=self.want.name,
            )
        return self._create(preferred, replacing)

    def started(self, record: VMRecord | None) -> VMRecord | None:
        return self.present(record, create=False)

    def _converge(self, record: VMRecord, client: Any, remote: VMInfo, probe: BannerProbe | None = None) -> VMRecord:
        status = remote.status.value
        if status == "creating":
            job_id = record.config.get("job_id")
            if job_id and not self.services.check_mode:
                self.waiter.job(client, job_id)
            remote = self.waiter.running(client)
            status = remote.status.value
        if status in ("stopped", "stopping"):
            self._sync_status(record, "stopped")
            raise ProviderError(
                f"VM {self.want.name} on provider {recorded_placement(record).describe()} is stopped, and VM on Golem "
                "providers have no start endpoint: it cannot be started again. Destroy it (state=absent) and "
                "create it anew (state=present)",
                url=client.http.base_url,
            )
        if status in ("error", "deleted"):
            self._sync_status(record, "error", error=remote.error_message or f"provider reports status {status}")
            raise ProviderError(
                f"provider {recorded_placement(record).describe()} reports VM {self.want.name} in status {status}"
                + (f": {remote.error_message}" if remote.error_message else "")
                + "; destroy it (state=absent) and create it anew",
                url=client.http.base_url,
            )
        if record.status != "running":
            # Not handed out yet (another run's create, or one that failed or was refused): its endpoint is
            # checked as a new VM's is. An error the row recorded is over once its provider runs the VM.
            port, host = self._endpoint(record, client)
            record = self._sync_status(record, "running", ssh_port=port or remote.ssh_port, ssh_host=host,
                                       error=None)
        else:
            port = remote.ssh_port or record.ssh_port or self.waiter.access(client).ssh_port
            if record.ssh_port != port:
                record = self._sync_status(record, "running", ssh_port=port)
        if self.want.wait:
            known = probe is not None and probe.answered(record) and self.services.known_hosts.keys_for(
                record.ssh_host, record.ssh_port)
            if not known:
                self.waiter.ssh(record, new=False)
        return record

    def _endpoint(self, record: VMRecord, client: Any) -> tuple[int | None, str]:
        try:
            return self.waiter.endpoint(client, recorded_placement(record).ip or "",
                                        allow_foreign=self.want.allow_foreign_ssh_host)
        except ValidationError as exc:
            self._sync_status(record, "error", error=exc.msg, ssh_host=None, ssh_port=None)
            raise
        except ProviderError as exc:
            # A create of ours that failed half way (its provider killed in the middle) can leave a VM
            # that runs with no SSH proxy, whose /access fails with 500 for good. Nobody was ever given it.
            if record.status == "error" and exc.status == 500:
                raise HalfMade(f"the create that failed left it with no SSH access ({exc.msg})",
                               url=exc.url) from None
            raise

    def _set_labels(self, record: VMRecord) -> VMRecord:
        """Labels are the one thing of an existing VM that can change: the ones asked replace the recorded."""
        wanted = self.want.labels
        if wanted is None or wanted == record.labels:
            return record
        self.out.changed = True
        if self.services.check_mode:
            self._act(f"would set the labels of VM {record.name} to {wanted}")
            return replace(record, config={**record.config, "labels": dict(wanted)})
        self._act(f"set the labels of VM {record.name} to {wanted}")
        return self._write(record, record.status, labels=dict(wanted))

    def _sync_status(self, record: VMRecord, status: str, **updates: Any) -> VMRecord:
        """Bring our record in line with the provider's; a bookkeeping write, not a change."""
        if self.services.check_mode:
            return record
        return self._write(record, status, **updates)

    def _write(self, record: VMRecord, status: str, **updates: Any) -> VMRecord:
        written = self.services.store.set_status(record.name, status, **updates)
        if written is None:
            # Another run (state=absent elsewhere) removed it meanwhile: say so, never report a row that is gone.
            raise StateError(f"VM {record.name} vanished from {self.services.store.location} while this run updated it; "
                             "another run removed it. Run again to see what is left")
        return written

    def _create(self, preferred: Placement | None, replacing: VMRecord | None = None) -> VMRecord | None:
        """Create under the name's lock: two runs (forks, controllers sharing a PostgreSQL state) that decide
        to create the same name at once create one VM; the second finds the first one's row. ``replacing`` is
        a row this run keeps for the create (its stream pays for it): that one is not another run's."""
        # Before any call, whose errors would hide them: the given key and the libraries paying needs.
        key = check_create_inputs(self.want, None if self.services.check_mode else self.services.payments)
        if key is not None:
            self.want.public_key, self.want.key_fingerprint = key.text, key.fingerprint
        if self.services.payments is not None and not self.services.check_mode:
            self.services.payments.warm_up()
        # Providers first: a discovery that fails or sends nonsense leaves no key pair (and no lock) behind.
        placements = self._candidates(preferred)
        if self.want.public_key is None and self.want.load_key is not None:
            text, fingerprint, private = self.want.load_key(generate=not self.services.check_mode)
            self.want.public_key, self.want.key_fingerprint = text, fingerprint
            self.want.private_key_path = self.want.private_key_path or private
        if self.services.check_mode:
            return self.creation.run(placements, on_taken=self._taken)
        with self._locked() as held:
            theirs = self.services.store.get(self.want.name)
            if theirs is not None and not (replacing is not None and replacing.same_vm(theirs)):
                return self._recorded_meanwhile(theirs)
            self.creation.guard = held.verify
            try:
                return self.creation.run(placements, on_taken=self._taken)
            finally:
                self.creation.guard = None

    def _recorded_meanwhile(self, record: VMRecord) -> VMRecord:
        """Another run recorded the name while this one waited for its lock: that VM is the one."""
        self._act(f"VM {self.want.name} was recorded by another run meanwhile, on provider "
                  f"{recorded_placement(record).describe()}")
        client, remote = self._lookup(record)
        if remote is None:
            raise ProviderError(f"VM {self.want.name} was recorded by another run meanwhile (status {record.status}), "
                                "but its provider does not show it yet; run again once that run has finished",
                                url=client.http.base_url)
        return self._converge(record, client, remote)

    def _taken(self, placement: Placement, client: Any, remote: VMInfo) -> VMRecord:
        """A VM of this name is on the provider but not in the state file: adopt it, or refuse."""
        if not self.want.adopt:
            raise ValidationError(
                f"a VM named {self.want.name} already exists on provider {placement.describe()} but is not in the "
                f"state {self.services.store.location}; creating it again would orphan it (upstream overwrites names). Set "
                "adopt=true to take it over, or choose another name",
                field="name",
                value=self.want.name,
            )
        spec = ResourceSpec(remote.resources.cpu, remote.resources.memory, remote.resources.storage) \
            if remote.resources else self.creation.spec
        config = self.creation.config(placement, spec)
        config.update(ssh_port=remote.ssh_port, ssh_key_fingerprint=None, ssh_public_key=None, size=None)
        status = {"running": "running", "stopped": "stopped", "creating": "creating"}.get(remote.status.value, "error")
        record = VMRecord(self.want.name, placement.ip or "", remote.id, status, config)
        self.out.changed = True
        self._act(f"adopted VM {self.want.name} found on provider {placement.describe()}")
        if self.services.check_mode:
            return record
        record = self.services.store.upsert(record)
        return self._converge(record, client, remote) if status != "stopped" else record

    def _share_keys(self, record: VMRecord, keys: list[Any]) -> None:
        """The host keys go into the row too: a controller sharing the state then checks them strictly."""
        self.services.store.set_status(record.name, record.status, host_keys=[f"{k.key_type} {k.key}" for k in keys])

    def wait_ssh(self, record: VMRecord) -> None:
        """The SSH wait of a VM just created with wait=false (golem_fleet runs it apart from the create)."""
        self.waiter.ssh(record, new=True)

    # -- stopped / absent ---------------------------------------------------------------------
    def stopped(self, record: VMRecord | None, *, again: bool = True) -> VMRecord | None:
        if record is None:
            raise ValidationError(f"VM {self.want.name} is not recorded in {self.services.store.location}: nothing to "
                                  "stop", field="name", value=self.want.name)
        placement = recorded_placement(record)
        client, remote = self._lookup(record)
        if remote is None:
            if record.status == "stopped":
                # A paying provider deletes a stopped VM once we terminate its stream: stopped it stays.
                self._act(f"VM {self.want.name} is stopped, and provider {placement.describe()} has deleted it since; "
                          "state=absent forgets it")
                return record
            raise ProviderError(f"VM {self.want.name} is recorded on provider {placement.describe()} but the provider no "
                                "longer has it; use state=absent to forget it, or state=present to create it again",
                                url=client.http.base_url)
        if remote.status.value == "stopped":
            return self._sync_status(record, "stopped")
        self.retire.check_payable(record)
        self.out.changed = True
        if self.services.check_mode:
            self._act(f"would stop VM {self.want.name}")
            return record
        # Under the name's lock, and only if the row is still the one read: another run may have destroyed or
        # re-created this VM meanwhile, and its stream is not this one's to end.
        with self._locked() as held:
            current = self.services.store.get(self.want.name)
            same = record.same_vm(current)
            if same:
                client.stop_vm(self.want.name)
                self._act(f"stopped VM {self.want.name}")
                record = self.services.store.set_status(self.want.name, "stopped") or record
                held.verify()  # a lost lock (PostgreSQL) may already be another run's: change nothing more
                # A stopped VM cannot run again (no start endpoint upstream): what it has not used comes back.
                self.retire.release(record)
        if not same:
            if current is None:
                raise StateError(f"VM {self.want.name} was removed from {self.services.store.location} by another run "
                                 "while this one was stopping it: nothing to stop")
            return self.stopped(self._changed(current, again), again=False)
        return self.services.store.get(self.want.name) or record

    def absent(self, record: VMRecord | None, *, again: bool = True) -> VMRecord | None:
        if record is None:
            if self.want.pinned is not None:
                self._absent_unrecorded()
            return None
        placement = recorded_placement(record)
        client, remote = self._lookup(record)
        self.retire.check_payable(record)
        if self.services.check_mode:
            self.out.changed = True
            self._act(f"VM {self.want.name} was already gone from provider {placement.describe()}" if remote is None
                      else f"would destroy VM {self.want.name} on provider {placement.describe()}")
            self.retire.forget(record)
            return None
        # Under the name's lock, and only if the row is still the one read: another run may be creating this
        # VM again right now, and its new row and VM are what the user now asks to destroy.
        with self._locked() as held:
            current = self.services.store.get(self.want.name)
            same = record.same_vm(current)
            if same:
                self.out.changed = True
                if remote is None:
                    self._act(f"VM {self.want.name} was already gone from provider {placement.describe()}")
                    self.retire.settle_lost_create(record, client)
                else:
                    # A VM still being created would survive a plain DELETE, and then run unrecorded.
                    delete_verified(client, self.want.name, self.services.deadline.end, settle=SETTLE_SECONDS)
                    self._act(f"destroyed VM {self.want.name} on provider {placement.describe()}")
                held.verify()  # a lost lock (PostgreSQL) may already be another run's: change nothing
                self.retire.release(record)
                held.verify()
                self.retire.forget(record)
        if current is None and not same:
            self._act(f"VM {self.want.name} was removed from {self.services.store.location} by another run meanwhile")
        elif not same:
            return self.absent(self._changed(current, again), again=False)
        return None

    def _changed(self, current: VMRecord, again: bool) -> VMRecord:
        """The row another run changed while this one waited for the name's lock: the one to act on now."""
        if not again:
            raise StateError(f"VM {self.want.name} changed in {self.services.store.location} while this run looked at it, "
                             "twice; run again")
        if not current.ok:
            raise StateError(f"VM {self.want.name} changed in {self.services.store.location} while this run looked at it, "
                             f"and now cannot be read: {current.config_error}")
        self._act(f"VM {self.want.name} was changed by another run meanwhile; acting on its row as it is now")
        return current

    def _absent_unrecorded(self) -> None:
        """``absent`` with a provider given for a VM the state file does not hold: delete it there."""
        placement = self._candidates(None)[0]
        client = self.client(placement)
        # The same proof as before forgetting a row: a VM is deleted only on the provider named.
        self.services.identity.prove(client, placement.provider_id, self.want.name)
        remote = client.get_vm(self.want.name, missing_ok=True)
        if remote is None:
            return
        self.out.changed = True
        if self.services.check_mode:
            self._act(f"would destroy VM {self.want.name} on provider {placement.describe()} (not in the state file)")
            return
        delete_verified(client, self.want.name, self.services.deadline.end, settle=SETTLE_SECONDS)
        self._act(f"destroyed VM {self.want.name} on provider {placement.describe()} (it was not in the state file)")
        if remote.ssh_port and placement.ip and self.services.known_hosts.remove(placement.ip, remote.ssh_port):
            self._act(f"removed the host key of [{placement.ip}]:{remote.ssh_port} from {self.services.known_hosts.path}")
