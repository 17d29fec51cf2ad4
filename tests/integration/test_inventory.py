# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The golem.vm.golem inventory over VMs that golem_vm created on the local network's real providers."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .ansible_runner import BIN, Ansible
from .devnet_helpers import ProviderLog, http, plain

PLAY = """
- hosts: golem
  gather_facts: false
  tasks:
    - name: Run a command on the VM
      ansible.builtin.command: hostname
      register: out
      changed_when: false
    - name: The VM answered, as itself
      ansible.builtin.assert:
        that:
          - out.stdout == golem_name
          - golem_host_key_known
"""


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _config(directory: Path, **options: Any) -> Path:
    """An inventory source; a refresh gets a budget far above what the local servers need on a busy machine
    (the default is 10 s): a provider that is down refuses at once, so no verdict waits on the budget."""
    if options.get("refresh"):
        options.setdefault("refresh_timeout", 120)
    # Written when [running] was the default (since issue #21 it is every status, as golem_vm_info's).
    options.setdefault("statuses", ["running"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "golem.yml"
    path.write_text(json.dumps({"plugin": "golem.vm.golem", **options}, indent=2))  # JSON is YAML
    return path


def _list(ansible: Ansible, config: Path) -> dict[str, Any]:
    out = config.with_suffix(".json")
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list", "--output", str(out)],
                          env=ansible.env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
    return plain(json.loads(out.read_text()))


def _members(listing: dict[str, Any], group: str) -> list[str]:
    return sorted(listing.get(group, {}).get("hosts", []))


@pytest.fixture
def two_vms(ansible: Ansible, providers: dict[str, dict]) -> Iterator[dict[str, dict]]:
    """One VM on the SE provider and one on the US provider, destroyed afterwards whatever happens."""
    wanted = {_name("inv-se"): providers["se"], _name("inv-us"): providers["us"]}
    created: dict[str, dict] = {}
    try:
        for name, provider in wanted.items():
            result = ansible.module("golem_vm", {"name": name, "provider_id": provider["provider_id"]})
            assert not result["failed"], result.get("msg")
            created[name] = result["vm"]
        yield created
    finally:
        for name in wanted:
            ansible.module("golem_vm", {"name": name, "state": "absent"})


def test_play_runs_on_both_vms_over_ssh_with_strict_host_key_checking(
        ansible: Ansible, two_vms: dict[str, dict], providers: dict[str, dict], tmp_path: Path) -> None:
    names = sorted(two_vms)
    interpreter = {"ansible_python_interpreter": "'/usr/bin/python3'"}
    config = _config(tmp_path / "inventory", names=names, compose=interpreter)
    listing = _list(ansible, config)
    assert _members(listing, "golem") == names
    se_vm = next(n for n in names if n.startswith("inv-se"))
    us_vm = next(n for n in names if n.startswith("inv-us"))
    assert _members(listing, f"golem_provider_{providers['se']['provider_id'].lower()}") == [se_vm]
    assert _members(listing, "golem_country_us") == [us_vm]
    host = listing["_meta"]["hostvars"][se_vm]
    assert host["ansible_port"] == two_vms[se_vm]["ssh_port"] and host["ansible_host"] == providers["se"]["ip"]
    args = host["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in args and "UserKnownHostsFile=/dev/null" in args, args
    # The key pinned is the one golem_vm learnt and wrote to known_hosts: the row carries it.
    learnt = (ansible.state_dir / "known_hosts").read_text().split()
    pinned = [word for word in args.replace("'", " ").split() if word.startswith("AAAA")]
    assert pinned and all(key in learnt for key in pinned), (pinned, learnt)

    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    # A state whose rows pin the wrong keys (each VM's swapped with the other's): ssh must refuse both.
    swapped = tmp_path / "swapped.db"
    with sqlite3.connect(ansible.state_path) as src, sqlite3.connect(swapped) as dst:
        src.backup(dst)
    with sqlite3.connect(swapped) as db:
        configs = {n: json.loads(c) for n, c in db.execute("SELECT name, config FROM vms")}
        for name, other in zip(names, reversed(names)):
            configs[name]["host_keys"] = json.loads(db.execute(
                "SELECT config FROM vms WHERE name = ?", (other,)).fetchone()[0])["host_keys"]
            db.execute("UPDATE vms SET config = ? WHERE name = ?", (json.dumps(configs[name]), name))
    # Own ControlPersist sockets per run: a master connection from one run would skip the next one's key check.
    stranger = _config(tmp_path / "no-keys", names=names, compose=interpreter, state_path=str(swapped),
                       known_hosts_path=str(tmp_path / "empty_known_hosts"))
    refused = ansible.playbook(play, "-i", str(stranger), env={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp1")})
    assert refused.returncode != 0
    assert refused.stdout.count("Host key verification failed") >= 2, refused.stdout

    ran = ansible.playbook(play, "-i", str(config), env={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp2")})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for name in names:
        assert f"{name}" in ran.stdout and "unreachable=0" in ran.stdout
    assert ran.stdout.count("ok=2") == 2, ran.stdout


def _closed_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def test_refresh_shows_live_status_and_marks_an_unreachable_provider(
        ansible: Ansible, two_vms: dict[str, dict], providers: dict[str, dict], tmp_path: Path) -> None:
    names = sorted(two_vms)
    se_vm = next(n for n in names if n.startswith("inv-se"))
    us_vm = next(n for n in names if n.startswith("inv-us"))
    # A VM recorded on a provider whose API port refuses connections (no real provider is stopped: others use them).
    ghost = _name("inv-ghost")
    se_ip = providers["se"]["ip"]
    config_json = json.dumps({"cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20999, "ssh_host": se_ip,
                              "provider_port": _closed_port(se_ip), "country": "SE", "ssh_user": "root"})
    with sqlite3.connect(ansible.state_path) as conn:
        conn.execute("INSERT INTO vms (name, provider_ip, vm_id, config, status) VALUES (?, ?, ?, ?, 'running')",
                     (ghost, se_ip, ghost, config_json))
    everything = [*names, ghost]
    logs = {key: ProviderLog(key) for key in ("se", "us")}

    refreshed = _list(ansible, _config(tmp_path / "refresh", names=everything, refresh=True))
    hostvars = refreshed["_meta"]["hostvars"]
    assert sorted(hostvars) == sorted(everything)
    for name in names:
        assert hostvars[name]["golem_live_status"] == "running"
        assert hostvars[name]["golem_provider_reachable"] is True
    assert hostvars[ghost]["golem_provider_reachable"] is False
    assert hostvars[ghost]["golem_status"] == "running", "an unreachable provider keeps the recorded status"
    assert _members(refreshed, "golem_unreachable") == [ghost]
    for key, log in logs.items():
        requests = log.requests()
        assert any(f'"GET /api/v1/vms/{n} ' in r for r in requests for n in names), (key, requests)
        assert not any('"GET /api/v1/vms ' in r for r in requests), "the list endpoint kills pending creates"

    # Behind golem_vm's back the US VM goes away; only a refresh can tell.
    assert http("DELETE", f"{providers['us']['url']}/api/v1/vms/{us_vm}")[0] == 200
    everything_config = _config(tmp_path / "refresh-all", names=everything, refresh=True, statuses=[])
    gone = _list(ansible, everything_config)["_meta"]["hostvars"][us_vm]
    assert gone["golem_status"] == "missing" and gone["golem_recorded_status"] == "running"
    running = _list(ansible, _config(tmp_path / "refresh-running", names=everything, refresh=True))
    assert sorted(running["_meta"]["hostvars"]) == sorted([se_vm, ghost])
    recorded = _list(ansible, _config(tmp_path / "plain", names=everything))
    assert sorted(recorded["_meta"]["hostvars"]) == sorted(everything), "without refresh the state file decides"


def test_awx_inventory_source_through_ansible_runner(
        ansible: Ansible, two_vms: dict[str, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible_runner  # what AWX and AAP run inventory syncs with

    # ansible-runner finds ansible-inventory on PATH, as in an execution environment.
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)
    private_data_dir = tmp_path / "awx"
    config = _config(private_data_dir / "inventory", names=sorted(two_vms))
    envvars = {
        "ANSIBLE_COLLECTIONS_PATH": ansible.env["ANSIBLE_COLLECTIONS_PATH"],
        "GOLEM_REQUESTOR_DB_PATH": str(ansible.state_path),
        "PATH": path,
    }
    out, err = ansible_runner.get_inventory(action="list", inventories=[str(config)], response_format="json",
                                            private_data_dir=str(private_data_dir), envvars=envvars, quiet=True)
    listing = plain(out if isinstance(out, dict) else json.loads(out))
    assert sorted(listing["_meta"]["hostvars"]) == sorted(two_vms), err
    for name, vm in two_vms.items():
        host = listing["_meta"]["hostvars"][name]
        assert host["ansible_port"] == vm["ssh_port"] and host["golem_status"] == "running"
    assert _members(listing, "golem") == sorted(two_vms)
