# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: golem_provider_info on Golem Base vs central discovery vs the upstream CLI, 50 adverts.

Needs the local network (make devnet-up). ADVERTS providers are advertised on both backends: on
Golem Base as upstream's advertiser writes them (one entity each, signed by the provider's own new
key), on central discovery with the same resources and prices (through a proxy of its own address,
so the posts do not use up the lookups' share of discovery's rate limit). Then, interleaved, ROUNDS
times each:

* golem_provider_info, discovery_backend=golem_base and =central, as Ansible runs it (ansible -m);
* the same module process alone (python -m, the args file Ansible would hand it): what discovery costs
  without Ansible's fixed start-up;
* the upstream CLI, `golem vm providers --json` (request-vm-on-golem 0.1.58, golem-base-sdk 0.1.0).

* ansible -m ping: Ansible's own start-up, which every ansible command pays whatever its module does.

Each case's HTTP requests to the node are counted once, through a plain proxy. Targets: golem_base
<= 1.5x central (module alone, the stricter measure) and faster than the CLI, process for process (the
module alone, and ansible -m less Ansible's own start-up; ansible -m as a whole is printed too).
Exit 1 if missed.

    .venv/py311/bin/python bench/discovery_bench.py [ROUNDS] [ADVERTS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import BIN, REPO, devnet, install_collection, report, timed

sys.path.insert(0, str(REPO))
from tests.integration.fault_proxy import FaultProxy  # noqa: E402  (plain HTTP proxy, no collection code)
from tests.integration.golem_base_helpers import advert, new_account, seed, upstream_cli  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ADVERTS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
TARGET = 1.5


def central(method: str, proxy: FaultProxy, provider_id: str, body: dict | None = None) -> None:
    """POST or DELETE a provider's central advert; the headers stand for the provider (never checked)."""
    path = "/api/v1/advertisements" + (f"/{provider_id}" if method == "DELETE" else "")
    req = urllib.request.Request(proxy.url + path, data=json.dumps(body).encode() if body else None, method=method,
                                 headers={"Content-Type": "application/json", "X-Provider-ID": provider_id,
                                          "X-Provider-Signature": "x"})
    with urllib.request.urlopen(req, timeout=30):  # noqa: S310 - the local network
        pass


def advertise(count: int) -> list[tuple[str, str, str]]:
    """``count`` providers on both backends; returns (key, entity, provider id) of each."""
    net, status = devnet()["net"], devnet()
    accounts = [new_account() for _index in range(count)]
    creates = [advert(address, f"{net}.0.{200 + i % 50}", country="FI", cpu=4 + i % 8) for i, (_k, address)
               in enumerate(accounts)]
    receipts = seed(*[{"key": key, "creates": [create]} for (key, _a), create in zip(accounts, creates)])
    if any(r["status"] != 1 for r in receipts):
        raise SystemExit(f"seeding the adverts failed: {receipts}")
    with FaultProxy(status["discovery_url"]) as proxy:
        for (_key, address), create in zip(accounts, creates):
            strings, numbers = dict(create["strings"]), dict(create["numbers"])
            body = {"ip_address": strings["golem_ip_address"], "country": "FI", "platform": "x86_64",
                    "resources": {k.removeprefix("golem_"): v for k, v in numbers.items()},
                    "pricing": {field: float(strings[f"golem_price_{annotation}"]) for field, annotation in (
                        ("usd_per_core_month", "usd_core_month"), ("usd_per_gb_ram_month", "usd_ram_gb_month"),
                        ("usd_per_gb_storage_month", "usd_storage_gb_month"),
                        ("glm_per_core_month", "glm_core_month"), ("glm_per_gb_ram_month", "glm_ram_gb_month"),
                        ("glm_per_gb_storage_month", "glm_storage_gb_month"))}}
            central("POST", proxy, address, body)
    return [(key, r["created"][0]["key"], address) for (key, address), r in zip(accounts, receipts)]


def withdraw(seeded: list[tuple[str, str, str]]) -> None:
    """Both backends as they were: the entities deleted by their owners, the central adverts deleted."""
    seed(*[{"key": key, "deletes": [entity]} for key, entity, _id in seeded])
    with FaultProxy(devnet()["discovery_url"]) as proxy:
        for _key, _entity, provider_id in seeded:
            central("DELETE", proxy, provider_id)


def counted(run: object, rpc_url: str) -> int:
    """HTTP requests ``run(url)`` sends to the Golem Base node at ``rpc_url`` (through a plain proxy)."""
    with FaultProxy(rpc_url.rsplit("/", 1)[0]) as proxy:
        run(proxy.url + "/rpc")  # type: ignore[operator]
        return len(proxy.requests())


def main() -> None:
    status = devnet()
    rpc_url = status["golem_base"]["rpc_url"]
    collections = install_collection()
    work = Path(tempfile.mkdtemp(prefix="golem-bench-discovery-"))
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections), "GOLEM_REQUESTOR_DISCOVERY_URL": status["discovery_url"],
           "GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL": rpc_url, "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
           "PYTHONPATH": str(collections)}

    def ansible(backend: str) -> list[str]:
        return [str(BIN / "ansible"), "localhost", "-m", "golem.vm.golem_provider_info", "-a",
                json.dumps({"discovery_backend": backend})]

    def module(backend: str, url: str = rpc_url) -> list[str]:
        args = work / f"{backend}-{abs(hash(url))}.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"discovery_backend": backend, "golem_base_rpc_url": url}}))
        return [sys.executable, "-m", "ansible_collections.golem.vm.plugins.modules.golem_provider_info", str(args)]

    def cli(url: str = rpc_url) -> float:
        begin = time.perf_counter()
        listed = upstream_cli(work, "vm", "providers", "--json", rpc_url=url)
        elapsed = time.perf_counter() - begin
        if listed.returncode != 0:
            raise SystemExit(f"the upstream CLI failed: {listed.stdout[-2000:]}{listed.stderr[-2000:]}")
        found = len(json.loads(listed.stdout)["providers"])
        if found < ADVERTS:
            raise SystemExit(f"the upstream CLI listed {found} providers, fewer than the {ADVERTS} advertised")
        return elapsed

    ping = [str(BIN / "ansible"), "localhost", "-m", "ansible.builtin.ping"]
    seeded = advertise(ADVERTS)
    print(f"{ADVERTS} adverts on Golem Base and on central discovery (plus the network's own providers)")
    cases = {"golem_provider_info golem_base (ansible -m)": lambda: timed(ansible("golem_base"), env),
             "golem_provider_info central (ansible -m)": lambda: timed(ansible("central"), env),
             "module alone, golem_base": lambda: timed(module("golem_base"), env),
             "module alone, central": lambda: timed(module("central"), env),
             "upstream CLI golem vm providers --json": cli,
             # Ansible's own start-up, paid once per ansible command whatever the module does.
             "ansible -m ping (Ansible's fixed cost)": lambda: timed(ping, env)}
    rows: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for _round in range(ROUNDS):
            for name, run in cases.items():
                rows[name].append(run())
        ours = counted(lambda url: timed(module("golem_base", url), env), rpc_url)
        theirs = counted(cli, rpc_url)
    finally:
        withdraw(seeded)
    report(f"finding providers among {ADVERTS}+ adverts, median of {ROUNDS}", rows,
           baseline="module alone, central")
    gb, central = statistics.median(rows["module alone, golem_base"]), statistics.median(rows["module alone, central"])
    gb_ansible = statistics.median(rows["golem_provider_info golem_base (ansible -m)"])
    central_ansible = statistics.median(rows["golem_provider_info central (ansible -m)"])
    cli_s = statistics.median(rows["upstream CLI golem vm providers --json"])
    fixed = statistics.median(rows["ansible -m ping (Ansible's fixed cost)"])
    print(f"\nHTTP requests to the Golem Base node per lookup: golem_provider_info {ours}, upstream CLI {theirs} "
          "(plus its WebSocket)")
    print(f"golem_base / central: module alone {gb / central:.2f}, ansible -m {gb_ansible / central_ansible:.2f} "
          f"(target <= {TARGET})")
    # The CLI is one process doing one lookup; so is the module. Ansible's start-up comes on top of any
    # task (and once per run, not per task, in a playbook), so it is shown apart.
    print(f"golem_base / CLI: module alone {gb / cli_s:.2f}, ansible -m without Ansible's fixed cost "
          f"{(gb_ansible - fixed) / cli_s:.2f} (target < 1); ansible -m as a whole {gb_ansible / cli_s:.2f}")
    sys.exit(0 if gb / central <= TARGET and gb < cli_s and gb_ansible - fixed < cli_s else 1)


if __name__ == "__main__":
    os.environ.setdefault("GOLEM_DEVNET_DIR", str(REPO / ".devnet"))
    main()
