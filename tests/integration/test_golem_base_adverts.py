# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Golem Base adverts over their life on the local network: one whose provider stopped runs out, bad
ones written straight onto the chain are skipped, and VMs are rented with nothing but Golem Base.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from .ansible_runner import Ansible
from .devnet_helpers import REPO, control, discovery_url, http, state_rows, wait_until
from .fault_proxy import FaultProxy
from .golem_base_helpers import advert, chain, golem_base, head, new_account, seed

FLEET_PLAYBOOK = REPO / "playbooks" / "fleet.yml"


def _ids(result: dict[str, Any]) -> list[str]:
    assert not result["failed"], result.get("msg")
    return [p["provider_id"] for p in result["providers"]]


def _adverts_of(provider_id: str) -> list[dict[str, Any]]:
    return golem_base("golembase_queryEntities", f'golem_type="provider" && golem_provider_id="{provider_id}"')


def _warnings(result: dict[str, Any]) -> list[str]:
    """The task's warnings, as ansible prints them on stderr (wrapped: white space is collapsed)."""
    text = " ".join(result["_stderr"].split())
    return [w.strip() for w in text.split("[WARNING]:")[1:]]


def _expiry(provider_id: str) -> int:
    """The last block at which an advert of provider_id is still on Golem Base."""
    hits = _adverts_of(provider_id)
    assert hits, f"no advert of {provider_id} on Golem Base"
    return max(golem_base("golembase_getEntityMetaData", hit["key"])["expiresAtBlock"] for hit in hits)


def _fresh(provider_id: str, blocks: int) -> bool:
    """One advert of provider_id on Golem Base that lives at least ``blocks`` more blocks."""
    hits = _adverts_of(provider_id)
    return len(hits) == 1 and golem_base("golembase_getEntityMetaData", hits[0]["key"])["expiresAtBlock"] \
        > head() + blocks


def test_the_advert_of_a_stopped_provider_is_gone_once_its_ttl_passes(ansible: Ansible, providers):
    us, se = providers["us"]["provider_id"], providers["se"]["provider_id"]
    assert us in _ids(ansible.module("golem_provider_info"))
    control("stop", name="us")
    try:
        expires = _expiry(us)  # stopping does not delete it: nobody renews it any more
        # Blocks come every second; mining the rest at once ages SE's advert too. Mine past both, so SE's
        # runs out now, not a few blocks after this test while the next ones count on it.
        chain("anvil_mine", hex(max(1, max(expires, _expiry(se)) - head())))
        wait_until(lambda: head() >= expires, timeout=30, what="the chain to reach the advert's expiry block")
        found = ansible.module("golem_provider_info", {"country": "US"})
        assert found["providers"] == [] and not found["failed"] and not _warnings(found), found
        # Central discovery still lists US: it forgets adverts five minutes after their last post.
        assert us in _ids(ansible.module("golem_provider_info", {"discovery_backend": "central"}))
    finally:
        control("start", name="us")
        # Both advertisers write again (US at start-up, SE on its next cycle), each for 300 blocks.
        wait_until(lambda: _fresh(us, 200) and _fresh(se, 200), timeout=150, interval=2,
                   what="SE's and US's adverts to be back on Golem Base for 200 blocks or more")
    assert us in _ids(ansible.module("golem_provider_info", {"country": "US"}))


def _bad_adverts(net: str, se_id: str) -> dict[str, tuple[Callable[[str], dict[str, Any]], str]]:
    """name -> (its create, given the signer's address; what the warning must say)."""
    ip = f"{net}.0.250"  # nothing listens there: these providers are never rented
    return {
        "no-cpu": (lambda a: advert(a, ip, drop=("golem_cpu",)), "numeric annotation golem_cpu is missing"),
        "cpu-word": (lambda a: advert(a, ip, strings={"golem_cpu": "lots"}, drop=("golem_cpu",)),
                     "annotation golem_cpu is the string 'lots', not a number"),
        "no-memory": (lambda a: advert(a, ip, drop=("golem_memory",)), "numeric annotation golem_memory is missing"),
        "price-word": (lambda a: advert(a, ip, strings={"golem_price_usd_core_month": "cheap"}),
                       "price annotation golem_price_usd_core_month is 'cheap', not a price"),
        "price-negative": (lambda a: advert(a, ip, strings={"golem_price_glm_ram_gb_month": "-3"}),
                           "price annotation golem_price_glm_ram_gb_month is '-3', not a price"),
        "ip-not-an-address": (lambda a: advert(a, ip, strings={"golem_ip_address": "999.1.1.1"}),
                              "annotation golem_ip_address is '999.1.1.1'"),
        "no-provider-id": (lambda a: advert(a, ip, drop=("golem_provider_id",)),
                           "string annotation golem_provider_id is missing"),
        # SE's id pointed at another address by someone else's key.
        "impostor": (lambda a: advert(se_id, ip, country="SE"), f"is not the provider {se_id} it advertises"),
    }


def test_malformed_adverts_on_chain_are_skipped_with_a_warning_and_the_good_ones_listed(ansible: Ansible,
                                                                                        providers, devnet):
    se, us = providers["se"]["provider_id"], providers["us"]["provider_id"]
    bad = _bad_adverts(devnet["net"], se)
    accounts = {name: new_account() for name in [*bad, "good"]}
    txs = [{"key": accounts[name][0], "creates": [build(accounts[name][1])]} for name, (build, _says) in bad.items()]
    good_key, good_id = accounts["good"]
    txs.append({"key": good_key, "creates": [advert(good_id, f"{devnet['net']}.0.251")]})
    receipts = seed(*txs)
    assert all(r["status"] == 1 for r in receipts), receipts
    entity = {name: r["created"][0]["key"] for name, r in zip([*bad, "good"], receipts)}
    try:
        # payment_terms off: the good advert names an address nobody serves, whose terms would warn too.
        result = ansible.module("golem_provider_info", {"payment_terms": False})
        assert not result["failed"] and "Traceback" not in result["_stderr"], result.get("msg")
        listed = _ids(result)
        assert sorted(listed) == sorted([se, us, good_id]), listed
        se_listed = next(p for p in result["providers"] if p["provider_id"] == se)
        assert se_listed["ip_address"] == providers["se"]["ip"], "the impostor's address was taken"
        warnings = _warnings(result)
        assert len(warnings) == len(bad), warnings
        for name, (_build, says) in bad.items():
            [warning] = [w for w in warnings if entity[name] in w]
            assert warning.startswith("skipped the advertisement of provider ") and says in warning, (name, warning)
        # golem_vm's placement: the query holds country and size, so the node returns only the impostor
        # (the others say FI); it is skipped the same way and the real SE is chosen.
        planned = ansible.module("golem_vm", {"name": f"gbm-{uuid.uuid4().hex[:8]}", "country": "SE"}, check=True)
        assert not planned["failed"] and planned["changed"], planned.get("msg")
        [warning] = _warnings(planned)
        assert entity["impostor"] in warning and bad["impostor"][1] in warning, warning
        assert planned["actions"] == [f"would create VM {planned['vm']['name']} on provider {se} "
                                      f"({providers['se']['ip']})"], planned["actions"]
    finally:
        seed(*[{"key": accounts[name][0], "deletes": [key]} for name, key in entity.items()])
    assert all(good_id != p for p in _ids(ansible.module("golem_provider_info")))


def _dead_url() -> str:
    proxy = FaultProxy(discovery_url())
    proxy.close()
    return proxy.url


def test_golem_vm_and_fleet_yml_rent_and_pay_with_central_discovery_unreachable(ansible: Ansible, providers):
    """Found only on Golem Base: central discovery is down for the whole test. SE and US take payment."""
    ansible.env["GOLEM_REQUESTOR_DISCOVERY_URL"] = _dead_url()
    name = f"gbvm-{uuid.uuid4().hex[:8]}"
    fleet = f"gbfl-{uuid.uuid4().hex[:8]}"
    fleet_vars = ["-e", f"fleet_name={fleet}", "-e", '{"fleet_countries": ["SE", "US"]}']
    try:
        made = ansible.module("golem_vm", {"name": name, "country": "US", "wait": False})
        assert not made["failed"], made.get("msg")
        assert made["vm"]["provider_ip"] == providers["us"]["ip"] and made["vm"]["country"] == "US"
        assert isinstance(made["stream"].get("stream_id"), int), "paid at the price Golem Base advertises"
        assert http("GET", f"{providers['us']['url']}/api/v1/vms/{name}/stream")[1]["verified"] is True

        grown = ansible.playbook(FLEET_PLAYBOOK, *fleet_vars, "-e", "fleet_size=2")
        assert grown.returncode == 0, grown.stdout + grown.stderr
        rows = state_rows(ansible.state_path)
        assert rows == {name: "running", f"{fleet}-01": "running", f"{fleet}-02": "running"}, rows
        for key in ("se", "us"):
            assert any(f"({providers[key]['ip']}, {key.upper()})" in line for line in grown.stdout.splitlines())
    finally:
        gone = ansible.playbook(FLEET_PLAYBOOK, *fleet_vars, "-e", "fleet_size=0")
        dropped = ansible.module("golem_vm", {"name": name, "state": "absent"})
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert not dropped["failed"], dropped.get("msg")
    assert state_rows(ansible.state_path) == {}
