# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_fleet in check mode against a discovery server: provider_selection places members in price order within
each provider's room, and each member's GLM a month, the total and the bill agree. Check mode asks no provider."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from pytest_httpserver import HTTPServer

ADS = "/api/v1/advertisements"


def advert(pid: str, ip: str, core: float | None, cpu: int) -> dict[str, Any]:
    pricing = None if core is None else {"glm_per_core_month": core, "glm_per_gb_ram_month": 1.0,
                                         "glm_per_gb_storage_month": 0.1}
    return {"provider_id": pid, "ip_address": ip, "country": "SE", "platform": "x86_64",
            "resources": {"cpu": cpu, "memory": 64, "storage": 1000}, "pricing": pricing}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY", "GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH",
                 "GOLEM_REQUESTOR_DB_PATH", "GOLEM_REQUESTOR_STATE_URL"):
        monkeypatch.delenv(name, raising=False)


def run(args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    main = importlib.import_module("ansible_collections.golem.vm.plugins.modules.golem_fleet").main
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)


def test_cheapest_check_mode_places_in_price_order_and_prices_each_member(
        tmp_path: Path, httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]) -> None:
    httpserver.expect_request(ADS).respond_with_json([
        advert("0xdear", "192.0.2.3", 9.0, 10), advert("0xmiddle", "192.0.2.2", 2.0, 3),
        advert("0xbare", "192.0.2.4", None, 10), advert("0xcheap", "192.0.2.1", 1.0, 2)])
    result = run({"name": "web", "count": 7, "provider_selection": "cheapest", "_ansible_check_mode": True,
                  "discovery_backend": "central", "discovery_url": httpserver.url_for("").rstrip("/"),
                  "ethereum_private_key": "0x" + "11" * 32, "state_path": str(tmp_path / "requestor" / "vms.db")},
                 capsys)
    assert not result.get("failed"), result
    placed = [(vm["name"], vm["provider_id"], vm["glm_per_month"]) for vm in result["vms"]]
    # small: 1 CPU, 1 GB, 10 GB; the advert without prices comes after every priced one.
    assert placed == [("web-01", "0xcheap", 3.0), ("web-02", "0xcheap", 3.0), ("web-03", "0xmiddle", 4.0),
                      ("web-04", "0xmiddle", 4.0), ("web-05", "0xmiddle", 4.0), ("web-06", "0xdear", 11.0),
                      ("web-07", "0xdear", 11.0)]
    assert result["glm_per_month_total"] == 40.0 == result["bill"]["glm_per_month"]
    assert {name: bill["glm_per_month"] for name, bill in result["bill"]["members"].items()} == {
        name: glm for name, _pid, glm in placed}
    assert len(httpserver.log) == 1  # one discovery call; no provider is asked anything


def _members(state_path: Path, prices: dict[str, float | None | str]) -> None:
    """Rows of fleet ``web``, each recording the price given (the key left out for "absent")."""
    from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
    from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore

    state_path.parent.mkdir(parents=True, exist_ok=True)
    store = SQLiteStateStore(str(state_path))
    try:
        for name, price in prices.items():
            config: dict[str, Any] = {"cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_id": "0xcheap",
                                      "provider_port": 7466, "labels": {"golem.vm/fleet": "web"}}
            if price != "absent":
                config["glm_per_month"] = price
            store.upsert(VMRecord(name, "192.0.2.1", name, "running", config))
    finally:
        store.close()


@pytest.mark.parametrize(("prices", "calls", "total"), [
    ({"web-01": 3.0, "web-02": 3.5}, 0, 6.5),
    # A row without its price (recorded before 0.3): one listing prices it at the advert's (1 + 1 + 1).
    ({"web-01": 3.0, "web-02": "absent"}, 1, 6.0),
])
def test_a_fleet_with_nothing_to_do_asks_discovery_only_for_prices_its_rows_lack(
        tmp_path: Path, httpserver: HTTPServer, capsys: pytest.CaptureFixture[str], prices: dict[str, Any],
        calls: int, total: float) -> None:
    httpserver.expect_request(ADS).respond_with_json([advert("0xcheap", "192.0.2.1", 1.0, 10)])
    state = tmp_path / "requestor" / "vms.db"
    _members(state, prices)
    result = run({"name": "web", "count": 2, "verify": False, "wait": False, "discovery_backend": "central",
                  "discovery_url": httpserver.url_for("").rstrip("/"), "state_path": str(state)}, capsys)
    assert not result.get("failed") and result["changed"] is False, result
    assert result["glm_per_month_total"] == total
    assert len(httpserver.log) == calls
