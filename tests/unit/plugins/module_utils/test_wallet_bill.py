# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bill first: check mode shows what a create would pay, reading only; nothing is signed or sent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_fleet import SE1, SE2, US1, FakeDiscovery, Network, fleet
from test_vm_lifecycle import KEY, SE
from test_vm_payments import CONTRACT, PRICING, FakeChain, PayingProvider

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import stream_terms
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import PaymentError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement, ProviderInfo
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.vm.create_hooks import CreateHooks
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import KnownHosts
from ansible_collections.golem.vm.plugins.module_utils.vm.lifecycle import Lifecycle
from ansible_collections.golem.vm.plugins.module_utils.vm.payments import StreamPayments
from ansible_collections.golem.vm.plugins.module_utils.vm.services import Lazy, VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm_request import Want

SMALL_TERMS = stream_terms(PRICING, SIZES["small"], 2)
US_PRICING = {"glm_per_core_month": 28.0, "glm_per_gb_ram_month": 12.0, "glm_per_gb_storage_month": 0.6}


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return SQLiteStateStore(str(tmp_path / "vms.db"))


def payments(chain: FakeChain | None, cap: float | None = 500.0, pricing: Any = None) -> StreamPayments:
    return StreamPayments((lambda: chain) if chain else None, hours=2, deadline=Deadline(30),
                          pricing_for=pricing or (lambda _placement, _pid: PRICING), given_stream=None,
                          warn=print, max_glm_per_month=cap, network="l2.holesky", contract=CONTRACT)


def check_run(store: StateStore, provider: Any, paying: StreamPayments | None) -> Lifecycle:
    want = Want(name="web-1", state="present", spec=None, size=None, image=None, stream_id=None, public_key=KEY,
                key_fingerprint="SHA256:x", private_key_path=None, ssh_user="root", pinned=None, country=None,
                adopt=False, wait=False)
    services = VMServices(store=store, known_hosts=KnownHosts(str(Path(store.path).parent / "known_hosts")),
                          deadline=Deadline(30), provider_client=lambda _p: provider, warn=print, check_mode=True,
                          identity=ProviderIdentity(), lazy_payments=Lazy(lambda: paying))
    return Lifecycle(want, services, candidates=lambda _pref: [SE])


def test_the_default_hook_bills_nothing() -> None:
    assert CreateHooks().bill(SE, object(), SIZES["small"]) is None


def test_check_mode_shows_the_bill_and_signs_nothing(store: StateStore) -> None:
    chain, provider = FakeChain(), PayingProvider(SE)
    life = check_run(store, provider, payments(chain))
    planned = life.run(None)
    assert planned is not None and planned.status == "creating"
    assert life.out.bill == {"provider_id": "0xse", "glm_per_month": 32.0,
                             "rate_wei_per_second": SMALL_TERMS.rate_wei, "payment_hours": 2,
                             "deposit_wei": SMALL_TERMS.deposit_wei, "stream_payment_address": CONTRACT}
    assert life.out.request is not None and life.out.request["method"] == "POST"
    # Read only: the VM's name and the provider's info; no create, no chain call, no row.
    assert [c[0] for c in provider.calls] == ["get", "info"]
    assert chain.calls == [] and store.get("web-1") is None
    assert life.out.actions == ["would create VM web-1 on provider 0xse (127.0.0.2)"]


def test_check_mode_needs_no_key_to_show_the_bill(store: StateStore) -> None:
    life = check_run(store, PayingProvider(SE), payments(None))
    life.run(None)
    assert life.out.bill is not None and life.out.bill["glm_per_month"] == 32.0


def test_a_provider_without_payments_has_no_bill(store: StateStore) -> None:
    life = check_run(store, FakeProviderWithoutPayments(SE), payments(FakeChain()))
    life.run(None)
    assert life.out.bill is None and life.out.request is not None


def test_check_mode_refuses_what_a_run_would_refuse_over_the_cap(store: StateStore) -> None:
    # Prices that are not in the placement (a provider_ip discovery could not resolve) are checked by the bill.
    provider = PayingProvider(SE)
    life = check_run(store, provider, payments(FakeChain(), cap=10.0))
    with pytest.raises(PaymentError) as err:
        life.run(None)
    assert err.value.field == "max_glm_per_month" and "32 GLM a month" in err.value.msg
    assert "create" not in [c[0] for c in provider.calls] and store.get("web-1") is None


class FakeProviderWithoutPayments(PayingProvider):
    def provider_info(self) -> ProviderInfo:
        self.calls.append(("info", ""))
        return ProviderInfo(provider_id=self.info_id, stream_payment_address="0x" + "0" * 40)


# -- golem_fleet: each member's bill and the total, from the adverts (check mode asks no provider) ----------------

def glm_ads(priced: bool = True) -> list[Advertisement]:
    def one(pid: str, ip: str, country: str, glm: dict[str, float] | None) -> Advertisement:
        return Advertisement.model_validate({"provider_id": pid, "ip_address": ip, "country": country,
                                             "resources": {"cpu": 16, "memory": 32, "storage": 500}, "pricing": glm})
    return [one("0xse1", SE1, "SE", PRICING if priced else None), one("0xus1", US1, "US", US_PRICING if priced else None),
            one("0xse2", SE2, "SE", None)]


def test_fleet_check_mode_bills_each_member_and_totals_them(store: StateStore) -> None:
    net, chain = Network(), FakeChain()
    run = fleet(store, net, 4, check=True, countries=["SE", "US"], discovery=FakeDiscovery(glm_ads()))
    run.services = replace(run.services, lazy_payments=Lazy(lambda: payments(chain, pricing=lambda _placement, _pid: None)))
    res = run.run()
    # SE1, US1, SE2 (no GLM prices: no bill), SE1 again.
    assert sorted(res.bills) == ["web-01", "web-02", "web-04"]
    assert res.bills["web-01"] == {"provider_id": "0xse1", "glm_per_month": 32.0,
                                   "rate_wei_per_second": SMALL_TERMS.rate_wei, "payment_hours": 2,
                                   "deposit_wei": SMALL_TERMS.deposit_wei, "stream_payment_address": None}
    assert res.bills["web-02"]["glm_per_month"] == 46.0
    total = res.bill()
    assert total["glm_per_month"] == 110.0
    assert total["deposit_wei"] == sum(b["deposit_wei"] for b in res.bills.values())
    assert list(total["members"]) == ["web-01", "web-02", "web-04"]
    assert sorted(res.created) == ["web-01", "web-02", "web-03", "web-04"]
    # No provider is asked anything; nothing is written or signed.
    assert net.calls == [] and chain.calls == [] and store.list() == []


def test_fleet_check_mode_over_the_cap_fails_the_members_a_run_would_fail(store: StateStore) -> None:
    # Placements carry no prices here (as for a member being repaired): the bill asks discovery, then checks the cap.
    net = Network()
    run = fleet(store, net, 2, check=True, countries=["SE", "US"], discovery=FakeDiscovery(glm_ads(priced=False)))
    run.services = replace(run.services, lazy_payments=Lazy(lambda: payments(
        None, cap=40.0, pricing=lambda placement, _pid: US_PRICING if placement.ip == US1 else PRICING)))
    res = run.run()
    assert list(res.failures) == ["web-02"] and "46 GLM a month" in res.failures["web-02"]
    assert "max_glm_per_month 40" in res.failures["web-02"]
    assert res.created == ["web-01"] and list(res.bills) == ["web-01"]
    assert net.calls == []


def test_a_fleet_without_anything_to_create_has_an_empty_bill(store: StateStore) -> None:
    run = fleet(store, Network(), 0, check=True)
    run.services = replace(run.services, lazy_payments=Lazy(lambda: payments(None)))
    assert run.run().bill() == {"members": {}, "glm_per_month": 0, "deposit_wei": 0}
