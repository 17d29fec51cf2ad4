# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory's ``refresh: true`` for paid VMs: each stream's runway from the chain, the low-runway group,
and why a paid VM is gone. The chain is a fake JSON-RPC whose answers eth-abi encodes (tests/unit/fake_rpc.py)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak
from fake_rpc import FakeRPC
from pytest_httpserver import HTTPServer
# Fixtures, used by name. pylint: disable-next=unused-import
from test_golem import (  # noqa: F401
    LOOPBACK,
    PROVIDER_SE,
    Build,
    Messages,
    _cache_options,
    closed_port,
    hostvars,
    inventory,
    members,
    messages,
    provider,
    provider_vm,
    state,
    vm,
    write_config,
)

from ansible_collections.golem.vm.plugins.module_utils.chain import runway_reads as stream_runways
from ansible_collections.golem.vm.plugins.module_utils.chain.runway_reads import (
    STREAMS_SELECTOR,
    StreamRunway,
    call_data,
    decode,
    read_runways,
)
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ME = "0x" + "ab" * 20
RATE = 10 ** 13


@pytest.fixture
def chain(provider: HTTPServer) -> FakeRPC:  # noqa: F811 - the fixture of test_golem
    fake = FakeRPC(CONTRACT)
    provider.expect_request("/rpc").respond_with_handler(fake.handler)
    return fake


def paid(server: HTTPServer, name: str, stream_id: int, *, port: int, contract: str | None = CONTRACT) -> Any:
    """A row as golem_vm writes it for a VM it paid for, on the stand-in provider."""
    server.expect_request(f"/api/v1/vms/{name}").respond_with_json(provider_vm(name, "running"))
    return vm(name, ip=LOOPBACK, provider_port=server.port, port=port, stream_id=stream_id, stream_contract=contract,
              stream_opened=True)


def options(server: HTTPServer, **extra: Any) -> dict[str, Any]:
    return {"refresh": True, "statuses": [], "payments_rpc_url": server.url_for("/rpc"), **extra}


def test_the_selector_is_keccak_of_the_signature() -> None:
    assert STREAMS_SELECTOR == keccak(text="streams(uint256)")[:4].hex()
    assert call_data(258) == "0x64d60d91" + "0" * 61 + "102"


def test_runways_group_and_hostvars(inventory: Build, state: StateStore, provider: HTTPServer,  # noqa: F811
                                    chain: FakeRPC) -> None:
    chain.add(1, sender=ME, recipient=PROVIDER_SE, left=1800, rate=RATE)   # low at 1 h
    chain.add(2, sender=ME, recipient=PROVIDER_SE, left=5 * 3600, rate=RATE)  # plenty
    chain.add(3, sender=ME, recipient="0x" + "0" * 40, left=900, rate=RATE)  # terminated
    state.upsert(paid(provider, "low-1", 1, port=20001))
    state.upsert(paid(provider, "long-1", 2, port=20002))
    state.upsert(paid(provider, "ended-1", 3, port=20003))
    state.upsert(vm("free-1", ip=LOOPBACK, provider_port=provider.port, port=20004))
    provider.expect_request("/api/v1/vms/free-1").respond_with_json(provider_vm("free-1", "running"))

    inv = inventory(options(provider))
    assert members(inv, "golem_runway_low") == ["low-1"]
    low, long, ended, free = (hostvars(inv, n) for n in ("low-1", "long-1", "ended-1", "free-1"))
    assert (low["golem_stream_id"], low["golem_stream_remaining_seconds"], low["golem_stream_error"]) == (1, 1800, None)
    assert long["golem_stream_remaining_seconds"] == 5 * 3600
    assert ended["golem_stream_remaining_seconds"] == 0, "an ended stream is not in the low group: it cannot be topped up"
    assert free["golem_stream_id"] is None and free["golem_stream_remaining_seconds"] is None
    assert all(h["golem_missing_reason"] is None for h in (low, long, ended, free))
    assert chain.batches == 1, "every stream in one batch"
    assert sorted(chain.calls) == ["eth_call"] * 3 + ["eth_getBlockByNumber"]

    wider = inventory(options(provider, runway_threshold_hours=6))
    assert members(wider, "golem_runway_low") == ["long-1", "low-1"]


def test_a_vm_gone_because_its_stream_ran_out_says_so(inventory: Build, state: StateStore,  # noqa: F811
                                                      provider: HTTPServer, chain: FakeRPC) -> None:
    chain.add(5, sender=ME, recipient=PROVIDER_SE, left=-30, rate=RATE, elapsed=3630)
    state.upsert(vm("gone-1", ip=LOOPBACK, provider_port=provider.port, port=20001, stream_id=5,
                    stream_contract=CONTRACT))
    provider.expect_request("/api/v1/vms/gone-1").respond_with_json({"detail": "VM gone-1 not found"}, status=404)
    provider.expect_request("/api/v1/provider/info").respond_with_json({"provider_id": PROVIDER_SE})
    host = hostvars(inventory(options(provider)), "gone-1")
    assert host["golem_status"] == "missing"
    assert host["golem_missing_reason"] == (f"its payment stream 5 ran out at chain time {chain.now - 30}, and a paying "
                                            "provider deletes a VM whose stream has ended")


def test_a_missing_vm_whose_stream_still_runs_is_not_topped_up(inventory: Build, state: StateStore,  # noqa: F811
                                                                provider: HTTPServer, chain: FakeRPC) -> None:
    chain.add(6, sender=ME, recipient=PROVIDER_SE, left=60, rate=RATE)
    state.upsert(vm("lost-1", ip=LOOPBACK, provider_port=provider.port, port=20001, stream_id=6,
                    stream_contract=CONTRACT))
    provider.expect_request("/api/v1/vms/lost-1").respond_with_json({"detail": "VM lost-1 not found"}, status=404)
    provider.expect_request("/api/v1/provider/info").respond_with_json({"provider_id": PROVIDER_SE})
    inv = inventory(options(provider))
    assert hostvars(inv, "lost-1")["golem_missing_reason"] is None
    assert "golem_runway_low" not in inv.groups or members(inv, "golem_runway_low") == []


def test_a_row_without_a_contract_uses_stream_payment_address(inventory: Build, state: StateStore,  # noqa: F811
                                                              provider: HTTPServer, chain: FakeRPC,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    chain.add(8, sender=ME, recipient=PROVIDER_SE, left=100, rate=RATE)
    state.upsert(paid(provider, "given-1", 8, port=20001, contract=None))
    host = hostvars(inventory(options(provider)), "given-1")
    assert host["golem_stream_remaining_seconds"] is None
    assert "records no StreamPayment contract" in host["golem_stream_error"] and chain.calls == []
    monkeypatch.setenv("GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS", CONTRACT)
    assert hostvars(inventory(options(provider)), "given-1")["golem_stream_remaining_seconds"] == 100


def test_an_unreachable_chain_leaves_the_runway_unknown_and_says_why(inventory: Build, state: StateStore,  # noqa: F811
                                                                     provider: HTTPServer, closed_port: int,
                                                                     messages: Messages) -> None:  # noqa: F811
    state.upsert(paid(provider, "low-1", 1, port=20001))
    inv = inventory({"refresh": True, "payments_rpc_url": f"http://{LOOPBACK}:{closed_port}"})
    host = hostvars(inv, "low-1")
    assert host["golem_stream_remaining_seconds"] is None and "connection refused" in host["golem_stream_error"]
    assert host["golem_live_status"] == "running", "the provider part of the refresh is unaffected"
    assert any("could not read 1 payment stream(s) from the chain" in m for m in messages.verbose)


def test_runway_vars_come_only_with_refresh(inventory: Build, state: StateStore, provider: HTTPServer,  # noqa: F811
                                            chain: FakeRPC) -> None:
    chain.add(1, sender=ME, recipient=PROVIDER_SE, left=10, rate=RATE)
    state.upsert(paid(provider, "low-1", 1, port=20001))
    inv = inventory({"statuses": []})
    assert "golem_stream_remaining_seconds" not in hostvars(inv, "low-1") and "golem_runway_low" not in inv.groups
    assert chain.calls == [] and provider.log == [], "plain listing asks nobody"


@pytest.mark.parametrize(("extra", "text"), [
    ({"runway_threshold_hours": 0}, "runway_threshold_hours must be more than 0"),
    ({"payments_rpc_url": "ftp://x"}, "payments_rpc_url 'ftp://x' must be an http"),
    ({"stream_payment_address": "0x12"}, "stream_payment_address '0x12' is not a contract address"),
])
def test_bad_payment_options_are_parse_errors(inventory: Build, state: StateStore, extra: dict,  # noqa: F811
                                              text: str) -> None:
    with pytest.raises(Exception, match=text):
        inventory({"refresh": True, **extra})


def test_runways_are_cached_with_the_refresh(inventory: Build, state: StateStore, provider: HTTPServer,  # noqa: F811
                                             chain: FakeRPC, tmp_path: Any) -> None:
    chain.add(1, sender=ME, recipient=PROVIDER_SE, left=1800, rate=RATE)
    state.upsert(paid(provider, "low-1", 1, port=20001))
    cached = _cache_options(tmp_path, **options(provider))
    first = inventory(cached)
    calls = len(chain.calls)
    hit = inventory({**cached, "runway_threshold_hours": 0.25})
    assert len(chain.calls) == calls, "a cache hit reads no chain"
    assert hostvars(hit, "low-1")["golem_stream_remaining_seconds"] == 1800
    assert members(first, "golem_runway_low") == ["low-1"]
    assert "golem_runway_low" not in hit.groups or members(hit, "golem_runway_low") == [], \
        "the threshold applies on a cache hit too (30 min left is not below 15 min)"


# --- the batch reader alone ---------------------------------------------------------------------


def test_many_streams_go_in_batches_matched_by_id(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRPC(CONTRACT)
    httpserver.expect_request("/rpc").respond_with_handler(fake.handler)
    for i in range(1, 26):
        fake.add(i, sender=ME, recipient=PROVIDER_SE, left=100 * i, rate=RATE)
    monkeypatch.setattr(stream_runways, "BATCH_SIZE", 10)
    found = read_runways(httpserver.url_for("/rpc"), [(CONTRACT.lower(), i) for i in range(1, 26)], timeout=5)
    assert fake.batches == 3
    assert {key[1]: r.remaining_seconds for key, r in found.items()} == {i: 100 * i for i in range(1, 26)}


def test_a_server_without_batches_is_an_error_per_stream(httpserver: HTTPServer) -> None:
    fake = FakeRPC(CONTRACT)
    fake.batch_support = False
    httpserver.expect_request("/rpc").respond_with_handler(fake.handler)
    found = read_runways(httpserver.url_for("/rpc"), [(CONTRACT.lower(), 1)], timeout=5)
    assert "did not answer a JSON-RPC batch (batches disabled)" in (found[(CONTRACT.lower(), 1)].error or "")


@pytest.mark.parametrize(("result", "expected"), [
    ("0x" + "00" * 32 * 9, StreamRunway(4, 0, "does not exist on the chain")),
    ("0x", StreamRunway(4, error="streams(4) did not answer the 0.1.x StreamPayment's 9 words; is it the contract "
                                 "the VM was paid at?")),
    ("0x" + "00" * 32 * 14, StreamRunway(4, error="streams(4) did not answer the 0.1.x StreamPayment's 9 words; is it "
                                                  "the contract the VM was paid at?")),
])
def test_decode_never_guesses(result: str, expected: StreamRunway) -> None:
    assert decode(result, 1000, 4) == expected


def test_runways_survive_the_cache_round_trip() -> None:
    for runway in (StreamRunway(1, 10), StreamRunway(2, 0, "ran out at chain time 5"), StreamRunway(3, error="x"),
                   StreamRunway(None)):
        assert StreamRunway.from_list(runway.to_list()) == runway
