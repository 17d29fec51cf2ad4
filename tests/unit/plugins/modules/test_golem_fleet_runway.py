# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_fleet's runway_hours end to end in-process: options checked before any call, and check mode over a fake
chain RPC (it refuses transactions), reading each paid member's stream and billing the top-ups.

Paying is tested against golem_stream's fake contract in tests/unit/plugins/module_utils/test_fleet_runway.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from ansible.module_utils.testing import patch_module_args
from fake_rpc import FakeRPC
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.modules import golem_fleet

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PROVIDER = "0xf5A702BD368B3BE8019ddAC136691089d69BF974"
ME = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RATE = 12_176_560_121_765
HOUR = 3600
PAYING_CALLS = {"eth_sendRawTransaction", "eth_estimateGas", "eth_getTransactionCount", "eth_maxPriorityFeePerGas"}


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    state = StateStore(str(tmp_path / "vms.db"))
    for index, status in ((1, "running"), (2, "running"), (3, "abandoned")):
        name = f"web-0{index}"
        state.upsert(VMRecord(name, "127.0.0.60", name, status, {
            "cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_id": PROVIDER, "provider_port": 7466,
            "stream_id": index, "stream_contract": CONTRACT, "stream_opened": True, "stream_sender": ME,
            "labels": {"golem.vm/fleet": "web"}}))
    return state


@pytest.fixture
def run(httpserver: HTTPServer, store: StateStore, capsys: pytest.CaptureFixture[str]) -> Callable[..., dict[str, Any]]:
    def run_module(**args: Any) -> dict[str, Any]:
        # Two members; the abandoned row is not one (its stand-in would be web-04).
        args = {"name": "web", "count": 2, "verify": False, "state_path": store.path,
                "payments_rpc_url": httpserver.url_for("/rpc"), "discovery_backend": "central",
                "discovery_url": "http://127.0.0.1:9", **args}
        with patch_module_args(args), pytest.raises(SystemExit):
            golem_fleet.main()
        return json.loads(capsys.readouterr().out)

    return run_module


def test_check_mode_reads_the_members_streams_and_bills_only_the_low_ones(run: Any, chain: FakeRPC) -> None:
    chain.add(1, sender=ME, recipient=PROVIDER, left=HOUR, rate=RATE)
    chain.add(2, sender=ME, recipient=PROVIDER, left=30 * HOUR, rate=RATE)
    chain.add(3, sender=ME, recipient=PROVIDER, left=60, rate=RATE)
    result = run(runway_hours=24, _ansible_check_mode=True, _ansible_diff=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and not PAYING_CALLS & set(chain.calls), chain.calls
    assert [line["name"] for line in result["topped_up"]] == ["web-01"], "30 h is enough; abandoned is never paid"
    assert result["top_up_bill"] == {"members": {"web-01": {
        "stream_id": 1, "contract": CONTRACT, "remaining_seconds_before": HOUR, "remaining_seconds_after": 24 * HOUR,
        "seconds_added": 23 * HOUR, "hours_added": 23.0, "wei": RATE * 23 * HOUR, "rate_wei_per_second": RATE,
        "glm_per_month": round(RATE * 730 * HOUR / 10 ** 18, 8)}}, "wei": RATE * 23 * HOUR, "max_glm_per_month": 500.0}
    assert result["bill"]["members"] == {}, "nothing is created"
    assert result["diff"]["after"]["web-01"]["top_up"]["wei"] == RATE * 23 * HOUR
    assert any(a.startswith("would top up stream 1 of VM web-01") for a in result["actions"])


def test_without_runway_hours_no_stream_is_read(run: Any, chain: FakeRPC) -> None:
    result = run(_ansible_check_mode=True)
    assert result["changed"] is False and result["topped_up"] == [] and "top_up_bill" not in result
    assert chain.calls == []


@pytest.mark.parametrize(("args", "field", "text"), [
    ({"runway_hours": 0}, "runway_hours", "runway_hours 0 must be a whole number of hours"),
    ({"runway_hours": 2, "top_up_below_hours": 3}, "top_up_below_hours", "top_up_below_hours 3"),
    ({"top_up_below_hours": 3}, "top_up_below_hours", "top_up_below_hours needs runway_hours"),
])
def test_bad_runway_options_fail_naming_the_field_before_any_call(run: Any, chain: FakeRPC, args: dict, field: str,
                                                                  text: str) -> None:
    result = run(**args)
    assert result["failed"] is True and result["failure"]["field"] == field and text in result["msg"], result["msg"]
    assert chain.calls == [] and "exception" not in result
