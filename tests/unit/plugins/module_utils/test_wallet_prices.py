# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wallet's side of choosing a provider: prices that are no prices are refused, "cheapest" is what is
paid, and a provider over the price cap is never contacted (automatic choice) or refused (pinned)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import DEFAULT_MAX_GLM_PER_MONTH
from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base_entity import Entity, advertisement
from ansible_collections.golem.vm.plugins.module_utils.discovery.listing import represent_provider, select_providers
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError, PaymentError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES, ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement, parse_wire
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet import discover
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement
from ansible_collections.golem.vm.plugins.module_utils.vm.placer import Placer, fitting_providers

SMALL = SIZES["small"]
# The local network's prices a month: SE 20/8/0.4 GLM a core/GB RAM/GB disk (small: 32), US 28/12/0.6 (46).
SE_GLM = {"glm_per_core_month": 20.0, "glm_per_gb_ram_month": 8.0, "glm_per_gb_storage_month": 0.4}
US_GLM = {"glm_per_core_month": 28.0, "glm_per_gb_ram_month": 12.0, "glm_per_gb_storage_month": 0.6}
USD = {"usd_per_core_month": 5.0, "usd_per_gb_ram_month": 2.0, "usd_per_gb_storage_month": 0.1}
FREE_USD = {"usd_per_core_month": 0.0, "usd_per_gb_ram_month": 0.0, "usd_per_gb_storage_month": 0.0}
# A hostile (or mispriced) advert: nothing in USD, 1000 GLM a unit.
HOSTILE = {**FREE_USD, "glm_per_core_month": 1000.0, "glm_per_gb_ram_month": 1000.0,
           "glm_per_gb_storage_month": 1000.0}


def wire(pid: str, ip: str, country: str, pricing: dict[str, Any] | None) -> dict[str, Any]:
    return {"provider_id": pid, "ip_address": ip, "country": country,
            "resources": {"cpu": 16, "memory": 32, "storage": 500}, "pricing": pricing}


def ad(pid: str, ip: str, country: str, pricing: dict[str, Any] | None) -> Advertisement:
    return Advertisement.model_validate(wire(pid, ip, country, pricing))


SE = ad("0xse", "127.0.0.2", "SE", {**USD, **SE_GLM})
US = ad("0xus", "127.0.0.3", "US", {**USD, "usd_per_core_month": 1.0, **US_GLM})  # cheaper in USD, dearer in GLM
DE = ad("0xde", "127.0.0.4", "DE", None)  # MVP era: no prices, no payment
EVIL = ad("0xevil", "127.0.0.5", "SE", HOSTILE)


class Discovery:
    """A discovery driver listing ``ads``; each list_advertisements call is counted."""

    backend = "central"
    not_found_hint = ""
    source = "discovery http://127.0.0.1:9001"
    url = "http://127.0.0.1:9001/api/v1/advertisements"

    def __init__(self, *ads: Advertisement) -> None:
        self.ads = list(ads)
        self.calls = 0

    def list_advertisements(self, **filters: Any) -> list[Advertisement]:
        self.calls += 1
        return [a for a in self.ads if filters.get("country") in (None, a.country)]

    def get_advertisement(self, provider_id: str) -> Advertisement | None:
        return next((a for a in self.ads if a.provider_id == provider_id), None)


def placer(discovery: Discovery, warnings: list[str], *, pinned: Placement | None = None,
           cap: float | None = DEFAULT_MAX_GLM_PER_MONTH, strategy: str = "cheapest",
           spec: ResourceSpec = SMALL) -> Placer:
    return Placer(lambda: discovery, spec=spec, provider_port=7466, pinned=pinned, country=None, platform=None,
                  strategy=strategy, warn=warnings.append, max_glm_per_month=cap)


# -- 1. prices that are no prices are refused, whichever backend ---------------------------------------------

@pytest.mark.parametrize("value", [-1.0, -0.01, math.nan, math.inf, -math.inf, True, False, "5", "cheap", [5]],
                         ids=["negative", "cent-below", "nan", "inf", "-inf", "true", "false", "string", "word",
                              "list"])
@pytest.mark.parametrize("field", ["usd_per_core_month", "glm_per_gb_ram_month", "glm_per_gb_storage_month"])
def test_central_adverts_with_a_price_that_is_no_price_are_refused_naming_the_field(value: Any, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_wire(Advertisement, wire("0xbad", "127.0.0.9", "SE", {**USD, **SE_GLM, field: value}),
                   source="discovery http://127.0.0.1:9001", what="an advertisement")
    assert err.value.field == f"pricing.{field}"


@pytest.mark.parametrize("value", [0, 0.0, 7, 2.5, 1e6])
def test_zero_and_ordinary_prices_are_prices(value: Any) -> None:
    parsed = ad("0xok", "127.0.0.9", "SE", {**SE_GLM, "glm_per_core_month": value})
    assert parsed.pricing is not None and parsed.pricing.glm_per_core_month == float(value)


def test_central_discovery_skips_a_nan_priced_advert_with_a_warning_naming_its_provider(httpserver) -> None:
    # Python's json reads NaN and Infinity, which a hostile server may send as they are.
    body = json.dumps([wire("0xse", "127.0.0.2", "SE", {**USD, **SE_GLM}),
                       wire("0xnan", "127.0.0.6", "SE", {**USD, **SE_GLM, "glm_per_core_month": math.nan}),
                       wire("0xneg", "127.0.0.7", "SE", {**USD, **SE_GLM, "usd_per_gb_ram_month": -3}),
                       wire("0xinf", "127.0.0.8", "SE", {**USD, **SE_GLM, "glm_per_gb_storage_month": math.inf})])
    httpserver.expect_request("/api/v1/advertisements").respond_with_data(body, content_type="application/json")
    client = DiscoveryClient(httpserver.url_for("/"))
    warnings: list[str] = []
    try:
        fitting = fitting_providers(client, SMALL, provider_port=7466, countries=None, platform=None,
                                    warn=warnings.append)
    finally:
        client.close()
    assert [p["provider_id"] for p in fitting] == ["0xse"]
    assert len(warnings) == 3
    for pid, field in (("0xnan", "glm_per_core_month"), ("0xneg", "usd_per_gb_ram_month"),
                       ("0xinf", "glm_per_gb_storage_month")):
        said = next(w for w in warnings if pid in w)
        assert said.startswith(f"skipped the advertisement of provider {pid}: ") and f"pricing.{field}" in said


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "-inf", "1e400", "true", "cheap", "1_000", ""])
def test_golem_base_adverts_refuse_the_same_prices(text: str) -> None:
    entity = Entity("0xkey", {"owner": "0xse", "expiresAtBlock": 100, "stringAnnotations": [
        {"key": "golem_provider_id", "value": "0xse"}, {"key": "golem_ip_address", "value": "127.0.0.2"},
        {"key": "golem_price_glm_core_month", "value": text}], "numericAnnotations": [
        {"key": "golem_cpu", "value": 4}, {"key": "golem_memory", "value": 8}, {"key": "golem_storage", "value": 80}]},
        where="Golem Base http://127.0.0.1:8545")
    with pytest.raises(ValidationError) as err:
        advertisement(entity)
    assert err.value.field == "golem_price_glm_core_month" and "0xkey" in err.value.msg


# -- 2. "cheapest" is what is paid -------------------------------------------------------------------------

def test_cheapest_orders_by_glm_not_by_the_usd_estimate() -> None:
    hostile = ad("0xevil", "127.0.0.5", "SE", HOSTILE)
    # No cap here: the order alone must not put the free-in-USD advert first.
    order = placer(Discovery(hostile, US, SE, DE), [], cap=None).candidates()
    assert [p.provider_id for p in order] == ["0xse", "0xus", "0xevil", "0xde"]


def test_glm_priced_adverts_come_before_usd_only_ones_and_unpriced_ones_last() -> None:
    usd_only = ad("0xusd", "127.0.0.6", "US", FREE_USD)
    order = placer(Discovery(DE, usd_only, US, SE), [], cap=None).candidates()
    assert [p.provider_id for p in order] == ["0xse", "0xus", "0xusd", "0xde"]


def test_the_order_is_by_the_price_of_the_asked_size() -> None:
    # Cheap cores, dear memory: first for one core and 1 GB, last for 2 cores and 16 GB.
    cores = ad("0xcores", "127.0.0.6", "SE", {"glm_per_core_month": 1.0, "glm_per_gb_ram_month": 30.0,
                                              "glm_per_gb_storage_month": 0.0})
    assert placer(Discovery(SE, cores), [], cap=None).candidates()[0].provider_id == "0xcores"
    big = ResourceSpec(2, 16, 10)
    assert placer(Discovery(SE, cores), [], cap=None, spec=big).candidates()[0].provider_id == "0xse"


def test_a_fleet_spreads_cheapest_first_by_glm_in_each_country() -> None:
    se_dear = ad("0xse2", "127.0.0.6", "SE", {**FREE_USD, **US_GLM})
    placements = discover(Discovery(se_dear, SE, US), SMALL, provider_port=7466, countries=["SE", "US"],
                          platform=None, warn=print)
    assert [p.provider_id for p in placements] == ["0xse", "0xus", "0xse2"]


def test_provider_info_sorts_price_by_glm_too() -> None:
    found = [represent_provider(a, provider_port=7466, spec=SMALL) for a in (EVIL, DE, US, SE)]
    assert [p["provider_id"] for p in select_providers(found, spec=SMALL, sort="price")] == \
        ["0xse", "0xus", "0xevil", "0xde"]


# -- 3. the price cap ------------------------------------------------------------------------------------------

def test_automatic_choice_skips_providers_over_the_cap_with_a_warning_naming_price_and_cap() -> None:
    warnings: list[str] = []
    order = placer(Discovery(EVIL, US, SE, DE), warnings, cap=40.0).candidates()
    assert [p.provider_id for p in order] == ["0xse", "0xde"]
    assert len(warnings) == 2
    us = next(w for w in warnings if "0xus" in w)
    assert "46 GLM a month" in us and "max_glm_per_month 40" in us and "127.0.0.3" in us
    assert any("0xevil" in w and "12000 GLM a month" in w for w in warnings)


def test_the_default_cap_skips_a_hostile_advert() -> None:
    warnings: list[str] = []
    order = placer(Discovery(EVIL, SE), warnings).candidates()
    assert [p.provider_id for p in order] == ["0xse"]
    assert warnings == ["skipped provider 0xevil (127.0.0.5): it asks 12000 GLM a month for 1 CPU, 1 GB RAM and "
                        "10 GB disk, over max_glm_per_month 500"]


def test_providers_without_glm_prices_are_not_capped() -> None:
    usd_only = ad("0xusd", "127.0.0.6", "US", {**USD, "usd_per_core_month": 1e6})
    warnings: list[str] = []
    order = placer(Discovery(SE, US, usd_only, DE), warnings, cap=0.0).candidates()
    assert [p.provider_id for p in order] == ["0xusd", "0xde"]
    assert len(warnings) == 2


def test_a_price_equal_to_the_cap_is_within_it() -> None:
    assert [p.provider_id for p in placer(Discovery(SE), [], cap=32.0).candidates()] == ["0xse"]


def test_when_every_provider_is_over_the_cap_the_error_says_so() -> None:
    with pytest.raises(DiscoveryError) as err:
        placer(Discovery(SE, US), [], cap=10.0).candidates()
    assert "within max_glm_per_month 10; 2 provider(s) with room ask more" in err.value.msg
    assert "provider 0xse: it asks 32 GLM a month" in err.value.msg


def test_a_fleet_leaves_out_providers_over_the_cap() -> None:
    warnings: list[str] = []
    placements = discover(Discovery(SE, US, EVIL), SMALL, provider_port=7466, countries=None, platform=None,
                          warn=warnings.append, max_glm_per_month=40.0)
    assert [p.provider_id for p in placements] == ["0xse"]
    assert {w.split()[2] for w in warnings} == {"0xus", "0xevil"}


@pytest.mark.parametrize("pinned", [Placement(None, 7466, "0xus"), Placement("127.0.0.3", 7466)],
                         ids=["provider_id", "provider_ip"])
def test_a_pinned_provider_over_the_cap_is_refused_naming_price_and_cap(pinned: Placement) -> None:
    with pytest.raises(PaymentError) as err:
        placer(Discovery(SE, US), [], pinned=pinned, cap=40.0).candidates()
    assert err.value.field == "max_glm_per_month" and err.value.value == 40.0
    assert "asks 46 GLM a month for 1 CPU, 1 GB RAM and 10 GB disk, over max_glm_per_month 40" in err.value.msg
    assert "0xus" in err.value.msg


def test_a_pinned_provider_within_the_cap_or_without_glm_prices_is_used() -> None:
    assert placer(Discovery(SE), [], pinned=Placement(None, 7466, "0xse"), cap=32.0).candidates()[0].pricing
    assert placer(Discovery(DE), [], pinned=Placement(None, 7466, "0xde"), cap=0.0).candidates()[0].ip == "127.0.0.4"


def test_without_a_cap_a_pinned_dear_provider_is_found_so_its_vm_can_be_deleted() -> None:
    # golem_vm gives no cap unless it creates: absent must still reach a VM on a dear provider.
    assert placer(Discovery(EVIL), [], pinned=Placement(None, 7466, "0xevil"), cap=None).candidates()[0].ip \
        == "127.0.0.5"
