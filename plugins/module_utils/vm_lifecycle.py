# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What golem_vm does for each state, from our record and the provider's own answer.

Rules that hold everywhere below:
* a VM is looked up by name with GET /vms/NAME only: listing a provider's VMs while a
  create is pending there makes upstream kill that create;
* a row is written before the create call, so a VM can never exist without one; after
  a failure the VM is deleted and the row removed, or the row is kept with status error;
* check mode sends no write call and writes no file; one Deadline bounds the whole task.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.errors import (
    GolemError,
    ProviderError,
    TimeoutError_,
    ValidationError,
)
from ansible_collections.golem.vm.plugins.module_utils.http import ProviderClient
from ansible_collections.golem.vm.plugins.module_utils.known_hosts import (
    KnownHosts,
    scan_host_keys,
    wait_for_ssh_banner,
)
from ansible_collections.golem.vm.plugins.module_utils.models import CreateJob, VMInfo, build_create_request
from ansible_collections.golem.vm.plugins.module_utils.resources import SIZES, ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.state import StateStore, VMRecord

DEFAULT_IMAGE = "24.04"
# Upstream's async create takes ~1 s on small hosts; poll fast first, then back off.
POLL_FIRST, POLL_MAX = 0.2, 2.0
# Seconds a failed create may spend deleting what it made; the task's own budget may be spent.
CLEANUP_SECONDS = 20.0
# How long a VM must stay unseen after a DELETE to count as gone: when the provider has finished
# with the create, and when the create's answer was lost (it may sit in the provider's queue).
SETTLE_SECONDS = 1.0
SETTLE_UNKNOWN = 4.0
# What a failed create call tells about the VM (see Lifecycle._cleanup).
REJECTED, FINISHED, UNKNOWN = "rejected", "finished", "unknown"


class Placement(NamedTuple):
    ip: str | None  # None until a pinned provider_id is looked up in discovery
    port: int
    provider_id: str | None = None
    country: str | None = None

    def describe(self) -> str:
        if self.provider_id and self.ip:
            return f"{self.provider_id} ({self.ip})"
        return self.provider_id or self.ip or "?"


@dataclass
class Want:
    """What the user asked for, already validated."""

    name: str
    state: str
    spec: ResourceSpec | None
    size: str | None
    image: str | None
    stream_id: int | None
    public_key: str | None  # None only in check mode, before the default key pair exists
    key_fingerprint: str | None
    private_key_path: str | None
    ssh_user: str
    pinned: Placement | None
    country: str | None
    adopt: bool
    wait: bool
    # Loads (generate=True: or makes) the default key pair; returns (text, fingerprint, private path).
    load_key: Any = None


@dataclass
class Outcome:
    changed: bool = False
    actions: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None


class Lifecycle:
    def __init__(
        self,
        want: Want,
        *,
        store: StateStore,
        known_hosts: KnownHosts,
        deadline: Deadline,
        provider_client: Any,
        candidates: Any,
        check_mode: bool,
        warn: Any,
        run_command: Any = None,
    ) -> None:
        """``provider_client(placement)`` builds a client; ``candidates()`` lists placements to try."""
        self.want = want
        self.store = store
        self.known_hosts = known_hosts
        self.deadline = deadline
        self._client_for = provider_client
        self._candidates = candidates
        self.check_mode = check_mode
        self.warn = warn
        self.run_command = run_command
        self.out = Outcome()
        # golem_fleet polls faster: one late look at a job delays every VM queued behind it.
        self.poll_max = POLL_MAX

    # -- entry ---------------------------------------------------------------------------
    def run(self, record: VMRecord | None) -> VMRecord | None:
        handler = {
            "present": self.present,
            "started": self.started,
            "stopped": self.stopped,
            "absent": self.absent,
        }[self.want.state]
        return handler(record)

    def _act(self, text: str) -> None:
        self.out.actions.append(text)

    def client(self, placement: Placement) -> ProviderClient:
        client = self._client_for(placement)
        client.set_deadline(self.deadline)
        return client

    @staticmethod
    def placement_of(record: VMRecord) -> Placement:
        return Placement(record.provider_ip, record.provider_port or 7466, record.provider_id, record.country)

    # -- present / started -------------------------------------------------------------------
    def present(self, record: VMRecord | None, *, create: bool = True) -> VMRecord | None:
        preferred = None
        if record is not None:
            placement = self.placement_of(record)
            client = self.client(placement)
            # The SSH check of a re-run overlaps the provider call instead of following it.
            probe = BannerProbe(record) if self.want.wait and record.status == "running" else None
            remote = client.get_vm(self.want.name, missing_ok=True)
            if remote is not None:
                self._warn_differences(record)
                return self._converge(record, client, remote, probe)
            if not create:
                raise ProviderError(
                    f"VM {self.want.name} is recorded on provider {placement.describe()} but the provider no longer "
                    "has it; run with state=present to create it again, or state=absent to forget it",
                    url=client.http.base_url,
                )
            self._act(f"VM {self.want.name} was recorded but is gone from provider {placement.describe()}")
            if not self.check_mode:
                self._settle_lost_create(record, client)
                self._forget(record)
            # Repair in place when the user did not pin a provider: the old one first.
            preferred = placement
        elif not create:
            raise ValidationError(
                f"VM {self.want.name} is not in the state file {self.store.path}; use state=present to create it",
                field="name",
                value=self.want.name,
            )
        return self._create(preferred)

    def started(self, record: VMRecord | None) -> VMRecord | None:
        return self.present(record, create=False)

    def _converge(
        self, record: VMRecord, client: ProviderClient, remote: VMInfo, probe: BannerProbe | None = None
    ) -> VMRecord:
        status = remote.status.value
        if status == "creating":
            job_id = record.config.get("job_id")
            if job_id and not self.check_mode:
                self._wait_job(client, job_id)
            remote = self._wait_running(client)
            status = remote.status.value
        if status in ("stopped", "stopping"):
            self._sync_status(record, "stopped")
            raise ProviderError(
                f"VM {self.want.name} on provider {self.placement_of(record).describe()} is stopped, and VM on Golem "
                "providers have no start endpoint: it cannot be started again. Destroy it (state=absent) and "
                "create it anew (state=present)",
                url=client.http.base_url,
            )
        if status in ("error", "deleted"):
            self._sync_status(record, "error", error=remote.error_message or f"provider reports status {status}")
            raise ProviderError(
                f"provider {self.placement_of(record).describe()} reports VM {self.want.name} in status {status}"
                + (f": {remote.error_message}" if remote.error_message else "")
                + "; destroy it (state=absent) and create it anew",
                url=client.http.base_url,
            )
        port = remote.ssh_port or record.ssh_port
        if not port:
            access = self._wait_access(client)
            port = access.ssh_port
        updates = {"ssh_port": port}
        if record.status != "running" or record.ssh_port != port:
            record = self._sync_status(record, "running", **updates)
        if self.want.wait:
            known = probe is not None and probe.answered(record) and self.known_hosts.keys_for(
                record.ssh_host, record.ssh_port)
            if not known:
                self._wait_ssh(record, new=False)
        return record

    def _sync_status(self, record: VMRecord, status: str, **updates: Any) -> VMRecord:
        """Bring our record in line with the provider's; a bookkeeping write, not a change."""
        if self.check_mode:
            return record
        return self.store.set_status(record.name, status, **updates) or record

    # -- create ---------------------------------------------------------------------------
    def _create(self, preferred: Placement | None) -> VMRecord | None:
        spec = self.want.spec or SIZES["small"]
        # Providers first: a discovery that fails or sends nonsense leaves no key pair behind.
        placements = self._candidates(preferred)
        if self.want.public_key is None and self.want.load_key is not None:
            text, fingerprint, private = self.want.load_key(generate=not self.check_mode)
            self.want.public_key, self.want.key_fingerprint = text, fingerprint
            self.want.private_key_path = self.want.private_key_path or private
        pinned = self.want.pinned is not None
        failures: list[str] = []
        for placement in placements:
            client = self.client(placement)
            existing = client.get_vm(self.want.name, missing_ok=True)
            if existing is not None:
                if self.want.adopt:
                    return self._adopt(placement, client, existing)
                raise ValidationError(
                    f"a VM named {self.want.name} already exists on provider {placement.describe()} but is not in "
                    f"the state file {self.store.path}; creating it again would orphan it (upstream overwrites "
                    "names). Set adopt=true to take it over, or choose another name",
                    field="name",
                    value=self.want.name,
                )
            if self.check_mode:
                return self._plan(placement, spec)
            try:
                return self._create_on(placement, client, spec)
            except TimeoutError_:
                raise
            except GolemError as exc:
                kept = self.store.get(self.want.name)
                if pinned or kept is not None:
                    # A row still there means the VM may exist: trying elsewhere would reuse the name.
                    raise
                failures.append(f"{placement.describe()}: {exc.msg}")
                self._act(f"provider {placement.describe()} failed the create: {exc.msg}")
        raise ProviderError(
            f"no provider could create VM {self.want.name}: " + "; ".join(failures)
            if failures
            else f"no provider to create VM {self.want.name} on"
        )

    def _config(self, placement: Placement, spec: ResourceSpec) -> dict[str, Any]:
        config: dict[str, Any] = {
            # The upstream CLI reads these first keys; the rest are ours and it ignores them.
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
        }
        if self.want.stream_id is not None:
            config["stream_id"] = self.want.stream_id
        return config

    def _request(self, spec: ResourceSpec) -> Any:
        return build_create_request(
            name=self.want.name,
            resources=spec.as_dict(),
            ssh_key=self.want.public_key,
            image=self.want.image or DEFAULT_IMAGE,
            stream_id=self.want.stream_id,
        )

    def _plan(self, placement: Placement, spec: ResourceSpec) -> VMRecord:
        payload = {
            "name": self.want.name,
            "resources": spec.as_dict(),
            "ssh_key": self.want.public_key or "(the collection's default key, generated on first use)",
            "image": self.want.image or DEFAULT_IMAGE,
            "stream_id": self.want.stream_id,
        }
        self.out.changed = True
        self.out.request = {
            "method": "POST",
            "url": f"http://{placement.ip}:{placement.port}/api/v1/vms?async=true",
            "body": payload,
        }
        self._act(f"would create VM {self.want.name} on provider {placement.describe()}")
        return VMRecord(self.want.name, placement.ip, self.want.name, "creating", self._config(placement, spec))

    def _create_on(self, placement: Placement, client: ProviderClient, spec: ResourceSpec) -> VMRecord:
        request = self._request(spec)
        record = VMRecord(self.want.name, placement.ip, self.want.name, "creating", self._config(placement, spec))
        self.store.upsert(record)
        self.out.changed = True
        try:
            # A synchronous (MVP) provider answers only when the VM runs: give it the whole budget.
            answer = client.create_vm(request, timeout=max(self.deadline.remaining(), 1.0))
        except TimeoutError_:
            # Only the budget check before sending raises this (a read timeout is a ProviderError):
            # the create never left, so there is nothing to look for.
            self._cleanup(client, placement, "wait_timeout ran out before the create call was sent", REJECTED)
            raise
        except GolemError as exc:
            self._cleanup(client, placement, exc.msg, _create_outcome(exc))
            raise
        if isinstance(answer, CreateJob):
            self.store.set_status(self.want.name, "creating", job_id=answer.job_id, api="jobs")
            self._act(f"created VM {self.want.name} on provider {placement.describe()} (job {answer.job_id})")
            try:
                self._wait_job(client, answer.job_id)
            except TimeoutError_:
                raise  # the row says creating, with the job: a re-run picks it up
            except JobFailed as exc:
                self._cleanup(client, placement, exc.msg, FINISHED)
                raise
            except ProviderError as exc:
                # Polling failed, not the job: it may still be queued or running.
                self._cleanup(client, placement, exc.msg, UNKNOWN)
                raise
            remote = self._wait_running(client)
        else:
            self._act(f"created VM {self.want.name} on provider {placement.describe()} (synchronous API)")
            remote = answer
            self.store.set_status(self.want.name, "creating", api="sync")
        port = remote.ssh_port
        access = self._wait_access(client)
        record = self.store.set_status(
            self.want.name, "running", ssh_port=access.ssh_port or port, ssh_host=access.ssh_host or placement.ip,
            job_id=None
        ) or record
        if self.want.wait:
            self._wait_ssh(record, new=True)
        return record

    def _cleanup(self, client: ProviderClient, placement: Placement, reason: str, outcome: str) -> None:
        """After a failed create: delete the VM and its row, or keep the row with status error.

        ``outcome`` says what is known of the create: REJECTED (nothing was made), FINISHED (the
        provider is done with it, so a 404 means gone) or UNKNOWN (its answer was lost: it may
        still be queued there, invisible for a while).
        """
        name = self.want.name
        if outcome == REJECTED:
            self.store.delete(name)
            return
        # Cleanup gets its own short budget: the task's may be what ran out.
        client.set_deadline(Deadline(CLEANUP_SECONDS))
        try:
            seen = self._delete_verified(client, time.monotonic() + CLEANUP_SECONDS,
                                         settle=SETTLE_SECONDS if outcome == FINISHED else SETTLE_UNKNOWN)
        except GolemError as exc:
            self.store.set_status(name, "error", error=f"{reason}; deleting it failed too: {exc.msg}")
            self._act(f"could not delete the failed VM {name} on {placement.describe()}: recorded it with status error")
            return
        finally:
            client.set_deadline(self.deadline)
        if not seen and outcome == UNKNOWN:
            # Never seen, but never proven absent either: the row stays until a run settles it.
            self.store.set_status(name, "error", error=f"{reason}; the provider does not show the VM, but the create "
                                  "may still be queued there; the next run checks again")
            self._act(f"kept VM {name} recorded with status error: the provider may still create it")
            return
        self.store.delete(name)
        self._act(f"deleted the failed VM {name} on provider {placement.describe()}")

    def _delete_verified(self, client: ProviderClient, until: float, *, settle: float) -> bool:
        """DELETE the VM and look until the provider no longer shows it; True if it was ever seen.

        Upstream answers 200 to a DELETE of a VM whose create is still pending but does nothing,
        and the create then finishes: a VM nobody records. So while the provider says
        ``creating`` we wait, and after a DELETE we look again. A create the provider has
        queued but not started reads as 404 for a while (seconds, under load): a VM never seen
        counts as gone only after ``settle`` seconds unseen. Raises a GolemError when ``until``
        comes first.
        """
        name = self.want.name
        interval = POLL_FIRST
        seen = deleted = False
        unseen_since: float | None = None
        while True:
            remote = client.get_vm(name, missing_ok=True)
            now = time.monotonic()
            if remote is None:
                if unseen_since is None:
                    unseen_since = now
                if not deleted:
                    # Harmless for a name the provider does not know; it also stops a create that is
                    # about to start (upstream then finds no name mapping and cleans up).
                    client.delete_vm(name)
                    deleted = True
                # Gone after we saw it: our DELETE, or upstream's own cleanup of a failed create.
                # Never seen: it may still come, so it must stay unseen for a while.
                if seen or now - unseen_since >= settle:
                    return seen
            else:
                seen, unseen_since = True, None
                if remote.status.value != "creating":
                    client.delete_vm(name)
                    deleted = True
            left = until - now
            if left <= 0:
                state = "being created" if remote is not None and remote.status.value == "creating" else "there"
                raise ProviderError(
                    f"VM {name} was still {state} on provider {client.http.base_url} when the time to delete it "
                    "ran out",
                    url=client.http.url(f"/api/v1/vms/{name}"),
                    method="DELETE",
                )
            time.sleep(max(0.0, min(interval, left, settle if remote is None else interval)))
            interval = min(interval * 1.5, POLL_MAX)

    def _adopt(self, placement: Placement, client: ProviderClient, remote: VMInfo) -> VMRecord:
        spec = ResourceSpec(remote.resources.cpu, remote.resources.memory, remote.resources.storage)
        config = self._config(placement, spec)
        config.update(ssh_port=remote.ssh_port, ssh_key_fingerprint=None, ssh_public_key=None, size=None)
        status = {"running": "running", "stopped": "stopped", "creating": "creating"}.get(remote.status.value, "error")
        record = VMRecord(self.want.name, placement.ip, remote.id, status, config)
        self.out.changed = True
        self._act(f"adopted VM {self.want.name} found on provider {placement.describe()}")
        if self.check_mode:
            return record
        record = self.store.upsert(record)
        return self._converge(record, client, remote) if status != "stopped" else record

    # -- waiting ----------------------------------------------------------------------------
    def _poll(self, doing: str):
        interval = POLL_FIRST
        while True:
            yield
            self.deadline.sleep(interval, doing)
            interval = min(interval * 1.5, self.poll_max)

    def _wait_job(self, client: ProviderClient, job_id: str) -> None:
        for _tick in self._poll(f"waiting for create job {job_id} of VM {self.want.name}"):
            job = client.get_job(job_id)
            if job.status.value == "ready":
                return
            if job.status.value == "failed":
                raise JobFailed(
                    f"provider {client.http.base_url} failed to create VM {self.want.name}: "
                    f"{job.error or 'no reason given'}",
                    url=client.http.url(f"/api/v1/vms/jobs/{job_id}"),
                    method="GET",
                )

    def _wait_running(self, client: ProviderClient) -> VMInfo:
        for _tick in self._poll(f"waiting for VM {self.want.name} to run"):
            remote = client.get_vm(self.want.name, missing_ok=True)
            if remote is None:
                raise ProviderError(
                    f"provider {client.http.base_url} lost VM {self.want.name} while it was being created",
                    url=client.http.url(f"/api/v1/vms/{self.want.name}"),
                )
            if remote.status.value != "creating":
                return remote
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_access(self, client: ProviderClient) -> Any:
        # Under load a VM can be running while /access still has no port (reference §6).
        for _tick in self._poll(f"waiting for the SSH port of VM {self.want.name}"):
            access = client.get_access(self.want.name)
            if access.ssh_port:
                return access
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_ssh(self, record: VMRecord) -> None:
        """The SSH wait of a VM just created with wait=false (golem_fleet runs it apart from the create)."""
        self._wait_ssh(record, new=True)

    def _wait_ssh(self, record: VMRecord, *, new: bool) -> None:
        """Wait for the SSH banner; record the host key of a new VM, or of one we never reached.

        A VM whose key is already recorded is not scanned again: every connection made with
        the collection's known_hosts (inventory, ssh_command, playbooks) checks it strictly,
        and a scan costs more than the rest of a no-op run.
        """
        host, port = record.ssh_host, record.ssh_port
        if not port:
            return
        wait_for_ssh_banner(host, port, self.deadline.end)
        if not new and self.known_hosts.keys_for(host, port):
            return
        keys = scan_host_keys(host, port, timeout=max(1.0, min(5.0, self.deadline.remaining())),
                              run=self.run_command)
        if self.check_mode:
            return
        # Providers reuse ports: whatever was recorded for this port belonged to an older VM.
        self.known_hosts.add(host, port, keys)
        self._act(f"recorded the host key of VM {record.name} ([{host}]:{port})")

    # -- stopped / absent ---------------------------------------------------------------------
    def stopped(self, record: VMRecord | None) -> VMRecord | None:
        if record is None:
            raise ValidationError(
                f"VM {self.want.name} is not in the state file {self.store.path}: nothing to stop",
                field="name",
                value=self.want.name,
            )
        placement = self.placement_of(record)
        client = self.client(placement)
        remote = client.get_vm(self.want.name, missing_ok=True)
        if remote is None:
            raise ProviderError(
                f"VM {self.want.name} is recorded on provider {placement.describe()} but the provider no longer has "
                "it; use state=absent to forget it, or state=present to create it again",
                url=client.http.base_url,
            )
        if remote.status.value == "stopped":
            return self._sync_status(record, "stopped")
        self.out.changed = True
        if self.check_mode:
            self._act(f"would stop VM {self.want.name}")
            return record
        try:
            client.stop_vm(self.want.name)
        except ProviderError as exc:
            if exc.status == 404:
                raise ProviderError(
                    f"provider {placement.describe()} cannot stop VMs: it speaks the MVP-era API, which has no "
                    "stop endpoint; use state=absent to destroy the VM",
                    url=exc.url, method=exc.method, status=exc.status, response=exc.response,
                ) from None
            raise
        self._act(f"stopped VM {self.want.name}")
        return self.store.set_status(self.want.name, "stopped") or record

    def absent(self, record: VMRecord | None) -> VMRecord | None:
        if record is None:
            return None
        placement = self.placement_of(record)
        client = self.client(placement)
        remote = client.get_vm(self.want.name, missing_ok=True)
        self.out.changed = True
        if self.check_mode:
            self._act(f"would destroy VM {self.want.name} on provider {placement.describe()}")
            return None
        if remote is None:
            self._settle_lost_create(record, client)
            self._act(f"VM {self.want.name} was already gone from provider {placement.describe()}")
        else:
            # A VM still being created would survive a plain DELETE, and then run unrecorded.
            self._delete_verified(client, self.deadline.end, settle=SETTLE_SECONDS)
            self._act(f"destroyed VM {self.want.name} on provider {placement.describe()}")
        self._forget(record)
        return None

    def _settle_lost_create(self, record: VMRecord, client: ProviderClient) -> None:
        """A 404 for a row whose create may still be queued (status error or creating) is not proof.

        Such a create can still finish after the row is gone, leaving a VM nobody records (and a
        create of the same name overwrites it upstream). Delete it and watch until it has stayed
        unseen for a while, as the cleanup of a create with no answer does.
        """
        if record.status not in ("error", "creating"):
            return
        self._delete_verified(client, min(self.deadline.end, time.monotonic() + CLEANUP_SECONDS),
                              settle=SETTLE_UNKNOWN)

    def _forget(self, record: VMRecord) -> None:
        self.store.delete(record.name)
        if record.ssh_port:
            self.known_hosts.remove(record.ssh_host, record.ssh_port)
        self._act(f"removed VM {record.name} from the state file")

    # -- warnings ---------------------------------------------------------------------------
    def _warn_differences(self, record: VMRecord) -> None:
        want, diffs = self.want, []
        if want.spec is not None and (record.cpu, record.memory, record.storage) != tuple(want.spec):
            diffs.append(
                f"resources {want.spec.cpu}/{want.spec.memory}/{want.spec.storage} (cpu/GB/GB) asked, "
                f"{record.cpu}/{record.memory}/{record.storage} in place"
            )
        if want.image is not None and record.image and want.image != record.image:
            diffs.append(f"image {want.image!r} asked, {record.image!r} in place")
        recorded_key = record.config.get("ssh_key_fingerprint")
        if want.key_fingerprint and recorded_key and want.key_fingerprint != recorded_key:
            diffs.append(f"SSH key {want.key_fingerprint} asked, {recorded_key} installed")
        pinned = want.pinned
        if pinned is not None and pinned.ip != record.provider_ip and pinned.provider_id != record.provider_id:
            diffs.append(f"provider {pinned.describe()} asked, {self.placement_of(record).describe()} in place")
        if want.country and record.country and want.country != record.country:
            diffs.append(f"country {want.country} asked, {record.country} in place")
        if diffs:
            self.warn(
                f"VM {want.name} exists and these can only be set at creation, so they were left as they are: "
                + "; ".join(diffs)
                + ". Destroy and re-create the VM to change them."
            )


class BannerProbe:
    """One quick look for the SSH banner of a recorded VM, in a daemon thread."""

    def __init__(self, record: VMRecord) -> None:
        self.endpoint = (record.ssh_host, record.ssh_port)
        self.ok = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            wait_for_ssh_banner(self.endpoint[0], self.endpoint[1], time.monotonic() + 2.0)
            self.ok = True
        except GolemError:
            pass

    def answered(self, record: VMRecord) -> bool:
        """True when the VM answered at the endpoint the record still names."""
        if (record.ssh_host, record.ssh_port) != self.endpoint:
            return False
        self.thread.join(3.0)
        return self.ok


class JobFailed(ProviderError):
    """The provider finished a create job, unsuccessfully."""


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
