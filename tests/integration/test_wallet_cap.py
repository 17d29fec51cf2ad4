# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The price cap and the bill on the local network (issue 20): what a VM may cost is checked before any
provider is asked or any transaction is sent, and check mode shows the bill while sending nothing.

Devnet prices a month: SE 20/8/0.4 GLM a core/GB RAM/GB disk (a small VM: 32 GLM), US 28/12/0.6 (46 GLM),
DE (MVP era) none, and it takes no payment. What is checked comes from the chain and the providers' own request
logs, not from the collection's report alone. The network is shared with other tests that pay, so each test pays
from an account of its own: "nothing was signed or sent" is that account's transaction count staying 0, and its
streams are told apart from the others' by their sender. VM names start with ``wcap-``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .ansible_runner import Ansible
from .devnet_helpers import ProviderLog, payment_chain, state_rows
from .golem_base_helpers import advert, new_account, seed
from .payment_chain import ZERO

SMALL_SE, SMALL_US = 32.0, 46.0


def _name(what: str) -> str:
    return f"wcap-{what}-{uuid.uuid4().hex[:6]}"


def _warnings(result: dict[str, Any]) -> list[str]:
    text = " ".join(result["_stderr"].split())
    return [w.strip() for w in text.split("[WARNING]:")[1:]]


def _touching(log: ProviderLog, name: str) -> list[str]:
    """Requests the provider logged that name the VM (any method)."""
    return [r for r in log.requests() if name in r]


@pytest.fixture(scope="module")
def chain(devnet):
    return payment_chain()


@pytest.fixture
def payer(ansible: Ansible, chain) -> str:
    """A funded account of this test's own, which golem_vm and golem_fleet pay from."""
    from eth_account import Account

    account = Account.create()
    chain.rpc("anvil_setBalance", account.address, hex(10 ** 19))
    ansible.env["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"] = "0x" + account.key.hex().removeprefix("0x")
    return account.address


def _sent(chain, address: str) -> int:
    """Transactions ``address`` has sent (its nonce): 0 means nothing was ever signed and sent from it."""
    return int(chain.rpc("eth_getTransactionCount", address, "latest"), 16)


def _streams_from(chain, address: str, first: int) -> list[dict[str, Any]]:
    return [s for s in (chain.stream(i) for i in range(first, chain.next_stream_id() + 1))
            if s["sender"].lower() == address.lower()]


def test_a_pinned_provider_over_the_cap_is_refused_before_any_call_or_transaction(ansible: Ansible, providers,
                                                                                  chain, payer):
    se = providers["se"]
    name = _name("pinned")
    log = ProviderLog("se")
    refused = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "max_glm_per_month": 20})
    assert refused["failed"], refused
    assert f"asks {SMALL_SE:g} GLM a month" in refused["msg"] and "max_glm_per_month 20" in refused["msg"], \
        refused["msg"]
    assert _sent(chain, payer) == 0, "no transaction was sent"
    assert _touching(log, name) == [], "SE was not asked anything about the VM"
    assert state_rows(ansible.state_path) == {} and refused["changed"] is False


def test_the_cap_comes_from_the_environment_too(ansible: Ansible, providers, chain, payer):
    se = providers["se"]
    name = _name("env")
    refused = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"]},
                             env={"GOLEM_REQUESTOR_MAX_GLM_PER_MONTH": "31.5"})
    assert refused["failed"] and "max_glm_per_month 31.5" in refused["msg"], refused.get("msg")
    assert _sent(chain, payer) == 0


def test_a_cap_under_every_paying_price_skips_them_and_rents_the_provider_that_takes_no_payment(
        ansible: Ansible, providers, chain, payer):
    se, us, de = providers["se"], providers["us"], providers["de"]
    name = _name("free")
    logs = {"se": ProviderLog("se"), "us": ProviderLog("us")}
    # Golem Base: DE (MVP era) does not advertise there, so nothing is left within the cap.
    none = ansible.module("golem_vm", {"name": name, "max_glm_per_month": 10, "wait": False})
    assert none["failed"] and "within max_glm_per_month 10" in none["msg"], none.get("msg")
    # Central: DE advertises no prices, takes no payment and is not capped.
    rented = ansible.module("golem_vm", {"name": name, "max_glm_per_month": 10, "wait": False,
                                         "discovery_backend": "central"})
    try:
        assert not rented["failed"], rented.get("msg")
        assert rented["vm"]["provider_ip"] == de["ip"], rented["actions"]
        warned = _warnings(rented)
        for provider, price in ((se, SMALL_SE), (us, SMALL_US)):
            assert any(provider["provider_id"] in w and f"asks {price:g} GLM a month" in w
                       and "max_glm_per_month 10" in w for w in warned), warned
        assert rented["stream"] == {} and _sent(chain, payer) == 0, "nothing was paid"
        assert all(_touching(log, name) == [] for log in logs.values()), "SE and US were never contacted"
    finally:
        gone = ansible.module("golem_vm", {"name": name, "state": "absent"})
        assert not gone["failed"], gone.get("msg")


def test_a_fleet_with_a_cap_between_se_and_us_rents_only_se_and_never_contacts_us(
        ansible: Ansible, providers, chain, payer):
    se, us = providers["se"], providers["us"]
    fleet = _name("fleet")
    us_log, first = ProviderLog("us"), chain.next_stream_id() + 1
    try:
        made = ansible.module("golem_fleet", {"name": fleet, "count": 2, "countries": ["SE", "US"],
                                              "max_glm_per_month": 40, "wait": False})
        assert not made["failed"], made.get("msg")
        assert {vm["provider_ip"] for vm in made["vms"]} == {se["ip"]}, made["actions"]
        assert any(us["provider_id"] in w and f"asks {SMALL_US:g} GLM a month" in w and "max_glm_per_month 40" in w
                   for w in _warnings(made)), _warnings(made)
        assert _touching(us_log, fleet) == [], "US was never contacted"
        paid = _streams_from(chain, payer, first)
        assert len(paid) == 2 and {s["recipient"].lower() for s in paid} == {se["provider_id"].lower()}, paid
    finally:
        gone = ansible.module("golem_fleet", {"name": fleet, "count": 0})
        assert not gone["failed"], gone.get("msg")
    assert all(s["recipient"] == ZERO for s in _streams_from(chain, payer, first)), "both streams were terminated"


def test_check_mode_shows_the_bill_and_sends_nothing(ansible: Ansible, providers, chain, payer):
    se = providers["se"]
    name = _name("bill")
    log = ProviderLog("se")
    planned = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "payment_hours": 2},
                             check=True, diff=True)
    assert not planned["failed"] and planned["changed"], planned.get("msg")
    bill = planned["bill"]
    rate = int(SMALL_SE / (730.0 * 3600.0) * 10 ** 18)
    assert bill["provider_id"].lower() == se["provider_id"].lower()
    assert (bill["glm_per_month"], bill["rate_wei_per_second"], bill["payment_hours"], bill["deposit_wei"]) == \
        (SMALL_SE, rate, 2, rate * 2 * 3600)
    assert int(bill["stream_payment_address"], 16) != 0
    # The callback prints the diff as text before the result: the bill is in "after".
    diff = planned["_stdout"][:planned["_stdout"].rfind("localhost | ")]
    assert '+    "bill": {' in diff and f'"deposit_wei": {bill["deposit_wei"]}' in diff, diff
    assert _sent(chain, payer) == 0, "nothing was signed or sent"
    assert log.writes(name) == [] and state_rows(ansible.state_path) == {}


def test_fleet_check_mode_bills_each_member_and_the_total(ansible: Ansible, providers, chain, payer):
    se, us, de = providers["se"], providers["us"], providers["de"]
    fleet = _name("fbill")
    logs = {k: ProviderLog(k) for k in ("se", "us")}
    planned = ansible.module("golem_fleet", {"name": fleet, "count": 3, "countries": ["SE", "US", "DE"],
                                             "discovery_backend": "central"}, check=True)
    assert not planned["failed"] and planned["changed"], planned.get("msg")
    where = {vm["name"]: vm["provider_ip"] for vm in planned["vms"]}
    assert sorted(where.values()) == sorted([se["ip"], us["ip"], de["ip"]]), where
    bill = planned["bill"]
    # DE takes no payment: only the SE and US members are billed.
    assert sorted(b["glm_per_month"] for b in bill["members"].values()) == [SMALL_SE, SMALL_US]
    assert bill["glm_per_month"] == SMALL_SE + SMALL_US
    assert bill["deposit_wei"] == sum(b["deposit_wei"] for b in bill["members"].values()) > 0
    assert _sent(chain, payer) == 0 and state_rows(ansible.state_path) == {}
    assert all(log.writes(fleet) == [] for log in logs.values())


def test_a_hostile_golem_base_advert_is_skipped_by_the_default_cap_and_never_first_by_price(
        ansible: Ansible, providers, devnet):
    se = providers["se"]
    key, address = new_account()
    # Free in USD, 1000 GLM a unit (12000 for a small VM); an address nothing serves. SE, so it competes with SE.
    hostile = advert(address, f"{devnet['net']}.0.252", country="SE", btl=90, strings={
        "golem_price_usd_core_month": "0", "golem_price_usd_ram_gb_month": "0", "golem_price_usd_storage_gb_month": "0",
        "golem_price_glm_core_month": "1000", "golem_price_glm_ram_gb_month": "1000",
        "golem_price_glm_storage_gb_month": "1000"})
    [receipt] = seed({"key": key, "creates": [hostile]})
    assert receipt["status"] == 1, receipt
    entity = receipt["created"][0]["key"]
    try:
        listed = ansible.module("golem_provider_info", {"country": "SE", "payment_terms": False})
        ids = [p["provider_id"] for p in listed["providers"]]
        assert ids.index(se["provider_id"]) < ids.index(address), "sort=price ranks by GLM, not the USD 0"

        name = _name("hostile")
        planned = ansible.module("golem_vm", {"name": name, "country": "SE"}, check=True)
        assert not planned["failed"], planned.get("msg")
        assert planned["request"]["url"].startswith(f"http://{se['ip']}:"), planned["actions"]
        assert any(address in w and "asks 12000 GLM a month" in w and "max_glm_per_month 500" in w
                   for w in _warnings(planned)), _warnings(planned)

        # With the cap out of the way, cheapest still puts SE (32 GLM) before it.
        uncapped = ansible.module("golem_vm", {"name": name, "country": "SE", "max_glm_per_month": 1e9}, check=True)
        assert not uncapped["failed"], uncapped.get("msg")
        assert uncapped["request"]["url"].startswith(f"http://{se['ip']}:"), uncapped["actions"]
        assert uncapped["bill"]["glm_per_month"] == SMALL_SE
    finally:
        seed({"key": key, "deletes": [entity]})
