# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local network pays as the 0.1.x network does: streams of native ETH on an anvil chain, checked
by the real provider 0.1.63 and opened by the real `golem` CLI 0.1.58 (no collection code).

The chain and the contract are the devnet's own; everything that judges them is upstream's (the
provider's stream check and monitor, the CLI's stream client) or computed here from the signatures
in golem-streaming-abi 0.1.1 (tests/integration/payment_chain.py).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account

from .devnet_helpers import (REPO, create_on_provider, devnet_env, http, open_stream, payment_chain, running_vms, status,
                             vm_body, wait_until)
from .payment_chain import ZERO, Reverted, gas_cost, words

CACHE = Path(os.environ.get("GOLEM_DEVNET_CACHE", "/var/cache/golem-vm-devnet"))
PROVIDER_PYTHON = CACHE / "venvs" / "provider-0.1.63-abi0.1.1" / "bin" / "python"
CLI = CACHE / "venvs" / "requestor-0.1.58-abi0.1.1" / "bin" / "golem"
# The provider's monitor runs every 2 s (devnet/payments.py); the bound only keeps a broken monitor from hanging
# the suite, far above a round on a busy machine. The time it took is printed, not judged.
MONITOR_BOUND = 120.0


@pytest.fixture(scope="module")
def chain(devnet):
    return payment_chain()


@dataclass(frozen=True)
class Requestor:
    """The network's funded requestor account; the key stays out of reprs (and so out of test reports)."""

    key: str = field(repr=False)
    address: str


@pytest.fixture(scope="module")
def requestor(devnet) -> Requestor:
    env = devnet_env()
    return Requestor(env["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"], env["GOLEM_DEVNET_REQUESTOR_ADDRESS"])


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _gone_within(provider: dict, name: str, bound: float) -> float:
    """Seconds until the provider no longer knows ``name`` and its sandbox is gone; fails past ``bound``."""
    started = time.monotonic()
    wait_until(lambda: http("GET", f"{provider['url']}/api/v1/vms/{name}")[0] == 404, timeout=bound,
               interval=0.25, what=f"the provider to delete {name}")
    wait_until(lambda: name not in running_vms(), timeout=60, what=f"the sandbox of {name} to go")
    return time.monotonic() - started


def test_contract_has_the_interface_of_golem_streaming_abi_0_1_1(devnet):
    """Every function and event the upstream packages use, with the same types, mutability and indexing."""
    upstream = json.loads(subprocess.run(
        [str(PROVIDER_PYTHON), "-c", "import json, golem_streaming_abi as g; print(json.dumps(g.STREAM_PAYMENT_ABI))"],
        check=True, capture_output=True, text=True).stdout)
    sys.path.insert(0, str(REPO / "devnet"))
    import solidity

    ours = {(e["type"], e.get("name")): e for e in solidity.load("StreamPayment")["abi"]}

    def shape(entry: dict) -> tuple:
        return (tuple((p["type"], p.get("indexed")) for p in entry.get("inputs", [])),
                tuple(p["type"] for p in entry.get("outputs", [])), entry.get("stateMutability"))

    assert len(upstream) == 6
    for entry in upstream:
        assert shape(ours[(entry["type"], entry["name"])]) == shape(entry), entry["name"]


def test_payments_are_on_at_se_and_us_and_off_at_de(devnet, providers, requestor, ssh_key):
    pay = devnet["payments"]
    assert pay["rpc_url"] == f"http://{devnet['net']}.0.10:8545"
    assert int(payment_chain().rpc("eth_chainId"), 16) == pay["chain_id"]
    assert pay["glm_token_address"] == ZERO
    for key in ("se", "us"):
        prov = providers[key]
        code, info = http("GET", f"{prov['url']}/api/v1/provider/info")
        assert code == 200 and info["stream_payment_address"] == pay["stream_payment_address"]
        assert info["glm_token_address"] == ZERO
        code, body = http("POST", f"{prov['url']}/api/v1/vms?async=true", vm_body(_name("nopay"), ssh_key[1]))
        assert (code, body) == (400, {"detail": "stream_id required when payments are enabled"})
        # The trap of reference §7.2: PYTEST_CURRENT_TEST in a provider's environment turns payments off.
        # The provider's process now: a test before this one may have restarted it.
        environ = Path(f"/proc/{status()['children'][f'provider-{key}']}/environ").read_bytes()
        assert b"PYTEST_CURRENT_TEST" not in environ
    assert providers["se"]["payments"] and providers["us"]["payments"] and not providers["de"]["payments"]
    # The MVP-era provider has no payments at all (its create without a stream: test_devnet.py).
    assert http("GET", f"{providers['de']['url']}/api/v1/provider/info")[0] == 404

    key, address = requestor.key, requestor.address
    assert Account.from_key(key).address == address == pay["requestor_address"]
    assert payment_chain().balance(address) > 10 ** 18
    assert key[2:] not in (Path(devnet["run_dir"]) / "status.json").read_text()
    for secret in (Path(pay["env_file"]), Path(devnet["run_dir"]) / "keys" / "requestor.key"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    script = '. "$1" && echo "$GOLEM_REQUESTOR_POLYGON_RPC_URL $GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS"'
    sourced = subprocess.run(["bash", "-c", script, "-", pay["env_file"]], env={"PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, check=True)
    assert sourced.stdout.split() == [pay["rpc_url"], pay["stream_payment_address"]]


def test_a_streamed_vm_is_verified_and_a_top_up_extends_it(providers, ssh_key, chain, requestor):
    se = providers["se"]
    name = _name("paid")
    stream_id = open_stream(se["provider_id"])
    create_on_provider(se, vm_body(name, ssh_key[1], stream_id))
    try:
        code, seen = http("GET", f"{se['url']}/api/v1/vms/{name}/stream")
        assert code == 200, seen
        assert (seen["verified"], seen["reason"], seen["stream_id"]) == (True, "ok", stream_id)
        on_chain = chain.stream(stream_id)
        assert seen["chain"]["recipient"].lower() == se["provider_id"].lower() == on_chain["recipient"].lower()
        assert seen["chain"]["sender"] == requestor.address
        assert seen["chain"]["stopTime"] - seen["chain"]["startTime"] == 24 * 3600

        rate = on_chain["ratePerSecond"]
        receipt = chain.send(requestor.key, "topUp", stream_id, rate * 3600 + rate // 2, value=rate * 3600 + rate // 2)
        after = chain.stream(stream_id)
        # stopTime moves by whole seconds of the rate; the half second stays in the deposit.
        assert after["stopTime"] == on_chain["stopTime"] + 3600
        assert after["deposit"] == on_chain["deposit"] + rate * 3600 + rate // 2
        (topped,) = chain.events(receipt, "ToppedUp")
        assert words(topped) == [rate * 3600 + rate // 2, after["stopTime"]]
        seen = http("GET", f"{se['url']}/api/v1/vms/{name}/stream")[1]
        assert seen["chain"]["stopTime"] == after["stopTime"] and seen["verified"]
    finally:
        http("DELETE", f"{se['url']}/api/v1/vms/{name}")


def test_a_stream_to_another_provider_or_no_stream_is_refused(providers, ssh_key):
    se, us = providers["se"], providers["us"]
    to_us = open_stream(us["provider_id"])
    for stream_id in (to_us, 10 ** 9):  # another provider's stream; an id that was never created
        code, body = http("POST", f"{se['url']}/api/v1/vms?async=true",
                          vm_body(_name("wrong"), ssh_key[1], stream_id))
        assert (code, body) == (400, {"detail": "invalid stream: recipient mismatch"})


def test_the_provider_deletes_the_vm_when_the_runway_ends(providers, ssh_key, chain):
    us = providers["us"]
    name = _name("runout")
    stream_id = open_stream(us["provider_id"], seconds=120)
    create_on_provider(us, vm_body(name, ssh_key[1], stream_id))
    time.sleep(3)  # more than one monitor round: a live stream keeps its VM
    assert http("GET", f"{us['url']}/api/v1/vms/{name}")[0] == 200
    chain.advance(121)
    took = _gone_within(us, name, MONITOR_BOUND)
    print(f"runway over -> VM deleted in {took:.1f} s")


def test_terminate_pays_the_vested_part_refunds_the_rest_and_ends_the_vm(providers, ssh_key, chain, requestor):
    se = providers["se"]
    key, sender = requestor.key, requestor.address
    name = _name("term")
    stream_id = open_stream(se["provider_id"])
    create_on_provider(se, vm_body(name, ssh_key[1], stream_id))
    chain.advance(100)  # let something vest
    before = chain.stream(stream_id)
    receipt = chain.send(key, "terminate", stream_id)
    block = int(receipt["blockNumber"], 16)
    at = chain.block_time(block)
    vested = (at - before["startTime"]) * before["ratePerSecond"]
    refund = before["deposit"] - vested

    def delta(address: str) -> int:
        return (int(chain.rpc("eth_getBalance", address, hex(block)), 16)
                - int(chain.rpc("eth_getBalance", address, hex(block - 1)), 16))

    assert 100 * before["ratePerSecond"] <= vested < before["deposit"]
    assert delta(sender) == refund - gas_cost(receipt)
    assert delta(se["provider_id"]) == vested
    assert delta(chain.contract) == -before["deposit"]
    (terminated,) = chain.events(receipt, "Terminated")
    assert words(terminated) == [refund, vested]
    after = chain.stream(stream_id)
    assert (after["recipient"], after["stopTime"], after["withdrawn"]) == (ZERO, at, vested)
    with pytest.raises(Reverted, match="no stream"):
        chain.simulate(sender, "terminate", stream_id)
    # stopTime is now: the provider's monitor sees no runway left and deletes the VM.
    took = _gone_within(se, name, MONITOR_BOUND)
    print(f"terminated -> VM deleted in {took:.1f} s")


def test_only_the_recipient_withdraws_and_gets_what_vested(devnet, chain, requestor):
    recipient = Account.create()
    chain.rpc("anvil_setBalance", recipient.address, hex(10 ** 18))  # gas money
    rate = 10 ** 12
    stream_id = open_stream(recipient.address, seconds=3600, rate=rate)
    chain.advance(50)
    with pytest.raises(Reverted, match="not recipient"):
        chain.simulate(requestor.address, "withdraw", stream_id)
    start = chain.stream(stream_id)["startTime"]
    receipt = chain.send(recipient.key.hex(), "withdraw", stream_id)
    at = chain.block_time(int(receipt["blockNumber"], 16))
    (event,) = chain.events(receipt, "Withdraw")
    assert words(event) == [(at - start) * rate]
    assert chain.stream(stream_id)["withdrawn"] == (at - start) * rate
    assert chain.balance(recipient.address) == 10 ** 18 + (at - start) * rate - gas_cost(receipt)


def test_the_oracle_alone_halts_and_the_provider_deletes_a_halted_vm(devnet, providers, ssh_key, chain, requestor):
    us = providers["us"]
    name = _name("halt")
    stream_id = open_stream(us["provider_id"])
    create_on_provider(us, vm_body(name, ssh_key[1], stream_id))
    with pytest.raises(Reverted, match="not oracle"):
        chain.simulate(requestor.address, "haltStream", stream_id)
    receipt = chain.send_unlocked(devnet["payments"]["oracle_address"], "haltStream", stream_id)
    assert chain.events(receipt, "Halted")
    halted = chain.stream(stream_id)
    assert halted["halted"] and halted["stopTime"] == chain.block_time(int(receipt["blockNumber"], 16))
    with pytest.raises(Reverted, match="halted"):
        chain.simulate(requestor.address, "topUp", stream_id, 10 ** 15, value=10 ** 15)
    _gone_within(us, name, MONITOR_BOUND)


@pytest.mark.parametrize("args,value,reason", [
    ((ZERO, "recipient", 10 ** 15, 0), 10 ** 15, "rate=0"),
    ((ZERO, "recipient", 0, 10 ** 9), 0, "deposit=0"),
    ((ZERO, "recipient", 10 ** 15, 10 ** 9), 10 ** 14, "value != deposit"),
    ((ZERO, "recipient", 10 ** 8, 10 ** 9), 10 ** 8, "duration=0"),
    ((ZERO, ZERO, 10 ** 15, 10 ** 9), 10 ** 15, "recipient=0"),
    (("0x" + "11" * 20, "recipient", 10 ** 15, 10 ** 9), 0, "erc20 streams unsupported"),
])
def test_create_stream_rejects_bad_input(chain, requestor, providers, args, value, reason):
    args = tuple(providers["se"]["provider_id"] if a == "recipient" else a for a in args)
    with pytest.raises(Reverted, match=reason):
        chain.simulate(requestor.address, "createStream", *args, value=value)


def test_top_up_and_terminate_belong_to_the_parties(chain, requestor, providers):
    stream_id = open_stream(providers["se"]["provider_id"], seconds=60)
    rate = chain.stream(stream_id)["ratePerSecond"]
    stranger = chain.rpc("eth_accounts")[5]
    with pytest.raises(Reverted, match="not sender"):
        chain.simulate(stranger, "topUp", stream_id, rate * 10, value=rate * 10)
    with pytest.raises(Reverted, match="value != amount"):
        chain.simulate(requestor.address, "topUp", stream_id, rate * 10, value=rate)
    with pytest.raises(Reverted, match="not authorized"):
        chain.simulate(stranger, "terminate", stream_id)
    with pytest.raises(Reverted):  # no receive(): ETH sent outside a stream is refused
        chain.rpc("eth_call", {"from": stranger, "to": chain.contract, "value": hex(1)}, "latest")
    chain.advance(61)
    with pytest.raises(Reverted, match="stream ended"):
        chain.simulate(requestor.address, "topUp", stream_id, rate * 10, value=rate * 10)
    chain.send(requestor.key, "terminate", stream_id)  # nothing left to refund; the provider gets it all


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **devnet_env()}
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=180, check=False)


def test_upstream_cli_opens_and_tops_up_a_stream_the_provider_accepts(providers, ssh_key, chain, requestor, tmp_path):
    se = providers["se"]
    opened = _cli(tmp_path, "vm", "stream", "open", "--provider-id", se["provider_id"],
                  "--cpu", "1", "--memory", "1", "--storage", "10", "--hours", "1")
    assert opened.returncode == 0, opened.stderr + opened.stdout
    answer = json.loads(opened.stdout[opened.stdout.index("{"):])
    stream_id = answer["stream_id"]
    # The CLI's price: SE's 20 + 8 + 10 * 0.4 GLM a month for 1 CPU, 1 GB, 10 GB, paid 1:1 in wei.
    assert answer["rate_per_second_wei"] == int(32 / (730 * 3600) * 10 ** 18)
    assert answer["deposit_wei"] == answer["rate_per_second_wei"] * 3600
    on_chain = chain.stream(stream_id)
    assert (on_chain["sender"], on_chain["deposit"]) == (requestor.address, answer["deposit_wei"])

    name = _name("cli")
    create_on_provider(se, vm_body(name, ssh_key[1], stream_id))
    try:
        seen = http("GET", f"{se['url']}/api/v1/vms/{name}/stream")[1]
        assert seen["verified"] and seen["stream_id"] == stream_id
        topped = _cli(tmp_path, "vm", "stream", "topup", "--stream-id", str(stream_id), "--hours", "1")
        assert topped.returncode == 0, topped.stderr + topped.stdout
        assert chain.stream(stream_id)["stopTime"] == on_chain["stopTime"] + 3600
        inspected = _cli(tmp_path, "vm", "stream", "inspect", "--stream-id", str(stream_id), "--json")
        assert inspected.returncode == 0, inspected.stderr + inspected.stdout
        assert str(on_chain["stopTime"] + 3600) in inspected.stdout
    finally:
        http("DELETE", f"{se['url']}/api/v1/vms/{name}")


def test_status_prints_the_chain_line(devnet):
    out = subprocess.run([sys.executable, str(REPO / "devnet" / "ctl.py"), "status"], capture_output=True,
                         text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("chain"))
    assert devnet["payments"]["rpc_url"] in line and devnet["payments"]["stream_payment_address"] in line
    assert str(devnet["payments"]["chain_id"]) in line
    assert status()["payments"] == devnet["payments"]
