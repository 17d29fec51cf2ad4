# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_fleet's runway step against golem_stream's fake contract: which members are paid, how much, once, what check
mode bills, what is refused, and what each member's row history says (the state store is real)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_stream_task import CONTRACT, ME, PROVIDER, RATE, FakeContract

from ansible_collections.golem.vm.plugins.module_utils.chain.runway import ChainStream
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import SECONDS_PER_MONTH
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import PaymentError
from ansible_collections.golem.vm.plugins.module_utils.state.history import read_history
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet_runway import FleetRunway, paid_members, top_up_fleet
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import KnownHosts
from ansible_collections.golem.vm.plugins.module_utils.vm.payments import StreamPayments
from ansible_collections.golem.vm.plugins.module_utils.vm.services import Lazy, VMServices

HOUR = 3600
DAY = 24 * HOUR
# What RATE costs a month (about 32 GLM): the cap a test sets just under it refuses the top-up.
MONTHLY = RATE * SECONDS_PER_MONTH / 10 ** 18


class Chain(FakeContract):
    """The fake contract with real-looking transaction hashes (a row's history keeps only those), and streams whose
    read fails."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[int] = set()

    def _mine(self) -> str:
        self.now += 1
        return "0x" + format(len(self.sent), "064x")

    def read(self, contract: str, stream_id: int) -> ChainStream:
        if stream_id in self.broken:
            raise PaymentError(f"payments RPC {self.rpc_url} refused eth_call: streams({stream_id}) timed out")
        return super().read(contract, stream_id)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(str(tmp_path / "vms.db"))


def member(store: StateStore, name: str, stream_id: int, status: str = "running", **config: Any) -> VMRecord:
    base = {"cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_id": PROVIDER, "stream_id": stream_id,
            "stream_contract": CONTRACT, "stream_opened": True, "stream_sender": ME,
            "labels": {"golem.vm/fleet": "web"}}
    base.update(config)
    return store.upsert(VMRecord(name, "127.0.0.2", name, status, {k: v for k, v in base.items() if v is not None}))


def payments(chain: Chain, cap: float | None = 500.0) -> StreamPayments:
    return StreamPayments(lambda: chain, hours=1, deadline=Deadline(30), pricing_for=lambda *_: None,
                          given_stream=None, warn=lambda _: None, max_glm_per_month=cap)


def step(chain: Chain, store: StateStore, *, check: bool = False, cap: float | None = 500.0,
         below_hours: float | None = None, warnings: list[str] | None = None) -> FleetRunway:
    below = DAY - 60 if below_hours is None else round(below_hours * HOUR)
    return FleetRunway(lambda: chain, store=store, deadline=Deadline(30),
                       warn=(warnings if warnings is not None else []).append, runway_hours=24, below_seconds=below,
                       check_mode=check, max_glm_per_month=cap)


def run(chain: Chain, store: StateStore, **kwargs: Any) -> Any:
    return step(chain, store, **kwargs).run(paid_members(store.list(), payments(chain).owns_stream))


@pytest.fixture
def fleet(store: StateStore) -> Chain:
    """Three paid members with 1 h, 5 h and 30 h of runway left."""
    chain = Chain()
    for index, left in ((1, HOUR), (2, 5 * HOUR), (3, 30 * HOUR)):
        chain.add(index, left=left)
        member(store, f"web-0{index}", index)
    return chain


def test_exactly_the_members_below_the_runway_are_topped_up_once(store: StateStore, fleet: Chain) -> None:
    result = run(fleet, store)
    assert [(line["name"], line["stream_id"]) for line in result.topped_up] == [("web-01", 1), ("web-02", 2)]
    assert fleet.sent == [("topUp", 1, RATE * 23 * HOUR), ("topUp", 2, RATE * (19 * HOUR + 1))], \
        "each to exactly 24 h at the block it was read (the first top-up's block came one second later)"
    first, second = result.topped_up
    assert first["remaining_seconds_before"] == HOUR and first["remaining_seconds_after"] == DAY
    assert first["wei"] == RATE * 23 * HOUR and first["hours_added"] == 23.0 and first["tx"] == "0x" + "1".zfill(64)
    assert second["remaining_seconds_before"] == 5 * HOUR - 1 and second["remaining_seconds_after"] == DAY
    assert result.changed and result.failures == {}
    assert fleet.read(CONTRACT, 3).stop_time - fleet.now == 30 * HOUR - 2, "30 h is left as it is"
    assert any(a.startswith("topped up stream 1 of VM web-01") for a in result.actions)

    fleet.now += 5  # the next scheduled run, a few blocks later
    again = run(fleet, store)
    assert again.topped_up == [] and not again.changed and len(fleet.sent) == 2 and again.failures == {}


def test_each_top_up_is_in_the_member_s_row_history(store: StateStore, fleet: Chain) -> None:
    run(fleet, store)
    history = read_history(store.get("web-01").config)
    assert [(e["event"], e["wei"], e["tx"]) for e in history] == [("topped_up", RATE * 23 * HOUR, "0x" + "1".zfill(64))]
    assert "its runway was 3600 s, below the fleet's top-up threshold 86340 s" in history[0]["detail"]
    assert read_history(store.get("web-03").config) == [], "a member not paid has nothing new in its history"
    assert store.get("web-01").status == "running"


def test_check_mode_sends_nothing_and_bills_the_top_ups(store: StateStore, fleet: Chain) -> None:
    before = {i: fleet.read(CONTRACT, i) for i in (1, 2, 3)}
    result = run(fleet, store, check=True)
    assert fleet.sent == [] and {i: fleet.read(CONTRACT, i) for i in (1, 2, 3)} == before
    assert all(read_history(r.config) == [] for r in store.list()), "check mode writes no row"
    bill = result.bill()
    assert bill["members"] == {
        "web-01": {"stream_id": 1, "contract": CONTRACT, "remaining_seconds_before": HOUR,
                   "remaining_seconds_after": DAY, "seconds_added": 23 * HOUR, "hours_added": 23.0,
                   "wei": RATE * 23 * HOUR, "rate_wei_per_second": RATE, "glm_per_month": round(MONTHLY, 8)},
        "web-02": {"stream_id": 2, "contract": CONTRACT, "remaining_seconds_before": 5 * HOUR,
                   "remaining_seconds_after": DAY, "seconds_added": 19 * HOUR, "hours_added": 19.0,
                   "wei": RATE * 19 * HOUR, "rate_wei_per_second": RATE, "glm_per_month": round(MONTHLY, 8)}}
    assert bill["wei"] == RATE * 42 * HOUR and bill["max_glm_per_month"] == 500.0
    assert result.changed and all(line["tx"] is None for line in result.topped_up)
    assert [a.split(" (")[0] for a in result.actions] == ["would top up stream 1 of VM web-01",
                                                          "would top up stream 2 of VM web-02"]


def test_top_up_below_hours_is_golem_stream_s_threshold(store: StateStore, fleet: Chain) -> None:
    result = run(fleet, store, below_hours=3)
    assert [line["name"] for line in result.topped_up] == ["web-01"], "5 h left is not below 3 h"


@pytest.mark.parametrize("status", [ABANDONED, "stopped", "error", "creating"])
def test_a_member_that_is_not_running_is_never_topped_up(store: StateStore, fleet: Chain, status: str) -> None:
    member(store, "web-01", 1, status=status)
    result = run(fleet, store)
    assert [line["name"] for line in result.topped_up] == ["web-02"] and [s[1] for s in fleet.sent] == [2]
    assert read_history(store.get("web-01").config) == []


@pytest.mark.parametrize("config", [{"stream_opened": None}, {"stream_terminated": True}])
def test_a_stream_not_opened_or_settled_is_not_paid(store: StateStore, fleet: Chain, config: dict[str, Any]) -> None:
    member(store, "web-01", 1, **config)
    assert [line["name"] for line in run(fleet, store).topped_up] == ["web-02"]


def test_a_stream_that_cannot_be_read_fails_its_member_alone(store: StateStore, fleet: Chain) -> None:
    fleet.broken.add(1)
    result = run(fleet, store)
    assert [line["name"] for line in result.topped_up] == ["web-02"] and [s[1] for s in fleet.sent] == [2]
    assert list(result.failures) == ["web-01"] and "streams(1) timed out" in result.failures["web-01"]
    assert result.failure_message().startswith("1 fleet members' streams could not be topped up: web-01: ")


def test_a_rate_over_the_cap_is_not_topped_up(store: StateStore, fleet: Chain) -> None:
    result = run(fleet, store, cap=MONTHLY - 1)
    assert fleet.sent == [] and result.topped_up == []
    assert sorted(result.failures) == ["web-01", "web-02"]
    assert f"over max_glm_per_month {MONTHLY - 1:g}; it was not topped up" in result.failures["web-01"]
    check = run(fleet, store, cap=MONTHLY - 1, check=True)
    assert sorted(check.failures) == ["web-01", "web-02"] and check.bill()["max_glm_per_month"] == MONTHLY - 1


def test_an_ended_stream_or_another_account_s_fails_its_member(store: StateStore, fleet: Chain) -> None:
    fleet.streams[1]["halted"] = True
    fleet.streams[2]["sender"] = "0x" + "ef" * 20
    result = run(fleet, store)
    assert fleet.sent == [] and sorted(result.failures) == ["web-01", "web-02"]
    assert "an ended stream cannot be topped up" in result.failures["web-01"]
    assert f"was opened by 0x{'ef' * 20}" in result.failures["web-02"]
    assert "only that account can top up it" in result.failures["web-02"]


def test_a_top_up_not_mined_in_time_fails_with_its_hash(store: StateStore, fleet: Chain) -> None:
    fleet.mine = False
    result = run(fleet, store)
    assert len(fleet.sent) == 2 and result.topped_up == []
    assert "0x" + "1".zfill(64) in result.failures["web-01"] and "0x" + "2".zfill(64) in result.failures["web-02"]


def test_a_chain_that_cannot_be_built_fails_each_member(store: StateStore, fleet: Chain) -> None:
    def broken() -> Any:
        raise PaymentError("paying a provider needs ethereum_private_key", field="ethereum_private_key")

    made = step(fleet, store)
    made.chain = broken
    result = made.run(paid_members(store.list(), payments(fleet).owns_stream))
    assert sorted(result.failures) == ["web-01", "web-02", "web-03"] and fleet.sent == []
    assert made.run([]).failures == {}, "no paid member: the chain is never built"


def services(store: StateStore, chain: Chain, *, check: bool) -> VMServices:
    return VMServices(store=store, known_hosts=KnownHosts(str(Path(store.path).parent / "known_hosts")),
                      deadline=Deadline(30), provider_client=lambda _: None, warn=lambda _: None, check_mode=check,
                      lazy_payments=Lazy(lambda: payments(chain)))


PARAMS = {"runway_hours": 24, "parallelism": 3, "payments_rpc_url": "http://127.0.0.10:8545", "timeout": 5,
          "validate_certs": True}


def test_the_fleet_step_pays_from_the_fleet_s_chain_in_parallel(store: StateStore, fleet: Chain, tmp_path: Path) -> None:
    result = top_up_fleet(services(store, fleet, check=False), PARAMS, store.list(), DAY - 60,
                          local_dir=str(tmp_path), bills={})
    assert [line["name"] for line in result.topped_up] == ["web-01", "web-02"] and len(fleet.sent) == 2


def test_check_mode_bills_new_members_whose_payment_hours_are_below_the_threshold(
        store: StateStore, fleet: Chain, tmp_path: Path) -> None:
    bills = {"web-04": {"provider_id": PROVIDER, "glm_per_month": MONTHLY, "rate_wei_per_second": RATE,
                        "payment_hours": 1, "deposit_wei": RATE * HOUR, "stream_payment_address": None},
             "web-05": {"provider_id": PROVIDER, "glm_per_month": MONTHLY, "rate_wei_per_second": RATE,
                        "payment_hours": 48, "deposit_wei": RATE * 48 * HOUR, "stream_payment_address": None}}
    result = top_up_fleet(services(store, fleet, check=True), PARAMS, store.list(), DAY - 60,
                          local_dir=str(tmp_path), bills=bills)
    assert fleet.sent == []
    assert [line["name"] for line in result.topped_up] == ["web-01", "web-02", "web-04"]
    new = result.bill()["members"]["web-04"]
    assert new["stream_id"] is None and new["seconds_added"] == 23 * HOUR and new["wei"] == RATE * 23 * HOUR
    assert result.bill()["wei"] == RATE * (23 + 23 + 19) * HOUR
