#!/usr/bin/env python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ansible-inventory --list`` of the same N VMs (default 10,000) from PostgreSQL and from SQLite.

The rows are written once to an SQLite state file (as inventory_bench.py writes them) and copied
into a fresh schema of the local network's PostgreSQL with the collection's own copy code; both
listings are checked equal, then each source is timed ``--runs`` times, interleaved. Medians are
compared; the exit code is 1 when PostgreSQL takes more than 1.2 x SQLite.

    make devnet-up && python bench/inventory_pg_bench.py [--hosts 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import devnet  # noqa: E402
from inventory_bench import collection_path, plain, run_inventory, write_known_hosts, write_state  # noqa: E402

TARGET = 1.2


def pg_url(schema: str) -> str:
    pg = devnet()["postgres"]
    run = Path(devnet()["run_dir"])
    password = dict(line.split("=", 1) for line in (run / "postgres.env").read_text().splitlines() if "=" in line)
    return (f"postgresql://{pg['user']}:{quote(password['PGPASSWORD'], safe='')}@{pg['ip']}:{pg['port']}/"
            f"{pg['database']}?options=-csearch_path%3D{schema}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent)
    args = parser.parse_args()
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="golem-inventory-pg-bench-"))
    schema = "bench_" + uuid.uuid4().hex[:10]
    url = pg_url(schema)
    admin = psycopg.connect(url.split("?", 1)[0], autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        collections = collection_path(work)
        sys.path.insert(0, str(collections))
        from ansible_collections.golem.vm.plugins.module_utils.state.transfer import copy_state
        from ansible_collections.golem.vm.plugins.module_utils.state.open_store import open_store

        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
               "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_NOCOLOR": "1"}
        for key in ("GOLEM_REQUESTOR_DB_PATH", "GOLEM_REQUESTOR_STATE_URL"):
            env.pop(key, None)
        (work / "ansible.cfg").write_text("[defaults]\n")
        state = work / "sqlite" / "vms.db"
        state.parent.mkdir()
        write_state(state, args.hosts, work / "id_ed25519", collections)
        write_known_hosts(state.parent / "known_hosts", state)
        t0 = time.perf_counter()
        copied = copy_state(open_store(None, str(state)), open_store(url, None), dry_run=False)
        copy_seconds = time.perf_counter() - t0
        sqlite_cfg = work / "sqlite" / "golem.yml"
        sqlite_cfg.write_text(f"plugin: golem.vm.golem\nstate_path: {state}\n")
        pg_dir = work / "pg"
        pg_dir.mkdir()
        pg_cfg = pg_dir / "golem.yml"
        # The same known_hosts file, so the hostvars can be compared whole.
        pg_cfg.write_text(f"plugin: golem.vm.golem\nknown_hosts_path: {state.parent / 'known_hosts'}\n")
        pg_env = {"GOLEM_REQUESTOR_STATE_URL": url}
        a = plain(json.loads(run_inventory(args.bin, sqlite_cfg, env)[1]))
        b = plain(json.loads(run_inventory(args.bin, pg_cfg, env, pg_env)[1]))
        if a["_meta"]["hostvars"] != b["_meta"]["hostvars"] or len(a["_meta"]["hostvars"]) != args.hosts:
            raise SystemExit("PostgreSQL and SQLite do not list the same hosts")
        print(f"setup: {args.hosts} VMs, copied to PostgreSQL in {copy_seconds:.1f} s ({copied.written} rows); "
              "both list the same hosts and hostvars", flush=True)
        times: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
        for run in range(args.runs):
            times["SQLite"].append(run_inventory(args.bin, sqlite_cfg, env)[0])
            times["PostgreSQL"].append(run_inventory(args.bin, pg_cfg, env, pg_env)[0])
            print(f"run {run + 1}/{args.runs}: SQLite {times['SQLite'][-1]:.2f} s, "
                  f"PostgreSQL {times['PostgreSQL'][-1]:.2f} s", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["PostgreSQL"] / med["SQLite"]
        print(f"\nmedian of {args.runs}: SQLite {med['SQLite']:.2f} s, PostgreSQL {med['PostgreSQL']:.2f} s; "
              f"ratio {ratio:.3f} (target <= {TARGET})")
        return 0 if ratio <= TARGET else 1
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
