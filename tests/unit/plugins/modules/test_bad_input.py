# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to every module, as one table: each case fails with a message naming the field and
its value, without a traceback, without any request for input the module can check itself, and
leaves the state directory byte-for-byte as it was.

The modules run in-process here (fast, and a stand-in server can send malformed data);
tests/integration/test_bad_input.py runs a representative set through ansible itself.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest
from ansible.module_utils.testing import patch_module_args
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore

KEPT = "keep-1"  # the VM recorded in every case's state file
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFkq6ib9hU0KsdBPXHcbhsl6GbEQtwXZdSnxkQUz6CJ+"
ADS = "/api/v1/advertisements"
VM_PATH = f"/api/v1/vms/{KEPT}"


class Case(NamedTuple):
    module: str
    args: dict[str, Any]
    # Every one of these must appear in msg: the option (or server field) and the value.
    shown: tuple[str, ...]
    # The structured failure's field, when the module (not ansible-core's argument check) refused it.
    field: str | None = None
    # Answers of the stand-in server; without them the case must make no request at all.
    server: Callable[[HTTPServer], None] | None = None


def _vm(**fields: Any) -> dict[str, Any]:
    vm = {"id": KEPT, "name": KEPT, "status": "running", "ssh_port": 20001,
          "resources": {"cpu": 1, "memory": 1, "storage": 10}}
    vm.update(fields)
    return vm


def _ad(**fields: Any) -> dict[str, Any]:
    ad = {"provider_id": "0xabc", "ip_address": "127.0.0.60", "country": "SE",
          "resources": {"cpu": 4, "memory": 8, "storage": 100}}
    ad.update(fields)
    return ad


def vm_answer(body: Any) -> Callable[[HTTPServer], None]:
    def setup(server: HTTPServer) -> None:
        server.expect_request(VM_PATH, method="GET").respond_with_json(body)

    return setup


def ads_answer(body: Any, *, raw: bool = False, path: str = ADS) -> Callable[[HTTPServer], None]:
    def setup(server: HTTPServer) -> None:
        if raw:
            server.expect_request(path).respond_with_data(body, content_type="text/html")
        else:
            server.expect_request(path).respond_with_json(body)

    return setup


V, F, P, L = "golem_vm", "golem_fleet", "golem_provider_info", "golem_vm_info"

CASES: dict[str, Case] = {
    # --- names (checked before they can reach a URL path) ---
    "name-upper-underscore": Case(V, {"name": "Web_1"}, ("name", "'Web_1'"), "name"),
    "name-too-short": Case(V, {"name": "ab"}, ("name", "'ab'", "3 to 64"), "name"),
    "name-too-long": Case(V, {"name": "a" * 65}, ("name", "'" + "a" * 65 + "'"), "name"),
    "name-double-dash": Case(V, {"name": "web--1"}, ("name", "'web--1'", "--"), "name"),
    "name-path-traversal": Case(V, {"name": "../etc"}, ("name", "'../etc'"), "name"),
    "name-slash-query": Case(V, {"name": "a/b?c=1"}, ("name", "'a/b?c=1'"), "name"),
    "name-trailing-newline": Case(V, {"name": "web-1\n"}, ("name", "'web-1\\n'"), "name"),
    "name-empty": Case(V, {"name": ""}, ("name", "''"), "name"),
    "name-leading-dash": Case(V, {"name": "-web"}, ("name", "'-web'"), "name"),
    "fleet-name-upper": Case(F, {"name": "Web", "count": 2}, ("name", "'Web'"), "name"),
    "fleet-name-too-long": Case(F, {"name": "w" * 62, "count": 2}, ("name", "'" + "w" * 62 + "'"), "name"),
    # --- sizes and resources ---
    "size-unknown": Case(V, {"name": "web-1", "size": "huge"}, ("size", "huge")),
    "size-and-cpu": Case(V, {"name": "web-1", "size": "small", "cpu": 2}, ("size", "cpu", "'small'"), "size"),
    "cpu-not-allowed": Case(V, {"name": "web-1", "cpu": 3}, ("cpu", "3"), "cpu"),
    "cpu-not-a-number": Case(V, {"name": "web-1", "cpu": "two"}, ("cpu", "two")),
    "memory-not-allowed": Case(V, {"name": "web-1", "memory": 3}, ("memory", "3"), "memory"),
    "storage-too-small": Case(V, {"name": "web-1", "storage": 5}, ("storage", "5"), "storage"),
    "fleet-size-and-memory": Case(F, {"name": "web", "count": 1, "size": "small", "memory": 2},
                                  ("size", "memory", "'small'"), "size"),
    "info-cpu-zero": Case(P, {"cpu": 0}, ("cpu", "0"), "cpu"),
    "info-size-and-storage": Case(P, {"size": "small", "storage": 20}, ("size", "storage", "'small'"), "size"),
    # --- placement and other options ---
    "country-three-letters": Case(V, {"name": "web-1", "country": "swe"}, ("country", "'swe'"), "country"),
    "info-country-word": Case(P, {"country": "sweden"}, ("country", "'sweden'"), "country"),
    "fleet-countries-word": Case(F, {"name": "web", "count": 1, "countries": ["SE", "sweden"]},
                                 ("countries", "'sweden'"), "countries"),
    "provider-ip-path": Case(V, {"name": "web-1", "provider_ip": "127.0.0.1/x"}, ("provider_ip", "'127.0.0.1/x'"),
                             "provider_ip"),
    "provider-id-path": Case(V, {"name": "web-1", "provider_id": "../../x"}, ("provider_id", "'../../x'"),
                             "provider_id"),
    "provider-id-and-ip": Case(V, {"name": "web-1", "provider_id": "0xabc", "provider_ip": "127.0.0.1"},
                               ("provider_id", "provider_ip")),
    "state-choice": Case(V, {"name": "web-1", "state": "running"}, ("state", "running")),
    "stream-id-negative": Case(V, {"name": "web-1", "stream_id": -1}, ("stream_id", "-1"), "stream_id"),
    "ssh-user-shell": Case(V, {"name": "web-1", "ssh_user": "root;rm"}, ("ssh_user", "'root;rm'"), "ssh_user"),
    "image-with-space": Case(V, {"name": "web-1", "image": "ubuntu 24"}, ("image", "'ubuntu 24'"), "image"),
    "fleet-count-negative": Case(F, {"name": "web", "count": -1}, ("count", "-1"), "count"),
    "fleet-parallelism-zero": Case(F, {"name": "web", "count": 1, "parallelism": 0}, ("parallelism", "0"),
                                   "parallelism"),
    "info-limit-zero": Case(P, {"limit": 0}, ("limit", "0"), "limit"),
    "info-price-negative": Case(P, {"max_price_usd_month": -1.0}, ("max_price_usd_month", "-1"),
                                "max_price_usd_month"),
    "info-sort-choice": Case(P, {"sort": "cheap"}, ("sort", "cheap")),
    # --- keys ---
    "key-not-a-key": Case(V, {"name": "web-1", "ssh_public_key": "not a key"}, ("ssh_public_key", "'not a key'"),
                          "ssh_public_key"),
    "key-dss": Case(V, {"name": "web-1", "ssh_public_key": "ssh-dss AAAAB3NzaC1kc3MAAACBAP"},
                    ("ssh_public_key", "ssh-dss"), "ssh_public_key"),
    "key-truncated": Case(V, {"name": "web-1", "ssh_public_key": ED25519[:40]}, ("ssh_public_key", ED25519[:40]),
                          "ssh_public_key"),
    "key-path-missing": Case(V, {"name": "web-1", "ssh_public_key_path": "WORK/nope.pub"},
                             ("ssh_public_key_path", "WORK/nope.pub"), "ssh_public_key_path"),
    "key-path-is-private": Case(V, {"name": "web-1", "ssh_public_key_path": "WORK/keys/id_ed25519"},
                                ("ssh_public_key_path", "WORK/keys/id_ed25519", "PRIVATE"), "ssh_public_key_path"),
    "key-path-directory": Case(F, {"name": "web", "count": 1, "ssh_public_key_path": "WORK/keys"},
                               ("ssh_public_key_path", "WORK/keys"), "ssh_public_key_path"),
    "key-both": Case(V, {"name": "web-1", "ssh_public_key": ED25519, "ssh_public_key_path": "WORK/keys/x.pub"},
                     ("ssh_public_key", "ssh_public_key_path")),
    # --- URLs, ports, timeouts ---
    "url-ftp": Case(V, {"name": "web-1", "discovery_url": "ftp://x"}, ("discovery_url", "'ftp://x'"),
                    "discovery_url"),
    "url-no-scheme": Case(P, {"discovery_url": "127.0.0.1:9001"}, ("discovery_url", "'127.0.0.1:9001'"),
                          "discovery_url"),
    "url-port-range": Case(F, {"name": "web", "count": 1, "discovery_url": "http://h:99999"},
                           ("discovery_url", "'http://h:99999'"), "discovery_url"),
    "provider-port-zero": Case(V, {"name": "web-1", "provider_port": 0}, ("provider_port", "0"), "provider_port"),
    "provider-port-high": Case(P, {"provider_port": 70000}, ("provider_port", "70000"), "provider_port"),
    "timeout-negative": Case(V, {"name": "web-1", "timeout": -1.0}, ("timeout", "-1"), "timeout"),
    "timeout-zero": Case(P, {"timeout": 0.0}, ("timeout", "0"), "timeout"),
    "wait-timeout-zero": Case(V, {"name": "web-1", "wait_timeout": 0}, ("wait_timeout", "0"), "wait_timeout"),
    "fleet-wait-timeout-negative": Case(F, {"name": "web", "count": 1, "wait_timeout": -3}, ("wait_timeout", "-3"),
                                        "wait_timeout"),
    "validate-certs-word": Case(V, {"name": "web-1", "validate_certs": "maybe"}, ("validate_certs", "maybe")),
    # --- state paths ---
    "state-path-directory": Case(V, {"name": "web-1", "state_path": "WORK"}, ("state_path", "'WORK'"),
                                 "state_path"),
    "state-path-not-sqlite": Case(V, {"name": "web-1", "state_path": "WORK/notes.txt"},
                                  ("state_path", "'WORK/notes.txt'", "not an SQLite database"), "state_path"),
    "state-path-under-a-file": Case(F, {"name": "web", "count": 1, "state_path": "WORK/notes.txt/vms.db"},
                                    ("state_path", "'WORK/notes.txt/vms.db'"), "state_path"),
    "known-hosts-directory": Case(V, {"name": "web-1", "known_hosts_path": "WORK/keys"},
                                  ("known_hosts_path", "'WORK/keys'"), "known_hosts_path"),
    # --- golem_vm_info's filters and refresh ---
    "list-name-pattern-dict": Case(L, {"names": ["web-*", {"web": 1}]}, ("names[1]", "{'web': 1}"), "names"),
    "list-status-typo": Case(L, {"statuses": ["runing"]}, ("statuses", "runing"), "statuses"),
    "list-country-word": Case(L, {"countries": ["sweden"]}, ("countries", "'sweden'"), "countries"),
    "list-label-list": Case(L, {"labels": {"role": ["web"]}}, ("labels['role']", "['web']"), "labels"),
    "list-refresh-timeout-zero": Case(L, {"refresh": True, "refresh_timeout": 0.0}, ("refresh_timeout", "0"),
                                      "refresh_timeout"),
    "list-state-path-not-sqlite": Case(L, {"state_path": "WORK/notes.txt"},
                                       ("state_path", "'WORK/notes.txt'", "not an SQLite database"), "state_path"),
    # --- malformed server data ---
    "server-vm-status-unknown": Case(V, {"name": KEPT, "wait": False}, ("status", "'exploded'", VM_PATH), "status",
                                     vm_answer(_vm(status="exploded"))),
    "server-vm-port-word": Case(V, {"name": KEPT, "wait": False}, ("ssh_port", "'abc'", VM_PATH), "ssh_port",
                                vm_answer(_vm(ssh_port="abc"))),
    "server-vm-not-object": Case(V, {"name": KEPT, "state": "stopped"}, ("a VM", "['running']", VM_PATH), None,
                                 vm_answer(["running"])),
    "server-vm-no-id": Case(V, {"name": KEPT, "wait": False}, ("'id'", VM_PATH), "id",
                            vm_answer({"name": KEPT, "status": "running"})),
    "server-discovery-html": Case(P, {}, ("not JSON", ADS), None, ads_answer("<html>oops</html>", raw=True)),
    "server-discovery-not-list": Case(P, {}, ("not a list", ADS), None, ads_answer({"detail": "nope"})),
    "server-ad-cpu-word": Case(V, {"name": "web-1", "provider_id": "0xabc", "wait": False},
                               ("resources.cpu", "'lots'", "/api/v1/advertisements/0xabc"), "resources.cpu",
                               ads_answer(_ad(resources={"cpu": "lots", "memory": 8, "storage": 100}),
                                          path=f"{ADS}/0xabc")),
    "server-ad-ip-hostname": Case(V, {"name": "web-1", "provider_id": "0xabc", "wait": False},
                                  ("ip_address", "'evil.example/x'"), "ip_address",
                                  ads_answer(_ad(ip_address="evil.example/x"), path=f"{ADS}/0xabc")),
    "server-ads-all-malformed": Case(F, {"name": "web", "count": 1, "wait": False},
                                     ("ip_address", "'evil.example'"), None,
                                     ads_answer([_ad(ip_address="evil.example")])),
}


@pytest.fixture
def work(tmp_path: Path, httpserver: HTTPServer) -> Path:
    """A state file holding one VM on the stand-in server, a key pair and a file that is not a database."""
    state = StateStore(str(tmp_path / "requestor" / "vms.db"))
    host, port = httpserver.host, httpserver.port
    state.upsert(VMRecord(name=KEPT, provider_ip=host, vm_id=KEPT, status="running", config={
        "cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_port": port, "ssh_user": "root"}))
    # A read leaves SQLite's -shm and -wal beside the file, as after any run; from here on nothing may change.
    assert state.get(KEPT) is not None
    (tmp_path / "keys").mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "keys" / "id_ed25519")],
                   check=True)
    (tmp_path / "notes.txt").write_text("not a database\n")
    return tmp_path


def snapshot(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def run_module(module: str, args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    main = importlib.import_module(f"ansible_collections.golem.vm.plugins.modules.{module}").main
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)


def test_the_table_covers_every_area() -> None:
    assert len(CASES) >= 40
    modules = {c.module for c in CASES.values()}
    assert modules == {V, F, P, L}
    assert sum(c.server is not None for c in CASES.values()) >= 8


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_is_named_and_changes_nothing(
    case_id: str, work: Path, httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[case_id]

    def place(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("WORK", str(work))
        if isinstance(value, list):
            return [place(v) for v in value]
        return value

    args = {k: place(v) for k, v in case.args.items()}
    args.setdefault("discovery_url", httpserver.url_for("").rstrip("/"))
    # The server cases are central discovery's answers (Golem Base's: test_discovery_golem_base.py).
    args.setdefault("discovery_backend", "central")
    if case.module != P:
        args.setdefault("state_path", str(work / "requestor" / "vms.db"))
    if case.server is not None:
        case.server(httpserver)
    before = snapshot(work)

    result = run_module(case.module, args, capsys)

    msg = result.get("msg", "")
    assert result.get("failed") is True, result
    for text in case.shown:
        assert place(text) in msg, f"{text!r} not in {msg!r}"
    assert "exception" not in result and "Traceback" not in msg, result
    if case.field is not None:
        assert result["failure"]["field"] == case.field, result["failure"]
    assert snapshot(work) == before, "the state directory changed"
    if case.server is None:
        assert httpserver.log == [], "input the module can check itself must fail before any request"


def test_a_state_path_from_the_environment_is_named_by_its_variable(
    work: Path, httpserver: HTTPServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", str(work / "notes.txt"))
    before = snapshot(work)
    result = run_module(V, {"name": "web-1", "discovery_url": httpserver.url_for("").rstrip("/")}, capsys)
    assert result["failed"] is True
    assert f"GOLEM_REQUESTOR_DB_PATH '{work / 'notes.txt'}' is not an SQLite database" in result["msg"]
    assert snapshot(work) == before and httpserver.log == []
