# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_vm pays real providers on the local chain (issue 13): a stream per VM, opened, checked and closed.

SE and US run upstream 0.1.63 with payments on; the chain is anvil with our StreamPayment. What is
checked comes from the chain and the providers themselves (streams(id), balances, GET /vms/NAME/stream),
never from the collection's own report alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from .ansible_runner import Ansible
from .devnet_helpers import REPO, control, devnet_env, http, payment_chain, state_rows, status, wait_until
from .fault_proxy import FaultProxy
from .payment_chain import ZERO, gas_cost

CLI = Path(os.environ.get("GOLEM_DEVNET_CACHE", "/var/cache/golem-vm-devnet")) / "venvs" / \
    "requestor-0.1.58-abi0.1.1" / "bin" / "golem"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def chain(devnet):
    return payment_chain()


def _advertised_terms(provider: dict, hours: int = 1) -> tuple[int, int]:
    """Rate and deposit for a small VM from the provider's advertisement, as upstream's CLI computes them."""
    ad = http("GET", f"{status()['discovery_url']}/api/v1/advertisements/{provider['provider_id']}")[1]
    p = ad["pricing"]
    monthly = round(p["glm_per_core_month"] * 1 + p["glm_per_gb_ram_month"] * 1 + p["glm_per_gb_storage_month"] * 10, 8)
    rate = int(monthly / (730.0 * 3600.0) * 10 ** 18)
    return rate, rate * hours * 3600


def test_a_paid_vm_pays_the_advertised_price_and_destroying_it_refunds_the_rest(ansible: Ansible, providers, chain):
    se = providers["se"]
    payer = devnet_env()["GOLEM_DEVNET_REQUESTOR_ADDRESS"]
    name = _name("paid")
    rate, deposit = _advertised_terms(se)
    created = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "payment_hours": 1})
    assert not created["failed"], created.get("msg")
    stream_id = created["stream"]["stream_id"]
    on_chain = chain.stream(stream_id)
    assert on_chain["recipient"].lower() == se["provider_id"].lower() and on_chain["sender"] == payer
    assert (on_chain["ratePerSecond"], on_chain["deposit"]) == (rate, deposit), "the advertised price, to the wei"
    seen = http("GET", f"{se['url']}/api/v1/vms/{name}/stream")[1]
    assert seen["verified"] is True and seen["stream_id"] == stream_id, seen
    with_id = json.loads(_row(ansible, name)["config"])
    assert with_id["stream_id"] == stream_id, "recorded where the upstream CLI keeps it"

    opened = chain.next_stream_id()
    again = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"]})
    assert again["changed"] is False and again["stream"] == {}
    assert chain.next_stream_id() == opened, "a re-run opens no second stream"

    before = chain.balance(payer)
    gone = ansible.module("golem_vm", {"name": name, "state": "absent"})
    assert gone["changed"] and not gone["failed"], gone.get("msg")
    assert http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 404 and state_rows(ansible.state_path) == {}
    refunded = gone["stream"]["refunded_wei"]
    receipt = chain.receipt(gone["stream"]["terminate_tx"])
    assert chain.balance(payer) - before == refunded - gas_cost(receipt), "the refund is measured on chain"
    assert 0 < refunded < deposit and chain.stream(stream_id)["recipient"] == ZERO


def test_a_provider_that_refuses_after_the_stream_opened_leaves_no_funded_stream(ansible: Ansible, providers, chain):
    se = providers["se"]
    name = _name("toobig")
    first = chain.next_stream_id() + 1
    # Fits the advertisement's limits per value, not the host: the provider's job fails on capacity.
    # 1632 GLM a month: over the default price cap, which this test is not about.
    refused = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "cpu": 16, "memory": 64,
                                          "storage": 2000, "max_glm_per_month": 2000})
    assert refused["failed"] and "Insufficient resources" in refused["msg"], refused.get("msg")
    assert state_rows(ansible.state_path) == {}
    stream = chain.stream(first)
    assert stream["sender"] != ZERO and stream["recipient"] == ZERO, "the stream was opened, then terminated"
    assert any(f"terminated payment stream {first}" in a for a in refused["actions"])


def test_fail_over_terminates_the_first_providers_stream_and_pays_the_second(ansible: Ansible, providers, chain):
    se, us = providers["se"], providers["us"]
    # SE's advertisement, cheapest, pointing at a proxy that refuses every create as a provider would.
    proxy = FaultProxy(se["url"], ip="127.0.0.71", port=7466)
    proxy.inject("POST", r"^/api/v1/vms", "status", status=400, times=100,
                 body=b'{"detail":"invalid stream: injected refusal"}')
    ad = {"ip_address": proxy.ip, "country": "SE", "resources": {"cpu": 16, "memory": 32, "storage": 500},
          "pricing": {"usd_per_core_month": 0.1, "usd_per_gb_ram_month": 0.1, "usd_per_gb_storage_month": 0.01,
                      "glm_per_core_month": 20.0, "glm_per_gb_ram_month": 8.0, "glm_per_gb_storage_month": 0.4}}
    control("hold-ads", hold=True)
    name = _name("failover")
    try:
        assert _post_ad(se["provider_id"], ad) == 200
        first = chain.next_stream_id() + 1
        # central: the forged SE advert above is one only central discovery takes (it checks no signature);
        # on Golem Base an advert is signed by its provider's key.
        result = ansible.module("golem_vm", {"name": name, "wait": False, "discovery_backend": "central"})
    finally:
        control("hold-ads", hold=False)
        proxy.close()
    try:
        assert not result["failed"], (result.get("msg"), result["actions"])
        assert result["vm"]["provider_ip"] == us["ip"], result["actions"]
        refused, paid = chain.stream(first), chain.stream(first + 1)
        assert refused["recipient"] == ZERO and refused["sender"] != ZERO, "the refused provider's stream ended"
        assert paid["recipient"].lower() == us["provider_id"].lower() and result["stream"]["stream_id"] == first + 1
    finally:
        ansible.module("golem_vm", {"name": name, "state": "absent"})


def _post_ad(provider_id: str, ad: dict) -> int:
    import urllib.request

    req = urllib.request.Request(f"{status()['discovery_url']}/api/v1/advertisements", data=json.dumps(ad).encode(),
                                 method="POST", headers={"Content-Type": "application/json",
                                                         "X-Provider-ID": provider_id, "X-Provider-Signature": "t"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return resp.status


def test_a_stream_that_runs_out_ends_the_vm_and_golem_vm_says_why(ansible: Ansible, providers, chain):
    se = providers["se"]
    name = _name("runout")
    created = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "wait": False})
    assert not created["failed"], created.get("msg")
    stream_id = created["stream"]["stream_id"]
    chain.advance(3600 + 5)  # past stopTime: upstream's monitor deletes the VM
    wait_until(lambda: http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 404, timeout=120, what="the monitor")
    try:
        started = ansible.module("golem_vm", {"name": name, "state": "started"})
        assert started["failed"] and f"payment stream {stream_id} ran out" in started["msg"], started["msg"]
    finally:
        gone = ansible.module("golem_vm", {"name": name, "state": "absent"})
    assert not gone["failed"], gone.get("msg")


def test_the_upstream_cli_lists_our_stream_for_our_vm(ansible: Ansible, providers, tmp_path: Path):
    se = providers["se"]
    home = tmp_path / "home"
    ansible.env["GOLEM_REQUESTOR_DB_PATH"] = str(home / ".golem" / "requestor" / "vms.db")  # the CLI's own file
    name = _name("cli")
    created = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "wait": False})
    assert not created["failed"], created.get("msg")
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
               "PYTHONPATH": str(REPO / "devnet" / "hostshim"), **devnet_env()}
        listed = subprocess.run([str(CLI), "vm", "list", "--json"], env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert listed.returncode == 0, listed.stderr
        (vm,) = [v for v in json.loads(listed.stdout)["vms"] if v["name"] == name]
        assert vm["config"]["stream_id"] == created["stream"]["stream_id"]
        streams = subprocess.run([str(CLI), "vm", "stream", "list", "--json"], env=env, capture_output=True,
                                 text=True, timeout=120, check=False)
        assert streams.returncode == 0, streams.stderr
        (mine,) = [s for s in json.loads(streams.stdout[streams.stdout.index("{"):])["streams"] if s["name"] == name]
        assert mine["stream_id"] == created["stream"]["stream_id"] and mine["verified"] is True, mine
    finally:
        ansible.module("golem_vm", {"name": name, "state": "absent"})


def _row(ansible: Ansible, name: str) -> dict:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(ansible.state_path)) as conn:
        row = conn.execute("SELECT name, config FROM vms WHERE name = ?", (name,)).fetchone()
    return {"name": row[0], "config": row[1]}


def test_a_paid_fleet_of_20_pays_each_vm_to_its_own_provider_and_leaves_nothing_locked(
        ansible: Ansible, providers, chain):
    fleet = f"paid{uuid.uuid4().hex[:5]}"
    play = str(REPO / "playbooks" / "fleet.yml")
    grown = ansible.playbook(play, "-e", f"fleet_name={fleet}", "-e", "fleet_size=20", "-e", "fleet_wait=false",
                             "-e", '{"fleet_countries": ["SE", "US"]}')
    try:
        assert grown.returncode == 0, grown.stdout[-3000:]
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(ansible.state_path)) as conn:
            rows = [json.loads(c) for (c,) in conn.execute("SELECT config FROM vms WHERE name LIKE ?", (f"{fleet}-%",))]
        assert len(rows) == 20
        streams = {row["stream_id"]: row["provider_id"] for row in rows}
        assert len(streams) == 20, "one stream a VM"
        for stream_id, provider_id in streams.items():
            assert chain.stream(stream_id)["recipient"].lower() == provider_id.lower()
    finally:
        emptied = ansible.playbook(play, "-e", f"fleet_name={fleet}", "-e", "fleet_size=0")
    assert emptied.returncode == 0, emptied.stdout[-3000:]
    assert all(chain.stream(stream_id)["recipient"] == ZERO for stream_id in streams), "every stream terminated"
