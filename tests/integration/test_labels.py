# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Labels (issue 15) on the real network: set, changed, seen by the inventory and ignored by the upstream CLI;
and a fleet that owns only the VMs labelled as its own."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from .ansible_runner import BIN, Ansible
from .devnet_helpers import REPO, http, plain

CLI = Path(os.environ.get("GOLEM_DEVNET_CACHE", "/var/cache/golem-vm-devnet")) / "venvs" / \
    "requestor-0.1.58-abi0.1.1" / "bin" / "golem"


def test_labels_round_trip_through_the_state_the_inventory_and_the_upstream_cli(
        ansible: Ansible, providers: dict[str, dict], tmp_path: Path) -> None:
    home = tmp_path / "home"
    ansible.env["GOLEM_REQUESTOR_DB_PATH"] = str(home / ".golem" / "requestor" / "vms.db")  # the CLI's own file
    name = f"lbl-{uuid.uuid4().hex[:8]}"
    args = {"name": name, "provider_id": providers["se"]["provider_id"], "wait": False}
    made = ansible.module("golem_vm", {**args, "labels": {"role": "web", "tier": 1}})
    try:
        assert not made["failed"], made.get("msg")
        assert made["vm"]["labels"] == {"role": "web", "tier": "1"}
        same = ansible.module("golem_vm", {**args, "labels": {"role": "web", "tier": "1"}})
        assert same["changed"] is False
        relabelled = ansible.module("golem_vm", {**args, "labels": {"role": "db"}}, diff=True)
        assert relabelled["changed"] is True and relabelled["vm"]["labels"] == {"role": "db"}
        assert '-        "tier": "1"' in relabelled["_stdout"] and '+        "role": "db"' in relabelled["_stdout"]
        assert http("GET", f"{providers['se']['url']}/api/v1/vms/{name}")[0] == 200, "labels touch no provider"

        config = tmp_path / "inventory" / "golem.yml"
        config.parent.mkdir()
        config.write_text(json.dumps({"plugin": "golem.vm.golem", "statuses": [],
                                      "keyed_groups": [{"key": "golem_labels", "prefix": "label"}]}))
        out = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list"], env=ansible.env,
                             capture_output=True, text=True, timeout=120, check=True).stdout
        listing = plain(json.loads(out))
        assert listing["_meta"]["hostvars"][name]["golem_labels"] == {"role": "db"}
        assert name in listing["label_role_db"]["hosts"]

        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
               "PYTHONPATH": str(REPO / "devnet" / "hostshim")}
        listed = subprocess.run([str(CLI), "vm", "list", "--json"], env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert listed.returncode == 0, listed.stderr
        (vm,) = [v for v in json.loads(listed.stdout)["vms"] if v["name"] == name]
        assert vm["config"]["labels"] == {"role": "db"} and vm["config"]["cpu"] == 1, "the CLI reads the row as before"
    finally:
        ansible.module("golem_vm", {"name": name, "state": "absent"})


def test_an_emptied_fleet_leaves_a_vm_of_the_same_prefix_alone(ansible: Ansible, providers: dict[str, dict]) -> None:
    fleet = f"pfx{uuid.uuid4().hex[:5]}"
    play = str(REPO / "playbooks" / "fleet.yml")
    stranger = f"{fleet}-7"  # golem_vm's own VM, named like a member
    made = ansible.module("golem_vm", {"name": stranger, "provider_id": providers["us"]["provider_id"], "wait": False})
    assert not made["failed"], made.get("msg")
    try:
        grown = ansible.playbook(play, "-e", f"fleet_name={fleet}", "-e", "fleet_size=1", "-e", "fleet_wait=false")
        assert grown.returncode == 0, grown.stdout[-3000:]
        emptied = ansible.playbook(play, "-e", f"fleet_name={fleet}", "-e", "fleet_size=0")
        assert emptied.returncode == 0, emptied.stdout[-3000:]
        assert f"destroyed {fleet}-01" in emptied.stdout and f"destroyed {stranger}" not in emptied.stdout
        assert http("GET", f"{providers['us']['url']}/api/v1/vms/{stranger}")[0] == 200
    finally:
        ansible.module("golem_vm", {"name": stranger, "state": "absent"})
