# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting on a provider: for a create job, a running VM, its SSH port and banner, and a verified delete.

Every wait polls by name (``GET /vms/NAME``, never the list: listing kills pending creates
upstream) and is bounded by the task's one Deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import resolve_within, ssh_host_of
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, ProviderError
from ansible_collections.golem.vm.plugins.module_utils.provider.models import AccessInfo, VMInfo
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import (
    HostKey,
    KnownHosts,
    keys_of,
    scan_host_keys,
    wait_for_ssh_banner,
)

# Upstream's async create takes ~1 s on small hosts; poll fast first, then back off.
POLL_FIRST, POLL_MAX = 0.2, 2.0
# At most this long to look up a host name a provider gave for SSH (a working resolver answers in well under it).
RESOLVE_SECONDS = 10.0


class JobFailed(ProviderError):
    """The provider finished a create job, unsuccessfully."""


class VMWaiter:
    """The waits of one VM's task; ``act`` records what was done (host keys learnt)."""

    def __init__(self, name: str, *, deadline: Deadline, known_hosts: KnownHosts, check_mode: bool,
                 act: Callable[[str], None], run_command: Any = None, poll_max: float = POLL_MAX,
                 on_keys: Callable[[VMRecord, list[HostKey]], None] | None = None) -> None:
        """``on_keys(record, keys)`` records host keys learnt by a scan in the state too (shared states)."""
        self.name = name
        self.deadline = deadline
        self.known_hosts = known_hosts
        self.check_mode = check_mode
        self.act = act
        self.run_command = run_command
        self.poll_max = poll_max
        self.on_keys = on_keys

    def poll(self, doing: str) -> Iterator[None]:
        interval = POLL_FIRST
        while True:
            yield
            self.deadline.sleep(interval, doing)
            interval = min(interval * 1.5, self.poll_max)

    def job(self, client: Any, job_id: str) -> None:
        for _tick in self.poll(f"waiting for create job {job_id} of VM {self.name}"):
            job = client.get_job(job_id)
            if job.status.value == "ready":
                return
            if job.status.value == "failed":
                raise JobFailed(
                    f"provider {client.http.base_url} failed to create VM {self.name}: {job.error or 'no reason given'}",
                    url=client.http.url(f"/api/v1/vms/jobs/{job_id}"), method="GET")

    def appeared(self, client: Any, job_id: str) -> VMInfo | None:
        """The VM of a create job the provider answers 404 for; None once the job says it will not show.

        Upstream answers 202 before its job has reserved the name (the reservation first awaits an
        advert update, about a block), so a VM another run has just created reads as 404 for a moment.
        While its job is still creating that 404 is no proof: wait. A failed job, a ready job whose VM
        has gone since, or a job the provider does not know leave the 404 standing.
        """
        for _tick in self.poll(f"waiting for VM {self.name} of create job {job_id} to show"):
            try:
                job = client.get_job(job_id)
            except ProviderError as exc:
                if exc.status == 404:
                    return None
                raise
            # The job first: a VM missing after its job was ready has gone since, not yet to come.
            remote = client.get_vm(self.name, missing_ok=True)
            if remote is not None or job.status.value != "creating":
                return remote
        raise AssertionError("unreachable")  # pragma: no cover

    def running(self, client: Any) -> VMInfo:
        for _tick in self.poll(f"waiting for VM {self.name} to run"):
            remote = client.get_vm(self.name, missing_ok=True)
            if remote is None:
                raise ProviderError(f"provider {client.http.base_url} lost VM {self.name} while it was being created",
                                    url=client.http.url(f"/api/v1/vms/{self.name}"))
            if remote.status.value != "creating":
                return remote
        raise AssertionError("unreachable")  # pragma: no cover

    def access(self, client: Any) -> AccessInfo:
        # Under load a VM can be running while /access still has no port.
        for _tick in self.poll(f"waiting for the SSH port of VM {self.name}"):
            access = client.get_access(self.name)
            if access.ssh_port:
                return access
        raise AssertionError("unreachable")  # pragma: no cover

    def endpoint(self, client: Any, provider_ip: str, *, allow_foreign: bool) -> tuple[int | None, str]:
        """The SSH port and host of a VM not handed out yet, as its provider answers them, checked.

        The host must be the provider's own address unless ``allow_foreign`` (endpoints.ssh_host_of);
        a ValidationError names the provider, the field and the value otherwise.
        """
        access = self.access(client)
        # A name the provider gave is looked up within the task's time, at most RESOLVE_SECONDS: unresolved, it
        # is not the provider's own address, and is refused as any other foreign host.
        host = ssh_host_of(access.ssh_host, provider_ip=provider_ip, source=f"provider {client.http.base_url}",
                           allow_foreign=allow_foreign,
                           resolve=resolve_within(min(RESOLVE_SECONDS, max(0.0, self.deadline.remaining()))))
        return access.ssh_port, host

    def ssh(self, record: VMRecord, *, new: bool) -> None:
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
        shared = keys_of(record.config.get("host_keys"))
        if not new and shared:
            # Another controller sharing the state recorded them at first contact: trust that, not a new scan.
            if not self.check_mode:
                self.known_hosts.add(host, port, shared)
                self.act(f"recorded the host key of VM {record.name} ([{host}]:{port}) from the state")
            return
        keys = scan_host_keys(host, port, timeout=max(1.0, min(5.0, self.deadline.remaining())),
                              run=self.run_command)
        if self.check_mode:
            return
        # Providers reuse ports: whatever was recorded for this port belonged to an older VM.
        self.known_hosts.add(host, port, keys)
        if self.on_keys is not None:
            self.on_keys(record, keys)
        self.act(f"recorded the host key of VM {record.name} ([{host}]:{port})")


# Seconds a failed create may spend deleting what it made (the task's own budget may be spent): a
# provider busy launching may take minutes before its VM can be deleted (upstream launches time out at 300 s).
CLEANUP_SECONDS = 120.0
# How long a VM must stay unseen after a DELETE to count as gone: when the provider has finished
# with the create, and when the create's answer was lost (it may sit in the provider's queue).
SETTLE_SECONDS = 1.0
SETTLE_UNKNOWN = 4.0


def delete_verified(client: Any, name: str, until: float, *, settle: float) -> bool:
    """DELETE the VM and look until the provider no longer shows it; True if it was ever seen.

    Upstream answers 200 to a DELETE of a VM whose create is still pending but does nothing,
    and the create then finishes: a VM nobody records. So while the provider says
    ``creating`` we wait, and after a DELETE we look again. A create the provider has
    queued but not started reads as 404 for a while (seconds, under load): a VM never seen
    counts as gone only after ``settle`` seconds unseen. Raises a GolemError when ``until``
    comes first.
    """
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
                f"VM {name} was still {state} on provider {client.http.base_url} when the time to delete it ran out",
                url=client.http.url(f"/api/v1/vms/{name}"), method="DELETE")
        time.sleep(max(0.0, min(interval, left, settle if remote is None else interval)))
        interval = min(interval * 1.5, POLL_MAX)


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
