#!/usr/bin/env python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ansible-inventory --list`` through golem.vm.golem against the same hosts as a static YAML inventory.

One run generates a state file with N VMs (default 10,000) and a known_hosts file for them, lists
them once through the plugin, and writes that very listing as a static YAML inventory (same hosts,
same hostvars, same groups), then checks both list the same thing. It then times each source
``--runs`` times, interleaved so drift hits both alike, plus two floors: an empty static inventory
(ansible-inventory's own start-up) and the plugin on an empty state file. The static file is timed
twice: with the default plugin list (``auto`` reads it first, then ``yaml``) and with ``yaml`` alone.
Medians are compared; the exit code is 1 when the plugin misses the target (<= 0.9 x static YAML).

    python bench/inventory_bench.py [--hosts 10000] [--runs 5] [--bin DIR] [--keep DIR]

``--bin`` is the directory with ansible-inventory (default: beside this Python). The collection is
used from this working tree through a symlink, so nothing is built or installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROVIDERS = [  # (id, ip, country, ssh port base): the shape of the local network's three providers
    ("0x" + "1b2e9b1f4c0d5a8e7f3a6c2d9e0b4a7c1f5d8e3a", "127.0.0.2", "SE", 20000),
    ("0x" + "7d4c2a9e5b1f3d8c6a0e2b4f7c9d1a3e5b8f0c2d", "127.0.0.3", "US", 21000),
    ("0x" + "3e8a5c1d7b9f2e4a6c0d8b1f3e5a7c9d2b4f6a8e", "127.0.0.4", "DE", 22000),
]
SIZES = [("small", 1, 1, 10), ("medium", 2, 4, 20), ("large", 4, 8, 40)]
HOST_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIGJlbmNobWFyayBob3N0IGtleSBub3QgcmVhbCAgICA="
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBENCHMARKPUBLICKEYxxxxxxxxxxxxxxxxxxxxxxxxx bench@golem"


def collection_path(work: Path) -> Path:
    root = work / "collections"
    link = root / "ansible_collections" / "golem" / "vm"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(REPO, target_is_directory=True)
    return root


def write_state(path: Path, count: int, key_path: Path, collections: Path) -> None:
    """Rows as golem_vm writes them, in one transaction (one upsert per row would take minutes)."""
    sys.path.insert(0, str(collections))
    from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import UPSTREAM_SCHEMA

    rows = []
    for i in range(count):
        provider_id, ip, country, port_base = PROVIDERS[i % len(PROVIDERS)]
        size, cpu, memory, storage = SIZES[i % len(SIZES)]
        name = f"bench-{i:05d}"
        config = {
            "cpu": cpu, "memory": memory, "storage": storage, "ssh_port": port_base + i // len(PROVIDERS) % 1000,
            "provider_id": provider_id, "provider_port": 7466, "country": country, "ssh_user": "root",
            "ssh_private_key_path": str(key_path), "ssh_public_key": PUBLIC_KEY, "image": "24.04", "size": size,
            "ssh_host": ip, "updated_at": "2026-11-27T08:00:00Z",
        }
        rows.append((name, ip, name, json.dumps(config, sort_keys=True), "running", "2026-11-27 08:00:00"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(UPSTREAM_SCHEMA)
        conn.executemany("INSERT INTO vms VALUES (?, ?, ?, ?, ?, ?)", rows)
    os.chmod(path, 0o600)


def write_known_hosts(path: Path, state: Path) -> None:
    with sqlite3.connect(state) as conn:
        configs = [json.loads(c) for (c,) in conn.execute("SELECT config FROM vms")]
    lines = sorted({f"[{c['ssh_host']}]:{c['ssh_port']} ssh-ed25519 {HOST_KEY}" for c in configs})
    path.write_text("".join(line + "\n" for line in lines))


def plain(value: Any) -> Any:
    """ansible-inventory's JSON with the untrusted-value wrappers of dynamic sources taken off."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def static_inventory(listing: dict[str, Any]) -> dict[str, Any]:
    """The listing as a YAML inventory: the hosts with their vars under golem, and every other group."""
    hostvars = listing["_meta"]["hostvars"]
    groups: dict[str, Any] = {}
    for group, data in listing.items():
        if group in ("_meta", "all", "ungrouped", "golem"):
            continue
        groups[group] = {"hosts": {h: None for h in data.get("hosts", [])}}
    return {"all": {"children": {"golem": {"hosts": hostvars, "children": groups}}}}


def normalised(listing: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between the two sources: hosts, hostvars, group memberships."""
    listing = plain(listing)
    groups = {g: sorted(d.get("hosts", [])) for g, d in listing.items() if g not in ("_meta", "all")}
    return {"hostvars": listing["_meta"]["hostvars"], "groups": {g: h for g, h in groups.items() if h}}


def run_inventory(bin_dir: Path, source: Path, env: dict[str, str], extra_env: dict[str, str] | None = None
                  ) -> tuple[float, str]:
    env = {**env, **(extra_env or {})}
    started = time.perf_counter()
    proc = subprocess.run([str(bin_dir / "ansible-inventory"), "-i", str(source), "--list"], env=env,
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or "[WARNING]" in proc.stderr:
        raise SystemExit(f"ansible-inventory -i {source} failed or warned:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    if args.runs < 1 or args.hosts < 1:
        parser.error("--hosts and --runs must be at least 1")
    import yaml  # PyYAML comes with ansible-core

    work = Path(tempfile.mkdtemp(prefix="golem-inventory-bench-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        collections = collection_path(work)
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            # An empty config, so the machine's ansible.cfg cannot tilt either side.
            "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
        }
        env.pop("GOLEM_REQUESTOR_DB_PATH", None)
        (work / "ansible.cfg").write_text("[defaults]\n")
        full, empty = work / "full", work / "empty"
        for d in (full, empty):
            d.mkdir(exist_ok=True)
            (d / "golem.yml").write_text(f"plugin: golem.vm.golem\nstate_path: {d / 'vms.db'}\n")
        t0 = time.perf_counter()
        write_state(full / "vms.db", args.hosts, work / "id_ed25519", collections)
        write_known_hosts(full / "known_hosts", full / "vms.db")
        out = run_inventory(args.bin, full / "golem.yml", env)[1]
        listing = json.loads(out)
        static = work / "static" / "hosts.yml"
        static.parent.mkdir(exist_ok=True)
        with static.open("w") as handle:
            yaml.dump(static_inventory(plain(listing)), handle, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                      sort_keys=False, default_flow_style=False)
        (work / "static-empty").mkdir(exist_ok=True)
        floor_static = work / "static-empty" / "hosts.yml"
        floor_static.write_text("all: {}\n")
        hosts = len(listing["_meta"]["hostvars"])
        if hosts != args.hosts:
            raise SystemExit(f"the plugin listed {hosts} hosts, not {args.hosts}")
        static_out = run_inventory(args.bin, static, env)[1]
        if normalised(json.loads(static_out)) != normalised(listing):
            raise SystemExit("the static YAML inventory does not list what the plugin lists")
        print(f"setup: {hosts} VMs, state file {(full / 'vms.db').stat().st_size // 1024} KiB, "
              f"static YAML {static.stat().st_size // 1024} KiB, same hosts/hostvars/groups checked "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)

        # The default plugin list (auto first, then yaml) is what users get; yaml alone reads the file once.
        yaml_only = {"ANSIBLE_INVENTORY_ENABLED": "yaml"}
        cases: list[tuple[str, Path, dict[str, str] | None]] = [
            ("empty static YAML (floor)", floor_static, None),
            ("golem.vm.golem, empty state file", empty / "golem.yml", None),
            (f"static YAML, {hosts} hosts", static, None),
            (f"static YAML, {hosts} hosts, yaml plugin only", static, yaml_only),
            (f"golem.vm.golem, {hosts} VMs", full / "golem.yml", None),
        ]
        times: dict[str, list[float]] = {label: [] for label, _source, _env in cases}
        for run in range(args.runs):
            for label, source, extra_env in cases:
                times[label].append(run_inventory(args.bin, source, env, extra_env)[0])
            latest = ", ".join(f"{times[label][-1]:.2f}" for label, _source, _env in cases)
            print(f"run {run + 1}/{args.runs}: {latest}", flush=True)

        med = {label: statistics.median(values) for label, values in times.items()}
        floor = med[cases[0][0]]
        static_t, strict_t, plugin_t = med[cases[2][0]], med[cases[3][0]], med[cases[4][0]]
        version = subprocess.run([str(args.bin / "ansible-inventory"), "--version"], capture_output=True,
                                 text=True, check=False).stdout.splitlines()[0]
        print(f"\n{version}, Python {sys.version.split()[0]}, median of {args.runs} runs\n")
        print(f"{'source':<46} {'median s':>9} {'min s':>7} {'max s':>7} {'vs static':>10}")
        for label, _source, _env in cases:
            values = times[label]
            print(f"{label:<46} {med[label]:>9.2f} {min(values):>7.2f} {max(values):>7.2f} "
                  f"{med[label] / static_t:>9.3f}x")
        print(f"\nratio golem.vm.golem / static YAML: {plugin_t / static_t:.3f} (target <= 0.9)")
        print(f"ratio golem.vm.golem / static YAML read by the yaml plugin only: {plugin_t / strict_t:.3f}")
        if strict_t > floor:
            print(f"ratio above the empty floor: {(plugin_t - floor) / (static_t - floor):.3f} (default), "
                  f"{(plugin_t - floor) / (strict_t - floor):.3f} (yaml plugin only)")
        return 0 if plugin_t <= 0.9 * static_t else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
