# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: playbooks/fleet.yml creating N VMs against the floor of the same work in plain parallel HTTP.

Needs the local network (make devnet-up). The floor creates N VMs from threads spread round-robin over
the SE and US providers as plainly as it can be done: open a payment stream to the provider (both take
payment; sign, send, wait for the receipt), POST /api/v1/vms?async=true with it, poll the job until
ready, GET /access until it names an SSH port. It is timed, then the VMs are deleted (not timed). The
playbook creates the same number (fleet_size=N), timed; fleet_size=0 destroys them (not timed).
Ansible's own fixed cost is measured too: a playbook with one no-op module task (ping, local).
All run interleaved ROUNDS times in one run.

Target (issue 15): fleet.yml - floor <= (playbook with one no-op module task) + 1.0 s, medians.

    .venv/py311/bin/python bench/fleet_bench.py [ROUNDS] [VMS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import BIN, REPO, StreamOpener, devnet, devnet_env, install_collection, provider_url, report, timed

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
VMS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
SLACK = 1.0  # seconds the fleet may spend beyond the floor and Ansible's own fixed cost


def call(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback URLs
        raw = resp.read()
    return json.loads(raw) if raw else None


def floor_one(base: str, name: str, key: str, opener: StreamOpener) -> None:
    body = {"name": name, "resources": {"cpu": 1, "memory": 1, "storage": 10}, "ssh_key": key}
    info = call("GET", f"{base}/api/v1/provider/info")
    if int(info["stream_payment_address"], 16):
        # What SE and US ask for a small VM: 1 core + 1 GB + 10 GB at their GLM prices (devnet/layout.py).
        ad = call("GET", f"{devnet()['discovery_url']}/api/v1/advertisements/{info['provider_id']}")
        p = ad["pricing"]
        monthly = round(p["glm_per_core_month"] + p["glm_per_gb_ram_month"] + 10 * p["glm_per_gb_storage_month"], 8)
        body["stream_id"] = opener.open(info["provider_id"], int(monthly / (730.0 * 3600.0) * 10 ** 18))
    job = call("POST", f"{base}/api/v1/vms?async=true", body)
    while True:
        state = call("GET", f"{base}/api/v1/vms/jobs/{job['job_id']}")
        if state["status"] == "ready":
            break
        if state["status"] == "failed":
            raise SystemExit(f"floor: create of {name} failed: {state.get('error')}")
        time.sleep(0.2)
    while not (call("GET", f"{base}/api/v1/vms/{name}/access") or {}).get("ssh_port"):
        time.sleep(0.2)


def floor(key: str, opener: StreamOpener) -> float:
    """Create VMS VMs in plain parallel HTTP; returns the seconds taken, then deletes them."""
    prefix = f"floor-{uuid.uuid4().hex[:6]}"
    providers = [provider_url("se"), provider_url("us")]  # as fleet_countries below
    jobs = [(providers[i % len(providers)], f"{prefix}-{i + 1:02d}") for i in range(VMS)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda job: floor_one(job[0], job[1], key, opener), jobs))
    elapsed = time.perf_counter() - start
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda job: call("DELETE", f"{job[0]}/api/v1/vms/{job[1]}"), jobs))
    return elapsed


def main() -> None:
    collections = install_collection()
    work = Path(tempfile.mkdtemp(prefix="golem-bench-fleet-"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id")], check=True)
    key = (work / "id.pub").read_text().strip()
    env = {
        **devnet_env(),  # the funded account and the payment chain: SE and US take payment
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "GOLEM_REQUESTOR_DISCOVERY_URL": devnet()["discovery_url"],
        "GOLEM_REQUESTOR_DB_PATH": str(work / "vms.db"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    name = f"bench-{uuid.uuid4().hex[:6]}"
    play = [str(BIN / "ansible-playbook"), str(REPO / "playbooks" / "fleet.yml"), "-e", f"fleet_name={name}",
            "-e", '{"fleet_countries": ["SE", "US"]}', "-e", f"ssh_public_key_path={work / 'id.pub'}"]
    floor_case, fleet_case = f"plain parallel HTTP, {VMS} VMs (floor)", f"fleet.yml fleet_size={VMS}"
    # For reference: the same without the SSH wait, which the floor does not do either.
    nowait_case = f"fleet.yml fleet_size={VMS} fleet_wait=false"
    # Ansible's fixed cost: a playbook with one module task that does nothing.
    ansible_case = "playbook with one no-op module task (ping)"
    ping = work / "ping.yml"
    ping.write_text("- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.ping:\n")
    # For reference: the same playbook when the fleet is complete (verify only).
    noop_case = "fleet.yml re-run, no-op (verify only)"
    rows: dict[str, list[float]] = {floor_case: [], fleet_case: [], nowait_case: [], noop_case: [],
                                    ansible_case: []}
    opener = StreamOpener()
    try:
        for _round in range(ROUNDS):
            rows[ansible_case].append(timed([str(BIN / "ansible-playbook"), str(ping)], env))
            rows[floor_case].append(floor(key, opener))
            rows[fleet_case].append(timed(play + ["-e", f"fleet_size={VMS}"], env))
            rows[noop_case].append(timed(play + ["-e", f"fleet_size={VMS}"], env))
            timed(play + ["-e", "fleet_size=0"], env)
            rows[nowait_case].append(timed(play + ["-e", f"fleet_size={VMS}", "-e", "fleet_wait=false"], env))
            timed(play + ["-e", "fleet_size=0"], env)
    finally:
        timed(play + ["-e", "fleet_size=0"], env)
    report(f"fleet.yml creating {VMS} VMs vs plain parallel HTTP, median of {ROUNDS}", rows, baseline=floor_case)
    med = {case: statistics.median(values) for case, values in rows.items()}
    excess, allowed = med[fleet_case] - med[floor_case], med[ansible_case] + SLACK
    print(f"\nfleet.yml - floor = {excess:.2f} s; allowed: one-task playbook {med[ansible_case]:.2f} s + {SLACK:g} s "
          f"= {allowed:.2f} s -> {'met' if excess <= allowed else 'MISSED'} "
          f"(without the SSH wait: {med[nowait_case] - med[floor_case]:.2f} s)")
    sys.exit(0 if excess <= allowed else 1)


if __name__ == "__main__":
    main()
