# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_provider_info's payment terms: each provider's GET /api/v1/provider/info, asked in one short budget.

One loopback server plays discovery and the provider (the advertisement names its address and the
module's provider_port its port); the provider's answers are the shapes upstream 0.1.63 and 0.1.31 send.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

import pytest
from ansible.module_utils.testing import patch_module_args
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES
from ansible_collections.golem.vm.plugins.module_utils.provider.models import ProviderInfo
from ansible_collections.golem.vm.plugins.module_utils.provider.payment_info import terms_of
from ansible_collections.golem.vm.plugins.modules import golem_provider_info

ADS, INFO = "/api/v1/advertisements", "/api/v1/provider/info"
PROVIDER = "0xf5a702bd368b3be8019ddac136691089d69bf974"
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ZERO = "0x" + "0" * 40
# The local network's SE prices: 20 GLM a core, 8 a GB of RAM, 0.4 a GB of disk, a month.
PRICING = {"usd_per_core_month": 5.0, "usd_per_gb_ram_month": 2.0, "usd_per_gb_storage_month": 0.1,
           "glm_per_core_month": 20.0, "glm_per_gb_ram_month": 8.0, "glm_per_gb_storage_month": 0.4}


def advert(provider_id: str = PROVIDER, pricing: dict[str, float] | None = None, priced: bool = True) -> dict[str, Any]:
    pricing = pricing if pricing is not None or not priced else dict(PRICING)
    return {"provider_id": provider_id, "ip_address": "127.0.0.60", "country": "SE",
            "resources": {"cpu": 4, "memory": 8, "storage": 80}, "pricing": pricing,
            "created_at": "2026-11-29T08:00:00", "updated_at": "2026-11-29T08:00:00"}


def info(address: str = CONTRACT, provider_id: str = PROVIDER) -> dict[str, Any]:
    return {"provider_id": provider_id, "stream_payment_address": address, "glm_token_address": ZERO,
            "eth_token_address": ZERO, "ip_address": "127.0.0.60", "country": "SE", "platform": "x86_64"}


@pytest.fixture
def run(httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]) -> Callable[..., dict[str, Any]]:
    def run_module(**args: Any) -> dict[str, Any]:
        args.setdefault("discovery_url", httpserver.url_for("").rstrip("/"))
        args.setdefault("discovery_backend", "central")  # the stand-in answers as central discovery
        args.setdefault("provider_port", httpserver.port)
        with patch_module_args(args), pytest.raises(SystemExit):
            golem_provider_info.main()
        return json.loads(capsys.readouterr().out)

    return run_module


def warnings_of(result: dict[str, Any]) -> list[str]:
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def test_a_paying_provider_shows_its_contract_and_the_rate_for_the_asked_size_to_the_wei(
        run: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_json([advert()])
    httpserver.expect_request(INFO).respond_with_json(info())
    result = run(size="medium")
    # medium: 2 cores, 4 GB, 20 GB -> 2*20 + 4*8 + 20*0.4 = 80 GLM a month, per second over 730 h, in wei.
    rate = int(80.0 / (730 * 3600) * 10 ** 18)
    assert result["providers"][0]["payment_terms"] == {
        "requires_payment": True, "stream_payment_address": CONTRACT, "glm_token_address": ZERO,
        "rate_wei_per_second": rate, "deposit_wei_per_hour": rate * 3600}
    assert rate == 30441400304414  # computed by hand from the formula, so a changed formula fails here
    assert warnings_of(result) == []


def test_an_mvp_era_provider_takes_no_payment(run: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_json([advert(priced=False)])
    httpserver.expect_request(INFO).respond_with_json({"detail": "Not Found"}, status=404)
    terms = run()["providers"][0]["payment_terms"]
    assert terms == {"requires_payment": False, "stream_payment_address": None, "glm_token_address": None,
                     "rate_wei_per_second": None, "deposit_wei_per_hour": None}


def test_a_provider_with_payments_off_has_no_rate(run: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_json([advert()])
    httpserver.expect_request(INFO).respond_with_json(info(address=ZERO))
    terms = run()["providers"][0]["payment_terms"]
    assert terms["requires_payment"] is False and terms["rate_wei_per_second"] is None
    assert terms["stream_payment_address"] == ZERO


def test_a_slow_provider_gets_null_terms_and_a_warning_within_the_budget(run: Any, httpserver: HTTPServer) -> None:
    asked, release = threading.Event(), threading.Event()

    def slow(_request: Request) -> Response:
        asked.set()
        release.wait(60)  # answers only once the task is over, however long the task took to get here
        return Response(json.dumps(info()), content_type="application/json")

    httpserver.expect_request(ADS).respond_with_json([advert()])
    httpserver.expect_request(INFO).respond_with_handler(slow)
    try:
        result = run(payment_terms_timeout=0.5)
    finally:
        release.set()
    assert result.get("failed") is not True and result["providers"][0]["payment_terms"] is None
    [warning] = warnings_of(result)
    # Either the budget's end or the request's own timeout (cut to the budget) comes first: both say so.
    assert warning.startswith("no payment terms for") and PROVIDER in warning, warning
    # The provider was asked and still held its answer when the task came back: the budget ended the wait.
    assert asked.is_set()
    # Either the budget's end or the request's own timeout (cut to what was left of it) comes first.
    assert "payment_terms_timeout" in warning or "did not answer within" in warning, warning


def test_a_server_answering_as_another_provider_is_not_believed(run: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_json([advert()])
    httpserver.expect_request(INFO).respond_with_json(info(provider_id="0x" + "12" * 20))
    result = run()
    assert result["providers"][0]["payment_terms"] is None
    [warning] = warnings_of(result)
    assert "answers GET /api/v1/provider/info as provider 0x1212" in warning, warning


def test_payment_terms_false_asks_no_provider(run: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_json([advert()])
    result = run(payment_terms=False)
    assert result["providers"][0]["payment_terms"] is None
    assert [entry[0].path for entry in httpserver.log] == [ADS]


def test_only_the_providers_left_after_limit_are_asked(run: Any, httpserver: HTTPServer) -> None:
    cheap = dict(PRICING, usd_per_core_month=1.0)
    httpserver.expect_request(ADS).respond_with_json([advert(), advert("0x" + "34" * 20, cheap)])
    httpserver.expect_request(INFO).respond_with_json(info(provider_id="0x" + "34" * 20))
    result = run(limit=1)
    assert [p["provider_id"] for p in result["providers"]] == ["0x" + "34" * 20]
    assert [entry[0].path for entry in httpserver.log].count(INFO) == 1


def test_a_bad_budget_fails_before_any_request(run: Any, httpserver: HTTPServer) -> None:
    result = run(payment_terms_timeout=0)
    assert result["failed"] is True and result["failure"]["field"] == "payment_terms_timeout"
    assert result["msg"].startswith("payment_terms_timeout 0 must be more than 0 and less than 3600 seconds")
    assert httpserver.log == []


def test_terms_without_glm_prices_require_payment_but_have_no_rate() -> None:
    paying = ProviderInfo(provider_id=PROVIDER, stream_payment_address=CONTRACT, glm_token_address=ZERO)
    terms = terms_of(paying, {"usd_per_core_month": 1.0}, SIZES["small"])
    assert terms["requires_payment"] is True and terms["rate_wei_per_second"] is None
    small = terms_of(paying, PRICING, SIZES["small"])
    # small: 20 + 8 + 10*0.4 = 32 GLM a month; what the local network's SE charges (reference 7.3).
    assert small["rate_wei_per_second"] == 12176560121765 and small["deposit_wei_per_hour"] == 43835616438354000
