# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_fleet's provider_selection (providers filled in order within their advertised room) and each member's
GLM a month."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_fleet import SE1, SE2, US1, FakeDiscovery, Network, fleet
from test_wallet_bill import glm_ads, payments

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES, ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet import candidates_for, discover
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet_prices import AdvertPrices, member_prices
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement
from ansible_collections.golem.vm.plugins.module_utils.vm.placer import Fill, room_for
from ansible_collections.golem.vm.plugins.module_utils.vm.services import Lazy

SMALL = SIZES["small"]  # 1 CPU, 1 GB, 10 GB


def glm(core: float) -> dict[str, float]:
    return {"glm_per_core_month": core, "glm_per_gb_ram_month": 1.0, "glm_per_gb_storage_month": 0.1}


def ad(pid: str, ip: str, country: str, pricing: dict[str, float] | None, *, cpu: int = 16, memory: int = 32,
       storage: int = 500) -> Advertisement:
    return Advertisement.model_validate({"provider_id": pid, "ip_address": ip, "country": country, "pricing": pricing,
                                         "resources": {"cpu": cpu, "memory": memory, "storage": storage}})


# Discovery lists the dear one first: the order below is the placer's, not discovery's.
CHEAP = ad("0xcheap", "127.0.0.11", "SE", glm(1.0), cpu=2)  # room for 2 small VMs (CPU)
MIDDLE = ad("0xmiddle", "127.0.0.12", "SE", glm(2.0), memory=3)  # room for 3 (memory)
DEAR = ad("0xdear", "127.0.0.13", "SE", glm(9.0), storage=100)  # room for 10 (storage)
ONE_COUNTRY = [DEAR, MIDDLE, CHEAP]


def layout(ads: list[Advertisement], countries: list[str] | None = None, strategy: str = "cheapest") -> Fill:
    found = discover(FakeDiscovery(ads), SMALL, provider_port=7466, countries=countries, platform=None, warn=print,
                     strategy=strategy)
    assert isinstance(found, Fill)
    return found


def firsts(placements: Fill, placing: list[int]) -> list[str | None]:
    return [candidates_for(placements, i, placing)[0].provider_id for i in placing]


# -- placement ------------------------------------------------------------------------------

def test_cheapest_fills_in_price_order_within_each_providers_room() -> None:
    placing = list(range(1, 7))
    assert firsts(layout(ONE_COUNTRY), placing) == ["0xcheap", "0xcheap", "0xmiddle", "0xmiddle", "0xmiddle",
                                                    "0xdear"]


def test_without_provider_selection_the_fleet_is_spread_round_robin_as_before() -> None:
    placements = discover(FakeDiscovery(ONE_COUNTRY), SMALL, provider_port=7466, countries=None, platform=None,
                          warn=print)
    assert isinstance(placements, list)
    assert [candidates_for(placements, i)[0].provider_id for i in range(1, 5)] == [
        "0xcheap", "0xmiddle", "0xdear", "0xcheap"]


def test_countries_still_take_turns_and_a_full_country_passes_members_on() -> None:
    us_mid = ad("0xusmid", "127.0.0.21", "US", glm(2.0), cpu=2)  # room for 2
    se_cheap = ad("0xsecheap", "127.0.0.22", "SE", glm(1.0), cpu=1)  # room for 1
    se_dear = ad("0xsedear", "127.0.0.23", "SE", glm(9.0))
    placements = layout([se_dear, us_mid, se_cheap], countries=["SE", "US"])
    # Odd members in SE, even ones in the US; member 6's US is full, so it goes to SE's next with room.
    assert firsts(placements, list(range(1, 7))) == ["0xsecheap", "0xusmid", "0xsedear", "0xusmid", "0xsedear",
                                                     "0xsedear"]


def test_fail_over_follows_the_same_order_own_country_first() -> None:
    us = ad("0xus", "127.0.0.31", "US", glm(0.5))
    placements = layout([DEAR, us, MIDDLE, CHEAP], countries=["SE", "US"])
    placing = [1, 2, 3, 4, 5]
    # Member 5 is SE's third: cheap's room (2) is taken by members 1 and 3, so middle; then SE's others, then US.
    assert [p.provider_id for p in candidates_for(placements, 5, placing)] == ["0xmiddle", "0xcheap", "0xdear", "0xus"]
    assert [p.provider_id for p in candidates_for(placements, 2, placing)] == ["0xus", "0xcheap", "0xmiddle", "0xdear"]
    # Every candidate is a distinct provider, with its placement as the round-robin list gives it.
    assert all(isinstance(p, Placement) and p.port == 7466 for p in candidates_for(placements, 1, placing))


def test_only_the_members_created_in_this_run_take_room() -> None:
    # web-01..06 run already (their providers advertise what is left); 07 and 08 start from the cheapest's room.
    assert firsts(layout(ONE_COUNTRY), [7, 8]) == ["0xcheap", "0xcheap"]
    # A member not being placed (one being repaired, tried first where it was) gets its country's order.
    assert [p.provider_id for p in candidates_for(layout(ONE_COUNTRY), 3, [7])] == ["0xcheap", "0xmiddle", "0xdear"]


def test_past_every_providers_room_members_are_still_tried_cheapest_first() -> None:
    placements = layout([CHEAP, MIDDLE])  # room for 5
    assert firsts(placements, list(range(1, 8)))[5:] == ["0xcheap", "0xcheap"]


def test_unpriced_adverts_come_after_priced_ones() -> None:
    usd_only = ad("0xusd", "127.0.0.41", "SE", {"usd_per_core_month": 0.01, "usd_per_gb_ram_month": 0.01,
                                                "usd_per_gb_storage_month": 0.0}, cpu=1)
    unpriced = ad("0xfree", "127.0.0.42", "SE", None, cpu=1)
    placements = layout([unpriced, usd_only, DEAR])
    assert [p.provider_id for p in placements.placements()] == ["0xdear", "0xusd", "0xfree"]


def test_first_and_most_free_fill_in_their_own_order() -> None:
    assert firsts(layout(ONE_COUNTRY, strategy="first"), [1, 2]) == ["0xdear", "0xdear"]
    # most_free: the most free CPU first (dear and middle have 16; dear has more memory).
    assert [p.provider_id for p in layout(ONE_COUNTRY, strategy="most_free").placements()] == [
        "0xdear", "0xmiddle", "0xcheap"]


@pytest.mark.parametrize(("resources", "spec", "room"), [
    ({"cpu": 4, "memory": 8, "storage": 100}, SMALL, 4),
    ({"cpu": 0, "memory": 8, "storage": 100}, SMALL, 0),
    ({"cpu": -3, "memory": 8, "storage": 100}, SMALL, 0),
    ({"cpu": 4, "memory": 8}, SMALL, 0),
    ({"cpu": True, "memory": 8, "storage": 100}, SMALL, 0),
    ({"cpu": 10 ** 30, "memory": 10 ** 30, "storage": 10 ** 30}, SMALL, 10 ** 29),
    ({"cpu": 4, "memory": 8, "storage": 100}, ResourceSpec(0, 0, 0), 4),
], ids=["fits", "zero", "negative", "missing", "bool", "huge", "zero-spec"])
def test_room_is_a_whole_number_never_negative_nor_a_division_by_zero(
        resources: dict[str, Any], spec: ResourceSpec, room: int) -> None:
    assert room_for(resources, spec) == room


def test_a_provider_without_room_is_only_a_fail_over() -> None:
    full = Fill((((Placement("127.0.0.51", 7466, "0xfull"), 0), (Placement("127.0.0.52", 7466, "0xroom"), 1)),))
    assert firsts(full, [1]) == ["0xroom"]
    assert candidates_for(Fill(()), 1, [1]) == []


def test_a_fleet_run_with_cheapest_creates_in_price_order(tmp_path: Path) -> None:
    store = SQLiteStateStore(str(tmp_path / "vms.db"))
    ads = [ad("0xse2", SE2, "SE", glm(9.0)), ad("0xus1", US1, "SE", glm(2.0), cpu=3),
           ad("0xse1", SE1, "SE", glm(1.0), cpu=2)]
    run = fleet(store, Network(), 6, discovery=FakeDiscovery(ads))
    run.placements = lambda: discover(run.disc, SMALL, provider_port=7466, countries=None,  # type: ignore[attr-defined]
                                      platform=None, warn=print, strategy="cheapest")
    res = run.run()
    assert not res.failures and len(run.disc.calls) == 1  # type: ignore[attr-defined]
    on = {r.name: r.provider_ip for r in store.list()}
    assert on == {"web-01": SE1, "web-02": SE1, "web-03": US1, "web-04": US1, "web-05": US1, "web-06": SE2}


# -- GLM a month ----------------------------------------------------------------------------

def row(name: str, provider_id: str | None, status: str = "running", **resources: int) -> VMRecord:
    return VMRecord(name, "127.0.0.2", name, status, {"provider_id": provider_id, **resources})


def test_each_member_is_priced_at_its_advert_and_only_paying_ones_add_up() -> None:
    prices = {"0xa": glm(2.0), "0xb": None}.get
    records = [row("web-01", "0xa", cpu=1, memory=1, storage=10), row("web-02", "0xb"),
               row("web-03", "0xa", cpu=2, memory=4, storage=20), row("web-04", "0xa", "abandoned"),
               row("web-05", "0xa", "error"), row("web-06", "0xa", "stopped"), row("web-07", "0xa", "creating")]
    each, total = member_prices(records, prices, SMALL)
    # 2 + 1 + 1 for small; a medium member (its own resources) is 4 + 4 + 2.
    assert each == {"web-01": 4.0, "web-02": None, "web-03": 10.0, "web-04": 4.0, "web-05": 4.0, "web-06": 4.0,
                    "web-07": 4.0}
    assert total == 18.0


def test_a_price_recorded_on_the_row_is_used_and_discovery_is_not_asked() -> None:
    asked: list[str | None] = []

    def prices(provider_id: str | None) -> dict[str, float] | None:
        asked.append(provider_id)
        return glm(9.0)

    records = [VMRecord("web-01", "127.0.0.2", "web-01", "running", {"provider_id": "0xa", "glm_per_month": 4.5}),
               VMRecord("web-02", "127.0.0.2", "web-02", "running", {"provider_id": "0xb", "glm_per_month": None})]
    assert member_prices(records, prices, SMALL) == ({"web-01": 4.5, "web-02": None}, 4.5)
    assert asked == [], "every row says its price (None: its provider advertised none)"


@pytest.mark.parametrize("hostile", ["4.5", True, -1.0, float("nan"), float("inf"), [4.5], {"glm": 1}])
def test_a_recorded_price_no_price_can_be_is_ignored_for_the_adverts(hostile: Any) -> None:
    record = VMRecord("web-01", "127.0.0.2", "web-01", "running", {"provider_id": "0xa", "glm_per_month": hostile})
    assert record.recorded_price == (False, None)
    # 9 + 1 + 1 for small at the advert's prices
    assert member_prices([record], {"0xa": glm(9.0)}.get, SMALL) == ({"web-01": 11.0}, 11.0)


def test_prices_come_from_this_runs_listing_else_from_one_more_call() -> None:
    disc = FakeDiscovery([ad("0xother", "127.0.0.61", "SE", glm(3.0)), ad("0xbare", "127.0.0.62", "SE", None)])
    prices = AdvertPrices(lambda: disc, print)
    prices.learn([Placement("127.0.0.2", 7466, "0xknown", "SE", glm(1.0))])
    assert prices.pricing("0xknown") == glm(1.0) and disc.calls == []
    assert (prices.pricing("0xother") or {}).get("glm_per_core_month") == 3.0 and prices.pricing("0xbare") is None
    assert prices.pricing("0xgone") is None and prices.pricing(None) is None
    assert len(disc.calls) == 1


def test_discovery_down_leaves_the_prices_unknown_with_a_warning() -> None:
    class Down:
        def list_advertisements(self, **_filters: Any) -> list[Advertisement]:
            raise DiscoveryError("discovery is down")

    warnings: list[str] = []
    prices = AdvertPrices(Down, warnings.append)
    assert member_prices([row("web-01", "0xa")], prices.pricing, SMALL) == ({"web-01": None}, 0.0)
    assert len(warnings) == 1 and "discovery is down" in warnings[0]


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return SQLiteStateStore(str(tmp_path / "vms.db"))


def test_check_mode_members_cost_what_the_bill_says(store: StateStore) -> None:
    run = fleet(store, Network(), 4, check=True, countries=["SE", "US"], discovery=FakeDiscovery(glm_ads()))
    run.services = replace(run.services, lazy_payments=Lazy(lambda: payments(None, pricing=lambda _p, _pid: None)))
    prices = AdvertPrices(lambda: run.disc, print)  # type: ignore[attr-defined]
    listed = run.placements

    def placements() -> Any:
        found = listed()
        prices.learn(found)
        return found

    run.placements = placements
    res = run.run()
    each, total = member_prices(res.planned.values(), prices.pricing, SMALL)
    assert {name: b["glm_per_month"] for name, b in res.bills.items()} == {
        name: glm for name, glm in each.items() if glm is not None}
    assert each["web-03"] is None and total == res.bill()["glm_per_month"] == 110.0
    assert len(run.disc.calls) == 1  # type: ignore[attr-defined]


def test_a_member_records_the_price_it_was_placed_at(store: StateStore) -> None:
    net = Network()
    disc = FakeDiscovery([ad("0xse1", SE1, "SE", glm(1.0)), ad("0xus1", US1, "US", None)])
    res = fleet(store, net, 2, discovery=disc, countries=["SE", "US"]).run()
    assert res.failures == {}
    # small on 0xse1: 1 + 1 + 1; 0xus1 advertises no GLM prices, and the row says so.
    assert {r.name: r.recorded_price for r in store.list()} == {"web-01": (True, 3.0), "web-02": (True, None)}
