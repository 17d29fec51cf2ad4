# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: a golem_fleet run that replaces 2 vanished members of N against one that creates 2 missing ones.

Needs the local network (make devnet-up). A paid fleet of N members runs on SE and US. Each round:

* baseline: two members are lost without a trace (their VMs deleted on the provider, their rows removed from
  the state); the fleet run that creates them again is timed;
* healing: two members' provider vanishes (their VMs deleted, their rows moved to an address where nothing
  listens, under a provider id discovery does not list, silent for an hour); the fleet run with
  replace_unreachable_after that abandons them (terminating both streams on chain) and creates two stand-ins
  is timed. Their abandoned rows are then removed, so each round starts from a full fleet.

Both runs are the same ad-hoc golem_fleet task (verify on, replace_unreachable_after set), so they differ only in
the healing. Target (issue 23): healing <= baseline + 1.0 s, medians.

    .venv/py311/bin/python bench/heal_bench.py [ROUNDS] [VMS]
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from _common import BIN, devnet, devnet_env, install_collection, report, timed

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
VMS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
SLACK = 1.0
# Nothing listens here on the local network: a provider that vanished.
GONE_IP, GONE_ID = "127.0.0.250", "0x" + "5a" * 20


def delete_vm(ip: str, name: str) -> None:
    req = urllib.request.Request(f"http://{ip}:7466/api/v1/vms/{name}", method="DELETE")
    with urllib.request.urlopen(req, timeout=60):  # noqa: S310 - loopback URLs
        pass


def pick_two(db: Path, prefix: str) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, provider_ip FROM vms WHERE name LIKE ? AND status = 'running' ORDER BY name",
                            (f"{prefix}-%",)).fetchall()
    return rows[1:3]


def lose(db: Path, prefix: str) -> None:
    """Two members gone without a trace."""
    for name, ip in pick_two(db, prefix):
        delete_vm(ip, name)
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM vms WHERE name = ?", (name,))


def vanish(db: Path, prefix: str) -> list[str]:
    """Two members whose provider went away an hour ago and left discovery."""
    picked = pick_two(db, prefix)
    for name, ip in picked:
        delete_vm(ip, name)
        with sqlite3.connect(db) as conn:
            config = json.loads(conn.execute("SELECT config FROM vms WHERE name = ?", (name,)).fetchone()[0])
            config.update(provider_id=GONE_ID, unreachable_since=int(time.time()) - 3600, ssh_host=GONE_IP)
            conn.execute("UPDATE vms SET provider_ip = ?, config = ? WHERE name = ?", (GONE_IP, json.dumps(config), name))
    return [name for name, _ip in picked]


def forget_abandoned(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM vms WHERE status = 'abandoned'")


def main() -> None:
    collections = install_collection()
    work = Path(tempfile.mkdtemp(prefix="golem-bench-heal-"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id")], check=True)
    db = work / "vms.db"
    env = {
        **devnet_env(),  # the funded account and the payment chain: SE and US take payment
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "GOLEM_REQUESTOR_DISCOVERY_URL": devnet()["discovery_url"],
        "GOLEM_REQUESTOR_DB_PATH": str(db),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    prefix = f"heal-{uuid.uuid4().hex[:6]}"

    def fleet(count: int) -> list[str]:
        args = {"name": prefix, "count": count, "countries": ["SE", "US"], "replace_unreachable_after": "60",
                "ssh_public_key_path": str(work / "id.pub"), "parallelism": 10}
        return [str(BIN / "ansible"), "localhost", "-m", "golem.vm.golem_fleet", "-a", json.dumps(args)]

    baseline, healing = "fleet run creating 2 lost members (baseline)", f"fleet run replacing 2 of {VMS} vanished"
    noop = f"fleet run, {VMS} members, nothing to do"
    rows: dict[str, list[float]] = {baseline: [], healing: [], noop: []}
    try:
        timed(fleet(VMS), env)
        for _round in range(ROUNDS):
            rows[noop].append(timed(fleet(VMS), env))
            lose(db, prefix)
            rows[baseline].append(timed(fleet(VMS), env))
            gone = vanish(db, prefix)
            rows[healing].append(timed(fleet(VMS), env))
            with sqlite3.connect(db) as conn:
                states = dict(conn.execute("SELECT name, status FROM vms WHERE name IN (?, ?)", gone).fetchall())
            if set(states.values()) != {"abandoned"}:
                raise SystemExit(f"the healing run did not abandon {gone}: {states}")
            forget_abandoned(db)
    finally:
        forget_abandoned(db)
        timed(fleet(0), env)
    report(f"golem_fleet replacing 2 vanished members of {VMS}, median of {ROUNDS}", rows, baseline=baseline)
    med = {case: statistics.median(values) for case, values in rows.items()}
    excess = med[healing] - med[baseline]
    print(f"\nreplacing 2 vanished - creating 2 lost = {excess:.2f} s; allowed {SLACK:g} s -> "
          f"{'met' if excess <= SLACK else 'MISSED'}")
    sys.exit(0 if excess <= SLACK else 1)


if __name__ == "__main__":
    main()
