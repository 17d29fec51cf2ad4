# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's playbooks, run as users run them, against the local network's real providers.

One VM goes through every playbook in turn: create_vm, configure_fleet (through the inventory), ssh_config
(then plain ``ssh NAME`` with the file it wrote) and destroy_vm; each playbook runs twice and the second run
changes nothing. Also: ansible-lint (production profile) is clean for roles/ and playbooks/.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import uuid
from contextlib import closing
from pathlib import Path

from .ansible_runner import BIN, Ansible
from .devnet_helpers import REPO, http

RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _recap(proc: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of a run, per host; the run must have succeeded."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recap = proc.stdout[proc.stdout.rindex("PLAY RECAP"):]
    hosts = {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
             for m in RECAP.findall(recap)}
    assert hosts, proc.stdout
    return hosts


def _twice(run) -> dict[str, dict[str, int]]:
    """Runs a playbook twice; the second run must change nothing on any host. Returns the first recap."""
    first = _recap(run())
    second = _recap(run())
    assert all(h["changed"] == 0 and h["failed"] == 0 for h in second.values()), second
    assert set(second) == set(first), (first, second)
    return first


def _env(tmp_path: Path, name: str) -> dict[str, str]:
    # The VMs have no controller Python: let ansible find theirs (implicit localhost keeps the controller's).
    # Own ControlPersist sockets per run: a master connection from another run would skip the key check.
    return {"ANSIBLE_PYTHON_INTERPRETER": "auto_silent", "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / f"cp-{name}")}


def _vm_record(ansible: Ansible, name: str) -> dict | None:
    """The VM's row in the state file, read with plain SQL (its config JSON merged in)."""
    with closing(sqlite3.connect(ansible.state_path)) as conn:
        row = conn.execute("SELECT provider_ip, status, config FROM vms WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return {**json.loads(row[2]), "provider_ip": row[0], "status": row[1]}


def test_playbooks_create_configure_ssh_config_and_destroy_twice_each(
        ansible: Ansible, providers: dict[str, dict], tmp_path: Path) -> None:
    name = f"pb-{uuid.uuid4().hex[:8]}"
    # A second VM, made with the module alone on another provider: configure_fleet.yml has work to do on it.
    bare = f"pb-bare-{uuid.uuid4().hex[:8]}"
    inventory = tmp_path / "inventory" / "golem.yml"
    inventory.parent.mkdir()
    # JSON is YAML; the state file is the test's own, not GOLEM_REQUESTOR_DB_PATH's default.
    inventory.write_text(json.dumps({"plugin": "golem.vm.golem", "state_path": str(ansible.state_path),
                                     "statuses": ["running"]}))
    ssh_config = tmp_path / "golem_ssh_config"
    known_hosts = ansible.state_dir / "known_hosts"
    vm: dict = {}
    try:
        # create_vm.yml: creates and configures the VM; the second run finds it and changes nothing.
        first = _twice(lambda: ansible.playbook(
            "golem.vm.create_vm", "-e", f"vm_name={name}", "-e", "vm_install_packages=false",
            env=_env(tmp_path, "create")))
        assert first["localhost"]["changed"] >= 1 and first[name]["changed"] >= 1, first
        vm = _vm_record(ansible, name) or {}
        assert vm["status"] == "running", vm
        assert f"[{vm['ssh_host']}]:{vm['ssh_port']}" in known_hosts.read_text()
        made = ansible.module("golem_vm", {"name": bare, "provider_id": providers["us"]["provider_id"]})
        assert not made["failed"], made.get("msg")

        # configure_fleet.yml through the dynamic inventory: both VMs are reached as `golem` hosts; only the
        # bare one needs configuring.
        fleet = _twice(lambda: ansible.playbook(
            "golem.vm.configure_fleet", "-i", str(inventory), "-e", "vm_install_packages=false",
            env=_env(tmp_path, "fleet")))
        assert set(fleet) == {name, bare} and all(h["unreachable"] == 0 for h in fleet.values()), fleet
        assert fleet[name]["changed"] == 0 and fleet[bare]["changed"] >= 3, fleet

        # ssh_config.yml: one Host block for the VM; plain ssh with the file reaches the VM, checking its key.
        first = _twice(lambda: ansible.playbook(
            "golem.vm.ssh_config", "-i", str(inventory), "-e", f"ssh_config_path={ssh_config}",
            env=_env(tmp_path, "ssh_config")))
        assert first["localhost"]["changed"] == 1, first
        text = ssh_config.read_text()
        assert f"Host {name}\n" in text and f"Host {bare}\n" in text, text
        assert text.count("StrictHostKeyChecking yes") == 2 and str(known_hosts) in text, text
        assert ssh_config.stat().st_mode & 0o777 == 0o600
        for host in (name, bare):
            out = subprocess.run(["ssh", "-F", str(ssh_config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                                  host, "hostname"], capture_output=True, text=True, timeout=60, check=False)
            assert out.returncode == 0 and out.stdout.strip() == host, out.stdout + out.stderr

        # destroy_vm.yml: the VM is gone from its provider, the state file and known_hosts.
        first = _twice(lambda: ansible.playbook(
            "golem.vm.destroy_vm", "-e", f"vm_name={name}", env=_env(tmp_path, "destroy")))
        assert first["localhost"]["changed"] == 1, first
        provider_url = f"http://{vm['provider_ip']}:{vm['provider_port']}"
        assert http("GET", f"{provider_url}/api/v1/vms/{name}")[0] == 404
        assert _vm_record(ansible, name) is None
        assert f"[{vm['ssh_host']}]:{vm['ssh_port']}" not in known_hosts.read_text()

        assert _vm_record(ansible, bare)["status"] == "running", "destroy_vm.yml touches only the VM it names"

        # With the VM gone, ssh_config.yml writes a file without it.
        _recap(ansible.playbook("golem.vm.ssh_config", "-i", str(inventory), "-e", f"ssh_config_path={ssh_config}",
                                env=_env(tmp_path, "ssh_config")))
        text = ssh_config.read_text()
        assert f"Host {name}" not in text and f"Host {bare}" in text, text
    finally:
        for vm_name in (name, bare):
            ansible.module("golem_vm", {"name": vm_name, "state": "absent"})


def test_destroy_vm_needs_a_name(ansible: Ansible) -> None:
    proc = ansible.playbook("golem.vm.destroy_vm")
    assert proc.returncode != 0 and "-e vm_name=NAME" in proc.stdout, proc.stdout


def test_ansible_lint_production_profile_is_clean(collection: Path) -> None:
    # The installed collection on the path: the syntax check resolves the real modules, not the mocks
    # .ansible-lint falls back to. Fails on any violation of the production profile.
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collection), "PATH": f"{BIN}:/usr/bin:/bin", "NO_COLOR": "1",
           "HOME": str(Path.home())}
    proc = subprocess.run([str(BIN / "ansible-lint"), "--offline", "--nocolor", "roles", "playbooks"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr
