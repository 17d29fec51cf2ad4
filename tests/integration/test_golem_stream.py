# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_stream on the local network's real chain (anvil + StreamPayment) and a paying upstream provider (SE).

What is checked comes from the chain (streams(id), balances, receipts, the contract's own events) and from the
provider (GET /vms/NAME/stream), never from the module's report alone.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing

import pytest

from .ansible_runner import Ansible
from .devnet_helpers import devnet_env, http, open_stream, payment_chain, status, wait_until
from .payment_chain import ZERO, gas_cost, words


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def chain(devnet):
    return payment_chain()


@pytest.fixture(scope="module")
def payer(devnet) -> str:
    return devnet_env()["GOLEM_DEVNET_REQUESTOR_ADDRESS"]


def _create(ansible: Ansible, provider: dict, name: str, hours: int = 1) -> int:
    created = ansible.module("golem_vm", {"name": name, "provider_id": provider["provider_id"], "wait": False,
                                          "payment_hours": hours})
    assert not created["failed"], created.get("msg")
    return created["stream"]["stream_id"]


def _config(ansible: Ansible, name: str) -> dict:
    with closing(sqlite3.connect(ansible.state_path)) as conn:
        (raw,) = conn.execute("SELECT config FROM vms WHERE name = ?", (name,)).fetchone()
    return json.loads(raw)


def test_runway_hours_tops_up_once_to_the_wei_and_check_mode_pays_nothing(ansible: Ansible, providers, chain,
                                                                          payer):
    se = providers["se"]
    name = _name("runway")
    stream_id = _create(ansible, se, name)
    try:
        before, balance = chain.stream(stream_id), chain.balance(payer)
        quote = ansible.module("golem_stream", {"name": name, "runway_hours": 2}, check=True, diff=True)
        assert quote["changed"] and not quote["failed"] and quote["tx"] is None, quote.get("msg")
        assert chain.stream(stream_id) == before and chain.balance(payer) == balance, "check mode pays nothing"
        assert quote["top_up"]["amount_wei"] == before["ratePerSecond"] * quote["top_up"]["seconds_added"]
        assert "+    \"remaining_seconds\": 7200" in quote["_stdout"], "the diff shows the runway after"

        key = devnet_env()["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"]
        paid = ansible.module("golem_stream", {"name": name, "runway_hours": 2}, verbosity=4)
        assert paid["changed"] and not paid["failed"], paid.get("msg")
        printed = paid["_stdout"] + paid["_stderr"]
        assert key.removeprefix("0x").lower() not in printed.lower(), "the key must not show at -vvvv"
        top, after = paid["top_up"], chain.stream(stream_id)
        rate = after["ratePerSecond"]
        # The chain moved stopTime by exactly what was paid, and the deposit by exactly the amount.
        assert after["stopTime"] - before["stopTime"] == top["seconds_added"] == top["amount_wei"] // rate
        assert after["deposit"] - before["deposit"] == top["amount_wei"] == top["seconds_added"] * rate
        # To exactly 2 hours from the block the stream was read at.
        read_at = top["stop_time_before"] - top["remaining_seconds_before"]
        assert after["stopTime"] - read_at == 7200 and top["stop_time_after"] == after["stopTime"]
        assert balance - chain.balance(payer) == top["amount_wei"] + gas_cost(chain.receipt(paid["tx"]))
        assert paid["stream"]["stop_time"] == after["stopTime"] and paid["stream"]["deposit_wei"] == after["deposit"]
        assert paid["provider_view"]["verified"] is True and paid["provider_view"]["stream_id"] == stream_id
        seen = http("GET", f"{se['url']}/api/v1/vms/{name}/stream")[1]
        # The provider counts from a block between the top-up's and the one after its answer: bracketed by
        # chain time, not by how long the machine took in between.
        assert after["stopTime"] - chain.block_time() <= seen["computed"]["remaining_seconds"] <= 7200, seen

        again = ansible.module("golem_stream", {"name": name, "runway_hours": 2})
        assert again["changed"] is False and again["tx"] is None and again["top_up"] == {}
        assert chain.stream(stream_id) == after, "a second run pays nothing"
    finally:
        gone = ansible.module("golem_vm", {"name": name, "state": "absent"})
        assert not gone["failed"], gone.get("msg")


def test_absent_terminates_with_the_refund_measured_on_chain(ansible: Ansible, providers, chain, payer):
    se = providers["se"]
    name = _name("ended")
    stream_id = _create(ansible, se, name)
    try:
        before, balance = chain.stream(stream_id), chain.balance(payer)
        quote = ansible.module("golem_stream", {"name": name, "state": "absent"}, check=True)
        assert quote["changed"] and quote["tx"] is None and 0 < quote["refunded_wei"] < before["deposit"]
        assert chain.stream(stream_id) == before and chain.balance(payer) == balance, "check mode pays nothing"
        assert "stream_terminated" not in _config(ansible, name)

        gone = ansible.module("golem_stream", {"name": name, "state": "absent"})
        assert gone["changed"] and not gone["failed"], gone.get("msg")
        receipt = chain.receipt(gone["tx"])
        refund = gone["refunded_wei"]
        assert chain.balance(payer) - balance == refund - gas_cost(receipt), "the refund is measured on chain"
        (event,) = chain.events(receipt, "Terminated")
        assert words(event)[0] == refund, "what the contract itself says it refunded"
        assert chain.stream(stream_id)["recipient"] == ZERO and gone["stream"]["ended"] is True
        assert _config(ansible, name)["stream_terminated"] is True

        again = ansible.module("golem_stream", {"name": name, "state": "absent"})
        assert again["changed"] is False and again["tx"] is None
        # The provider sees the stream over and deletes the VM; an ended stream cannot be revived.
        wait_until(lambda: http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 404, timeout=120, what="the monitor")
        revive = ansible.module("golem_stream", {"name": name, "runway_hours": 1})
        assert revive["failed"] and "cannot be topped up or revived" in revive["msg"], revive["msg"]
        assert f"stream {stream_id} of VM {name}" in revive["msg"] and "was terminated" in revive["msg"]
        assert revive["failure"] == {"kind": "validation", "field": "runway_hours", "value": 1}
    finally:
        forgotten = ansible.module("golem_vm", {"name": name, "state": "absent"})
    assert not forgotten["failed"], forgotten.get("msg")
    assert not any("terminat" in a for a in forgotten["actions"]), "the stream is recorded as terminated already"


def test_a_stream_by_id_takes_its_contract_from_the_provider(ansible: Ansible, providers, chain, payer):
    se = providers["se"]
    stream_id = open_stream(se["provider_id"], seconds=600)
    contract = status()["payments"]["stream_payment_address"]
    before = chain.stream(stream_id)
    topped = ansible.module("golem_stream", {"stream_id": stream_id, "provider_ip": se["ip"], "runway_hours": 1})
    assert topped["changed"] and not topped["failed"], topped.get("msg")
    assert topped["stream"]["contract"] == contract and topped["provider_view"] is None
    after = chain.stream(stream_id)
    assert after["stopTime"] - before["stopTime"] == topped["top_up"]["seconds_added"]
    ended = ansible.module("golem_stream", {"stream_id": stream_id, "stream_payment_address": contract,
                                            "state": "absent"})
    assert ended["changed"] and chain.stream(stream_id)["recipient"] == ZERO
    (event,) = chain.events(chain.receipt(ended["tx"]), "Terminated")
    assert words(event)[0] == ended["refunded_wei"] > 0


def test_an_unknown_stream_fails_clearly(ansible: Ansible, chain):
    contract = status()["payments"]["stream_payment_address"]
    result = ansible.module("golem_stream", {"stream_id": 10 ** 9, "stream_payment_address": contract})
    assert result["failed"] and f"stream {10 ** 9} does not exist at StreamPayment {contract}" in result["msg"]
    assert result["failure"]["field"] == "stream_id" and "Traceback" not in result["_stderr"]
