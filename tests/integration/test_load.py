# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""40 VMs created, then destroyed, by one play with 40 forks over two providers, one state file (issue 8).

Each task waits for its VM's SSH banner and records its host key: 40 writers of one state file
and of one known_hosts file.

While the play writes, the inventory plugin reads the same state file again and again, as
an AWX inventory sync would. The figures are written to tests/output/load.json.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

from .ansible_runner import BIN, HostPlay
from .devnet_helpers import REPO, http, running_vms, state_rows

COUNT = 40
REPORT = REPO / "tests" / "output" / "load.json"
LOCKED = "database is locked"


class InventoryReader(threading.Thread):
    """Runs ansible-inventory --list on the state file until stopped; keeps every outcome."""

    def __init__(self, ansible, config: Path) -> None:
        super().__init__(daemon=True)
        self.ansible = ansible
        self.config = config
        self.stop = threading.Event()
        self.reads: list[dict[str, Any]] = []

    def run(self) -> None:
        out = self.config.with_suffix(".json")
        while not self.stop.is_set():
            proc = subprocess.run(
                [str(BIN / "ansible-inventory"), "-i", str(self.config), "--list", "--output", str(out)],
                env=self.ansible.env, capture_output=True, text=True, timeout=120, check=False)
            read: dict[str, Any] = {"rc": proc.returncode, "stderr": proc.stderr}
            if proc.returncode == 0:
                listing = json.loads(out.read_text())
                read["hosts"] = len(listing.get("_meta", {}).get("hostvars", {}))
            self.reads.append(read)

    def finish(self) -> list[dict[str, Any]]:
        self.stop.set()
        self.join(150)
        return self.reads


def _phase(ansible, tmp_path: Path, what: str, hosts: dict[str, dict[str, Any]], config: Path, **common: Any):
    reader = InventoryReader(ansible, config)
    reader.start()
    play = HostPlay(ansible, tmp_path / what)
    try:
        results = play.play(hosts, **common)
    finally:
        reads = reader.finish()
    return play, results, reads


def _failures(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {host: str(r.get("msg")) for host, r in results.items() if r.get("failed")}


def test_forty_vms_with_forty_forks_while_the_inventory_reads(ansible, providers, tmp_path):
    prefix = f"ld-{uuid.uuid4().hex[:6]}"
    keys = ("se", "us")
    hosts = {f"{prefix}-{i:02d}": {"vm_name": f"{prefix}-{i:02d}", "pin_ip": providers[keys[i % 2]]["ip"]}
             for i in range(1, COUNT + 1)}
    where = {name: keys[i % 2] for i, name in enumerate(hosts, start=1)}
    config = tmp_path / "inventory" / "golem.yml"
    config.parent.mkdir()
    # Running VMs only: a VM still being created has no SSH port to list yet.
    config.write_text(json.dumps({"plugin": "golem.vm.golem", "names": [f"{prefix}-*"], "statuses": ["running"]}))
    # Discovery names each pinned provider's id and country: Golem Base (the default backend), two
    # requests a task and no per-address rate limit, as central discovery has, to share among 40 forks.
    figures: dict[str, Any] = {"vms": COUNT, "forks": COUNT}
    made: dict[str, dict[str, Any]] = {}
    try:
        # wait: each task also waits for its VM's SSH banner and records its host key, 40 writers of one
        # known_hosts file besides the state file.
        create, made, reads = _phase(ansible, tmp_path, "create", hosts, config, vm_size="small", vm_wait=True)
        rows = state_rows(ansible.state_path)
        output = create.proc.stdout + create.proc.stderr
        figures["create"] = {
            "wall_s": round(create.seconds, 1), "failed_tasks": len(_failures(made)), "rows": len(rows),
            "lock_errors": output.count(LOCKED) + sum(r["stderr"].count(LOCKED) for r in reads),
            "inventory_reads": len(reads), "inventory_reads_failed": sum(r["rc"] != 0 for r in reads),
            "inventory_hosts_seen": sorted({r.get("hosts", -1) for r in reads}),
        }
        _report(figures)
        assert _failures(made) == {}
        assert rows == dict.fromkeys(hosts, "running")
        assert figures["create"]["lock_errors"] == 0
        assert reads and all(r["rc"] == 0 and "WARNING" not in r["stderr"] for r in reads), reads
        assert all(0 <= r["hosts"] <= COUNT for r in reads)

        # The state file and the providers agree, VM by VM, and so does the hypervisor.
        for name, result in made.items():
            vm = result["vm"]
            assert vm["provider_ip"] == providers[where[name]]["ip"]
            assert vm["country"] == providers[where[name]]["country"]
            code, remote = http("GET", f"{providers[where[name]]['url']}/api/v1/vms/{name}")
            assert code == 200 and remote["status"] == "running", (name, code, remote)
            assert remote["ssh_port"] == vm["ssh_port"]
        running = {n: owner for n, owner in running_vms().items() if n.startswith(prefix)}
        assert running == where
        known = _known_hosts(ansible)
        assert all(f"[{r['vm']['ssh_host']}]:{r['vm']['ssh_port']} " in known for r in made.values()), known
        settled = subprocess.run(
            [str(BIN / "ansible-inventory"), "-i", str(config), "--list"], env=ansible.env, capture_output=True,
            text=True, timeout=120, check=True)
        assert sorted(json.loads(settled.stdout)["_meta"]["hostvars"]) == sorted(hosts)
    finally:
        destroy, gone, reads = _phase(ansible, tmp_path, "destroy", {n: {"vm_name": n} for n in hosts}, config,
                                      vm_state="absent")
    output = destroy.proc.stdout + destroy.proc.stderr
    figures["destroy"] = {
        "wall_s": round(destroy.seconds, 1), "failed_tasks": len(_failures(gone)),
        "rows_left": len(state_rows(ansible.state_path)),
        "lock_errors": output.count(LOCKED) + sum(r["stderr"].count(LOCKED) for r in reads),
        "inventory_reads": len(reads), "inventory_reads_failed": sum(r["rc"] != 0 for r in reads),
    }
    left = sorted(n for n in running_vms() if n.startswith(prefix))
    figures["destroy"]["vms_left"] = len(left)
    _report(figures)
    assert _failures(gone) == {}
    assert state_rows(ansible.state_path) == {}
    assert left == []
    known = _known_hosts(ansible)
    assert not any(f"[{r['vm']['ssh_host']}]:{r['vm']['ssh_port']} " in known for r in made.values() if r.get("vm"))
    assert figures["destroy"]["lock_errors"] == 0
    assert all(r["rc"] == 0 and "WARNING" not in r["stderr"] for r in reads), reads
    for name in hosts:
        assert http("GET", f"{providers[where[name]]['url']}/api/v1/vms/{name}")[0] == 404


def _report(figures: dict[str, Any]) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2) + "\n")


def _known_hosts(ansible) -> str:
    path = ansible.state_dir / "known_hosts"
    return path.read_text() if path.exists() else ""
