# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem.vm.golem_provider_info against the local network's real discovery servers.

Tests that need the MVP-era DE provider (it advertises only on central discovery) or central
discovery itself say discovery_backend=central; the others run on the default backend, Golem Base.
Both backends side by side, and against the upstream CLI: test_golem_base_discovery.py.
"""

from __future__ import annotations

from .devnet_helpers import control, discovery_url, http, status, wait_until


def _ids(result: dict) -> list[str]:
    return [p["provider_id"] for p in result["providers"]]


def test_no_filter_returns_every_provider_with_estimates(ansible, providers):
    result = ansible.module("golem_provider_info", {"discovery_backend": "central"})
    assert not result["failed"], result.get("msg")
    assert result["changed"] is False
    assert set(_ids(result)) >= {p["provider_id"] for p in providers.values()}
    by_id = {p["provider_id"]: p for p in result["providers"]}
    se = by_id[providers["se"]["provider_id"]]
    assert se["country"] == "SE" and se["provider_url"] == providers["se"]["url"]
    # small: 1 core x 5.0 + 1 GB x 2.0 + 10 GB x 0.1 USD a month, as the SE provider advertises.
    assert se["estimate"]["usd_per_month"] == 8.0
    assert by_id[providers["de"]["provider_id"]]["estimate"] is None


def test_country_filter_returns_only_that_country(ansible, providers):
    result = ansible.module("golem_provider_info", {"country": "SE"})
    assert _ids(result) == [providers["se"]["provider_id"]]


def test_more_cpu_than_anyone_has_is_an_empty_list_not_a_failure(ansible):
    result = ansible.module("golem_provider_info", {"cpu": 64})
    assert not result["failed"] and result["providers"] == []


def test_sort_by_price_orders_by_the_estimate(ansible, providers):
    result = ansible.module("golem_provider_info", {"size": "medium", "sort": "price", "discovery_backend": "central"})
    priced = [p["estimate"]["usd_per_month"] for p in result["providers"] if p["estimate"]]
    assert priced == sorted(priced) and len(priced) >= 2
    assert _ids(result)[0] == providers["se"]["provider_id"]
    # Providers without prices come after every priced one.
    assert result["providers"][-1]["estimate"] is None


def test_check_mode_is_read_only_and_works(ansible, providers):
    result = ansible.module("golem_provider_info", {"country": "US"}, check=True)
    assert result["changed"] is False and _ids(result) == [providers["us"]["provider_id"]]


def test_stopped_discovery_is_a_clear_failure(ansible):
    control("stop", name="discovery")
    try:
        result = ansible.module("golem_provider_info", {"timeout": 2, "discovery_backend": "central"})
    finally:
        control("start", name="discovery")
    assert result["failed"]
    assert f"{discovery_url()}/api/v1/advertisements" in result["msg"]
    assert "connection refused" in result["msg"]
    assert result["failure"]["url"].startswith(f"{discovery_url()}/")
    assert "Traceback" not in result["_stderr"]
    # Back up, and the ads come back with it (discovery keeps them in its database).
    wait_until(lambda: http("GET", f"{discovery_url()}/api/v1/advertisements")[0] == 200, what="discovery")


def test_payment_terms_come_from_each_provider_and_match_what_golem_vm_pays(ansible, providers):
    """SE and US (upstream 0.1.63, payments on) name the network's contract; DE (MVP-era 0.1.31) takes no payment."""
    contract = status()["payments"]["stream_payment_address"]
    # central: DE, the MVP-era provider, advertises only there (SE and US on both).
    result = ansible.module("golem_provider_info", {"size": "small", "discovery_backend": "central"})
    assert not result["failed"], result.get("msg")
    assert "no payment terms" not in result["_stderr"], result["_stderr"]  # warnings go to stderr
    by_id = {p["provider_id"]: p for p in result["providers"]}
    for key in ("se", "us"):
        terms = by_id[providers[key]["provider_id"]]["payment_terms"]
        assert terms["requires_payment"] is True and terms["stream_payment_address"] == contract
        assert int(terms["glm_token_address"], 16) == 0, "native ETH on the 0.1.x network"
        # What the provider itself advertises, computed as upstream's CLI does, to the wei.
        ad = http("GET", f"{discovery_url()}/api/v1/advertisements/{providers[key]['provider_id']}")[1]["pricing"]
        monthly = round(ad["glm_per_core_month"] + ad["glm_per_gb_ram_month"] + 10 * ad["glm_per_gb_storage_month"], 8)
        rate = int(monthly / (730.0 * 3600.0) * 10 ** 18)
        assert (terms["rate_wei_per_second"], terms["deposit_wei_per_hour"]) == (rate, rate * 3600)
    de = by_id[providers["de"]["provider_id"]]["payment_terms"]
    assert de == {"requires_payment": False, "stream_payment_address": None, "glm_token_address": None,
                  "rate_wei_per_second": None, "deposit_wei_per_hour": None}


def test_a_stopped_provider_gets_null_terms_and_a_warning_not_a_failure(ansible, providers):
    control("stop", name="us")
    try:
        wait_until(lambda: http("GET", f"{discovery_url()}/api/v1/advertisements/{providers['us']['provider_id']}")[0]
                   == 200, what="US still advertised")
        # The stopped provider refuses at once; the budget only has to fit SE's answer on a busy machine.
        result = ansible.module("golem_provider_info", {"payment_terms_timeout": 60})
    finally:
        control("start", name="us")
    assert not result["failed"], result.get("msg")
    by_id = {p["provider_id"]: p for p in result["providers"]}
    assert by_id[providers["us"]["provider_id"]]["payment_terms"] is None
    assert by_id[providers["se"]["provider_id"]]["payment_terms"]["requires_payment"] is True
    # The ad-hoc CLI prints warnings on stderr, wrapped: join the lines before looking.
    warned = " ".join(result["_stderr"].split())
    assert f"no payment terms for provider {providers['us']['provider_id']}" in warned, result["_stderr"]
    assert "connection refused" in warned, result["_stderr"]
