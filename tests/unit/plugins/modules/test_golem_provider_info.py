# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_provider_info end to end, in-process, against a stand-in discovery serving recorded answers."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from ansible.module_utils.testing import patch_module_args
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.modules import golem_provider_info

ADS = "/api/v1/advertisements"
Load = Callable[[str], Any]

# The three providers in tests/unit/fixtures/discovery_list.json (recorded from discovery 0.1.25).
SE_4CPU = "0x1b2e9b1f4c0d5a8e7f3a6c2d9e0b4a7c1f5d8e3a"  # 4/8/80, 5.0 + 2.0 + 0.1 USD a month per unit
DE_2CPU = "0x7d4c2a9e5b1f3d8c6a0e2b4f7c9d1a3e5b8f0c2d"  # 2/4/40, 3.5 + 1.25 + 0.05 USD
SE_MVP = "0x3e8a5c1d7b9f2e4a6c0d8b1f3e5a7c9d2b4f6a8e"  # 1/2/20, no pricing


@pytest.fixture
def run(httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]) -> Callable[..., dict[str, Any]]:
    def run_module(*, env_only: bool = False, **args: Any) -> dict[str, Any]:
        if not env_only:
            args.setdefault("discovery_url", httpserver.url_for("").rstrip("/"))
            # These are central discovery's recorded answers; Golem Base's are in test_discovery_golem_base.py.
            args.setdefault("discovery_backend", "central")
        # The recorded ads name addresses nobody serves here; asking them is tested in test_provider_terms.py.
        args.setdefault("payment_terms", False)
        with patch_module_args(args), pytest.raises(SystemExit):
            golem_provider_info.main()
        return json.loads(capsys.readouterr().out)

    return run_module


def ids(result: dict[str, Any]) -> list[str]:
    return [p["provider_id"] for p in result["providers"]]


def warnings_of(result: dict[str, Any]) -> list[str]:
    # ansible-core 2.19 returns structured warnings: {"event": {"msg": ...}, ...}.
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def test_lists_all_providers_cheapest_first_with_small_estimates(
    run: Any, httpserver: HTTPServer, fixture_json: Load
) -> None:
    httpserver.expect_request(ADS, query_string="").respond_with_json(fixture_json("discovery_list.json"))
    result = run()
    assert result["changed"] is False
    assert result["estimate_for"] == {"cpu": 1, "memory": 1, "storage": 10}
    # small: DE 3.5+1.25+0.5 = 5.25, SE 5+2+1 = 8.0, MVP has no prices and comes last.
    assert ids(result) == [DE_2CPU, SE_4CPU, SE_MVP]
    de = result["providers"][0]
    assert de == {
        "provider_id": DE_2CPU,
        "ip_address": "127.0.1.12",
        "provider_url": "http://127.0.1.12:7466",
        "country": "DE",
        "platform": None,
        "resources": {"cpu": 2, "memory": 4, "storage": 40},
        "pricing": {
            "usd_per_core_month": 3.5,
            "usd_per_gb_ram_month": 1.25,
            "usd_per_gb_storage_month": 0.05,
            "glm_per_core_month": 0.0,
            "glm_per_gb_ram_month": 0.0,
            "glm_per_gb_storage_month": 0.0,
        },
        "estimate": {"usd_per_month": 5.25, "usd_per_hour": 0.007192, "glm_per_month": 0.0},
        "updated_at": "2026-11-27T08:07:51.228781+00:00",
        "payment_terms": None,
    }
    assert result["providers"][2]["pricing"] is None and result["providers"][2]["estimate"] is None


def test_minimums_go_to_discovery_and_drive_the_estimate(run: Any, httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS, query_string="cpu=2&memory=4").respond_with_json(
        fixture_json("discovery_list_cpu2_memory4.json")
    )
    result = run(cpu=2, memory=4)
    assert result["estimate_for"] == {"cpu": 2, "memory": 4, "storage": 10}
    assert ids(result) == [DE_2CPU, SE_4CPU]
    # SE: 2*5 + 4*2 + 10*0.1 = 19 USD, 2*20 + 4*8 + 10*0.4 = 76 GLM.
    assert result["providers"][1]["estimate"] == {
        "usd_per_month": 19.0,
        "usd_per_hour": 0.026027,
        "glm_per_month": 76.0,
    }


def test_size_is_sent_as_minimums(run: Any, httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS, query_string="cpu=4&memory=8&storage=40").respond_with_json(
        [fixture_json("discovery_list.json")[0]]
    )
    result = run(size="large")
    assert ids(result) == [SE_4CPU]
    assert result["providers"][0]["estimate"]["usd_per_month"] == 40.0  # 4*5 + 8*2 + 40*0.1


def test_country_goes_to_discovery(run: Any, httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS, query_string="country=DE").respond_with_json(
        fixture_json("discovery_list_country_de.json")
    )
    assert ids(run(country="DE")) == [DE_2CPU]


def test_ads_discovery_should_have_filtered_out_are_dropped(
    run: Any, httpserver: HTTPServer, fixture_json: Load
) -> None:
    # A server that ignores the filters returns everything; the module still honours them.
    httpserver.expect_request(ADS).respond_with_json(fixture_json("discovery_list.json"))
    assert ids(run(cpu=2, country="SE")) == [SE_4CPU]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("price", [DE_2CPU, SE_4CPU, SE_MVP]),
        ("cpu", [SE_4CPU, DE_2CPU, SE_MVP]),
        ("memory", [SE_4CPU, DE_2CPU, SE_MVP]),
        ("storage", [SE_4CPU, DE_2CPU, SE_MVP]),
        ("country", [DE_2CPU, SE_4CPU, SE_MVP]),  # SE tie broken by provider id: 0x1b... < 0x3e...
        ("updated", [SE_MVP, DE_2CPU, SE_4CPU]),
    ],
)
def test_sort(run: Any, httpserver: HTTPServer, fixture_json: Load, sort: str, expected: list[str]) -> None:
    httpserver.expect_request(ADS).respond_with_json(fixture_json("discovery_list.json"))
    assert ids(run(sort=sort)) == expected


def test_limit_applies_after_sorting(run: Any, httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS).respond_with_json(fixture_json("discovery_list.json"))
    assert ids(run(sort="cpu", limit=2)) == [SE_4CPU, DE_2CPU]


def test_max_price_keeps_only_providers_proven_cheap_enough(
    run: Any, httpserver: HTTPServer, fixture_json: Load
) -> None:
    httpserver.expect_request(ADS).respond_with_json(fixture_json("discovery_list.json"))
    assert ids(run(max_price_usd_month=6)) == [DE_2CPU]
    assert ids(run(max_price_usd_month=8.0)) == [DE_2CPU, SE_4CPU]
    assert ids(run(max_price_usd_month=1)) == []


def test_malformed_ad_is_skipped_with_a_warning_naming_the_provider(
    run: Any, httpserver: HTTPServer, fixture_json: Load
) -> None:
    body = fixture_json("discovery_list.json")
    body.insert(0, dict(body[0], provider_id="0xbad", resources={"cpu": "abc", "memory": 1, "storage": 10}))
    httpserver.expect_request(ADS).respond_with_json(body)
    result = run()
    assert ids(result) == [DE_2CPU, SE_4CPU, SE_MVP]
    [warning] = warnings_of(result)
    assert warning.startswith("skipped the advertisement of provider 0xbad: discovery http://127.0.0.60:")
    assert "field 'resources.cpu' is 'abc'" in warning


def test_platform_filter_leaves_out_ads_without_platform_and_says_why(
    run: Any, httpserver: HTTPServer, fixture_json: Load
) -> None:
    body = fixture_json("discovery_list.json")
    body[0]["platform"] = "x86_64"
    body[1]["platform"] = "arm64"
    httpserver.expect_request(ADS, query_string="platform=arm64").respond_with_json(body)
    result = run(platform="arm64")
    assert ids(result) == [DE_2CPU]
    [warning] = warnings_of(result)
    assert warning.startswith("left out 1 provider(s) whose advertisement states no platform")


def test_provider_port_shapes_the_provider_url(run: Any, httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS).respond_with_json([fixture_json("discovery_one.json")])
    assert run(provider_port=8080)["providers"][0]["provider_url"] == "http://127.0.1.12:8080"


def test_check_mode_still_reads(run: Any, httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS).respond_with_json(fixture_json("discovery_list.json"))
    result = run(_ansible_check_mode=True)
    assert result["changed"] is False and len(result["providers"]) == 3


def test_discovery_url_from_environment(
    run: Any, httpserver: HTTPServer, fixture_json: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request(ADS).respond_with_json(fixture_json("discovery_list_country_de.json"))
    monkeypatch.setenv("GOLEM_REQUESTOR_DISCOVERY_URL", httpserver.url_for("").rstrip("/"))
    monkeypatch.setenv("GOLEM_REQUESTOR_DISCOVERY_DRIVER", "central")  # the CLI's variable and spelling
    monkeypatch.setenv("GOLEM_REQUESTOR_PROVIDER_PORT", "7000")
    result = run(env_only=True)
    assert result["providers"][0]["provider_url"] == "http://127.0.1.12:7000"


def test_discovery_http_error_fails_naming_url_and_reason(run: Any, httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS).respond_with_json(fixture_json("discovery_list_400_adv002.json"), status=400)
    result = run(country="SE")
    url = httpserver.url_for(ADS) + "?country=SE"
    assert result["failed"] is True
    assert result["msg"] == (
        f"discovery request GET {url} failed: HTTP 400 BAD REQUEST: Resource requirements must be >= 1 (ADV_002)"
    )
    assert result["failure"]["kind"] == "discovery" and result["failure"]["status"] == 400
    assert result["failure"]["url"] == url
    assert "exception" not in result  # an expected error, not a crash


def test_unreachable_discovery_fails_with_the_cause(run: Any, closed_port: int, fast_retries: None) -> None:
    result = run(discovery_url=f"http://127.0.0.60:{closed_port}")
    assert result["failed"] is True
    assert f"connection refused by 127.0.0.60:{closed_port}" in result["msg"]
    assert result["msg"].endswith("check discovery_url and that the discovery service is up")


def test_non_json_discovery_fails(run: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_data("<html>hello</html>", content_type="text/html")
    result = run()
    assert result["failed"] is True and "answer is not JSON (text/html" in result["msg"]


@pytest.mark.parametrize(
    ("args", "field", "msg"),
    [
        (
            {"discovery_url": "ftp://example.com"},
            "discovery_url",
            "discovery_url 'ftp://example.com' must be an http://",
        ),
        ({"discovery_url": "example.com:9001"}, "discovery_url", "discovery_url 'example.com:9001' must be an http://"),
        (
            {"discovery_url": "http://example.com:99999"},
            "discovery_url",
            "discovery_url 'http://example.com:99999' has a port outside 1-65535",
        ),
        ({"provider_port": 0}, "provider_port", "provider_port 0 is outside 1-65535"),
        ({"timeout": 0}, "timeout", "timeout 0 must be more than 0 seconds"),
        ({"cpu": 0}, "cpu", "cpu is 0: a minimum must be a whole number of at least 1"),
        ({"limit": 0}, "limit", "limit is 0: it must be at least 1"),
        ({"max_price_usd_month": -1}, "max_price_usd_month", "max_price_usd_month is -1: it cannot be negative"),
    ],
)
def test_bad_options_fail_before_any_request(
    run: Any, httpserver: HTTPServer, args: dict[str, Any], field: str, msg: str
) -> None:
    result = run(**args)
    assert result["failed"] is True
    assert result["msg"].startswith(msg)
    assert result["failure"]["field"] == field
    assert httpserver.log == []


def test_size_and_cpu_are_mutually_exclusive(run: Any) -> None:
    result = run(size="small", cpu=2)
    assert result["failed"] is True and "mutually exclusive" in result["msg"]


@pytest.mark.parametrize(("flag", "library"), [("HAS_PYDANTIC", "pydantic >= 2"), ("HAS_REQUESTS", "requests")])
def test_missing_library_is_named(
    run: Any, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, flag: str, library: str
) -> None:
    from ansible_collections.golem.vm.plugins.module_utils import _base

    monkeypatch.setattr(_base, flag, False)
    result = run()
    assert result["failed"] is True
    assert f"Failed to import the required Python library ({library}" in result["msg"]
    assert httpserver.log == []


def test_a_missing_library_fails_like_any_other_error_with_its_traceback(
    run: Any, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ansible_collections.golem.vm.plugins.module_utils import _base

    monkeypatch.setattr(_base, "HAS_REQUESTS", False)
    monkeypatch.setattr(_base, "REQUESTS_IMPORT_ERROR", "Traceback: ModuleNotFoundError: No module named 'requests'")
    # As with ANSIBLE_DISPLAY_TRACEBACK=error: only then does a module's result carry ``exception``.
    monkeypatch.setattr("ansible.module_utils._internal._traceback.is_traceback_enabled", lambda _event: True)
    result = run()
    assert result["failure"] == {"kind": "missing_library"}
    assert "No module named 'requests'" in result["exception"] and httpserver.log == []
