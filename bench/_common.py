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
import urllib.request
from pathlib import Path
from typing import Any

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
    # The last column only when a floor is given: (case - floor) / (baseline - floor).
    net_head = f" {'ratio-floor':>12}" if floor else ""
    print(f"{'case':44} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>7}{net_head}")
    for name, samples in rows.items():
        med = statistics.median(samples)
        net = ""
        if floor:
            net = f" {(med - low) / (base - low):12.2f}" if base > low else f" {'-':>12}"
        print(f"{name:44} {med:9.3f} {min(samples):7.3f} {max(samples):7.3f} {med / base:7.2f}{net}")


def devnet_env() -> dict[str, str]:
    """The local network's env file: the funded requestor key and the payment chain (never printed)."""
    path = Path(devnet()["payments"]["env_file"])
    return dict(line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines()
                if line.startswith("export "))


class StreamOpener:
    """Opens payment streams as plainly as it can be done (for a floor to compare with): sign, send, wait.

    One account, so transactions are numbered under a lock; receipts are polled as a client would.
    """

    def __init__(self) -> None:
        import threading

        from eth_account import Account

        env = devnet_env()
        self.url = env["GOLEM_REQUESTOR_POLYGON_RPC_URL"]
        self.account = Account.from_key(env["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"])
        self.contract = devnet()["payments"]["stream_payment_address"]
        self.lock = threading.Lock()

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the loopback chain
            answer = json.loads(resp.read())
        if "error" in answer:
            raise SystemExit(f"floor: {method}: {answer['error']}")
        return answer["result"]

    def open(self, recipient: str, rate: int, seconds: int = 3600) -> int:
        from eth_abi import encode
        from eth_utils import keccak, to_checksum_address

        deposit = rate * seconds
        data = keccak(text="createStream(address,address,uint256,uint128)")[:4] + encode(
            ["address", "address", "uint256", "uint128"], ["0x" + "0" * 40, to_checksum_address(recipient), deposit,
                                                           rate])
        with self.lock:
            tx = {"to": to_checksum_address(self.contract), "value": deposit, "data": data, "gas": 300_000,
                  "gasPrice": int(self.rpc("eth_gasPrice"), 16), "chainId": int(self.rpc("eth_chainId"), 16),
                  "nonce": int(self.rpc("eth_getTransactionCount", self.account.address, "pending"), 16)}
            raw = self.account.sign_transaction(tx).raw_transaction
            tx_hash = self.rpc("eth_sendRawTransaction", "0x" + bytes(raw).hex())
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt:
                return int(receipt["logs"][0]["topics"][1], 16)
            time.sleep(0.1)
