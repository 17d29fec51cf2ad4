# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A recorded VM is forgotten only when its own provider says it is gone (issue 12), on the real servers.

A VM is created for real on the SE provider; then its recorded address is handed to something
else, as happens when a provider's IP is reused: a plain web server that 404s everything, the
real US provider (another id), a captive portal answering HTML. golem_vm must fail, naming the
address and what answered, change no file and send no create; the inventory's refresh must
show the host unreachable, never missing.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .ansible_runner import BIN, Ansible
from .devnet_helpers import ProviderLog, create_body, create_on_provider, http, plain, ssh_pasted, state_rows

IMPOSTOR_IP = "127.0.0.61"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class _Impostor(BaseHTTPRequestHandler):
    status, body, content_type = 404, b"", "text/plain"
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_DELETE = do_GET

    def log_message(self, *args: Any) -> None:
        pass


def _serve(status: int, body: bytes, content_type: str) -> tuple[ThreadingHTTPServer, list[str]]:
    seen: list[str] = []
    handler = type("Handler", (_Impostor,), {"status": status, "body": body, "content_type": content_type,
                                             "seen": seen})
    server = ThreadingHTTPServer((IMPOSTOR_IP, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def recorded_vm(ansible: Ansible, providers: dict[str, dict]) -> Iterator[dict[str, Any]]:
    """A real VM on SE, recorded; destroyed afterwards through its real address, whatever the test did."""
    se = providers["se"]
    name = _name("ident")
    created = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"]})
    assert not created["failed"], created.get("msg")
    try:
        yield created["vm"]
    finally:
        _point(ansible, name, se["ip"], 7466)
        ansible.module("golem_vm", {"name": name, "state": "absent"})
        http("DELETE", f"{se['url']}/api/v1/vms/{name}")


def _point(ansible: Ansible, name: str, ip: str, port: int) -> None:
    """Hand the row's provider address to something else (the VM itself stays where it is)."""
    # Closed at once: SQLite checkpoints its WAL when the last connection closes, which rewrites the file.
    with closing(sqlite3.connect(ansible.state_path)) as conn:
        _rewrite(conn, name, ip, port)


def _rewrite(conn: sqlite3.Connection, name: str, ip: str, port: int) -> None:
    with conn:
        (config,) = conn.execute("SELECT config FROM vms WHERE name = ?", (name,)).fetchone()
        config = json.loads(config)
        config["provider_port"] = port
        conn.execute("UPDATE vms SET provider_ip = ?, config = ? WHERE name = ?", (ip, json.dumps(config), name))


def _files(ansible: Ansible) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in ansible.state_dir.iterdir()
            if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))}


def _refreshed_host(ansible: Ansible, tmp_path: Path, name: str) -> dict[str, Any]:
    config = tmp_path / "golem.yml"
    config.write_text(json.dumps({"plugin": "golem.vm.golem", "refresh": True, "refresh_timeout": 120,
                                  "statuses": [], "names": [name]}))
    out = tmp_path / "inventory.json"
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list", "--output", str(out)],
                          env=ansible.env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    listing = plain(json.loads(out.read_text()))
    assert name in listing.get("golem_unreachable", {}).get("hosts", []), listing
    assert name not in listing.get("golem_status_missing", {}).get("hosts", [])
    return listing["_meta"]["hostvars"][name]


CASES = {
    "web-server-404": (404, b"", "text/plain", "HTTP 404 answer has no JSON error body"),
    "captive-portal-html": (200, b"<html><body>Please log in</body></html>", "text/html",
                            "HTTP 200 answer is not JSON (text/html)"),
}


def test_a_vm_whose_address_answers_as_something_else_is_never_forgotten(
        ansible: Ansible, recorded_vm: dict[str, Any], providers: dict[str, dict], tmp_path: Path) -> None:
    # One real VM, its address handed in turn to each impostor (a VM each would triple the run time).
    for case in (*CASES, "another-provider"):
        _refused(ansible, recorded_vm, providers, tmp_path / case, case)
    # The VM itself was never touched: it still answers where it runs.
    assert http("GET", f"{providers['se']['url']}/api/v1/vms/{recorded_vm['name']}")[0] == 200
    assert ssh_pasted(recorded_vm, "true").returncode == 0


def _refused(ansible: Ansible, vm: dict[str, Any], providers: dict[str, dict], work: Path, case: str) -> None:
    name, se = vm["name"], providers["se"]
    work.mkdir()
    if case == "another-provider":
        server, seen = None, []
        address, shown = providers["us"]["url"], f"as provider {providers['us']['provider_id']}"
        _point(ansible, name, providers["us"]["ip"], 7466)
    else:
        status, body, content_type, shown = CASES[case]
        server, seen = _serve(status, body, content_type)
        address = f"http://{IMPOSTOR_IP}:{server.server_address[1]}"
        _point(ansible, name, IMPOSTOR_IP, server.server_address[1])
    try:
        before = _files(ansible)
        logs = {key: ProviderLog(key) for key in providers}
        result = ansible.module("golem_vm", {"name": name})
        assert result["failed"], (case, result)
        msg = result["msg"]
        assert address in msg and shown in msg and se["provider_id"] in msg, (case, msg)
        assert "left unchanged and nothing was created" in msg
        assert result["failure"]["kind"] == "identity" and result["changed"] is False
        assert "Traceback" not in result["_stderr"]
        assert _files(ansible) == before, f"{case}: state file and known_hosts must be byte-identical"
        for log in logs.values():
            assert not [r for r in log.requests() if '"POST ' in r], f"{case}: a create call reached a provider"
        assert all(not line.startswith(("POST", "DELETE")) for line in seen)

        host = _refreshed_host(ansible, work, name)
        assert host["golem_provider_reachable"] is False and host["golem_status"] == "running"
        assert shown in host["golem_refresh_error"], (case, host["golem_refresh_error"])
    finally:
        if server is not None:
            server.shutdown()


def test_a_vm_its_mvp_provider_lost_is_vouched_for_by_discovery_and_created_again(
        ansible: Ansible, providers: dict[str, dict]) -> None:
    de = providers["de"]
    name = _name("mvp-gone")
    # Created through central discovery, the only one that knows DE: the row gets DE's id.
    first = ansible.module("golem_vm", {"name": name, "provider_ip": de["ip"], "discovery_backend": "central"})
    assert not first["failed"], first.get("msg")
    assert first["vm"]["provider_id"] == de["provider_id"]
    try:
        assert http("DELETE", f"{de['url']}/api/v1/vms/{name}")[0] == 200
        # On the default backend (Golem Base, where DE has no advert) and without pinning the address:
        # only central discovery can vouch that DE's 404 is DE's, and it is still asked.
        again = ansible.module("golem_vm", {"name": name})
        assert not again["failed"], again.get("msg")
        assert again["changed"] and any("gone from provider" in a for a in again["actions"])
        assert ssh_pasted(again["vm"], "true").returncode == 0
    finally:
        ansible.module("golem_vm", {"name": name, "state": "absent"})


def test_absent_with_a_provider_id_deletes_a_vm_the_state_file_does_not_hold(
        ansible: Ansible, providers: dict[str, dict], ssh_key: tuple) -> None:
    se = providers["se"]
    name = _name("stray")
    _key, pub = ssh_key
    create_on_provider(se, create_body(se, name, pub))
    try:
        gone = ansible.module("golem_vm", {"name": name, "state": "absent", "provider_id": se["provider_id"]})
        assert not gone["failed"], gone.get("msg")
        assert gone["changed"] is True and any("not in the state file" in a for a in gone["actions"])
        assert http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 404
        assert state_rows(ansible.state_path) == {}
        again = ansible.module("golem_vm", {"name": name, "state": "absent", "provider_id": se["provider_id"]})
        assert again["changed"] is False and not again["failed"]
    finally:
        http("DELETE", f"{se['url']}/api/v1/vms/{name}")
