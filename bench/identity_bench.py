# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: what the identity proof costs a task (issue 12), against the lookup that triggers it.

Needs the local network (make devnet-up). A VM that its provider does not have answers
GET /api/v1/vms/NAME with a 404; before the collection believes it, the provider proves who it is,
once per provider per task: GET /api/v1/provider/info on the current API (SE), discovery's advert of
the recorded id on the MVP-era API (DE, central discovery). Timed in-process with the collection's
own clients, each case a fresh task (new clients, nothing remembered), ROUNDS times interleaved:

    lookup          the 404 lookup alone (what every "is it gone?" costs anyway)
    lookup + proof  the same, then the proof

The proof's cost per task is the difference of the medians, in ms. A no-op run whose provider
answers 200 for the VM asks no proof at all (make bench: golem_vm no-op vs uri).

    .venv/py311/bin/python bench/identity_bench.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from typing import Any, Callable

from _common import devnet, install_collection, report

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30


def main() -> None:
    sys.path.insert(0, str(install_collection()))
    # The collection as built and installed above.
    # pylint: disable=import-outside-toplevel
    from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
    from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient
    from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity, lookup

    net = devnet()
    providers = {p["key"]: p for p in net["providers"]}
    name = f"gone-{uuid.uuid4().hex[:8]}"  # a VM no provider has

    def task(key: str, prove: bool) -> Callable[[], float]:
        def run() -> float:
            prov = providers[key]
            client = ProviderClient(prov["ip"], int(prov["url"].rsplit(":", 1)[1]), timeout=10)
            discovery = DiscoveryClient(net["discovery_url"], timeout=10)
            identity = ProviderIdentity(lambda: discovery)
            start = time.perf_counter()
            if prove:
                assert lookup(client, name, prov["provider_id"], identity) is None
            else:
                assert client.get_vm(name, missing_ok=True) is None
            elapsed = time.perf_counter() - start
            client.close()
            discovery.close()
            return elapsed
        return run

    cases: dict[str, Callable[[], float]] = {}
    for key, api in (("se", "GET /provider/info"), ("de", "MVP era: discovery advert")):
        cases[f"{key.upper()} 404 lookup"] = task(key, False)
        cases[f"{key.upper()} 404 lookup + proof ({api})"] = task(key, True)
    rows: dict[str, list[float]] = {case: [] for case in cases}
    for case, run in cases.items():
        run()  # warm: the first connection of a process costs more than a task's
    for _round in range(ROUNDS):
        for case, run in cases.items():
            rows[case].append(run())
    report(f"identity proof per task, median of {ROUNDS} (seconds)", rows, baseline="SE 404 lookup")
    med: dict[str, Any] = {case: statistics.median(values) for case, values in rows.items()}
    for key in ("SE", "DE"):
        plain = med[f"{key} 404 lookup"]
        proved = next(v for c, v in med.items() if c.startswith(f"{key} 404 lookup + proof"))
        print(f"{key}: the proof adds {1000 * (proved - plain):.1f} ms to a task that found a 404")


if __name__ == "__main__":
    main()
