# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_vm's plan: which provider calls each state makes from each starting point.

A fake provider records every call; the state store is the real one in a temp dir.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    DiscoveryError,
    GolemError,
    IdentityError,
    ProviderError,
    StateError,
    TaskTimeout,
    ValidationError,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity
from ansible_collections.golem.vm.plugins.module_utils.provider.models import AccessInfo, CreateJob, ProviderInfo, VMInfo, parse_wire
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import HostKey, KnownHosts
from ansible_collections.golem.vm.plugins.module_utils.vm.lifecycle import Lifecycle
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement
from ansible_collections.golem.vm.plugins.module_utils.vm.services import VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.want import Want

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsArHYqp3DEoafCMRhr6m96DdPxz30Qa+D2zW7+sI/M test"
SE = Placement("127.0.0.2", 7466, "0xse", "SE")
US = Placement("127.0.0.3", 7466, "0xus", "US")
WRITES = ("create", "stop", "delete")
HOST_KEY = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIGsArHYqp3DEoafCMRhr6m96DdPxz30Qa+D2zW7+sI/M")


def vm(name: str, status: str = "running", port: int | None = 20001) -> VMInfo:
    return VMInfo.model_validate({"id": name, "name": name, "status": status, "ssh_port": port,
                                  "resources": {"cpu": 1, "memory": 1, "storage": 10}})


class FakeHttp:
    def __init__(self, ip: str) -> None:
        self.base_url = f"http://{ip}:7466"

    def url(self, path: str) -> str:
        return self.base_url + path


class FakeProvider:
    """Answers like an upstream provider; ``script`` overrides single answers."""

    def __init__(self, placement: Placement, *, api: str = "jobs") -> None:
        self.placement = placement
        self.api = api
        self.vms: dict[str, VMInfo] = {}
        self.calls: list[tuple[str, str]] = []
        self.job_status = "ready"
        self.job_error: str | None = None
        self.create_error: GolemError | None = None
        self.delete_error: GolemError | None = None
        self.stop_status: int | None = None
        # Upstream's pending create: GET says "creating" this many more times, and a DELETE meanwhile does nothing.
        self.pending_gets = 0
        # Upstream's create before its job has reserved the name: GET says 404 this many more times while the
        # job still says creating.
        self.hidden_gets = 0
        # Earlier jobs by id: their status, None for a job the provider does not know.
        self.jobs: dict[str, str | None] = {}
        # The create reached the provider, which made the VM, but the answer never came back.
        self.lost_answer: GolemError | None = None
        # Who answers GET /provider/info: the provider itself, unless a test puts another server there.
        self.info_id: str | None = placement.provider_id
        self.http = FakeHttp(placement.ip)
        # What GET /vms/NAME/access answers instead of the provider's own address and the VM's port.
        self.access_answer: dict[str, Any] | None = None
        # /access fails with this HTTP status while the VM has no SSH port (upstream after a kill mid-create).
        self.broken_access: int | None = None

    def set_deadline(self, deadline: Deadline | None) -> None:
        pass

    def get_vm(self, name: str, *, missing_ok: bool = False) -> VMInfo | None:
        self.calls.append(("get", name))
        if name in self.vms and self.hidden_gets > 0:
            self.hidden_gets -= 1
            return None
        if name in self.vms and self.pending_gets > 0:
            self.pending_gets -= 1
            return vm(name, "creating", None)
        return self.vms.get(name)

    def provider_info(self) -> ProviderInfo | None:
        self.calls.append(("info", ""))
        return None if self.info_id is None else ProviderInfo(provider_id=self.info_id)

    def create_vm(self, request: Any, *, timeout: float | None = None) -> CreateJob | VMInfo:
        self.calls.append(("create", request.name))
        if self.create_error is not None:
            raise self.create_error
        if self.job_status != "failed":
            self.vms[request.name] = vm(request.name)
        if self.lost_answer is not None:
            raise self.lost_answer
        if self.api == "sync":
            return self.vms[request.name]
        return CreateJob.model_validate({"job_id": "job-1", "vm_id": request.name, "status": "creating"})

    def get_job(self, job_id: str) -> CreateJob:
        self.calls.append(("job", job_id))
        status = self.jobs.get(job_id, "creating" if self.hidden_gets > 0 else self.job_status)
        if status is None:
            raise ProviderError("HTTP 404 Not Found: job not found", status=404)
        return CreateJob.model_validate({"job_id": job_id, "vm_id": "x", "status": status,
                                         "error": self.job_error})

    def get_access(self, name: str) -> AccessInfo:
        self.calls.append(("access", name))
        if self.broken_access and not self.vms[name].ssh_port:
            raise ProviderError("HTTP 500 Internal Server Error: An unexpected error occurred",
                                status=self.broken_access)
        answer = self.access_answer or {"ssh_host": self.placement.ip, "ssh_port": self.vms[name].ssh_port}
        return parse_wire(AccessInfo, {**answer, "vm_id": name}, source=f"provider {self.http.base_url}",
                          what="access info", request=f"GET /api/v1/vms/{name}/access")

    def stop_vm(self, name: str) -> VMInfo:
        self.calls.append(("stop", name))
        if self.stop_status:
            raise ProviderError("HTTP 404 Not Found", status=self.stop_status)
        self.vms[name] = vm(name, "stopped")
        return self.vms[name]

    def delete_vm(self, name: str) -> None:
        self.calls.append(("delete", name))
        if self.delete_error is not None:
            raise self.delete_error
        if self.pending_gets == 0:
            self.vms.pop(name, None)

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in WRITES]


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    for where, name, seconds in (("vm.lifecycle", "SETTLE_SECONDS", 0.01), ("vm.create", "SETTLE_SECONDS", 0.01),
                                 ("vm.create", "SETTLE_UNKNOWN", 0.05), ("vm.retire", "SETTLE_UNKNOWN", 0.05)):
        monkeypatch.setattr(f"ansible_collections.golem.vm.plugins.module_utils.{where}.{name}", seconds)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return SQLiteStateStore(str(tmp_path / "vms.db"))


@pytest.fixture
def providers() -> dict[str, FakeProvider]:
    return {"127.0.0.2": FakeProvider(SE), "127.0.0.3": FakeProvider(US)}


def run(store: StateStore, providers: dict[str, FakeProvider], *, state: str = "present", check: bool = False,
        pinned: Placement | None = None, candidates: list[Placement] | None = None, adopt: bool = False,
        deadline: float = 30, name: str = "web-1", tmp: Path | None = None,
        allow_foreign: bool = False) -> tuple[Lifecycle, Any]:
    want = Want(allow_foreign_ssh_host=allow_foreign, name=name, state=state, spec=None, size=None, image=None, stream_id=None, public_key=KEY,
                key_fingerprint="SHA256:x", private_key_path=None, ssh_user="root", pinned=pinned, country=None,
                adopt=adopt, wait=False)
    warnings: list[str] = []
    services = VMServices(store=store, known_hosts=KnownHosts(str(Path(store.path).parent / "known_hosts")),
                          deadline=Deadline(deadline), provider_client=lambda p: providers[p.ip],
                          warn=warnings.append, check_mode=check)
    life = Lifecycle(want, services,
                     candidates=lambda preferred: ([preferred] if preferred else []) + (candidates or [pinned or SE]))
    life.warnings = warnings  # type: ignore[attr-defined]
    return life, life.run(store.get(name))


def recorded(store: StateStore, name: str = "web-1", status: str = "running", ip: str = "127.0.0.2",
             **extra: Any) -> None:
    config = {"cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_id": "0xse",
              "provider_port": 7466, "country": "SE", "ssh_key_fingerprint": "SHA256:x", **extra}
    store.upsert(VMRecord(name, ip, name, status, config))


def test_present_new_name_creates_polls_the_job_and_records_it(store, providers):
    life, rec = run(store, providers)
    se = providers["127.0.0.2"]
    # A ready job means a running VM with its SSH proxy (upstream): the port is the next question.
    assert [c[0] for c in se.calls] == ["get", "create", "job", "access"]
    assert life.out.changed and rec.status == "running" and rec.ssh_port == 20001
    assert store.get("web-1").config["provider_id"] == "0xse"


def test_present_existing_running_vm_is_one_get_and_no_write(store, providers):
    recorded(store)
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    before = Path(store.path).read_bytes()
    life, rec = run(store, providers)
    assert providers["127.0.0.2"].calls == [("get", "web-1")]
    assert not life.out.changed and rec.status == "running"
    assert Path(store.path).read_bytes() == before


def test_present_repairs_drift_by_creating_again(store, providers):
    recorded(store)
    life, rec = run(store, providers)
    assert providers["127.0.0.2"].writes() == [("create", "web-1")]
    assert life.out.changed and any("gone" in a for a in life.out.actions)
    assert rec.status == "running"


def test_name_on_provider_but_not_in_state_is_refused_without_a_write(store, providers):
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    with pytest.raises(ValidationError) as err:
        run(store, providers)
    assert "adopt" in err.value.msg and err.value.field == "name"
    assert providers["127.0.0.2"].writes() == []
    assert store.get("web-1") is None


def test_adopt_records_the_existing_vm_without_creating(store, providers):
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    life, rec = run(store, providers, adopt=True)
    assert providers["127.0.0.2"].writes() == []
    assert life.out.changed and store.get("web-1").status == "running"


def test_check_mode_plans_the_create_and_writes_nothing(store, providers):
    life, rec = run(store, providers, check=True)
    assert providers["127.0.0.2"].writes() == []
    assert life.out.changed and life.out.request["body"]["name"] == "web-1"
    assert not Path(store.path).exists()


def test_failed_job_deletes_the_vm_and_fails_over_to_the_next_provider(store, providers):
    providers["127.0.0.2"].job_status, providers["127.0.0.2"].job_error = "failed", "Insufficient resources"
    life, rec = run(store, providers, candidates=[SE, US])
    assert providers["127.0.0.2"].writes() == [("create", "web-1"), ("delete", "web-1")]
    assert providers["127.0.0.3"].writes() == [("create", "web-1")]
    assert rec.provider_ip == "127.0.0.3"
    assert any("Insufficient resources" in a for a in life.out.actions)


def test_failed_job_on_a_pinned_provider_fails_and_leaves_no_row(store, providers):
    providers["127.0.0.2"].job_status = "failed"
    with pytest.raises(ProviderError):
        run(store, providers, pinned=SE)
    assert providers["127.0.0.3"].calls == []
    assert store.get("web-1") is None


def test_rejected_create_needs_no_delete(store, providers):
    providers["127.0.0.2"].create_error = ProviderError("HTTP 422: cpu", status=422)
    with pytest.raises(ProviderError):
        run(store, providers, pinned=SE)
    assert providers["127.0.0.2"].writes() == [("create", "web-1")]
    assert store.get("web-1") is None


def test_create_that_may_have_happened_is_recorded_as_error_when_delete_fails(store, providers):
    se = providers["127.0.0.2"]
    se.create_error = ProviderError("HTTP 500: An unexpected error occurred", status=500)
    se.delete_error = ProviderError("connection reset")
    with pytest.raises(ProviderError):
        run(store, providers, candidates=[SE, US])
    row = store.get("web-1")
    assert row is not None and row.status == "error" and "deleting it failed" in row.error
    # No second provider: the name may still exist on the first.
    assert providers["127.0.0.3"].calls == []


def test_lost_create_answer_waits_for_the_pending_create_then_deletes_it(store, providers):
    # Found by the fault tests: a DELETE sent while the create was pending did nothing, and the
    # VM then ran with no row (an orphan), and the re-run refused the name.
    se = providers["127.0.0.2"]
    se.lost_answer = ProviderError("could not talk to 127.0.0.2:7466: Connection reset by peer")
    se.pending_gets = 2
    with pytest.raises(ProviderError):
        run(store, providers, pinned=SE)
    # No DELETE while the provider says creating: upstream would ignore it.
    assert [c[0] for c in se.calls][:6] == ["get", "create", "get", "get", "get", "delete"]
    assert se.vms == {} and store.get("web-1") is None


def test_a_create_that_shows_up_after_the_delete_is_deleted_too(store, providers):
    # Upstream reads 404 for a create it has queued but not started, and a DELETE then finds nothing.
    se = providers["127.0.0.2"]
    se.lost_answer = ProviderError("could not talk to 127.0.0.2:7466: Connection reset by peer")
    real_get, queued = se.get_vm, {}

    def get_vm(name: str, missing_ok: bool = False) -> VMInfo | None:
        if ("create", name) in se.calls and ("delete", name) not in se.calls:
            queued[name] = se.vms.pop(name)  # the create is queued: invisible, and safe from the DELETE
            se.calls.append(("get", name))
            return None
        if queued and ("delete", name) in se.calls:
            se.vms.update(queued)  # ... then it runs after all
            queued.clear()
        return real_get(name)

    se.get_vm = get_vm
    with pytest.raises(ProviderError):
        run(store, providers, pinned=SE)
    assert [c[0] for c in se.calls][:6] == ["get", "create", "get", "delete", "get", "delete"]
    assert se.vms == {} and store.get("web-1") is None


def test_a_lost_create_answer_and_no_vm_in_sight_keeps_an_error_row_that_the_rerun_settles(store, providers):
    # The create may sit in the provider's queue, invisible: only a later run can tell.
    se = providers["127.0.0.2"]
    se.create_error = ProviderError("could not talk to 127.0.0.2:7466: Connection reset by peer")
    with pytest.raises(ProviderError):
        run(store, providers, pinned=SE)
    row = store.get("web-1")
    assert row.status == "error" and "may still be queued" in row.error
    se.create_error = None
    life, rec = run(store, providers, pinned=SE)
    assert rec.status == "running" and any("gone" in a for a in life.out.actions)


def test_failed_create_keeps_an_error_row_while_the_vm_cannot_be_deleted(store, providers, monkeypatch):
    monkeypatch.setattr("ansible_collections.golem.vm.plugins.module_utils.vm.create.CLEANUP_SECONDS", 0.3)
    se = providers["127.0.0.2"]
    se.lost_answer = ProviderError("could not talk to 127.0.0.2:7466: Connection reset by peer")
    se.pending_gets = 1000
    with pytest.raises(ProviderError):
        run(store, providers, pinned=SE)
    row = store.get("web-1")
    assert row.status == "error" and "was still being created on provider" in row.error
    assert "web-1" in se.vms and ("delete", "web-1") not in se.calls


def test_absent_waits_until_a_pending_create_can_be_deleted(store, providers):
    recorded(store, status="creating")
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1")
    se.pending_gets = 3
    life, rec = run(store, providers, state="absent")
    assert se.vms == {} and store.get("web-1") is None and rec is None
    assert se.writes() == [("delete", "web-1")]


@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_create_whose_job_has_not_reserved_the_name_yet_is_waited_for(store, providers, state):
    # Another run (a fork, a second controller) recorded the row and its job a moment ago; upstream
    # answers 404 until that job has reserved the name. Creating again would orphan that VM, and a
    # DELETE before the name is reserved does nothing upstream.
    recorded(store, status="creating", job_id="job-7")
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1")
    se.hidden_gets = 2
    life, rec = run(store, providers, state=state, pinned=SE)
    assert ("job", "job-7") in se.calls
    if state == "present":
        assert se.writes() == [], "no second create and no delete"
        assert rec.status == "running" and store.get("web-1").status == "running"
    else:
        assert se.writes() == [("delete", "web-1")] and se.vms == {} and store.get("web-1") is None


@pytest.mark.parametrize("job", ["failed", "unknown", "ready"])
def test_a_404_stands_once_the_job_says_the_vm_will_not_show(store, providers, job):
    recorded(store, status="creating", job_id="job-7")
    se = providers["127.0.0.2"]
    se.jobs["job-7"] = None if job == "unknown" else job
    life, rec = run(store, providers, pinned=SE)
    assert any("gone from provider" in a for a in life.out.actions), life.out.actions
    assert ("create", "web-1") in se.writes() and rec.status == "running"


def test_a_job_that_never_shows_its_vm_ends_with_the_budget_and_keeps_the_row(store, providers):
    recorded(store, status="creating", job_id="job-7")
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1")
    se.hidden_gets = 10 ** 6
    with pytest.raises(TaskTimeout) as err:
        run(store, providers, pinned=SE, deadline=0.5)
    assert "create job job-7" in err.value.msg
    assert se.writes() == [] and store.get("web-1").status == "creating"


def test_a_vm_our_failed_create_left_without_ssh_access_is_destroyed_and_created_again(store, providers):
    # Upstream after its provider was killed in the middle of a create: the VM runs, with no SSH proxy,
    # and /access answers 500 for good.
    recorded(store, status="error", ssh_port=None)
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1", port=None)
    se.broken_access = 500
    life, rec = run(store, providers, pinned=SE)
    assert rec.status == "running" and rec.ssh_port == 20001
    kinds = [c[0] for c in se.writes()]
    assert kinds == ["delete", "create"], se.writes()
    assert any("unusable on provider" in a and "no SSH access" in a for a in life.out.actions), life.out.actions


@pytest.mark.parametrize(("status", "http_status"), [("running", 500), ("error", 404), ("error", None)])
def test_an_access_failure_of_a_vm_that_was_given_out_or_not_a_server_fault_is_no_reason_to_destroy(
        store, providers, status, http_status):
    recorded(store, status=status, ssh_port=None)
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1", port=None)
    se.broken_access = 500
    if http_status != 500:
        def fail(name: str) -> AccessInfo:
            raise ProviderError("cannot reach the provider" if http_status is None else "HTTP 404", status=http_status)
        se.get_access = fail
    with pytest.raises(ProviderError):
        run(store, providers, pinned=SE)
    assert se.writes() == [] and store.get("web-1").status == status


def test_timeout_while_the_job_runs_keeps_the_row_for_the_next_run(store, providers):
    providers["127.0.0.2"].job_status = "creating"
    with pytest.raises(TaskTimeout) as err:
        run(store, providers, pinned=SE, deadline=0.5)
    assert "wait_timeout" in err.value.msg
    row = store.get("web-1")
    assert row.status == "creating" and row.config["job_id"] == "job-1"


def test_synchronous_provider_needs_no_job(store, providers):
    providers["127.0.0.2"].api = "sync"
    life, rec = run(store, providers, pinned=SE)
    assert [c[0] for c in providers["127.0.0.2"].calls] == ["get", "create", "access"]
    assert rec.status == "running"


def test_stopped_stops_a_running_vm_once(store, providers):
    recorded(store)
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    life, rec = run(store, providers, state="stopped")
    assert providers["127.0.0.2"].writes() == [("stop", "web-1")] and rec.status == "stopped"
    life, rec = run(store, providers, state="stopped")
    assert providers["127.0.0.2"].writes() == [("stop", "web-1")] and not life.out.changed


def test_stopped_leaves_a_vm_alone_that_another_run_removed_meanwhile(store, providers):
    recorded(store)
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1")
    looked = se.get_vm

    def and_removed(name: str, missing_ok: bool = False) -> VMInfo | None:
        found = looked(name, missing_ok=missing_ok)
        store.delete(name)  # another run's state=absent, between this run's look and its lock
        return found

    se.get_vm = and_removed  # type: ignore[method-assign]
    with pytest.raises(StateError) as err:
        run(store, providers, state="stopped")
    assert "removed" in err.value.msg and "by another run" in err.value.msg
    assert ("stop", "web-1") not in se.calls, "a VM whose row is gone is not this run's to stop"


def test_started_on_a_stopped_vm_explains_there_is_no_start(store, providers):
    recorded(store, status="stopped")
    providers["127.0.0.2"].vms["web-1"] = vm("web-1", "stopped")
    with pytest.raises(ProviderError) as err:
        run(store, providers, state="started")
    assert "no start endpoint" in err.value.msg
    assert providers["127.0.0.2"].writes() == []


def test_started_creates_nothing(store, providers):
    with pytest.raises(ValidationError):
        run(store, providers, state="started")
    assert providers["127.0.0.2"].calls == []


def test_absent_deletes_and_forgets(store, providers):
    recorded(store)
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    life, rec = run(store, providers, state="absent")
    assert providers["127.0.0.2"].writes() == [("delete", "web-1")]
    assert rec is None and store.get("web-1") is None and life.out.changed


def test_absent_of_an_unknown_name_calls_nobody(store, providers):
    life, rec = run(store, providers, state="absent")
    assert providers["127.0.0.2"].calls == [] and not life.out.changed


def test_absent_in_check_mode_keeps_everything(store, providers):
    recorded(store)
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    life, rec = run(store, providers, state="absent", check=True)
    assert providers["127.0.0.2"].writes() == [] and store.get("web-1") is not None and life.out.changed


def test_creation_only_differences_are_a_warning(store, providers):
    recorded(store)
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    want_medium = SIZES["medium"]
    life = Lifecycle(
        Want(name="web-1", state="present", spec=want_medium, size="medium", image="22.04", stream_id=None,
             public_key=KEY, key_fingerprint="SHA256:other", private_key_path=None, ssh_user="root",
             pinned=None, country=None, adopt=False, wait=False),
        VMServices(store=store, known_hosts=KnownHosts(str(Path(store.path).parent / "kh")), deadline=Deadline(5),
                   provider_client=lambda p: providers[p.ip], warn=(warnings := []).append, check_mode=False),
        candidates=lambda preferred: [SE])
    life.run(store.get("web-1"))
    assert not life.out.changed and len(warnings) == 1
    assert "2/4/20" in warnings[0] and "SHA256:other" in warnings[0]


@pytest.mark.parametrize("status", ["error", "creating"])
def test_absent_of_a_row_whose_create_may_be_queued_deletes_before_forgetting(store, providers, status):
    # Reviewer's case: one 404 for such a row is no proof, and forgetting it at once could leave the
    # late VM running with no row.
    recorded(store, status=status)
    se = providers["127.0.0.2"]
    life, rec = run(store, providers, state="absent")
    assert rec is None and store.get("web-1") is None
    assert ("delete", "web-1") in se.writes(), "a DELETE stops a create that is still queued"
    assert len([c for c in se.calls if c[0] == "get"]) >= 2, "the name is watched until it stays unseen"


def test_absent_of_an_error_row_deletes_a_vm_that_shows_up_late(store, providers):
    # A queued create reads as 404 and ignores a DELETE; it runs a moment later whatever happens.
    recorded(store, status="error")
    se = providers["127.0.0.2"]
    appear_at, appeared = time.monotonic() + 0.02, []

    def launch() -> None:
        if not appeared and time.monotonic() >= appear_at:
            appeared.append(True)
            se.vms["web-1"] = vm("web-1")

    real_get, real_delete = se.get_vm, se.delete_vm
    se.get_vm = lambda name, missing_ok=False: (launch(), real_get(name))[1]
    se.delete_vm = lambda name: (launch(), real_delete(name))[1]
    life, rec = run(store, providers, state="absent")
    time.sleep(max(0.0, appear_at - time.monotonic()))
    launch()
    assert appeared and se.vms == {}, "the late VM was deleted, not left running without a row"
    assert store.get("web-1") is None


def test_present_of_an_error_row_settles_the_old_create_before_creating_again(store, providers):
    recorded(store, status="error")
    se = providers["127.0.0.2"]
    life, rec = run(store, providers, pinned=SE)
    assert rec.status == "running"
    kinds = [c[0] for c in se.calls]
    assert kinds.index("delete") < kinds.index("create"), "the old create is stopped before the name is reused"


def test_a_running_row_gone_from_its_provider_is_recreated_without_waiting(store, providers):
    recorded(store, status="running")
    se = providers["127.0.0.2"]
    life, rec = run(store, providers, pinned=SE)
    assert rec.status == "running" and ("delete", "web-1") not in se.calls


def test_a_row_another_run_repaired_while_this_one_waited_for_the_lock_is_used_not_forgotten(
        store, providers, monkeypatch):
    # A second controller took the name's lock first and created the VM again: its new row is not ours to
    # forget, nor its new VM ours to delete or create a second time.
    recorded(store, status="running")
    se = providers["127.0.0.2"]
    real_lock = store.lock

    @contextmanager
    def other_run_first(name: str, *, timeout: float) -> Iterator[Any]:
        if "web-1" not in se.vms:
            se.vms["web-1"] = vm("web-1", port=20002)
            store.set_status("web-1", "running", ssh_port=20002, stream_id=None)
        with real_lock(name, timeout=timeout) as held:
            yield held

    monkeypatch.setattr(store, "lock", other_run_first)
    life, rec = run(store, providers, pinned=SE)
    assert se.writes() == [], "no delete and no second create"
    assert rec.ssh_port == 20002 and store.get("web-1").config["ssh_port"] == 20002
    assert not any("removed VM" in a for a in life.out.actions), life.out.actions


@pytest.mark.parametrize("meanwhile", ["re-created", "forgotten"])
def test_absent_acts_on_the_row_as_it_is_once_the_lock_is_had(store, providers, monkeypatch, meanwhile):
    recorded(store, status="running")  # its VM is gone from SE
    se = providers["127.0.0.2"]
    real_lock, done = store.lock, []

    @contextmanager
    def other_run_first(name: str, *, timeout: float) -> Iterator[Any]:
        if not done:
            done.append(True)
            if meanwhile == "re-created":
                se.vms["web-1"] = vm("web-1", port=20002)
                store.set_status("web-1", "running", ssh_port=20002)
            else:
                store.delete("web-1")
        with real_lock(name, timeout=timeout) as held:
            yield held

    monkeypatch.setattr(store, "lock", other_run_first)
    life, rec = run(store, providers, state="absent")
    assert rec is None and store.get("web-1") is None
    if meanwhile == "re-created":
        assert se.writes() == [("delete", "web-1")] and se.vms == {}, "the VM the row now names is destroyed"
        assert life.out.changed
    else:
        assert se.writes() == [] and not life.out.changed, "another run removed it: nothing left to do"


def test_a_row_removed_by_another_run_while_this_one_updates_it_is_an_error_not_a_silent_no_op(
        store, providers, monkeypatch):
    recorded(store, status="creating")  # another run's create: this run converges it
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1")
    real_get = se.get_vm

    def get_then_removed(name: str, missing_ok: bool = False) -> Any:
        found = real_get(name, missing_ok=missing_ok)
        store.delete("web-1")  # state=absent of a second controller, between our read and our write
        return found

    se.get_vm = get_then_removed
    with pytest.raises(StateError) as err:
        run(store, providers, pinned=SE)
    assert "vanished" in err.value.msg and "web-1" in err.value.msg


def test_a_row_only_relabelled_meanwhile_is_still_the_row_read(store, providers, monkeypatch):
    recorded(store, status="running")  # its VM is gone from SE
    se = providers["127.0.0.2"]
    real_lock = store.lock

    @contextmanager
    def relabelled_first(name: str, *, timeout: float) -> Iterator[Any]:
        store.set_status("web-1", "running", labels={"team": "b"})  # a fleet run relabels; nothing else
        with real_lock(name, timeout=timeout) as held:
            yield held

    monkeypatch.setattr(store, "lock", relabelled_first)
    life, rec = run(store, providers, state="absent")
    assert rec is None and store.get("web-1") is None
    assert not any("changed by another run" in a for a in life.out.actions), life.out.actions


def test_two_runs_repairing_the_same_lost_vm_at_once_create_it_once(tmp_path, providers):
    recorded_store = SQLiteStateStore(str(tmp_path / "vms.db"))
    recorded(recorded_store, status="running")
    se = providers["127.0.0.2"]
    start = threading.Barrier(2)
    results: list[Any] = []

    def repair() -> None:
        own = SQLiteStateStore(str(tmp_path / "vms.db"))  # each run its own connection, as two controllers
        start.wait()
        results.append(run(own, providers, pinned=SE)[1])

    threads = [threading.Thread(target=repair), threading.Thread(target=repair)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2 and all(r is not None and r.status == "running" for r in results)
    assert [c for c in se.writes() if c[0] == "create"] == [("create", "web-1")], se.writes()
    assert [r.name for r in recorded_store.list()] == ["web-1"]


def test_budget_gone_before_the_create_is_sent_leaves_no_row_and_no_delete(store, providers, monkeypatch):
    se = providers["127.0.0.2"]
    se.create_error = TaskTimeout("wait_timeout of 1 s ran out while calling POST /api/v1/vms")
    with pytest.raises(TaskTimeout):
        run(store, providers, pinned=SE)
    assert store.get("web-1") is None and se.writes() == [("create", "web-1")]


# -- identity: a row is forgotten only on its own provider's word ---------------------------

class FakeDiscovery:
    """Discovery's advertisement of each provider id (for MVP-era providers, which have no /provider/info)."""

    def __init__(self, ads: dict[str, str] | None = None, error: GolemError | None = None) -> None:
        self.ads = ads or {}
        self.error = error
        self.source = "discovery http://127.0.0.1:9001"
        self.calls: list[str] = []

    def get_advertisement(self, provider_id: str) -> Any:
        self.calls.append(provider_id)
        if self.error is not None:
            raise self.error
        ip = self.ads.get(provider_id)
        return None if ip is None else type("Ad", (), {"ip_address": ip, "provider_id": provider_id})()


def run_with(store, providers, identity, **kwargs):
    want = Want(name="web-1", state=kwargs.pop("state", "present"), spec=None, size=None, image=None,
                stream_id=None, public_key=KEY, key_fingerprint="SHA256:x", private_key_path=None, ssh_user="root",
                pinned=kwargs.pop("pinned", None), country=None, adopt=False, wait=False)
    services = VMServices(store=store, known_hosts=KnownHosts(str(Path(store.path).parent / "known_hosts")),
                          deadline=Deadline(30), provider_client=lambda p: providers[p.ip], warn=lambda _m: None,
                          check_mode=kwargs.pop("check", False), identity=identity)
    life = Lifecycle(want, services, candidates=kwargs.pop("candidates", lambda preferred: [preferred or SE]))
    return life, life.run(store.get("web-1"))


def _files(store: StateStore) -> dict[str, bytes]:
    folder = Path(store.path).parent
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_another_provider_at_the_address_changes_nothing(store, providers):
    recorded(store)
    KnownHosts(str(Path(store.path).parent / "known_hosts")).add("127.0.0.2", 20001, [HOST_KEY])
    se = providers["127.0.0.2"]
    se.info_id = "0xsomeone-else"  # a real provider, but not the one the VM was rented from
    before = _files(store)
    life = None
    with pytest.raises(IdentityError) as err:
        life, _rec = run_with(store, providers, ProviderIdentity())
    msg = err.value.msg
    assert "0xse" in msg and "0xsomeone-else" in msg and "http://127.0.0.2:7466" in msg
    assert "left unchanged" in msg and err.value.kind == "identity"
    assert _files(store) == before, "state file and known_hosts must be byte-identical"
    assert se.writes() == [] and providers["127.0.0.3"].calls == []


def test_a_404_without_the_providers_body_is_refused_before_any_proof(store, providers):
    recorded(store)
    se = providers["127.0.0.2"]
    before = _files(store)

    def foreign(name: str, missing_ok: bool = False) -> VMInfo | None:
        se.calls.append(("get", name))
        raise IdentityError("provider request GET http://127.0.0.2:7466/api/v1/vms/web-1 failed: HTTP 404 answer "
                            "has no JSON error body (text/html); is http://127.0.0.2:7466 really a VM on Golem provider?",
                            status=404)

    se.get_vm = foreign
    for state in ("present", "absent", "stopped"):
        with pytest.raises(IdentityError) as err:
            run_with(store, providers, ProviderIdentity(), state=state)
        assert "to GET http://127.0.0.2:7466/api/v1/vms/web-1 its HTTP 404 answer has no JSON error body" in \
            err.value.msg
    assert _files(store) == before and se.writes() == [] and ("info", "") not in se.calls


def test_a_vm_its_own_provider_says_is_gone_is_forgotten_and_created_again(store, providers):
    recorded(store)
    life, rec = run_with(store, providers, ProviderIdentity())
    se = providers["127.0.0.2"]
    assert se.calls.count(("info", "")) == 1 and rec.status == "running"
    assert any("removed VM web-1 from the state file" in a for a in life.out.actions)


@pytest.mark.parametrize(("ads", "error", "proven", "shown"), [
    ({"0xse": "127.0.0.2"}, None, True, ""),
    ({"0xse": "127.0.0.9"}, None, False, "says provider 0xse is at 127.0.0.9 now"),
    ({}, None, False, "has no advertisement of provider 0xse"),
    ({}, DiscoveryError("discovery request GET ... failed: connection refused"), False, "could not vouch"),
])
def test_an_mvp_provider_is_vouched_for_by_discovery(store, providers, ads, error, proven, shown):
    recorded(store)
    providers["127.0.0.2"].info_id = None  # the MVP-era API has no /provider/info
    discovery = FakeDiscovery(ads, error)
    before = _files(store)
    if proven:
        _life, rec = run_with(store, providers, ProviderIdentity(lambda: discovery))
        assert rec.status == "running" and ("create", "web-1") in providers["127.0.0.2"].writes()
    else:
        with pytest.raises(IdentityError) as err:
            run_with(store, providers, ProviderIdentity(lambda: discovery))
        assert shown in err.value.msg and _files(store) == before
        assert providers["127.0.0.2"].writes() == []
    assert discovery.calls == ["0xse"]


def test_an_mvp_provider_without_discovery_cannot_prove_itself(store, providers):
    recorded(store)
    providers["127.0.0.2"].info_id = None
    with pytest.raises(IdentityError, match="no discovery service can vouch"):
        run_with(store, providers, ProviderIdentity())


def test_removing_the_row_is_a_change_even_when_the_new_create_fails(store, providers):
    recorded(store)

    def no_providers(_preferred: Placement | None) -> list[Placement]:
        raise DiscoveryError("no provider in discovery has room")

    with pytest.raises(DiscoveryError):
        want = Want(name="web-1", state="present", spec=None, size=None, image=None, stream_id=None,
                    public_key=KEY, key_fingerprint="SHA256:x", private_key_path=None, ssh_user="root",
                    pinned=None, country=None, adopt=False, wait=False)
        services = VMServices(store=store, known_hosts=KnownHosts(str(Path(store.path).parent / "kh")),
                              deadline=Deadline(5), provider_client=lambda p: providers[p.ip], warn=lambda _m: None)
        life = Lifecycle(want, services, candidates=no_providers)
        life.run(store.get("web-1"))
    assert life.out.changed is True and store.get("web-1") is None
    assert "removed VM web-1 from the state file" in life.out.actions


def test_check_mode_announces_every_removal(store, providers):
    recorded(store)
    known = KnownHosts(str(Path(store.path).parent / "known_hosts"))
    known.add("127.0.0.2", 20001, [HOST_KEY])
    before = _files(store)
    life, _rec = run_with(store, providers, ProviderIdentity(), check=True)
    assert life.out.changed
    assert "would remove VM web-1 from the state file" in life.out.actions
    assert "would remove the host key of VM web-1 ([127.0.0.2]:20001)" in life.out.actions
    assert _files(store) == before


def test_absent_with_a_provider_given_deletes_an_unrecorded_vm_there(store, providers):
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1")
    life, rec = run_with(store, providers, ProviderIdentity(), state="absent", pinned=SE)
    assert rec is None and life.out.changed and se.writes() == [("delete", "web-1")] and se.vms == {}
    assert any("not in the state file" in a for a in life.out.actions)
    again, _rec = run_with(store, providers, ProviderIdentity(), state="absent", pinned=SE)
    assert not again.out.changed and se.writes() == [("delete", "web-1")]


def test_absent_with_a_provider_given_is_refused_by_another_provider(store, providers):
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1")
    se.info_id = "0xsomeone-else"
    with pytest.raises(IdentityError):
        run_with(store, providers, ProviderIdentity(), state="absent", pinned=SE)
    assert se.writes() == [] and "web-1" in se.vms


def test_an_mvp_provider_with_no_recorded_id_is_vouched_for_only_by_the_tasks_own_pin(store, providers):
    config = {"cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_port": 7466}
    store.upsert(VMRecord("web-1", "127.0.0.2", "web-1", "error", config))  # pinned by address, id unknown
    providers["127.0.0.2"].info_id = None  # MVP-era: it cannot name itself
    with pytest.raises(IdentityError, match="vouched for by giving provider_ip and provider_port"):
        run_with(store, providers, ProviderIdentity(), state="absent")
    assert store.get("web-1") is not None
    pin = Placement("127.0.0.2", 7466, None, None)
    _life, rec = run_with(store, providers, ProviderIdentity(), state="absent", pinned=pin)
    assert rec is None and store.get("web-1") is None


# -- a provider's SSH endpoint is checked before anything uses it ---------------------------------


@pytest.mark.parametrize(("answer", "field", "shown"), [
    ({"ssh_host": '127.0.0.2\nMatch exec "touch /tmp/x"\nHost zz', "ssh_port": 20001}, "ssh_host",
     "'127.0.0.2\\nMatch exec"),
    ({"ssh_host": "-oProxyCommand=touch", "ssh_port": 20001}, "ssh_host", "'-oProxyCommand=touch'"),
    ({"ssh_host": "127.0.0.2 other", "ssh_port": 20001}, "ssh_host", "'127.0.0.2 other'"),
    ({"ssh_host": "127.0.0.2", "ssh_port": 70000}, "ssh_port", "70000"),
    ({"ssh_host": "127.0.0.2", "ssh_port": 0}, "ssh_port", "0"),
])
def test_a_hostile_ssh_endpoint_fails_the_task_and_keeps_the_vm_recorded_without_it(
        store, providers, answer, field, shown):
    se = providers["127.0.0.2"]
    se.access_answer = answer
    with pytest.raises(ValidationError) as err:
        run(store, providers, pinned=SE)
    msg = err.value.msg
    assert "provider http://127.0.0.2:7466" in msg and f"'{field}'" in msg and shown in msg, msg
    assert "\n" not in msg, "the value is shown escaped, never as a new line"
    row = store.get("web-1")
    # The VM exists on the provider: its row stays, so state=absent deletes it, but with no endpoint anyone uses.
    assert row.status == "error" and "ssh_host" not in row.config and "ssh_port" not in row.config
    assert field in row.error
    assert not (Path(store.path).parent / "known_hosts").exists()
    life, gone = run(store, providers, state="absent")
    assert gone is None and store.get("web-1") is None and "web-1" not in se.vms


def test_a_foreign_ssh_host_is_refused_and_the_vm_kept_for_absent_unless_allowed(store, providers):
    se = providers["127.0.0.2"]
    se.access_answer = {"ssh_host": "127.0.0.99", "ssh_port": 20001}
    with pytest.raises(ValidationError) as err:
        run(store, providers, pinned=SE)
    assert err.value.field == "ssh_host" and "'127.0.0.99'" in err.value.msg
    assert "allow_foreign_ssh_host" in err.value.msg
    row = store.get("web-1")
    assert row.status == "error" and "ssh_host" not in row.config and "ssh_port" not in row.config
    assert row.ssh_host == "127.0.0.2", "nothing but the provider's own address is left to connect to"
    life, gone = run(store, providers, state="absent")
    assert gone is None and store.get("web-1") is None and "web-1" not in se.vms

    _life, rec = run(store, providers, pinned=SE, allow_foreign=True)
    assert rec.status == "running" and store.get("web-1").config["ssh_host"] == "127.0.0.99"


def test_a_vm_refused_for_its_ssh_host_stays_refused_on_the_next_run(store, providers):
    se = providers["127.0.0.2"]
    se.access_answer = {"ssh_host": "127.0.0.99", "ssh_port": 20001}
    with pytest.raises(ValidationError):
        run(store, providers, pinned=SE)
    with pytest.raises(ValidationError) as err:
        run(store, providers, pinned=SE)  # the VM runs on SE; its provider still points SSH elsewhere
    assert "allow_foreign_ssh_host" in err.value.msg
    row = store.get("web-1")
    assert row.status == "error" and "ssh_host" not in row.config and "ssh_port" not in row.config
    se.access_answer = None  # the provider mended its answer
    _life, rec = run(store, providers, pinned=SE)
    assert rec.status == "running" and rec.ssh_host == "127.0.0.2" and rec.error is None


@pytest.mark.parametrize("http_status", [502, 503, 504])
def test_a_transient_server_error_on_access_destroys_nothing(store, providers, http_status):
    recorded(store, status="error", ssh_port=None)
    se = providers["127.0.0.2"]
    se.vms["web-1"] = vm("web-1", port=None)
    se.broken_access = http_status
    with pytest.raises(ProviderError):
        run(store, providers, pinned=SE)
    assert se.writes() == [] and store.get("web-1").status == "error"


def test_localhost_from_a_provider_means_its_own_address(store, providers):
    providers["127.0.0.2"].access_answer = {"ssh_host": "localhost", "ssh_port": 20001}
    _life, rec = run(store, providers, pinned=SE)
    assert rec.ssh_host == "127.0.0.2" and store.get("web-1").config["ssh_host"] == "127.0.0.2"


def test_absent_of_a_tampered_row_deletes_and_forgets_it(store, providers):
    # A shared state row someone wrote with a host no file may take: nothing is written from it, and it goes.
    store.upsert(VMRecord("web-1", "127.0.0.2", "web-1", "running",
                          {"ssh_port": 20001, "provider_port": 7466, "ssh_host": "127.0.0.2\nHost *"}))
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    life, rec = run(store, providers, state="absent")
    assert rec is None and store.get("web-1") is None and life.out.changed
    assert providers["127.0.0.2"].writes() == [("delete", "web-1")]


def test_a_row_s_provider_address_never_becomes_a_url_unchecked():
    from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient

    for ip, port in (("a@b.example", 7466), ("127.0.0.2/x", 7466), ("127.0.0.2", 0), ("127.0.0.2", 70000)):
        with pytest.raises(ValidationError):
            ProviderClient(ip, port)
