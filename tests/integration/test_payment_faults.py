# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stream is paid exactly once, even when the payments node lies (issue 20).

golem_vm pays through an RpcProxy in front of the local chain (anvil); the proxy makes the node's answers
ambiguous (502, a hang, a reset after the transaction was forwarded), lies about the chain id or the fee,
or lets the test lock the state file or kill golem_vm right after the createStream transaction went out.
Each test pays from an account of its own, made and funded for it: the local network is shared with other
tests, so "how many streams did this task open" is counted on chain as the streams whose sender is that
account (ids between two reads of nextStreamId), never from the collection's own report.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from .ansible_runner import Ansible
from .devnet_helpers import ProviderLog, devnet_env, http, payment_chain, status
from .fault_proxy import FaultProxy
from .payment_chain import ZERO, Chain
from .rpc_proxy import RpcProxy

# golem_vm's request timeout in the hang case: the proxy holds the answer until golem_vm hangs up, however
# long this is, so it only sets how long the case takes.
HANG_TIMEOUT = 10
# The whole task's budget: far above a create on a busy machine, so only the injected faults decide.
BUDGET = 300
POLYGON = 137  # a mainnet: never to be paid on for the test network l2.holesky
OTHER_LOCAL_CHAIN = 31337  # anvil's default chain id: another local chain a payments_rpc_url may point at
PRIORITY_GWEI = 1000  # a node's priority fee far above the default cap (max_fee_per_gas_gwei 100)


@dataclass
class Payer:
    """An account of one test's own: every stream and transaction it makes on chain is this test's."""

    key: str
    address: str
    first_id: int  # nextStreamId when the account was made: its streams all come after

    def streams(self, chain: Chain) -> list[int]:
        """Ids of the streams this account opened, as the contract stores them."""
        return [i for i in range(self.first_id + 1, chain.next_stream_id() + 1)
                if chain.stream(i)["sender"].lower() == self.address.lower()]

    def nonce(self, chain: Chain) -> int:
        """Transactions of this account the chain has mined."""
        return int(chain.rpc("eth_getTransactionCount", self.address, "latest"), 16)


@dataclass
class Runner:
    """golem_vm run as a user would, paying from the test's account through the test's payments node."""

    ansible: Ansible
    payer: Payer
    rpc: RpcProxy
    marker: str  # in the environment of every process of these runs, so a hook can find golem_vm's

    def golem_vm(self, args: dict[str, Any], direct: bool = False) -> dict[str, Any]:
        url = devnet_env()["GOLEM_REQUESTOR_POLYGON_RPC_URL"] if direct else self.rpc.url
        return self.ansible.module("golem_vm", {"payments_rpc_url": url, **args}, env={
            "GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY": self.payer.key,
            "GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS": status()["payments"]["stream_payment_address"],
            "GOLEM_WF_RUN": self.marker})

    def destroy(self, name: str) -> dict[str, Any]:
        # Straight to the chain: ending the streams is cleanup here, not what is under test.
        return self.golem_vm({"name": name, "state": "absent", "wait_timeout": BUDGET}, direct=True)


@pytest.fixture
def chain(devnet) -> Chain:
    return payment_chain()


@pytest.fixture
def payer(chain: Chain) -> Iterator[Payer]:
    account = Account.create()
    chain.rpc("anvil_setBalance", account.address, hex(100 * 10 ** 18))
    made = Payer("0x" + bytes(account.key).hex(), account.address, chain.next_stream_id())
    yield made
    # A test that failed may have left a stream funded: end it, so the shared chain keeps no deposit locked.
    # Its own assertions came first, so this hides nothing.
    for stream_id in made.streams(chain):
        if chain.stream(stream_id)["recipient"] != ZERO:
            chain.send(made.key, "terminate", stream_id)


@pytest.fixture
def rpc(devnet) -> Iterator[RpcProxy]:
    proxy = RpcProxy(devnet_env()["GOLEM_REQUESTOR_POLYGON_RPC_URL"])
    yield proxy
    proxy.close()


@pytest.fixture
def run(ansible: Ansible, payer: Payer, rpc: RpcProxy) -> Runner:
    return Runner(ansible, payer, rpc, uuid.uuid4().hex)


def _name(case: str) -> str:
    return f"wf-{case}-{uuid.uuid4().hex[:6]}"


def _msg(result: dict[str, Any]) -> str:
    return str(result.get("msg", ""))


def _row(state_path: Path, name: str) -> tuple[str, dict[str, Any]] | None:
    """The VM's state row: (status, config), as anyone reading the state file sees it."""
    if not state_path.exists():
        return None
    with closing(sqlite3.connect(state_path)) as conn:
        found = conn.execute("SELECT status, config FROM vms WHERE name = ?", (name,)).fetchone()
    return (found[0], json.loads(found[1] or "{}")) if found else None


def _sent_hashes(rpc: RpcProxy) -> set[str]:
    """Hashes of the signed transactions golem_vm sent through the proxy."""
    return {"0x" + keccak(bytes.fromhex(raw[2:])).hex() for raw in rpc.raw_transactions()}


def _provider_url(providers: dict[str, dict], provider_id: str) -> str:
    (url,) = [p["url"] for p in providers.values() if str(p.get("provider_id", "")).lower() == provider_id.lower()]
    return url


def _assert_paid_once_and_running(run: Runner, chain: Chain, providers: dict[str, dict], name: str) -> int:
    """One stream from the test's account, the one on the VM's row; the VM runs on the stream's recipient."""
    streams = run.payer.streams(chain)
    assert len(streams) == 1, f"streams opened on chain: {streams} (one VM, so exactly one)"
    (stream_id,) = streams
    row = _row(run.ansible.state_path, name)
    assert row is not None, "the VM has no state row"
    state, config = row
    assert state == "running" and config.get("stream_id") == stream_id, (state, config)
    recipient = chain.stream(stream_id)["recipient"]
    assert recipient != ZERO, f"stream {stream_id} was terminated, yet the VM runs on it"
    url = _provider_url(providers, recipient)
    seen = http("GET", f"{url}/api/v1/vms/{name}/stream")[1]
    assert seen.get("stream_id") == stream_id and seen.get("verified") is True, seen
    return stream_id


def _assert_destroyed(run: Runner, chain: Chain, names: list[str]) -> None:
    """state=absent for each VM; then no stream of the test's account holds a deposit."""
    gone = {name: run.destroy(name) for name in names}
    assert {n: _msg(r) for n, r in gone.items() if r["failed"]} == {}
    still = [s for s in run.payer.streams(chain) if chain.stream(s)["recipient"] != ZERO]
    assert still == [], f"streams left funded after state=absent: {still}"


def _assert_nothing_sent(run: Runner, chain: Chain, logs: dict[str, ProviderLog], name: str,
                         nonce: int = 0) -> None:
    assert run.rpc.count("eth_sendRawTransaction") == 0, "a transaction was sent to the payments node"
    assert run.payer.nonce(chain) == nonce, "the account has a transaction mined"
    assert {key: log.writes(name) for key, log in logs.items() if log.writes(name)} == {}, "a create was sent"


# -- an ambiguous send: the transaction went out, golem_vm cannot tell ------------------------------------

@pytest.mark.parametrize("kind", ["status", "hang", "reset"])
def test_an_ambiguous_send_opens_one_stream_and_the_vm_runs_on_it(kind: str, run: Runner, chain: Chain, providers):
    """The node takes createStream, then answers 502 / nothing / a reset: the VM is made on that one stream.

    Discovery chooses among SE and US (both paying): a fail-over to the other provider after the ambiguous
    send would pay a second stream, which the count on chain shows.
    """
    name = _name(kind)
    fault = run.rpc.inject("eth_sendRawTransaction", kind)
    args: dict[str, Any] = {"name": name, "wait": False, "wait_timeout": BUDGET}
    if kind == "hang":
        args["timeout"] = HANG_TIMEOUT
    try:
        result = run.golem_vm(args)
        assert fault.fired == 1, "the fault never fired: no transaction was sent"
        if kind == "hang":
            assert fault.hung_up == 1, "golem_vm did not give up waiting for the send's answer"
        assert not result["failed"], _msg(result)
        stream_id = _assert_paid_once_and_running(run, chain, providers, name)
        assert len(run.rpc.raw_transactions()) == 1, "more than one transaction signed (a re-broadcast is one)"
        assert result["stream"].get("stream_id") == stream_id, result["stream"]
    finally:
        _assert_destroyed(run, chain, [name])


# -- the state or the process fails right after the send ---------------------------------------------------

class StateFileLock:
    """Another process's write transaction on the state file (BEGIN EXCLUSIVE), taken from a proxy hook and
    held until released: every write golem_vm tries meanwhile waits out its busy timeout and fails."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.taken = threading.Event()
        self._release = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def take(self) -> None:
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()
        # The node's answer is relayed only once the lock is held: golem_vm's next write cannot beat it.
        if not self.taken.wait(60):
            raise AssertionError(f"could not lock {self.path}: {self.error}")

    def _hold(self) -> None:
        try:
            # One connection, in this thread only (sqlite3 objects stay in their thread).
            with closing(sqlite3.connect(self.path, timeout=60, isolation_level=None)) as conn:
                conn.execute("BEGIN EXCLUSIVE")
                self.taken.set()
                self._release.wait(900)
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            self.error = exc

    def release(self) -> None:
        self._release.set()
        if self._thread is not None:
            self._thread.join(30)


def _kill_golem_vm(marker: str) -> list[int]:
    """SIGKILL golem_vm's module process of this test's run (found by the marker in its environment)."""
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if f"GOLEM_WF_RUN={marker}".encode() in environ and b"AnsiballZ_golem_vm" in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed


@pytest.mark.parametrize("failure", ["state-locked", "killed"])
def test_a_failure_right_after_the_send_is_settled_by_the_next_run_on_the_same_stream(
        failure: str, run: Runner, chain: Chain, providers):
    """The createStream transaction went out; then the state file is locked by another process (the write of
    the stream fails) or golem_vm is killed. The row keeps the transaction; a re-run finishes the VM on the
    stream that transaction opened, and opens none of its own."""
    name = _name(failure)
    lock = StateFileLock(run.ansible.state_path)
    killed: list[int] = []
    if failure == "state-locked":
        fault = run.rpc.inject("eth_sendRawTransaction", "hook", hook=lock.take)
    else:
        fault = run.rpc.inject("eth_sendRawTransaction", "hook",
                               hook=lambda: killed.extend(_kill_golem_vm(run.marker)))
    args = {"name": name, "wait": False, "wait_timeout": BUDGET}
    try:
        try:
            first = run.golem_vm(args)
        finally:
            lock.release()
        assert fault.fired == 1, "the fault never fired: no transaction was sent"
        assert lock.error is None, lock.error
        assert first["failed"], "the task succeeded, though its state write failed or it was killed"
        if failure == "state-locked":
            assert "locked" in _msg(first), _msg(first)
        else:
            assert killed, "golem_vm's process was not found to kill"
        (sent,) = _sent_hashes(run.rpc)
        row = _row(run.ansible.state_path, name)
        assert row is not None and row[1].get("stream_tx") == sent, (
            f"the row does not keep the transaction {sent} that went out: {row}")

        run.rpc.heal()
        again = run.golem_vm(args)
        assert not again["failed"], _msg(again)
        _assert_paid_once_and_running(run, chain, providers, name)
        assert _sent_hashes(run.rpc) == {sent}, "the re-run signed a transaction of its own"
    finally:
        _assert_destroyed(run, chain, [name])


# -- a node that is not the chain it should be, or asks too much: nothing is sent ----------------------------

@pytest.mark.parametrize("case", ["mainnet", "given-id", "recorded"])
def test_a_node_on_another_chain_is_refused_before_anything_is_sent(
        case: str, run: Runner, chain: Chain, providers):
    """mainnet: the node says Polygon (137) for the test network l2.holesky. given-id: payments_chain_id names
    another chain than the node's. recorded: this state file paid on the devnet's chain before, and the node
    now serves another one. Each is refused naming both; no transaction, no create."""
    name = _name(f"chain-{case}")
    earlier = _name("chain-before")
    devnet_chain_id = int(chain.rpc("eth_chainId"), 16)  # asked of the node itself, not through the proxy
    args: dict[str, Any] = {"name": name, "wait": False, "wait_timeout": BUDGET}
    try:
        if case == "recorded":
            before = run.golem_vm({"name": earlier, "wait": False, "wait_timeout": BUDGET})
            assert not before["failed"], _msg(before)
        sends, nonce = run.rpc.count("eth_sendRawTransaction"), run.payer.nonce(chain)
        streams = run.payer.streams(chain)
        if case == "mainnet":
            run.rpc.inject("eth_chainId", "answer", result=hex(POLYGON), times=None)
            says = [str(POLYGON), "l2.holesky"]
        elif case == "given-id":
            args["payments_chain_id"] = devnet_chain_id + 1
            says = [str(devnet_chain_id), str(devnet_chain_id + 1)]
        else:
            run.rpc.inject("eth_chainId", "answer", result=hex(OTHER_LOCAL_CHAIN), times=None)
            says = [str(devnet_chain_id), str(OTHER_LOCAL_CHAIN)]
        logs = {key: ProviderLog(key) for key in ("se", "us")}
        result = run.golem_vm(args)
        assert result["failed"], "paid on a chain it should not have"
        assert all(s in _msg(result) for s in says), (says, _msg(result))
        assert run.rpc.count("eth_sendRawTransaction") == sends, "a transaction was sent to the payments node"
        assert run.payer.nonce(chain) == nonce and run.payer.streams(chain) == streams, "paid on chain"
        assert {key: log.writes(name) for key, log in logs.items() if log.writes(name)} == {}, "a create was sent"
    finally:
        run.rpc.heal()
        # The refused VM too: absent of a VM that was never made changes nothing, and one made in error goes.
        _assert_destroyed(run, chain, ([earlier] if case == "recorded" else []) + [name])


def test_a_priority_fee_over_the_cap_is_refused_with_the_figures(run: Runner, chain: Chain, providers):
    """The node asks a priority fee of 1000 gwei; max_fee_per_gas_gwei is 100 by default: nothing is signed."""
    name = _name("fee")
    run.rpc.inject("eth_maxPriorityFeePerGas", "answer", result=hex(PRIORITY_GWEI * 10 ** 9), times=None)
    logs = {key: ProviderLog(key) for key in ("se", "us")}
    try:
        result = run.golem_vm({"name": name, "wait": False, "wait_timeout": BUDGET})
        assert result["failed"], "paid a fee over the cap"
        assert "max_fee_per_gas_gwei" in _msg(result) and str(PRIORITY_GWEI) in _msg(result), _msg(result)
        _assert_nothing_sent(run, chain, logs, name)
        assert run.payer.streams(chain) == []
    finally:
        run.rpc.heal()
        _assert_destroyed(run, chain, [name])


def test_a_provider_naming_another_contract_is_never_paid(run: Runner, chain: Chain, providers):
    """SE's provider/info names a contract other than the devnet's: a real StreamPayment (the same code, at
    another address), so only the collection's own rule can refuse it. No transaction, no create."""
    se = providers["se"]
    rogue = to_checksum_address("0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8])
    chain.rpc("anvil_setCode", rogue, chain.rpc("eth_getCode", chain.contract, "latest"))
    # What the constructor would have stored: the re-entrancy guard's "not entered" (slot 2, after nextStreamId
    # and the streams mapping), without which every paying call reverts before any rule of ours is tested.
    chain.rpc("anvil_setStorageAt", rogue, hex(2), "0x" + "0" * 63 + "1")

    def rewrite(body: bytes) -> bytes:
        try:
            info = json.loads(body)
        except ValueError:
            return body
        return json.dumps({**info, "stream_payment_address": rogue}).encode() if isinstance(info, dict) else body

    # On SE's own address: the SSH host of an honest answer from there is its own.
    front = FaultProxy(se["url"], ip=se["ip"])
    front.inject("GET", r"/api/v1/provider/info$", "rewrite", rewrite=rewrite, times=1000)
    name = _name("contract")
    logs = {"se": ProviderLog("se")}
    try:
        result = run.golem_vm({"name": name, "wait": False, "wait_timeout": BUDGET, "provider_ip": front.ip,
                               "provider_port": front.port, "discovery_backend": "central"})
        assert front.requests("GET", r"/provider/info$"), "golem_vm never asked the provider which contract"
        assert result["failed"], "paid the provider's own contract"
        assert rogue.lower() in _msg(result).lower(), _msg(result)
        _assert_nothing_sent(run, chain, logs, name)
        assert Chain(chain.url, rogue).next_stream_id() == 0, "a stream was opened on the provider's contract"
    finally:
        front.heal()
        try:
            _assert_destroyed(run, chain, [name])
        finally:
            front.close()
