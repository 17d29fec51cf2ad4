# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Golem Base discovery driver against recorded node answers: the query, the request count,
expiry, and the node's errors. Malformed entities: test_golem_base_adverts.py."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from golem_base_node import advert
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.discovery.backends import open_discovery
from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base import GolemBaseDiscovery
from ansible_collections.golem.vm.plugins.module_utils.discovery.listing import represent_provider
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.jsonrpc import BATCH_LIMIT
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement

BASE = 'golem_type="provider" && golem_network="mainnet" && golem_payments_network="l2.holesky"'
Load = Callable[[str], Any]


def test_the_query_holds_every_filter_as_upstreams_cli_writes_it() -> None:
    gb = GolemBaseDiscovery("http://127.0.0.60:1/rpc")
    assert gb.query() == BASE
    assert gb.query(cpu=2, memory=4, storage=20, country="SE", platform="x86_64") == (
        BASE + ' && golem_cpu>=2 && golem_memory>=4 && golem_storage>=20 && golem_country="SE"'
        ' && golem_platform="x86_64"')
    assert gb.query(provider_id="0xAb12") == BASE + ' && golem_provider_id="0xAb12"'
    # all_payments_networks drops the payments term, as the CLI's --all-payments does.
    anywhere = GolemBaseDiscovery("http://127.0.0.60:1/rpc", network="testnet", payments_network=None)
    assert anywhere.query(cpu=1) == 'golem_type="provider" && golem_network="testnet" && golem_cpu>=1'


@pytest.mark.parametrize("field, value", [("platform", 'x86_64" || golem_type="provider'), ("country", "S E"),
                                          ("provider_id", "0x1)"), ("platform", "")])
def test_a_value_that_would_need_quoting_is_refused_naming_it(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as err:
        GolemBaseDiscovery("http://127.0.0.60:1/rpc").query(**{field: value})
    assert err.value.field == field and repr(value) in err.value.msg


def test_lists_the_recorded_adverts_as_central_discovery_lists_them(golem_base_node: Any, fixture_json: Load) -> None:
    node = golem_base_node
    for country in ("SE", "US"):
        node.add(country, node.recorded_advert(country))
    ads = node.discovery().list_advertisements(cpu=2, country=None)
    assert node.queries == [BASE + " && golem_cpu>=2"]
    central = {ad["provider_id"]: ad for ad in fixture_json("discovery_list_with_golem_base.json")}
    # Central also lists the MVP-era provider, which has no Golem Base advertiser (and no prices).
    [mvp] = set(central) - {ad.provider_id for ad in ads}
    assert len(ads) == 2 and central[mvp]["pricing"] is None
    for ad in ads:
        mine = represent_provider(ad, provider_port=7466, spec=SIZES["small"])
        theirs = represent_provider(Advertisement.model_validate(central[ad.provider_id]), provider_port=7466,
                                    spec=SIZES["small"])
        # Central stamps when it was told; Golem Base has blocks, not times. discovery 0.1.25 drops the platform.
        assert mine["updated_at"] is None and mine["platform"] == "x86_64" and theirs["platform"] is None
        assert {**mine, "updated_at": None, "platform": None} == {**theirs, "updated_at": None}


@pytest.mark.parametrize("count", [0, 1, 50, BATCH_LIMIT - 1])
def test_a_lookup_costs_two_http_requests_however_many_advertise(golem_base_node: Any, count: int) -> None:
    node = golem_base_node
    for i in range(count):
        node.add(f"0x{i:064x}", advert(f"0x{i + 1:040x}"))
    ads = node.discovery().list_advertisements()
    assert len(ads) == count
    # No hit: the query alone. Else the query, then eth_blockNumber and every metadata read in one batch.
    assert len(node.bodies) == (1 if count == 0 else 2)
    if count:
        assert isinstance(node.bodies[1], list) and len(node.bodies[1]) == count + 1


def test_past_the_nodes_batch_limit_the_metadata_is_read_in_more_batches(golem_base_node: Any) -> None:
    node = golem_base_node
    for i in range(BATCH_LIMIT + 5):
        node.add(f"0x{i:064x}", advert(f"0x{i + 1:040x}"))
    assert len(node.discovery().list_advertisements()) == BATCH_LIMIT + 5
    assert [len(b) for b in node.bodies[1:]] == [BATCH_LIMIT, 6]


def test_an_advert_whose_ttl_has_passed_is_never_returned(golem_base_node: Any) -> None:
    node = golem_base_node
    node.add("live", advert("0x" + "11" * 20, expires=node.head + 1))
    node.add("dead", advert("0x" + "22" * 20, expires=node.head))
    warnings: list[str] = []
    ads = node.discovery().list_advertisements(on_invalid=lambda pid, exc: warnings.append(exc.msg))
    assert [ad.provider_id for ad in ads] == ["0x" + "11" * 20] and warnings == []
    assert node.discovery().get_advertisement("0x" + "22" * 20) is None


def test_of_two_adverts_of_one_provider_the_one_renewed_last_counts(golem_base_node: Any) -> None:
    node = golem_base_node
    node.add("old", advert("0x" + "11" * 20, cpu=2, expires=node.head + 10))
    node.add("new", advert("0x" + "11" * 20, cpu=8, expires=node.head + 500))
    [ad] = node.discovery().list_advertisements()
    assert ad.resources.cpu == 8


def test_get_advertisement_asks_for_that_provider_only(golem_base_node: Any) -> None:
    node = golem_base_node
    se = node.recorded_advert("SE")
    node.add("se", se)
    provider_id = next(a["value"] for a in se["stringAnnotations"] if a["key"] == "golem_provider_id")
    ad = node.discovery().get_advertisement(provider_id)
    assert ad is not None and ad.country == "SE" and ad.pricing is not None and ad.pricing.glm_per_core_month == 20.0
    assert node.queries == [BASE + f' && golem_provider_id="{provider_id}"']
    node.entities.clear()
    assert node.discovery().get_advertisement(provider_id) is None


def test_metadata_the_node_does_not_give_is_skipped_naming_the_entity(golem_base_node: Any) -> None:
    node = golem_base_node
    node.add("kept", advert("0x" + "11" * 20))
    gone = "0x" + "dd" * 32
    node.vanished.append(gone)  # listed by the query, "not found" in the batch (the recorded error)
    warnings: list[tuple[Any, str]] = []
    ads = node.discovery().list_advertisements(on_invalid=lambda pid, exc: warnings.append((pid, exc.msg)))
    assert [ad.provider_id for ad in ads] == ["0x" + "11" * 20]
    [(pid, msg)] = warnings
    assert pid is None
    assert msg == (f"Golem Base {node.url} did not give the metadata of entity {gone}: entity {gone} not found "
                   "(JSON-RPC error -32000)")


def test_an_ethereum_node_that_is_not_a_golem_base_gets_its_own_message(
    httpserver: HTTPServer, fixture_json: Load
) -> None:
    httpserver.expect_request("/", method="POST").respond_with_json(fixture_json("golem_base_query_on_anvil_32601.json"))
    url = httpserver.url_for("/").rstrip("/")
    with pytest.raises(DiscoveryError) as err:
        GolemBaseDiscovery(url, retries=0).list_advertisements()
    msg = err.value.msg
    assert msg.startswith(f"{url} does not know golembase_queryEntities (Method not found (JSON-RPC error -32601))")
    assert "is not a Golem Base node" in msg and "golem_base_rpc_url" in msg and "discovery_backend=central" in msg
    assert err.value.url == url


def test_a_query_the_node_refuses_names_the_node_and_its_reason(httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request("/rpc", method="POST").respond_with_json(fixture_json("golem_base_query_parse_error.json"))
    url = httpserver.url_for("/rpc")
    with pytest.raises(DiscoveryError) as err:
        GolemBaseDiscovery(url, retries=0).list_advertisements()
    assert err.value.msg == (f"Golem Base {url} refused golembase_queryEntities: failed to parse query: expected "
                             "number, found 'x' (JSON-RPC error -32000)")


@pytest.mark.parametrize("answer, says", [
    ({"jsonrpc": "2.0", "id": 0, "result": {"key": "0x1"}}, "not a list of {key, value} entities"),
    ({"providers": []}, "not a JSON-RPC 2.0 answer"),
    ([1, 2], "answered golembase_queryEntities with list, not a JSON-RPC 2.0 answer"),
])
def test_an_answer_that_is_not_the_nodes_is_a_clear_failure(httpserver: HTTPServer, answer: Any, says: str) -> None:
    httpserver.expect_request("/rpc", method="POST").respond_with_json(answer)
    with pytest.raises(DiscoveryError) as err:
        GolemBaseDiscovery(httpserver.url_for("/rpc"), retries=0).list_advertisements()
    assert says in err.value.msg and httpserver.url_for("/rpc") in err.value.msg


def test_reads_are_retried_like_gets(httpserver: HTTPServer, fast_retries: None, fixture_json: Load) -> None:
    # POSTs to a provider are never sent twice; a JSON-RPC query only reads, so it is.
    httpserver.expect_ordered_request("/rpc", method="POST").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/rpc", method="POST").respond_with_json(
        {"jsonrpc": "2.0", "id": 0, "result": []})
    assert GolemBaseDiscovery(httpserver.url_for("/rpc")).list_advertisements() == []
    assert len(httpserver.log) == 2


def test_an_unreachable_node_is_named_with_the_option_to_check(closed_port: int) -> None:
    url = f"http://127.0.0.60:{closed_port}/rpc"
    with pytest.raises(DiscoveryError) as err:
        GolemBaseDiscovery(url, retries=0).list_advertisements()
    assert err.value.msg.startswith(f"Golem Base request POST {url} failed: connection refused")
    assert "check golem_base_rpc_url" in err.value.msg


def test_open_discovery_builds_the_driver_the_options_name() -> None:
    params = {"discovery_backend": "golem_base", "golem_base_rpc_url": "http://127.0.0.60:1/rpc",
              "network": "development", "payments_network": "l2.holesky", "all_payments_networks": True,
              "discovery_url": "http://127.0.0.60:2"}
    driver = open_discovery(params, timeout=3)
    assert isinstance(driver, GolemBaseDiscovery) and driver.backend == "golem_base"
    assert driver.query() == 'golem_type="provider" && golem_network="development"'
    assert driver.source == "Golem Base http://127.0.0.60:1/rpc" and driver.http.timeout == 3
    central = open_discovery({**params, "discovery_backend": "central"})
    assert isinstance(central, DiscoveryClient) and central.url == "http://127.0.0.60:2/api/v1/advertisements"
