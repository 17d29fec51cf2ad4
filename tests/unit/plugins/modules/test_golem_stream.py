# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_stream end to end in-process: options, check mode, diff and the provider's view, over a fake chain RPC.

No transaction is ever sent here (the fake chain refuses them); paying is tested on the real chain in
tests/integration/test_golem_stream.py.
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
from ansible_collections.golem.vm.plugins.modules import golem_stream

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PROVIDER = "0xf5A702BD368B3BE8019ddAC136691089d69BF974"
# anvil's well-known first dev key: public knowledge, never a real account's.
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ME = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RATE = 12_176_560_121_765
PAYING_CALLS = {"eth_sendRawTransaction", "eth_estimateGas", "eth_getTransactionCount", "eth_maxPriorityFeePerGas"}


@pytest.fixture
def store(tmp_path: Path, httpserver: HTTPServer) -> StateStore:
    state = StateStore(str(tmp_path / "vms.db"))
    state.upsert(VMRecord("web-1", "127.0.0.60", "web-1", "running", {
        "cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_id": PROVIDER,
        "provider_port": httpserver.port, "stream_id": 7, "stream_contract": CONTRACT, "stream_opened": True}))
    return state


@pytest.fixture
def run(httpserver: HTTPServer, store: StateStore, capsys: pytest.CaptureFixture[str]) -> Callable[..., dict[str, Any]]:
    def run_module(**args: Any) -> dict[str, Any]:
        args.setdefault("state_path", store.path)
        args.setdefault("payments_rpc_url", httpserver.url_for("/rpc"))
        with patch_module_args(args), pytest.raises(SystemExit):
            golem_stream.main()
        out = capsys.readouterr().out
        assert KEY[2:] not in out.lower(), "the private key must never be in the output"
        result = json.loads(out)
        result["_out"] = out
        return result

    return run_module


def stream_view(httpserver: HTTPServer, body: Any, status: int = 200) -> None:
    httpserver.expect_request("/api/v1/vms/web-1/stream").respond_with_json(body, status=status)


def test_check_mode_and_diff_show_the_top_up_and_send_nothing(run: Any, chain: FakeRPC, httpserver: HTTPServer) -> None:
    chain.add(7, sender=ME, recipient=PROVIDER, left=1200, rate=RATE)
    stream_view(httpserver, {"vm_id": "web-1", "stream_id": 7, "verified": True, "reason": "ok",
                             "computed": {"now": chain.now, "remaining_seconds": 1200}})
    result = run(name="web-1", runway_hours=2, ethereum_private_key=KEY, _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] is True and not result.get("failed"), result.get("msg")
    assert result["top_up"]["amount_wei"] == RATE * 6000 and result["tx"] is None
    assert not PAYING_CALLS & set(chain.calls), chain.calls
    assert result["diff"]["before"]["remaining_seconds"] == 1200 and result["diff"]["after"]["remaining_seconds"] == 7200
    assert result["stream"]["stop_time"] == chain.now + 1200, "in check mode the stream is as it was read"
    assert result["provider_view"] == {"verified": True, "reason": "ok", "remaining_seconds": 1200, "stream_id": 7}
    # ansible-core 2.19 echoes the arguments (no_log hides the key); 2.21 no longer does. The key is never in the
    # output either way (checked by run_module).
    if "invocation" in result:
        assert result["invocation"]["module_args"]["ethereum_private_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_reading_needs_no_key(run: Any, chain: FakeRPC, httpserver: HTTPServer) -> None:
    chain.add(7, sender=ME, recipient=PROVIDER, left=5000, rate=RATE)
    stream_view(httpserver, {"detail": "no stream mapped for this VM"}, status=404)
    result = run(name="web-1")
    assert result["changed"] is False and result["stream"]["remaining_seconds"] == 5000
    assert result["stream"]["sender"] == ME and result["stream"]["contract"] == CONTRACT
    view = result["provider_view"]
    assert view["verified"] is None and "no stream mapped to VM web-1 (HTTP 404)" in view["reason"]


def test_enough_runway_is_no_change_even_without_a_key(run: Any, chain: FakeRPC, httpserver: HTTPServer) -> None:
    chain.add(7, sender=ME, recipient=PROVIDER, left=7000, rate=RATE)
    stream_view(httpserver, {"detail": "streaming payments not enabled on this provider"}, status=400)
    result = run(name="web-1", runway_hours=2, top_up_below_hours=1)
    assert result["changed"] is False and result["top_up"] == {} and not PAYING_CALLS & set(chain.calls)
    assert "streaming payments not enabled" in result["provider_view"]["reason"], "a provider error is a reason"


def test_a_real_run_without_a_key_fails_before_paying(run: Any, chain: FakeRPC, httpserver: HTTPServer) -> None:
    chain.add(7, sender=ME, recipient=PROVIDER, left=100, rate=RATE)
    result = run(name="web-1", runway_hours=1)
    assert result["failed"] is True and result["failure"]["field"] == "ethereum_private_key"
    assert "needs ethereum_private_key" in result["msg"] and not PAYING_CALLS & set(chain.calls)
    assert "exception" not in result, "an expected error, not a traceback"


def test_a_stream_at_another_chain_s_address_fails_clearly(run: Any, chain: FakeRPC) -> None:
    result = run(stream_id=3, stream_payment_address="0x" + "11" * 20)
    assert result["failed"] is True and "there is no StreamPayment contract at 0x1111" in result["msg"]


@pytest.mark.parametrize(("args", "field", "text"), [
    ({"name": "web-1", "runway_hours": 0}, "runway_hours", "runway_hours 0 must be a whole number of hours"),
    ({"name": "web-1", "runway_hours": 1, "top_up_below_hours": 2}, "top_up_below_hours", "top_up_below_hours 2"),
    ({"stream_id": 4}, "stream_payment_address", "stream 4 is given by id: give stream_payment_address"),
    ({"name": "nope-1"}, "name", "VM nope-1 is not in the state file"),
    ({"name": "web-1", "ethereum_private_key": "0x1234"}, "ethereum_private_key", "is not a private key"),
])
def test_bad_input_fails_naming_the_field_before_any_call(run: Any, chain: FakeRPC, args: dict, field: str,
                                                          text: str) -> None:
    result = run(**args)
    assert result["failed"] is True and result["failure"]["field"] == field and text in result["msg"], result["msg"]
    assert chain.calls == [] and "exception" not in result


def test_name_or_stream_id_is_required(run: Any) -> None:
    result = run(runway_hours=1)
    assert result["failed"] is True and "one of the following is required: name, stream_id" in result["msg"]


def test_an_abandoned_member_is_never_topped_up(run: Any, chain: FakeRPC, store: StateStore) -> None:
    store.set_status("web-1", "abandoned")
    chain.add(7, sender=ME, recipient=PROVIDER, left=100, rate=RATE)
    for check in (True, False):
        result = run(name="web-1", runway_hours=2, ethereum_private_key=KEY, _ansible_check_mode=check)
        assert result["failed"] is True and result["failure"]["field"] == "name", result["msg"]
        assert result["msg"].startswith("VM web-1 has status abandoned: golem_fleet gave up on it"), result["msg"]
        assert chain.calls == [] and "exception" not in result, "refused before the chain is asked"
