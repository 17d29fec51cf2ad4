# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Money is data: every stream golem_vm opens ends recorded on a row or terminated, whatever fails.

The providers and the chain are fakes that record every call (the real ones are in the integration
tests); the state store is the real one. Each test breaks one step and checks where the money is.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from test_vm_lifecycle import KEY, SE, US, FakeProvider, recorded, vm

from ansible_collections.golem.vm.plugins.module_utils.chain.contract import PaymentError
from ansible_collections.golem.vm.plugins.module_utils.chain.runway import ChainStream
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import stream_terms
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, NotSent, PaymentPending, ProviderError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity
from ansible_collections.golem.vm.plugins.module_utils.provider.models import ProviderInfo
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import KnownHosts
from ansible_collections.golem.vm.plugins.module_utils.vm.lifecycle import Lifecycle
from ansible_collections.golem.vm.plugins.module_utils.vm.payments import StreamPayments
from ansible_collections.golem.vm.plugins.module_utils.vm.services import Lazy, VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.want import Want

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ME = "0x" + "ab" * 20
# SE's advertised GLM prices on the local network: 20 a core, 8 a GB of RAM, 0.4 a GB of disk, a month.
PRICING = {"glm_per_core_month": 20.0, "glm_per_gb_ram_month": 8.0, "glm_per_gb_storage_month": 0.4}


class FakeChain:
    """A StreamPayment contract: streams by id, block time moving on by hand, failures on demand."""

    def __init__(self) -> None:
        self.address, self.rpc_url = ME, "http://127.0.0.10:8545"
        self.streams: dict[int, dict[str, Any]] = {}
        self.txs: dict[str, dict[str, Any]] = {}
        self.now = 1_000
        self.mine = True  # False: transactions wait unmined
        self.fail_terminate: GolemError | None = None
        # "lost": the transaction is sent and mined, but its answer never comes back (PaymentPending);
        # "refused": the node refuses it after it was signed (nothing is sent).
        self.send_fault: str | None = None
        self.calls: list[tuple[str, Any]] = []

    def chain_id(self) -> int:
        return 31310

    def budget(self, _seconds: float) -> Any:
        return nullcontext()

    def open(self, contract: str, recipient: str, deposit: int, rate: int, before_send: Any = None) -> str:
        tx = f"0xtx{len(self.txs) + 1}"
        if before_send is not None:
            before_send(tx, len(self.txs), "0xraw" + tx[2:])
        self.calls.append(("send", tx))
        if self.send_fault == "refused":
            raise NotSent("payments RPC refused eth_sendRawTransaction: insufficient funds")
        stream_id = len(self.streams) + 1
        self.streams[stream_id] = {"recipient": recipient, "deposit": deposit, "rate": rate, "start": self.now,
                                   "stop": self.now + deposit // rate, "terminated": False}
        self.txs[tx] = {"stream_id": stream_id, "mined": self.mine}
        self.calls.append(("open", recipient))
        if self.send_fault == "lost":
            raise PaymentPending(f"opening a stream was sent as transaction {tx}, but not confirmed", tx=tx)
        return tx

    def receipt(self, tx: str, until: float, *, check: bool = True) -> dict[str, Any] | None:
        found = self.txs[tx]
        return {"status": "0x1", "blockNumber": hex(self.now), "tx": tx} if found["mined"] else None

    def created_stream(self, receipt: dict[str, Any], contract: str) -> int:
        return self.txs[receipt["tx"]]["stream_id"]

    def known(self, tx: str) -> bool:
        return tx in self.txs

    def read(self, contract: str, stream_id: int) -> ChainStream:
        s = self.streams[stream_id]
        recipient = "0x" + "0" * 40 if s["terminated"] else s["recipient"]
        stop = min(s["stop"], self.now) if s["terminated"] else s["stop"]
        return ChainStream(stream_id, "0x" + "0" * 40, ME, recipient, s["start"], stop, s["rate"], s["deposit"], 0,
                           bool(s.get("halted")), self.now)

    def halt(self, stream_id: int) -> None:
        """The oracle halts a stream, as the contract does: vesting stops now; the rest stays deposited."""
        s = self.streams[stream_id]
        s["halted"], s["stop"] = True, min(s["stop"], self.now)

    def terminate(self, contract: str, stream_id: int) -> str:
        self.calls.append(("terminate", stream_id))
        if self.fail_terminate is not None:
            raise self.fail_terminate
        self.streams[stream_id]["terminated"] = True
        tx = f"0xterm{stream_id}"
        self.txs[tx] = {"stream_id": stream_id, "mined": True}
        return tx

    def block_time(self, block: str = "latest") -> int:
        return self.now

    def funded(self) -> list[int]:
        """Streams that still hold a deposit nobody will get back."""
        return [i for i, s in self.streams.items() if not s["terminated"]]


class PayingProvider(FakeProvider):
    def provider_info(self) -> ProviderInfo:
        self.calls.append(("info", ""))
        return ProviderInfo(provider_id=self.info_id, stream_payment_address=CONTRACT)


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    for where, name, seconds in (("vm.lifecycle", "SETTLE_SECONDS", 0.01), ("vm.create", "SETTLE_SECONDS", 0.01),
                                 ("vm.create", "SETTLE_UNKNOWN", 0.05), ("vm.retire", "SETTLE_UNKNOWN", 0.05)):
        monkeypatch.setattr(f"ansible_collections.golem.vm.plugins.module_utils.{where}.{name}", seconds)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return SQLiteStateStore(str(tmp_path / "vms.db"))


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain()


@pytest.fixture
def providers() -> dict[str, PayingProvider]:
    return {"127.0.0.2": PayingProvider(SE), "127.0.0.3": PayingProvider(US)}


def life(store: StateStore, providers: dict[str, Any], chain: FakeChain | None, *, state: str = "present",
         candidates: list[Any] | None = None, deadline: float = 30) -> tuple[Lifecycle, StreamPayments]:
    warnings: list[str] = []
    timer = Deadline(deadline)
    payments = StreamPayments((lambda: chain) if chain else None, hours=1, deadline=timer,
                              pricing_for=lambda _placement, _pid: PRICING, given_stream=None, warn=warnings.append,
                              network="l2.holesky", contract=CONTRACT)
    want = Want(name="web-1", state=state, spec=None, size=None, image=None, stream_id=None, public_key=KEY,
                key_fingerprint="SHA256:x", private_key_path=None, ssh_user="root", pinned=None, country=None,
                adopt=False, wait=False)
    services = VMServices(store=store, known_hosts=KnownHosts(str(Path(store.path).parent / "known_hosts")),
                          deadline=timer, provider_client=lambda p: providers[p.ip], warn=warnings.append,
                          identity=ProviderIdentity(), lazy_payments=Lazy(lambda: payments))
    lc = Lifecycle(want, services, candidates=lambda preferred: candidates or [SE])
    lc.warnings = warnings  # type: ignore[attr-defined]
    return lc, payments


def test_a_create_pays_the_advertised_price_and_records_the_stream(store, providers, chain):
    lc, payments = life(store, providers, chain)
    rec = lc.run(None)
    terms = stream_terms(PRICING, SIZES["small"], 1)
    assert chain.streams[1]["recipient"] == "0xse" and chain.streams[1]["deposit"] == terms.deposit_wei
    assert rec.stream_id == 1 and rec.config["stream_opened"] and "stream_tx" not in rec.config
    assert payments.report["web-1"] == {"stream_id": 1, "deposit_wei": terms.deposit_wei,
                                        "rate_wei_per_second": terms.rate_wei}
    # The stream is opened before the create call, and the create carries its id.
    kinds = [c[0] for c in providers["127.0.0.2"].calls]
    assert kinds.index("info") < kinds.index("create")


def test_the_rate_is_upstream_clis_to_the_wei():
    # request-vm-on-golem 0.1.58: round(glm_per_month, 8) / (730 * 3600) * 10**18, truncated.
    terms = stream_terms(PRICING, SIZES["small"], 2)
    assert terms.rate_wei == int(32.0 / (730.0 * 3600.0) * 10 ** 18) == 12176560121765
    assert terms.deposit_wei == terms.rate_wei * 7200
    assert stream_terms({"glm_per_core_month": 1.0}, SIZES["small"], 1) is None, "no GLM price, no terms"


def test_a_refused_create_terminates_the_stream_and_fails_over_to_the_next_provider(store, providers, chain):
    providers["127.0.0.2"].create_error = ProviderError("HTTP 400: invalid stream: injected", status=400)
    lc, payments = life(store, providers, chain, candidates=[SE, US])
    rec = lc.run(None)
    assert rec.provider_ip == "127.0.0.3" and rec.stream_id == 2
    assert chain.streams[1]["terminated"] and chain.funded() == [2], "never a stream reused for another provider"
    assert chain.streams[2]["recipient"] == "0xus"
    assert any("terminated payment stream 1" in a for a in lc.out.actions)


def test_a_paying_provider_without_a_key_fails_unchanged_with_no_call_and_no_row(store, providers):
    """No key to pay with: the row written before the payment step goes again, and nothing counts as changed."""
    lc, _payments = life(store, providers, None)
    with pytest.raises(GolemError, match="needs ethereum_private_key"):
        lc.run(None)
    assert store.get("web-1") is None and providers["127.0.0.2"].writes() == []
    assert lc.out.changed is False and not any("terminated" in a or "created" in a for a in lc.out.actions)


def test_a_failed_job_deletes_the_vm_then_terminates_its_stream(store, providers, chain):
    se = providers["127.0.0.2"]
    se.job_status, se.job_error = "failed", "Insufficient resources available on provider"
    lc, _payments = life(store, providers, chain)
    with pytest.raises(ProviderError):
        lc.run(None)
    assert chain.funded() == [] and store.get("web-1") is None
    assert se.writes() == [("create", "web-1"), ("delete", "web-1")]


def test_a_create_whose_answer_was_lost_keeps_the_row_and_the_stream(store, providers, chain):
    se = providers["127.0.0.2"]
    se.create_error = ProviderError("could not talk to 127.0.0.2:7466: Connection reset by peer")
    lc, _payments = life(store, providers, chain)
    with pytest.raises(ProviderError):
        lc.run(None)
    row = store.get("web-1")
    assert row.status == "error" and row.stream_id == 1, "the VM may exist: its stream stays recorded"
    assert chain.funded() == [1]
    # The next run finds the VM gone, terminates the stream, then forgets the row.
    se.create_error = None
    lc, _payments = life(store, providers, chain, state="absent")
    lc.run(store.get("web-1"))
    assert chain.funded() == [] and store.get("web-1") is None


def test_an_unmined_stream_transaction_is_recorded_and_settled_by_the_next_run(store, providers, chain):
    chain.mine = False
    lc, _payments = life(store, providers, chain, deadline=2)
    with pytest.raises(PaymentError, match=r"not mined within wait_timeout by the payments node at "
                                           r"http://127\.0\.0\.10:8545 \(payments_rpc_url\)"):
        lc.run(None)
    row = store.get("web-1")
    assert row.status == "error" and row.config["stream_tx"] == "0xtx1" and row.stream_id is None
    assert [c for c in providers["127.0.0.2"].writes() if c[0] == "create"] == [], "no create without a paid stream"
    chain.txs["0xtx1"]["mined"] = True  # mined meanwhile
    lc, _payments = life(store, providers, chain, state="absent")
    lc.run(store.get("web-1"))
    assert chain.funded() == [] and store.get("web-1") is None


def test_destroying_terminates_after_the_delete_and_reports_the_refund(store, providers, chain):
    lc, _payments = life(store, providers, chain)
    lc.run(None)
    chain.now += 600  # ten minutes of the hour used
    lc, payments = life(store, providers, chain, state="absent")
    lc.run(store.get("web-1"))
    stream = chain.streams[1]
    assert stream["terminated"] and store.get("web-1") is None
    assert payments.report["web-1"]["refunded_wei"] == stream["deposit"] - 600 * stream["rate"]
    se = providers["127.0.0.2"]
    assert se.writes()[-1] == ("delete", "web-1") and chain.calls[-1] == ("terminate", 1)


def test_a_termination_that_fails_keeps_the_row_until_it_succeeds(store, providers, chain):
    lc, _payments = life(store, providers, chain)
    lc.run(None)
    chain.fail_terminate = PaymentError("payments RPC http://127.0.0.10:8545 refused eth_sendRawTransaction")
    lc, _payments = life(store, providers, chain, state="absent")
    with pytest.raises(PaymentError):
        lc.run(store.get("web-1"))
    row = store.get("web-1")
    assert row is not None and row.status == "error" and "not settled" in row.error and row.stream_id == 1
    assert "web-1" not in providers["127.0.0.2"].vms, "the VM is deleted first: it cost money while it ran"
    chain.fail_terminate = None
    lc, _payments = life(store, providers, chain, state="absent")
    lc.run(store.get("web-1"))
    assert chain.funded() == [] and store.get("web-1") is None


def test_stopping_terminates_the_stream_and_keeps_the_row(store, providers, chain):
    lc, _payments = life(store, providers, chain)
    lc.run(None)
    lc, _payments = life(store, providers, chain, state="stopped")
    rec = lc.run(store.get("web-1"))
    assert rec.status == "stopped" and rec.config["stream_terminated"] and chain.funded() == []
    lc, _payments = life(store, providers, chain, state="absent")
    lc.run(store.get("web-1"))
    assert chain.calls.count(("terminate", 1)) == 1, "a terminated stream is not terminated twice"


def test_a_halted_stream_is_terminated_for_the_deposit_it_still_holds(store, providers, chain):
    lc, _payments = life(store, providers, chain)
    lc.run(None)
    chain.now += 600
    chain.halt(1)  # no runway left, yet 50 minutes of deposit are still in the contract
    chain.now += 60
    lc, payments = life(store, providers, chain, state="absent")
    lc.run(store.get("web-1"))
    stream = chain.streams[1]
    assert stream["terminated"] and chain.funded() == [] and store.get("web-1") is None
    assert payments.report["web-1"]["refunded_wei"] == stream["deposit"] - 600 * stream["rate"]


def test_a_vm_with_our_stream_is_not_destroyed_without_the_key(store, providers, chain):
    lc, _payments = life(store, providers, chain)
    lc.run(None)
    lc, _payments = life(store, providers, None, state="absent")
    with pytest.raises(PaymentError, match="ethereum_private_key"):
        lc.run(store.get("web-1"))
    assert "web-1" in providers["127.0.0.2"].vms and store.get("web-1") is not None


def test_a_drifted_vm_is_paid_anew_after_its_old_stream_is_terminated(store, providers, chain):
    lc, _payments = life(store, providers, chain)
    lc.run(None)
    providers["127.0.0.2"].vms.clear()  # deleted behind our back (or by the provider's monitor)
    lc, _payments = life(store, providers, chain)
    rec = lc.run(store.get("web-1"))
    assert chain.streams[1]["terminated"] and rec.stream_id == 2 and chain.funded() == [2]


def test_a_provider_without_payments_is_created_without_a_stream(store, providers, chain):
    se = providers["127.0.0.2"]
    se.provider_info = lambda: ProviderInfo(provider_id="0xse", stream_payment_address="0x" + "0" * 40)
    lc, _payments = life(store, providers, chain)
    rec = lc.run(None)
    assert rec.stream_id is None and chain.streams == {}


def test_an_existing_vm_costs_no_chain_call(store, providers, chain):
    recorded(store)
    providers["127.0.0.2"].vms["web-1"] = vm("web-1")
    lc, _payments = life(store, providers, chain)
    lc.run(store.get("web-1"))
    assert chain.calls == [] and not lc.out.changed


def test_a_send_whose_answer_is_lost_keeps_the_row_pays_once_and_the_next_run_finishes_with_that_stream(
        store, providers, chain):
    chain.send_fault = "lost"
    lc, _payments = life(store, providers, chain, candidates=[SE, US])
    with pytest.raises(PaymentPending, match=r"0xtx1.*recorded on VM web-1's row.*without paying again"):
        lc.run(None)
    row = store.get("web-1")
    assert row.status == "error" and row.config["stream_tx"] == "0xtx1" and row.config["stream_opened"]
    assert row.config["stream_chain_id"] == 31310 and row.config["payments_network"] == "l2.holesky"
    assert [c for c in chain.calls if c[0] == "open"] == [("open", "0xse")], "no fail-over: one stream, to SE"
    assert providers["127.0.0.3"].calls == [], "the next provider is never asked after an ambiguous send"
    chain.send_fault = None
    lc, _payments = life(store, providers, chain, candidates=[SE, US])
    rec = lc.run(store.get("web-1"))
    assert rec.status == "running" and rec.provider_ip == "127.0.0.2" and rec.stream_id == 1
    assert len(chain.streams) == 1 and chain.funded() == [1], "the stream the lost answer opened pays the VM"
    assert [c for c in chain.calls if c[0] == "open"] == [("open", "0xse")]
    assert any("kept payment stream 1" in a for a in lc.out.actions)


def test_a_carried_stream_for_another_provider_is_terminated_before_paying_the_new_one(store, providers, chain):
    chain.send_fault = "lost"
    lc, _payments = life(store, providers, chain, candidates=[SE])
    with pytest.raises(PaymentPending):
        lc.run(None)
    chain.send_fault = None
    providers["127.0.0.2"].create_error = ProviderError("HTTP 400: injected", status=400)
    lc, _payments = life(store, providers, chain, candidates=[SE, US])
    rec = lc.run(store.get("web-1"))
    assert rec.provider_ip == "127.0.0.3" and rec.stream_id == 2 and not rec.config.get("stream_tx")
    assert chain.streams[1]["terminated"] and chain.funded() == [2], "SE's stream ended when the VM went to US"
    lc, _payments = life(store, providers, chain, state="absent")
    lc.run(store.get("web-1"))
    assert chain.funded() == [] and store.get("web-1") is None, "the row recorded US's stream, not SE's old one"


def test_a_carried_stream_is_terminated_when_the_create_goes_to_another_provider(store, providers, chain):
    chain.send_fault = "lost"
    lc, _payments = life(store, providers, chain, candidates=[SE])
    with pytest.raises(PaymentPending):
        lc.run(None)
    chain.send_fault = None
    # The old provider is gone from the candidates (the user pinned another): the create starts on US.
    lc, _payments = life(store, providers, chain, candidates=[US])
    lc.want.pinned = US
    rec = lc.run(store.get("web-1"))
    assert rec.provider_ip == "127.0.0.3" and rec.stream_id == 2
    assert chain.streams[1]["terminated"] and chain.funded() == [2]


def test_a_carried_stream_of_another_rate_is_terminated_and_a_new_one_opened(store, providers, chain):
    chain.send_fault = "lost"
    lc, _payments = life(store, providers, chain, candidates=[SE])
    with pytest.raises(PaymentPending):
        lc.run(None)
    chain.send_fault = None
    lc, payments = life(store, providers, chain, candidates=[SE])
    payments.pricing_for = lambda _placement, _pid: {**PRICING, "glm_per_core_month": 21.0}
    rec = lc.run(store.get("web-1"))
    assert rec.stream_id == 2 and chain.streams[1]["terminated"] and chain.funded() == [2]


def test_a_send_the_node_refuses_after_signing_forgets_the_hash_and_may_fail_over(store, providers, chain):
    chain.send_fault = "refused"
    lc, _payments = life(store, providers, chain, candidates=[SE])
    with pytest.raises(GolemError, match="insufficient funds"):
        lc.run(None)
    assert store.get("web-1") is None and chain.streams == {}, "nothing was sent, so nothing is kept"


def test_a_provider_naming_another_contract_is_refused_before_anything_is_signed(store, providers, chain):
    lc, payments = life(store, providers, chain)
    payments.contract = "0x" + "cd" * 20
    with pytest.raises(ProviderError, match=r"names StreamPayment contract 0x5FbDB2315678afecb367f032d93F642f64180aa3"
                                            r", not 0xcdcd.*stream_payment_address option"):
        lc.run(None)
    assert chain.calls == [] and store.get("web-1") is None


def test_a_price_over_the_cap_is_refused_before_anything_is_signed(store, providers, chain):
    lc, payments = life(store, providers, chain)
    payments.max_glm_per_month = 31.5
    with pytest.raises(ProviderError, match=r"asks 32 GLM a month .* over max_glm_per_month 31\.5"):
        lc.run(None)
    assert chain.calls == [] and store.get("web-1") is None
