# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_provider_info on Golem Base, in-process, against recorded node answers (tests/unit/golem_base_node.py)."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from ansible.module_utils.testing import patch_module_args
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.modules import golem_provider_info

BASE = 'golem_type="provider" && golem_network="mainnet" && golem_payments_network="l2.holesky"'
Load = Callable[[str], Any]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., dict[str, Any]]:
    def run_module(**args: Any) -> dict[str, Any]:
        # The recorded adverts name addresses nobody serves here; asking them is tested in test_provider_terms.py.
        args.setdefault("payment_terms", False)
        with patch_module_args(args), pytest.raises(SystemExit):
            golem_provider_info.main()
        return json.loads(capsys.readouterr().out)

    return run_module


@pytest.fixture
def node(golem_base_node: Any) -> Any:
    for country in ("SE", "US"):
        golem_base_node.add(country, golem_base_node.recorded_advert(country))
    return golem_base_node


def warnings_of(result: dict[str, Any]) -> list[str]:
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def test_golem_base_is_the_default_and_lists_what_central_lists_for_the_same_adverts(
    run: Any, node: Any, httpserver: HTTPServer, fixture_json: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/api/v1/advertisements").respond_with_json(
        fixture_json("discovery_list_with_golem_base.json"))
    monkeypatch.setenv("GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL", node.url)
    monkeypatch.setenv("GOLEM_REQUESTOR_DISCOVERY_URL", httpserver.url_for("").rstrip("/"))
    on_chain = run(size="medium")
    assert node.queries == [BASE + " && golem_cpu>=2 && golem_memory>=4 && golem_storage>=20"]
    central = run(size="medium", discovery_backend="central")
    listed = {p["provider_id"]: p for p in central["providers"]}
    assert [p["provider_id"] for p in on_chain["providers"]] == [p for p in listed if listed[p]["pricing"]]
    for mine in on_chain["providers"]:
        # Golem Base has no advert timestamps; discovery 0.1.25 drops the platform.
        assert {**mine, "updated_at": None, "platform": None} == {**listed[mine["provider_id"]], "updated_at": None}


def test_the_clis_variable_and_spelling_pick_the_backend(run: Any, node: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_DISCOVERY_DRIVER", "golem-base")
    monkeypatch.setenv("GOLEM_REQUESTOR_NETWORK", "mainnet")
    monkeypatch.setenv("GOLEM_REQUESTOR_PAYMENTS_NETWORK", "l2.holesky")
    result = run(golem_base_rpc_url=node.url, country="SE", platform="x86_64")
    assert [p["country"] for p in result["providers"]] == ["SE"]
    assert node.queries == [BASE + ' && golem_country="SE" && golem_platform="x86_64"']


def test_all_payments_networks_drops_the_payments_term(run: Any, node: Any) -> None:
    run(golem_base_rpc_url=node.url, all_payments_networks=True, network="testnet", payments_network="ignored")
    assert node.queries == ['golem_type="provider" && golem_network="testnet"']


def test_malformed_entities_are_warned_about_and_the_good_ones_listed(run: Any, node: Any) -> None:
    bad = node.recorded_advert("SE")
    bad["numericAnnotations"] = [a for a in bad["numericAnnotations"] if a["key"] != "golem_storage"]
    key = node.add("bad", bad)
    result = run(golem_base_rpc_url=node.url)
    assert not result.get("failed") and len(result["providers"]) == 2
    [warning] = warnings_of(result)
    assert f"entity {key}, whose numeric annotation golem_storage is missing" in warning
    assert warning.startswith("skipped the advertisement of provider 0x")


@pytest.mark.parametrize("env, args, field, shown", [
    ({"GOLEM_REQUESTOR_DISCOVERY_DRIVER": "ipfs"}, {}, "discovery_backend", "ipfs (from GOLEM_REQUESTOR_DISCOVERY_DRIVER)"),
    ({"GOLEM_REQUESTOR_NETWORK": "holesky"}, {}, "network", "holesky (from GOLEM_REQUESTOR_NETWORK)"),
    # golem-base (the CLI's spelling) is accepted since issue #21; a spelling of neither is still refused.
    ({}, {"discovery_backend": "golembase"}, "discovery_backend", "golembase"),
    ({}, {"golem_base_rpc_url": "ws://127.0.0.60:1/rpc/ws"}, "golem_base_rpc_url", "'ws://127.0.0.60:1/rpc/ws'"),
    ({}, {"payments_network": 'l2" || golem_type="provider'}, "payments_network", "'l2\" || golem_type=\"provider'"),
    ({"GOLEM_REQUESTOR_PAYMENTS_NETWORK": "l2 holesky"}, {}, "payments_network", "'l2 holesky'"),
])
def test_bad_discovery_settings_are_named_before_any_request(
    run: Any, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: dict[str, Any],
    field: str, shown: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run(**{"golem_base_rpc_url": httpserver.url_for("/rpc"), **args})
    assert result["failed"] and field in result["msg"] and shown in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result) and len(httpserver.log) == 0


def test_a_node_that_is_not_a_golem_base_fails_with_its_url(
    run: Any, httpserver: HTTPServer, fixture_json: Load
) -> None:
    httpserver.expect_request("/", method="POST").respond_with_json(fixture_json("golem_base_query_on_anvil_32601.json"))
    url = httpserver.url_for("/").rstrip("/")
    result = run(golem_base_rpc_url=url, timeout=5)
    assert result["failed"] and "is not a Golem Base node" in result["msg"]
    assert result["failure"] == {"kind": "discovery", "url": url, "method": "POST"}
