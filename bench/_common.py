# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared bits of the benchmarks: building the collection, timing commands, printing medians."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def devnet() -> dict:
    """The running local network's addresses (devnet/ctl.py up writes them)."""
    run = Path(os.environ.get("GOLEM_DEVNET_DIR", str(REPO / ".devnet")))
    try:
        return json.loads((run / "status.json").read_text())
    except OSError:
        raise SystemExit("the local network is not up: run make devnet-up first") from None


def provider_url(key: str) -> str:
    return next(p["url"] for p in devnet()["providers"] if p["key"] == key)


def install_collection() -> Path:
    work = Path(tempfile.mkdtemp(prefix="golem-bench-"))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work), str(REPO)],
                   check=True, capture_output=True)
    tarball = next(work.glob("golem-vm-*.tar.gz"))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p",
                    str(work / "installed"), str(tarball)], check=True, capture_output=True)
    return work / "installed"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def report(title: str, rows: dict[str, list[float]], baseline: str, floor: str | None = None) -> None:
    print(f"\n{title}")
    base = statistics.median(rows[baseline])
    low = statistics.median(rows[floor]) if floor else 0.0
    print(f"{'case':38} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>7} {'ratio-floor':>12}")
    for name, samples in rows.items():
        med = statistics.median(samples)
        net = (med - low) / (base - low) if floor and base > low else float("nan")
        print(f"{name:38} {med:9.3f} {min(samples):7.3f} {max(samples):7.3f} {med / base:7.2f} {net:12.2f}")
