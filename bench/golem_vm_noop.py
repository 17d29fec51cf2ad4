# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: a no-op golem_vm task (the VM exists) against an ansible.builtin.uri GET of the same VM.

Needs the local network (make devnet-up). Each playbook repeats its task TASKS times, so the
per-task cost dominates Ansible's start-up; both run interleaved ROUNDS times in one run, and
an empty playbook gives the floor. Target: golem_vm <= 1.3x uri, per task (ratio-floor).

    .venv/py311/bin/python bench/golem_vm_noop.py [ROUNDS] [TASKS]
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

from _common import BIN, devnet, devnet_env, install_collection, provider_url, report, timed

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
TASKS = int(sys.argv[2]) if len(sys.argv) > 2 else 20


def playbook(path: Path, task: str) -> Path:
    tasks = "".join(f"    - {task}\n" for _task in range(TASKS)) if task else "    - ansible.builtin.meta: noop\n"
    path.write_text(f"- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n{tasks}")
    return path


def main() -> None:
    collections = install_collection()
    se = provider_url("se")
    se_ip = se.split("//")[1].split(":")[0]
    work = Path(tempfile.mkdtemp(prefix="golem-bench-noop-"))
    name = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        **devnet_env(),  # the funded account and the payment chain: SE takes payment
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "GOLEM_REQUESTOR_DISCOVERY_URL": devnet()["discovery_url"],
        "GOLEM_REQUESTOR_DB_PATH": str(work / "vms.db"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    ansible = str(BIN / "ansible-playbook")
    create = playbook(work / "create.yml", f"golem.vm.golem_vm: {{name: {name}, provider_ip: '{se_ip}'}}")
    # Create once (the first of the TASKS tasks creates, the rest are already no-ops).
    timed([ansible, str(create)], env)
    cases = {
        "empty playbook (floor)": playbook(work / "empty.yml", ""),
        f"uri GET /vms/NAME x{TASKS}": playbook(
            work / "uri.yml", f"ansible.builtin.uri: {{url: '{se}/api/v1/vms/{name}'}}"),
        f"golem_vm no-op x{TASKS}": playbook(work / "noop.yml", f"golem.vm.golem_vm: {{name: {name}}}"),
        f"golem_vm no-op wait=false x{TASKS}": playbook(
            work / "nowait.yml", f"golem.vm.golem_vm: {{name: {name}, wait: false}}"),
    }
    rows: dict[str, list[float]] = {case: [] for case in cases}
    try:
        for _round in range(ROUNDS):
            for case, path in cases.items():
                rows[case].append(timed([ansible, str(path)], env))
    finally:
        timed([ansible, str(playbook(work / "destroy.yml",
                                     f"golem.vm.golem_vm: {{name: {name}, state: absent}}"))], env)
    report(f"golem_vm no-op vs uri GET, {TASKS} tasks a playbook, median of {ROUNDS} (ratio-floor = per task)",
           rows, baseline=f"uri GET /vms/NAME x{TASKS}", floor="empty playbook (floor)")


if __name__ == "__main__":
    main()
