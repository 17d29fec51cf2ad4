#!/usr/bin/env python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: what paying costs a create. golem_vm on the paying SE provider, with and without its payment path.

Needs the local network (make devnet-up). Both cases create one small VM on SE (wait=false: the SSH wait is
the same for both and only adds noise) with the network's funded requestor key:

* paid: golem_vm pays itself - GET /provider/info, createStream on the chain, its receipt, then the create;
* unpaid: golem_vm is given stream_id of a stream opened beforehand, outside the timing, so SE accepts the
  create and the collection's payment path is skipped (no /provider/info, no chain, no eth-account import).

Rounds are interleaved (the order alternates each round); each VM is destroyed and each stream terminated
outside the timing. Medians of ROUNDS are compared. Target: paid - unpaid <= one block time (1 s on the local
chain) + 0.5 s; the exit code is 1 when it is missed.

    .venv/py311/bin/python bench/payment_bench.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from _common import BIN, REPO, devnet, install_collection, report, timed

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
BLOCK_TIME = 1.0
TARGET = BLOCK_TIME + 0.5


def devnet_env() -> dict[str, str]:
    path = Path(devnet()["payments"]["env_file"])
    return dict(line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines()
                if line.startswith("export "))


def main() -> None:
    sys.path.insert(0, str(REPO))
    from tests.integration.payment_chain import Chain  # plain JSON-RPC, signed with eth-account: not our code

    net, env_file = devnet(), devnet_env()
    se = next(p for p in net["providers"] if p["key"] == "se")
    chain = Chain(net["payments"]["rpc_url"], net["payments"]["stream_payment_address"])
    key = env_file["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"]
    collections = install_collection()
    work = Path(tempfile.mkdtemp(prefix="golem-bench-pay-"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id")], check=True)
    env = {
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "GOLEM_REQUESTOR_DISCOVERY_URL": net["discovery_url"],
        "GOLEM_REQUESTOR_DB_PATH": str(work / "vms.db"),
        "GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY": key,
        "GOLEM_REQUESTOR_POLYGON_RPC_URL": net["payments"]["rpc_url"],
        "GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS": env_file["GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS"],
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "false",
    }

    def golem_vm(args: dict) -> list[str]:
        args = {"provider_id": se["provider_id"], "wait": False, "ssh_public_key_path": str(work / "id.pub"), **args}
        return [str(BIN / "ansible"), "localhost", "-m", "golem.vm.golem_vm", "-a", json.dumps(args)]

    def paid() -> float:
        name = f"pay-{uuid.uuid4().hex[:6]}"
        seconds = timed(golem_vm({"name": name}), env)
        timed(golem_vm({"name": name, "state": "absent"}), env)  # terminates the stream it opened
        return seconds

    def unpaid() -> float:
        name = f"free-{uuid.uuid4().hex[:6]}"
        rate = 10 ** 13
        receipt = chain.send(key, "createStream", "0x" + "0" * 40, se["provider_id"], rate * 3600, rate,
                             value=rate * 3600)
        (created,) = chain.events(receipt, "StreamCreated")
        stream_id = int(created["topics"][1], 16)
        seconds = timed(golem_vm({"name": name, "stream_id": stream_id}), env)
        timed(golem_vm({"name": name, "state": "absent"}), env)  # a given stream is left alone: end it here
        chain.send(key, "terminate", stream_id)
        return seconds

    # The report's case column is 38 characters wide.
    paid_case, unpaid_case = "SE create, module pays (opens stream)", "SE create, stream_id given (no paying)"
    rows: dict[str, list[float]] = {paid_case: [], unpaid_case: []}
    for round_ in range(ROUNDS):
        order = [(paid_case, paid), (unpaid_case, unpaid)]
        for case, run in order if round_ % 2 == 0 else reversed(order):
            rows[case].append(run())
    report(f"what paying costs one create, median of {ROUNDS} interleaved rounds", rows, baseline=unpaid_case)
    difference = statistics.median(rows[paid_case]) - statistics.median(rows[unpaid_case])
    print(f"\ndifference paid - unpaid: {difference:.3f} s (target <= {TARGET:.1f} s: one block time of "
          f"{BLOCK_TIME:g} s + 0.5 s)")
    sys.exit(0 if difference <= TARGET else 1)


if __name__ == "__main__":
    main()
