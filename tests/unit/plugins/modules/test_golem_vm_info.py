# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_vm_info end to end, in-process: the state as golem_vm writes it, a stand-in provider (the reference's
answers) and a fake payment chain. The real network is in tests/integration/test_golem_vm_info.py."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from fake_rpc import FakeRPC
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.vm.view import represent_vm
from ansible_collections.golem.vm.plugins.modules import golem_vm_info

LOOPBACK = "127.0.0.60"  # the unit suite's own address (tests/unit/conftest.py)
SE_ID = "0x41C54B3b0909a1E542D578321cD10063e1B6940f"
US_ID = "0x88A3b8f73f7Ab2C8CE82CFcce69FbA604aB6B033"
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ME = "0x" + "ab" * 20
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REFRESH_KEYS = {"recorded_status", "live_status", "provider_reachable", "refresh_error", "stream_remaining_seconds",
                "stream_error", "missing_reason"}
Run = Callable[..., dict[str, Any]]


def vm(name: str, status: str = "running", *, port: int, ip: str = LOOPBACK, ssh_port: int = 20001,
       **config: Any) -> VMRecord:
    """A row as golem_vm writes it, on the provider API at ``ip:port``."""
    base: dict[str, Any] = {"cpu": 1, "memory": 1, "storage": 10, "ssh_port": ssh_port, "provider_id": SE_ID,
                            "provider_port": port, "country": "SE", "ssh_user": "root", "image": "24.04",
                            "size": "small", "ssh_host": ip}
    base.update(config)
    return VMRecord(name, ip, name, status, {k: v for k, v in base.items() if v is not None})


def provider_vm(name: str, status: str) -> dict[str, Any]:
    body = json.loads((FIXTURES / f"provider_vm_{status}_from_reference.json").read_text())
    body.update(id=name, name=name)
    return body


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    return StateStore(str(tmp_path / "requestor" / "vms.db"))


@pytest.fixture
def run(httpserver: HTTPServer, state: StateStore, capsys: pytest.CaptureFixture[str]) -> Run:
    def run_module(**args: Any) -> dict[str, Any]:
        args.setdefault("state_path", state.path)
        args.setdefault("payments_rpc_url", httpserver.url_for("/rpc"))
        args.setdefault("discovery_url", f"http://{LOOPBACK}:9")  # never needed: every provider here proves itself
        ansible_warnings._global_warnings.clear()  # each run is its own process under Ansible
        with patch_module_args(args), pytest.raises(SystemExit):
            golem_vm_info.main()
        return json.loads(capsys.readouterr().out)

    return run_module


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections into the backlog and never answers."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def names(result: dict[str, Any]) -> list[str]:
    assert result["changed"] is False and not result.get("failed"), result.get("msg")
    return [v["name"] for v in result["vms"]]


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in result["vms"]}


def warnings_of(result: dict[str, Any]) -> list[str]:
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


@pytest.fixture
def labelled(state: StateStore, httpserver: HTTPServer) -> StateStore:
    port = httpserver.port
    state.upsert(vm("web-1", port=port, labels={"role": "web", "tier": "1"}))
    state.upsert(vm("web-2", port=port, provider_id=US_ID, country="US", labels={"role": "web", "tier": "2"}))
    state.upsert(vm("db-1", "stopped", port=port, ssh_port=20002, labels={"role": "db"}))
    state.upsert(vm("cli-1", port=port, ssh_port=20003, provider_id=None, country=None))
    return state


def test_lists_the_state_as_golem_vm_shows_a_vm_and_asks_nobody(
        run: Run, labelled: StateStore, httpserver: HTTPServer) -> None:
    before = Path(labelled.path).read_bytes()
    result = run()
    assert names(result) == ["cli-1", "db-1", "web-1", "web-2"]
    known_hosts = str(Path(labelled.path).parent / "known_hosts")
    web = by_name(result)["web-1"]
    assert web == represent_vm(labelled.get("web-1"), known_hosts_path=known_hosts), "golem_vm's vm shape, exactly"
    assert web["labels"] == {"role": "web", "tier": "1"} and by_name(result)["cli-1"]["labels"] == {}
    assert f"UserKnownHostsFile={known_hosts}" in web["ssh_command"]
    assert not REFRESH_KEYS & set(web), "refresh fields only with refresh"
    assert httpserver.log == [], "listing asks no provider and no chain"
    assert Path(labelled.path).read_bytes() == before


@pytest.mark.parametrize(("args", "expected"), [
    ({"names": ["web-*"]}, ["web-1", "web-2"]),
    ({"names": "db-1,cli-*"}, ["cli-1", "db-1"]),
    ({"labels": {"role": "web"}}, ["web-1", "web-2"]),
    ({"labels": {"role": "web", "tier": 2}}, ["web-2"]),
    ({"countries": ["se"]}, ["db-1", "web-1"]),
    ({"providers": [US_ID.lower()]}, ["web-2"]),
    ({"providers": [LOOPBACK]}, ["cli-1", "db-1", "web-1", "web-2"]),
    ({"statuses": ["stopped"]}, ["db-1"]),
    ({"statuses": ["running"], "labels": {"role": "web"}, "countries": ["SE"]}, ["web-1"]),
    ({"labels": {"role": "cache"}}, []),
])
def test_filters(run: Run, labelled: StateStore, args: dict[str, Any], expected: list[str]) -> None:
    assert names(run(**args)) == expected


def test_a_missing_state_lists_nothing_and_creates_nothing(run: Run, state: StateStore) -> None:
    assert names(run()) == []
    assert not Path(state.path).exists() and not Path(state.path).parent.exists()


def test_an_unreadable_row_is_left_out_with_a_warning(run: Run, labelled: StateStore) -> None:
    with sqlite3.connect(labelled.path) as conn:
        conn.execute("UPDATE vms SET config = 'not json' WHERE name = 'db-1'")
    result = run()
    assert names(result) == ["cli-1", "web-1", "web-2"]
    assert any("skipped VM db-1" in w and "not valid JSON" in w for w in warnings_of(result)), result
    assert warnings_of(run(names=["web-*"])) == [], "a row the filters leave out is not worth a warning"


def test_refresh_reports_each_vm_live_and_changes_nothing(run: Run, state: StateStore, httpserver: HTTPServer,
                                                          chain: FakeRPC, closed_port: int) -> None:
    port = httpserver.port
    chain.add(7, sender=ME, recipient=SE_ID, left=1800, rate=10 ** 13)
    state.upsert(vm("live-1", port=port, stream_id=7, stream_contract=CONTRACT))
    state.upsert(vm("now-stopped", port=port, ssh_port=20002))
    state.upsert(vm("gone-1", port=port, ssh_port=20003))
    state.upsert(vm("new-1", "creating", port=port, ssh_port=None))
    state.upsert(vm("far-1", port=closed_port, ssh_port=20004, provider_id=US_ID))
    state.upsert(vm("Odd_Name", port=port, ssh_port=20005))
    httpserver.expect_request("/api/v1/vms/live-1", method="GET").respond_with_json(provider_vm("live-1", "running"))
    httpserver.expect_request("/api/v1/vms/now-stopped", method="GET").respond_with_json(
        provider_vm("now-stopped", "stopped"))
    httpserver.expect_request("/api/v1/vms/new-1", method="GET").respond_with_json(provider_vm("new-1", "running"))
    httpserver.expect_request("/api/v1/vms/gone-1", method="GET").respond_with_json(
        {"message": "VM gone-1 not found"}, status=404)
    httpserver.expect_request("/api/v1/provider/info", method="GET").respond_with_json({"provider_id": SE_ID})
    rows_before = {r.name: r.to_dict() for r in state.list()}

    result = run(refresh=True)
    vms = by_name(result)
    assert sorted(vms) == ["Odd_Name", "far-1", "gone-1", "live-1", "new-1", "now-stopped"]
    assert all(REFRESH_KEYS <= set(v) for v in vms.values())
    live = vms["live-1"]
    assert (live["status"], live["live_status"], live["provider_reachable"], live["refresh_error"]) == (
        "running", "running", True, None)
    assert live["stream_id"] == 7 and live["stream_remaining_seconds"] == 1800 and live["stream_error"] is None
    stopped = vms["now-stopped"]
    assert (stopped["status"], stopped["recorded_status"]) == ("stopped", "running")
    assert vms["new-1"]["live_status"] == "running", "a row without an SSH port yet is asked too"
    gone = vms["gone-1"]
    assert (gone["status"], gone["live_status"], gone["recorded_status"]) == ("missing", "missing", "running")
    far = vms["far-1"]
    assert far["provider_reachable"] is False and far["status"] == "running" and far["live_status"] is None
    assert "connection refused" in far["refresh_error"]
    odd = vms["Odd_Name"]
    assert odd["provider_reachable"] is None and "not a valid VM name" in odd["refresh_error"]

    paths = [req.path for req, _resp in httpserver.log]
    assert "/api/v1/vms" not in paths, "the list endpoint kills pending creates upstream"
    assert all(req.method in ("GET", "POST") for req, _resp in httpserver.log)
    assert {p for p in paths if p.startswith("/api/")} == {
        "/api/v1/vms/live-1", "/api/v1/vms/now-stopped", "/api/v1/vms/new-1", "/api/v1/vms/gone-1",
        "/api/v1/provider/info"}
    assert chain.calls.count("eth_call") == 1, "one stream, read once"
    assert {r.name: r.to_dict() for r in state.list()} == rows_before, "the state is not touched"

    assert names(run(refresh=True, statuses=["missing"])) == ["gone-1"], "statuses go by the live status"
    assert names(run(refresh=True, statuses=["running"], names=["*-1"])) == ["far-1", "live-1", "new-1"]
    checked = run(refresh=True, _ansible_check_mode=True)
    assert [v["status"] for v in checked["vms"]] == [v["status"] for v in result["vms"]], "check mode reads the same"


def test_refresh_asks_only_the_vms_the_filters_keep(run: Run, labelled: StateStore, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/vms/web-2").respond_with_json(provider_vm("web-2", "running"))
    result = run(refresh=True, labels={"role": "web"}, countries=["US"])
    assert names(result) == ["web-2"] and result["vms"][0]["live_status"] == "running"
    assert [req.path for req, _resp in httpserver.log] == ["/api/v1/vms/web-2"]


def test_refresh_keeps_to_its_time_budget(run: Run, state: StateStore, silent_port: int) -> None:
    for i in range(12):
        state.upsert(vm(f"slow-{i}", port=silent_port, ssh_port=20000 + i))
    started = time.monotonic()
    result = run(refresh=True, refresh_timeout=2.0, refresh_concurrency=2, timeout=120)
    # The budget the user set ended the refresh (the default is 10 s): its end or a request's timeout cut to
    # it, whichever came first. No request outlived it: one that waited its own 120 s timeout would pass the
    # cap, which is far from the budget on a loaded machine too.
    for listed in result["vms"]:
        assert re.search(r"no answer within refresh_timeout \(2 s\)|did not answer within (2|1\.\d+) s \(timeout\)",
                         listed["refresh_error"]), listed["refresh_error"]
    assert time.monotonic() - started < 60
    assert len(result["vms"]) == 12 and not any(v["provider_reachable"] for v in result["vms"])


@pytest.mark.parametrize(("args", "field", "text"), [
    ({"names": [{"web": 1}]}, "names", "names[0] must be a VM name or a shell-style pattern such as web-*, not "
                                       "{'web': 1}"),
    ({"statuses": ["runing"]}, "statuses", "unknown status runing in statuses"),
    ({"countries": ["Sweden"]}, "countries", "countries 'Sweden' must be a two-letter country code"),
    ({"labels": {"role": ["web"]}}, "labels", "labels['role'] must be text"),
    ({"refresh": True, "refresh_timeout": 0}, "refresh_timeout", "refresh_timeout must be more than 0 seconds"),
    ({"refresh": True, "refresh_concurrency": 0}, "refresh_concurrency", "refresh_concurrency must be a whole number"),
    ({"refresh": True, "payments_rpc_url": "ftp://x"}, "payments_rpc_url", "payments_rpc_url 'ftp://x' must be"),
    ({"stream_payment_address": "0x12"}, "stream_payment_address", "'0x12' is not a contract address"),
    ({"state_url": "postgresql://golem@db/golem"}, "state_url", "state_url and state_path are mutually exclusive"),
])
def test_bad_input_fails_naming_the_field_before_any_call(run: Run, labelled: StateStore, httpserver: HTTPServer,
                                                          args: dict[str, Any], field: str, text: str) -> None:
    result = run(**args)
    assert result["failed"] is True and result["failure"]["field"] == field, result
    assert text in result["msg"] and "exception" not in result, result["msg"]
    assert httpserver.log == []
