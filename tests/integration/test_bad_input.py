# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input and the security promises, as a user sees them through ansible, on the local network.

One VM is created (at -vvv, with the collection's own key pair generated on the way) and its state
file is the one every bad-input case runs against. The whole table of bad-input cases runs
in-process in tests/unit/plugins/modules/test_bad_input.py; here a representative set runs the
installed modules through ansible-playbook and ansible-inventory.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from .ansible_runner import BIN, Ansible
from .devnet_helpers import keypair, ssh_pasted, status
from .test_inventory import _config

WORK = "@WORK@"  # replaced by the test's directory
SERVER = "@SERVER@"  # replaced by the stand-in server's URL
ANVIL = "@ANVIL@"  # replaced by the URL of the network's payment chain

# (id, module, args, texts that must all be in msg: the option and the value as given)
CASES: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    ("name-upper", "golem_vm", {"name": "Web_1"}, ("name", "'Web_1'")),
    ("name-traversal", "golem_vm", {"name": "../../etc"}, ("name", "'../../etc'")),
    ("name-double-dash", "golem_vm", {"name": "web--1"}, ("name", "'web--1'")),
    ("size-unknown", "golem_vm", {"name": "web-1", "size": "huge"}, ("size", "huge")),
    ("cpu-not-allowed", "golem_vm", {"name": "web-1", "cpu": 3}, ("cpu", "3")),
    ("size-and-cpu", "golem_vm", {"name": "web-1", "size": "small", "cpu": 2}, ("size", "cpu", "'small'")),
    ("country", "golem_provider_info", {"country": "sweden"}, ("country", "'sweden'")),
    ("provider-id-path", "golem_vm", {"name": "web-1", "provider_id": "a/../b"}, ("provider_id", "'a/../b'")),
    ("key-not-a-key", "golem_vm", {"name": "web-1", "ssh_public_key": "not a key"},
     ("ssh_public_key", "'not a key'")),
    ("key-path-private", "golem_vm", {"name": "web-1", "ssh_public_key_path": f"{WORK}/keys/id_ed25519"},
     ("ssh_public_key_path", f"{WORK}/keys/id_ed25519", "PRIVATE")),
    ("url-scheme", "golem_vm", {"name": "web-1", "discovery_url": "ftp://example"},
     ("discovery_url", "'ftp://example'")),
    ("port", "golem_provider_info", {"provider_port": 70000}, ("provider_port", "70000")),
    ("timeout", "golem_vm", {"name": "web-1", "wait_timeout": 0}, ("wait_timeout", "0")),
    ("state-path-dir", "golem_vm", {"name": "web-1", "state_path": f"{WORK}/keys"},
     ("state_path", f"'{WORK}/keys'")),
    ("state-path-not-db", "golem_fleet", {"name": "web", "count": 1, "state_path": f"{WORK}/notes.txt"},
     ("state_path", f"'{WORK}/notes.txt'", "not an SQLite database")),
    ("fleet-count", "golem_fleet", {"name": "web", "count": -2}, ("count", "-2")),
    ("server-not-json", "golem_provider_info", {"discovery_url": SERVER, "discovery_backend": "central"},
     ("/api/v1/advertisements", "not JSON")),
    ("server-bad-ad", "golem_vm", {"name": "web-1", "provider_id": "0xabc", "discovery_url": SERVER,
                                   "discovery_backend": "central"},
     ("'resources.cpu'", "'lots'", "/api/v1/advertisements/0xabc")),
    ("backend-unknown", "golem_fleet", {"name": "web", "count": 1, "discovery_backend": "ipfs"},
     ("discovery_backend", "ipfs")),
    ("golem-base-url-scheme", "golem_vm", {"name": "web-1", "golem_base_rpc_url": "ws://example/rpc/ws"},
     ("golem_base_rpc_url", "'ws://example/rpc/ws'")),
    ("payments-network-quote", "golem_provider_info", {"payments_network": 'l2" || golem_type="provider'},
     ("payments_network", "'l2\" || golem_type=\"provider'")),
    # The payment chain's anvil: a real Ethereum node, which knows no golembase_* method.
    ("not-a-golem-base", "golem_provider_info", {"golem_base_rpc_url": ANVIL},
     (ANVIL, "golembase_queryEntities", "is not a Golem Base node", "discovery_backend=central")),
]


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.60", 0)  # the address the unit tests use; a free port each time


@pytest.fixture(scope="module")
def rented(collection: Path, providers: dict[str, dict],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One small VM on the SE provider, created at -vvv with a key pair the module generates."""
    work = tmp_path_factory.mktemp("badinput")
    ansible = Ansible(collection, work / "requestor")
    se = providers["se"]
    name = f"bad-{uuid.uuid4().hex[:8]}"
    result = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "size": "small"},
                            verbosity=3)
    try:
        assert not result["failed"], result.get("msg")
        yield {"ansible": ansible, "vm": result["vm"], "created": result, "work": work}
    finally:
        gone = ansible.module("golem_vm", {"name": name, "state": "absent"})
        assert not gone["failed"], gone.get("msg")


def digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def settle(state_path: Path) -> dict[str, str]:
    """The rows (name -> status), read as the modules read: read-only, which leaves SQLite's -shm and
    -wal beside the file. From then on, a run that changes nothing leaves every file as it was.
    """
    gc.collect()  # a read-write connection left to the garbage collector would delete them when freed
    with closing(sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)) as conn:
        rows = dict(conn.execute("SELECT name, status FROM vms").fetchall())
    assert rows and (state_path.parent / (state_path.name + "-shm")).exists()
    return rows


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_keys_and_state_are_private_and_no_private_key_is_printed_at_vvv(rented: dict) -> None:
    state_dir = rented["ansible"].state_dir
    private = Path(rented["vm"]["ssh_private_key_path"])
    assert private.parent == state_dir / "ssh", "the module generated its own key pair"
    assert {p: oct(mode(p)) for p in (state_dir, state_dir / "ssh")} == {
        state_dir: "0o700", state_dir / "ssh": "0o700"}
    assert {p.name: oct(mode(p)) for p in (state_dir / "vms.db", state_dir / "known_hosts", private)} == {
        "vms.db": "0o600", "known_hosts": "0o600", private.name: "0o600"}
    created = rented["created"]
    printed = created["_stdout"] + created["_stderr"]
    assert "<127.0.0.1>" in printed or "ESTABLISH" in printed, "the run was really at -vvv"
    key_text = private.read_text()
    body = [line for line in key_text.splitlines() if line and "PRIVATE KEY" not in line]
    assert body and not any(line in printed for line in body), "a line of the private key was printed"
    assert "PRIVATE KEY" not in printed
    # The VM is reachable with that key, so the key checked is the key in use.
    assert ssh_pasted(rented["vm"], "true").returncode == 0


def test_bad_input_through_ansible_fails_by_name_without_traceback_or_state_change(
        rented: dict, httpserver: HTTPServer) -> None:
    ansible: Ansible = rented["ansible"]
    work: Path = rented["work"]
    keypair(_mkdir(work / "keys"))
    (work / "notes.txt").write_text("not a database\n")
    httpserver.expect_request("/api/v1/advertisements").respond_with_data("<html>busy</html>",
                                                                          content_type="text/html")
    httpserver.expect_request("/api/v1/advertisements/0xabc").respond_with_json({
        "provider_id": "0xabc", "ip_address": "127.0.0.60", "resources": {"cpu": "lots", "memory": 1, "storage": 10}})
    server = httpserver.url_for("").rstrip("/")

    def place(value: Any) -> Any:
        return (value.replace(WORK, str(work)).replace(SERVER, server).replace(ANVIL, status()["payments"]["rpc_url"])
                if isinstance(value, str) else value)

    tasks = [{"name": case_id, f"golem.vm.{module}": {k: place(v) for k, v in args.items()},
              "register": f"r{i}", "ignore_errors": True}
             for i, (case_id, module, args, _shown) in enumerate(CASES)]
    results_path = work / "results.json"
    tasks.append({"name": "Keep every result", "ansible.builtin.copy": {
        "dest": str(results_path), "mode": "0600",
        "content": "{{ [" + ", ".join(f"r{i}" for i in range(len(CASES))) + "] | to_json }}"}})
    play = work / "bad_input.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))  # JSON is YAML

    assert settle(ansible.state_path) == {rented["vm"]["name"]: "running"}
    before = digest(ansible.state_dir)
    run = ansible.playbook(play, "-i", "localhost,", "-c", "local")
    assert digest(ansible.state_dir) == before, "the state directory changed"

    assert run.returncode == 0, run.stdout + run.stderr
    printed = run.stdout + run.stderr
    assert "Traceback" not in printed and "MODULE FAILURE" not in printed, printed
    assert f"failed={len(CASES)}" not in printed and f"ignored={len(CASES)}" in printed, printed
    results = json.loads(results_path.read_text())
    for (case_id, _module, _args, shown), result in zip(CASES, results):
        assert result.get("failed") is True, (case_id, result)
        # ansible-core 2.19+ registers "(traceback unavailable)" for every fail_json without one.
        assert result.get("exception", "(traceback unavailable)") == "(traceback unavailable)", (case_id, result)
        assert "module_stderr" not in result, (case_id, result)
        for text in shown:
            assert place(text) in result["msg"], (case_id, text, result["msg"])


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


INVENTORY_CASES: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"state_path": f"{WORK}/keys"}, ("state_path", f"'{WORK}/keys'", "directory")),
    ({"state_path": f"{WORK}/notes.txt"}, ("state_path", f"'{WORK}/notes.txt'", "not an SQLite database")),
    ({"statuses": ["runing"]}, ("statuses", "runing")),
    ({"refresh_timeout": 0}, ("refresh_timeout", "0")),
    ({"refresh_concurrency": 0}, ("refresh_concurrency", "0")),
    ({"hostvars_prefix": "1-x"}, ("hostvars_prefix", "'1-x'")),
    ({"known_hosts_path": f"{WORK}/keys"}, ("known_hosts_path", f"'{WORK}/keys'")),
]


def test_inventory_config_errors_name_the_option(rented: dict) -> None:
    ansible: Ansible = rented["ansible"]
    work: Path = rented["work"]
    _mkdir(work / "keys")
    (work / "notes.txt").write_text("not a database\n")
    settle(ansible.state_path)
    before = digest(ansible.state_dir)
    for i, (options, shown) in enumerate(INVENTORY_CASES):
        placed = {k: v.replace(WORK, str(work)) if isinstance(v, str) else v for k, v in options.items()}
        config = _config(work / f"inventory-{i}", **placed)
        proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list"], env={
            **ansible.env, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"}, capture_output=True, text=True,
            timeout=120, check=False)
        assert proc.returncode != 0, (options, proc.stdout)
        assert "Traceback" not in proc.stderr, proc.stderr
        for text in shown:
            assert text.replace(WORK, str(work)) in proc.stderr, (options, text, proc.stderr)
    assert digest(ansible.state_dir) == before


def test_a_vm_whose_host_key_changes_is_refused_naming_it(rented: dict, tmp_path: Path) -> None:
    ansible: Ansible = rented["ansible"]
    vm = rented["vm"]
    config = _config(tmp_path / "inventory", names=[vm["name"]])

    def reach(control_dir: str) -> subprocess.CompletedProcess:
        # Own ControlPersist sockets per run: a master connection would skip the next run's key check.
        return subprocess.run(
            [str(BIN / "ansible"), "-i", str(config), vm["name"], "-m", "raw", "-a", "true"],
            env={**ansible.env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / control_dir)},
            capture_output=True, text=True, timeout=120, check=False)

    first = reach("cp1")
    assert first.returncode == 0, first.stdout + first.stderr

    # The VM now offers a key other than the recorded one (as after a man-in-the-middle or a reinstall).
    known_hosts = ansible.state_dir / "known_hosts"
    other = keypair(tmp_path, "other_host_key").with_suffix(".pub").read_text().split()[1]
    endpoint = f"[{vm['ssh_host']}]:{vm['ssh_port']}"
    lines = known_hosts.read_text().splitlines()
    assert any(line.startswith(endpoint + " ssh-ed25519 ") for line in lines), lines
    known_hosts.write_text("".join(
        f"{endpoint} ssh-ed25519 {other}\n" if line.startswith(endpoint + " ssh-ed25519 ") else line + "\n"
        for line in lines if line.startswith(endpoint + " ssh-ed25519 ") or not line.startswith(endpoint + " ")))
    # The row records it too (what the inventory pins, for controllers that share the state but not the file).
    with closing(sqlite3.connect(ansible.state_path)) as conn:
        with conn:  # one transaction, committed
            (raw,) = conn.execute("SELECT config FROM vms WHERE name = ?", (vm["name"],)).fetchone()
            recorded = json.loads(raw)
            assert any(k.startswith("ssh-ed25519 ") for k in recorded["host_keys"]), recorded["host_keys"]
            recorded["host_keys"] = [f"ssh-ed25519 {other}"]
            conn.execute("UPDATE vms SET config = ? WHERE name = ?", (json.dumps(recorded), vm["name"]))

    refused = reach("cp2")
    assert refused.returncode != 0
    assert f"{vm['name']} | UNREACHABLE!" in refused.stdout, refused.stdout
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stdout + refused.stderr
    assert "Host key verification failed" in refused.stdout, refused.stdout
    pasted = ssh_pasted(vm, "true")
    assert pasted.returncode == 255 and "Host key verification failed" in pasted.stderr, pasted.stderr
