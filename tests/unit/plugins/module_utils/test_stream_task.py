# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_stream's run on one stream: what it pays, what it refuses, what it records, against a fake contract.

The fake keeps the books as devnet/contracts/StreamPayment.sol does (topUp moves stopTime by
amount // rate and only while the stream runs; terminate refunds what has not vested at the block that
mines it, one second after the read). The real chain is in tests/integration/test_golem_stream.py.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.chain.runway import ChainStream
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, IdentityError, PaymentError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.provider.models import ProviderInfo
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.vm.stream_target import (
    StreamTarget,
    check_stream_options,
    find_target,
)
from ansible_collections.golem.vm.plugins.module_utils.vm.stream_task import StreamTask

ZERO = "0x" + "0" * 40
ME, OTHER, PROVIDER = "0x" + "ab" * 20, "0x" + "ef" * 20, "0x" + "cd" * 20
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
RATE = 12_176_560_121_765


class FakeContract:
    """StreamPayment's books; every transaction is mined in the next block (one second later)."""

    def __init__(self, address: str = ME) -> None:
        self.address, self.rpc_url = address, "http://127.0.0.10:8545"
        self.now = 1_800_000_000
        self.streams: dict[int, dict[str, Any]] = {}
        self.sent: list[tuple[str, int, int]] = []
        self.mine = True
        self.pool: set[str] = set()  # transactions the node holds, not mined
        self.used_nonces = 0
        self.rebroadcasts: list[str] = []

    def add(self, stream_id: int, *, left: int, sender: str = ME, elapsed: int = 600) -> None:
        start = self.now - elapsed
        self.streams[stream_id] = {"sender": sender, "recipient": PROVIDER, "start": start, "stop": self.now + left,
                                   "rate": RATE, "deposit": (left + elapsed) * RATE, "withdrawn": 0, "halted": False}

    def check_contract(self, contract: str) -> None:
        assert contract == CONTRACT

    def read(self, contract: str, stream_id: int) -> ChainStream:
        s = self.streams.get(stream_id)
        if s is None:
            return ChainStream(stream_id, ZERO, ZERO, ZERO, 0, 0, 0, 0, 0, False, self.now)
        return ChainStream(stream_id, ZERO, s["sender"], s["recipient"], s["start"], s["stop"], s["rate"],
                           s["deposit"], s["withdrawn"], s["halted"], self.now)

    def _mine(self) -> str:
        self.now += 1
        return f"0xtx{len(self.sent)}"

    def top_up(self, contract: str, stream_id: int, amount: int, *,
               before_send: Callable[[str, int, str], None] | None = None) -> str:
        s = self.streams[stream_id]
        if before_send is not None:
            before_send(f"0xtx{len(self.sent) + 1}", len(self.sent), "0xraw")
        self.sent.append(("topUp", stream_id, amount))
        tx = self._mine()
        if not self.mine:
            self.pool.add(tx)
        assert s["recipient"] != ZERO and not s["halted"] and self.now < s["stop"], "the contract would revert"
        s["stop"] += amount // s["rate"]
        s["deposit"] += amount
        return tx

    def terminate(self, contract: str, stream_id: int) -> str:
        s = self.streams[stream_id]
        self.sent.append(("terminate", stream_id, 0))
        tx = self._mine()
        vested = min(s["deposit"], (min(self.now, s["stop"]) - s["start"]) * s["rate"])
        s.update(recipient=ZERO, withdrawn=vested, stop=min(s["stop"], self.now), refund=s["deposit"] - vested)
        return tx

    def receipt(self, tx: str, until: float, *, check: bool = True) -> dict[str, Any] | None:
        return {"blockNumber": hex(self.now), "status": "0x1"} if self.mine else None

    def known(self, tx: str) -> bool:
        return tx in self.pool

    def nonce(self, block: str = "pending") -> int:
        return self.used_nonces

    def rebroadcast(self, raw: str, tx: str) -> None:
        self.rebroadcasts.append(tx)

    def block_time(self, block: str) -> int:
        return int(block, 16)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(str(tmp_path / "vms.db"))


def row(store: StateStore, name: str = "web-1", **config: Any) -> VMRecord:
    base = {"cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_id": PROVIDER, "stream_id": 7,
            "stream_contract": CONTRACT, "stream_opened": True, "stream_sender": ME}
    base.update(config)
    return store.upsert(VMRecord(name, "127.0.0.2", name, "running", {k: v for k, v in base.items() if v is not None}))


def task(chain: FakeContract, store: StateStore, *, record: VMRecord | None = None, check: bool = False,
         warnings: list[str] | None = None) -> StreamTask:
    target = StreamTarget(7, CONTRACT, record, "the state file")
    return StreamTask(target, chain, store=store, check_mode=check, deadline=Deadline(30),
                      warn=(warnings if warnings is not None else []).append)


# --- state=present ---------------------------------------------------------------------------


def test_a_low_stream_is_topped_up_once_by_exactly_the_missing_seconds(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=1200)
    before = chain.read(CONTRACT, 7)
    run = task(chain, store)
    after = run.present(2, 7200 - 60)
    assert run.changed and chain.sent == [("topUp", 7, RATE * 6000)]
    assert after.stop_time - before.stop_time == 6000 == run.result["top_up"]["seconds_added"]
    assert after.deposit - before.deposit == RATE * 6000 == run.result["top_up"]["amount_wei"]
    assert run.result["tx"] == run.result["top_up"]["tx"] == "0xtx1"
    assert run.actions == [f"topped up stream 7 (contract {CONTRACT}) by {RATE * 6000} wei (6000 s at {RATE} wei/s): "
                           "1200 s of runway were left, 2 h after"]
    assert run.before["remaining_seconds"] == 1200 and run.after["stop_time"] == after.stop_time

    chain.now += 3  # the next run, a few blocks later
    again = task(chain, store)
    again.present(2, 7200 - 60)
    assert not again.changed and len(chain.sent) == 1 and again.result["top_up"] == {} and again.actions == []


def test_check_mode_reports_the_top_up_and_pays_nothing(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=1200)
    before = chain.read(CONTRACT, 7)
    run = task(chain, store, check=True)
    run.present(2, 7140)
    assert run.changed and chain.sent == [] and run.result["tx"] is None
    assert run.result["top_up"]["amount_wei"] == RATE * 6000 and "tx" not in run.result["top_up"]
    assert run.actions[0].startswith("would top up stream 7")
    assert run.after == {"stream_id": 7, "stop_time": before.stop_time + 6000, "deposit_wei": before.deposit + RATE * 6000,
                         "remaining_seconds": 7200, "ended": False}
    assert chain.read(CONTRACT, 7) == before


def test_without_runway_hours_the_stream_is_only_read(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=5)
    run = task(chain, store)
    run.present(None, None)
    assert not run.changed and chain.sent == [] and run.before == run.after


@pytest.mark.parametrize(("change", "why"), [
    ({"stop": 0}, "ran out at chain time"),
    ({"recipient": ZERO}, "was terminated"),
    ({"halted": True}, "was halted"),
])
def test_an_ended_stream_cannot_be_topped_up_or_revived(store: StateStore, change: dict[str, Any], why: str) -> None:
    chain = FakeContract()
    chain.add(7, left=100)
    chain.streams[7].update(change)
    with pytest.raises(ValidationError) as caught:
        task(chain, store).present(1, 3540)
    assert why in caught.value.msg and "cannot be topped up or revived" in caught.value.msg
    assert caught.value.field == "runway_hours" and chain.sent == []


def test_an_unknown_stream_id_fails_naming_it(store: StateStore) -> None:
    with pytest.raises(ValidationError) as caught:
        task(FakeContract(), store).present(1, 3540)
    assert caught.value.field == "stream_id" and "stream 7 does not exist at StreamPayment" in caught.value.msg


def test_only_the_sender_tops_up(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=100, sender=OTHER)
    with pytest.raises(ValidationError) as caught:
        task(chain, store).present(1, 3540)
    assert f"was opened by {OTHER}" in caught.value.msg and ME in caught.value.msg
    assert caught.value.field == "ethereum_private_key" and chain.sent == []


def test_without_a_key_check_mode_still_tells_the_price_but_a_real_run_fails_first(store: StateStore) -> None:
    chain = FakeContract(address=ZERO)
    chain.add(7, left=100)
    quote = task(chain, store, check=True)
    quote.present(1, 3540)
    assert quote.result["top_up"]["amount_wei"] == RATE * 3500
    with pytest.raises(ValidationError) as caught:
        task(chain, store).present(1, 3540)
    assert "needs ethereum_private_key" in caught.value.msg and chain.sent == []


def test_a_top_up_not_mined_in_time_fails_with_its_hash(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=100)
    chain.mine = False
    run = task(chain, store)
    with pytest.raises(GolemError, match=r"transaction 0xtx1 topping up stream 7 .* was not mined within wait_timeout "
                                         r"\(\d+ s\) by the payments node at http://127\.0\.0\.10:8545 \(payments_rpc_url\)"):
        run.present(1, 3540)
    assert run.result["tx"] == "0xtx1", "the failed task still returns the hash"


# --- state=absent ----------------------------------------------------------------------------


def test_a_top_up_an_earlier_run_did_not_see_mined_is_never_paid_again(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=100)
    chain.mine = False
    with pytest.raises(GolemError, match="was not mined"):
        task(chain, store, record=row(store)).present(1, 3540)
    assert store.get("web-1").config["top_up_tx"] == "0xtx1", "the row records the top-up before it leaves"
    # Still waiting in the node's pool: nothing more is paid, and the row keeps it.
    with pytest.raises(PaymentError, match="0xtx1 .* is not mined yet: nothing more is paid"):
        task(chain, store, record=store.get("web-1")).present(1, 3540)
    assert len(chain.sent) == 1 and store.get("web-1").config["top_up_tx"] == "0xtx1"
    # Mined at last: settled, and the runway it bought is enough, so nothing is paid again.
    chain.mine = True
    run = task(chain, store, record=store.get("web-1"))
    run.present(1, 3540)
    assert len(chain.sent) == 1 and not run.changed and "top_up_tx" not in store.get("web-1").config
    assert any("settle the top-up 0xtx1" in a and "it was mined" in a for a in run.actions)


def test_a_recorded_top_up_that_never_left_is_sent_again_or_given_up_once_its_nonce_is_used(
        store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=100)
    row(store, top_up_tx="0xlost", top_up_nonce=4, top_up_raw="0xraw")
    chain.mine = False
    # Unknown to the node and its nonce still free: sent again (the same bytes), and nothing new is paid.
    with pytest.raises(PaymentError, match="not mined yet"):
        task(chain, store, record=store.get("web-1")).present(1, 3540)
    assert chain.rebroadcasts == ["0xlost"] and chain.sent == []
    # Its nonce was used by another transaction: it never will be mined, so the runway is bought now, once.
    chain.used_nonces, chain.mine = 5, True
    run = task(chain, store, record=store.get("web-1"))
    run.present(1, 3540)
    assert len(chain.sent) == 1 and run.changed and "top_up_tx" not in store.get("web-1").config


def test_absent_terminates_and_the_refund_is_what_had_not_vested_when_mined(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=3000)
    record = row(store)
    run = task(chain, store, record=record)
    after = run.absent()
    assert run.changed and chain.sent == [("terminate", 7, 0)]
    assert run.result["refunded_wei"] == chain.streams[7]["refund"] == 2999 * RATE, "mined one second after the read"
    assert after.recipient == ZERO and run.after["ended"] is True
    assert store.get("web-1").config["stream_terminated"] is True

    again = task(chain, store, record=store.get("web-1"))
    again.absent()
    assert not again.changed and len(chain.sent) == 1 and again.result["refunded_wei"] is None


def test_absent_in_check_mode_tells_the_refund_and_changes_nothing(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=3000)
    record = row(store)
    run = task(chain, store, record=record, check=True)
    run.absent()
    assert run.changed and chain.sent == [] and run.result["refunded_wei"] == 3000 * RATE
    assert run.actions[0].startswith("would terminate stream 7 of VM web-1")
    assert "stream_terminated" not in store.get("web-1").config


def test_a_stream_terminated_elsewhere_is_recorded_on_its_row(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=3000)
    chain.streams[7]["recipient"] = ZERO
    record = row(store)
    quote = task(chain, store, record=record, check=True)
    quote.absent()
    assert quote.changed and "stream_terminated" not in store.get("web-1").config
    run = task(chain, store, record=record)
    run.absent()
    assert run.changed and chain.sent == [] and store.get("web-1").config["stream_terminated"] is True
    assert run.actions == ["record on VM web-1's row that stream 7 was terminated already"]


def test_a_stream_that_ran_out_has_nothing_to_give_back(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=-10, elapsed=3600)
    run = task(chain, store)
    run.absent()
    assert not run.changed and chain.sent == [] and run.result["refunded_wei"] == 0


def test_a_halted_stream_is_terminated_for_its_unvested_rest(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=0, elapsed=600)
    s = chain.streams[7]
    s.update(halted=True, deposit=s["deposit"] + 1000 * RATE)  # vesting stopped with 1000 s of deposit left
    run = task(chain, store)
    run.absent()
    assert chain.sent == [("terminate", 7, 0)] and run.result["refunded_wei"] == 1000 * RATE


def test_only_the_sender_terminates(store: StateStore) -> None:
    chain = FakeContract()
    chain.add(7, left=3000, sender=OTHER)
    with pytest.raises(ValidationError, match=f"was opened by {OTHER}"):
        task(chain, store).absent()
    assert chain.sent == []


# --- which stream --------------------------------------------------------------------------


class FakeProvider:
    def __init__(self, info: ProviderInfo | None) -> None:
        self.info = info
        self.http = type("Http", (), {"base_url": "http://127.0.0.2:7466"})()

    def provider_info(self) -> ProviderInfo | None:
        return self.info


def params(**given: Any) -> dict[str, Any]:
    base = {"name": None, "stream_id": None, "state": "present", "runway_hours": None, "top_up_below_hours": None,
            "stream_payment_address": None, "provider_ip": None, "provider_port": 7466, "wait_timeout": 120,
            "payments_rpc_url": "http://127.0.0.10:8545", "ethereum_private_key": None, "payments_network": "l2.holesky"}
    base.update(given)
    return base


def test_a_vm_s_row_gives_its_stream_and_contract(store: StateStore) -> None:
    row(store)
    target = find_target(params(name="web-1"), store, lambda ip, port: pytest.fail("no provider is asked"))
    assert (target.stream_id, target.contract, target.record.name) == (7, CONTRACT, "web-1")


def test_a_row_without_a_contract_asks_its_provider(store: StateStore) -> None:
    row(store, stream_contract=None, stream_opened=None)
    asked: list[tuple[str, int]] = []

    def provider(ip: str, port: int) -> FakeProvider:
        asked.append((ip, port))
        return FakeProvider(ProviderInfo(provider_id=PROVIDER.upper().replace("0X", "0x"),
                                         stream_payment_address=CONTRACT, glm_token_address=ZERO))

    # The provider's word is taken only for the contract the payments network documents: a top-up sends money there.
    with pytest.raises(PaymentError, match=f"names StreamPayment contract {CONTRACT}, not "
                                           "0x0281B792b5491E3548c8Fc17C24A2e0Cb99FbeC2"):
        find_target(params(name="web-1"), store, provider)
    assert asked == [("127.0.0.2", 7466)]
    documented = "0x0281B792b5491E3548c8Fc17C24A2e0Cb99FbeC2"

    def honest(ip: str, port: int) -> FakeProvider:
        return FakeProvider(ProviderInfo(provider_id=PROVIDER, stream_payment_address=documented,
                                         glm_token_address=ZERO))

    assert find_target(params(name="web-1"), store, honest).contract == documented


@pytest.mark.parametrize(("info", "error", "text"), [
    (None, ValidationError, "has no GET /api/v1/provider/info (the MVP-era API)"),
    (ProviderInfo(provider_id=OTHER, stream_payment_address=CONTRACT), IdentityError, f"as {OTHER}, not as"),
    (ProviderInfo(provider_id=PROVIDER, stream_payment_address=ZERO), ValidationError, "takes no payment"),
])
def test_a_provider_that_cannot_name_the_contract_is_not_guessed_for(store: StateStore, info: Any, error: type,
                                                                     text: str) -> None:
    row(store, stream_contract=None)
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        find_target(params(name="web-1"), store, lambda ip, port: FakeProvider(info))


@pytest.mark.parametrize(("config", "given", "text"), [
    ({"stream_id": None}, {}, "VM web-1 has no payment stream recorded"),
    ({"stream_id": None, "stream_tx": "0xabc"}, {}, "is still being opened (transaction 0xabc"),
    ({}, {"stream_id": 8}, "stream_id 8 is not VM web-1's stream, which is 7"),
    ({}, {"stream_payment_address": "0x" + "11" * 20}, "is not the contract VM web-1's stream was opened at"),
])
def test_a_row_that_does_not_fit_is_refused(store: StateStore, config: dict, given: dict, text: str) -> None:
    row(store, **config)
    with pytest.raises(ValidationError, match=text.replace("(", r"\(")):
        find_target(params(name="web-1", **given), store, lambda ip, port: pytest.fail("not asked"))


def test_a_name_not_in_the_state_file_is_refused(store: StateStore) -> None:
    with pytest.raises(ValidationError) as caught:
        find_target(params(name="nope-1"), store, lambda ip, port: pytest.fail("not asked"))
    assert caught.value.field == "name" and "VM nope-1 is not in the state file" in caught.value.msg


def test_a_stream_by_id_needs_its_contract_or_provider(store: StateStore) -> None:
    with pytest.raises(ValidationError) as caught:
        find_target(params(stream_id=9), store, lambda ip, port: pytest.fail("not asked"))
    assert caught.value.field == "stream_payment_address"
    assert find_target(params(stream_id=9, stream_payment_address=CONTRACT), store, None).contract == CONTRACT


@pytest.mark.parametrize(("given", "field", "text"), [
    ({"name": "Bad_Name"}, "name", "name 'Bad_Name' is not a valid VM name"),
    ({"stream_id": 0}, "stream_id", "stream_id 0 is not a stream id"),
    ({"stream_id": 1, "stream_payment_address": "0x12"}, "stream_payment_address", "'0x12' is not a contract address"),
    ({"name": "web-1", "provider_ip": "127.0.0.2"}, "provider_ip", "provider_ip is for a stream given by stream_id"),
    ({"stream_id": 1, "provider_ip": "not-an-ip"}, "provider_ip", "provider_ip 'not-an-ip' is not an IP address"),
    ({"name": "web-1", "runway_hours": 0}, "runway_hours", "runway_hours 0 must be a whole number of hours"),
    ({"name": "web-1", "runway_hours": 2, "top_up_below_hours": 3}, "top_up_below_hours", "at most runway_hours (2)"),
    ({"name": "web-1", "top_up_below_hours": 1}, "top_up_below_hours", "top_up_below_hours needs runway_hours"),
    ({"name": "web-1", "state": "absent", "runway_hours": 1}, "runway_hours", "runway_hours is for state=present"),
    ({"name": "web-1", "wait_timeout": 0}, "wait_timeout", "wait_timeout 0 must be more than 0 seconds"),
    ({"name": "web-1", "payments_rpc_url": "ftp://x"}, "payments_rpc_url", "payments_rpc_url 'ftp://x' must be"),
])
def test_bad_options_are_named_with_their_value(given: dict, field: str, text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_stream_options(params(**given))
    assert caught.value.field == field and text in caught.value.msg


def test_a_bad_key_is_refused_without_showing_it() -> None:
    secret = "12" * 31 + "zz"
    with pytest.raises(ValidationError) as caught:
        check_stream_options(params(name="web-1", ethereum_private_key=secret))
    assert caught.value.field == "ethereum_private_key" and secret not in caught.value.msg
    assert secret not in str(caught.value.failure())
