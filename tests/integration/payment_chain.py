# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local network's payment chain from a test's side: plain JSON-RPC, transactions signed with
eth-account, calldata encoded with eth-abi from the function signatures of golem-streaming-abi 0.1.1.

Nothing here comes from the devnet's code or the contract's build: selectors and event topics are
computed from the signatures, so a contract that drifted from upstream's ABI fails these tests.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

ZERO = "0x" + "0" * 40
STREAM_FIELDS = ("token", "sender", "recipient", "startTime", "stopTime", "ratePerSecond", "deposit",
                 "withdrawn", "halted")
STREAM_TYPES = ["address", "address", "address", "uint128", "uint128", "uint128", "uint256", "uint256", "bool"]
FUNCTIONS = {
    "createStream": ["address", "address", "uint256", "uint128"],
    "topUp": ["uint256", "uint256"],
    "withdraw": ["uint256"],
    "terminate": ["uint256"],
    "haltStream": ["uint256"],
    "streams": ["uint256"],
    "nextStreamId": [],
}
EVENTS = {
    "StreamCreated": "StreamCreated(uint256,address,address,address,uint256,uint256,uint256,uint256)",
    "Withdraw": "Withdraw(uint256,address,uint256)",
    "Terminated": "Terminated(uint256,uint256,uint256)",
    "Halted": "Halted(uint256)",
    "ToppedUp": "ToppedUp(uint256,uint256,uint128)",
}
_ids = itertools.count(1)
# One account's transactions are numbered (nonce) under this lock, so parallel tests can pay.
_send_lock = threading.Lock()


class Reverted(Exception):
    """A call or transaction the chain refused; the message carries the revert reason."""


def topic(event: str) -> str:
    return "0x" + keccak(text=EVENTS[event]).hex()


def calldata(function: str, *args: Any) -> str:
    types = FUNCTIONS[function]
    selector = keccak(text=f"{function}({','.join(types)})")[:4]
    return "0x" + (selector + encode(types, list(args))).hex()


@dataclass
class Chain:
    url: str
    contract: str

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the loopback chain
            answer = json.loads(resp.read())
        if "error" in answer:
            raise Reverted(f"{method}: {answer['error'].get('message')}")
        return answer["result"]

    # -- reading ----------------------------------------------------------------------------
    def balance(self, address: str) -> int:
        return int(self.rpc("eth_getBalance", address, "latest"), 16)

    def block_time(self, block: str | int = "latest") -> int:
        tag = hex(block) if isinstance(block, int) else block
        return int(self.rpc("eth_getBlockByNumber", tag, False)["timestamp"], 16)

    def stream(self, stream_id: int) -> dict[str, Any]:
        raw = self.rpc("eth_call", {"to": self.contract, "data": calldata("streams", stream_id)}, "latest")
        values = decode(STREAM_TYPES, bytes.fromhex(raw[2:]))
        return {field: to_checksum_address(value) if kind == "address" else value
                for field, kind, value in zip(STREAM_FIELDS, STREAM_TYPES, values)}

    # -- writing ----------------------------------------------------------------------------
    def next_stream_id(self) -> int:
        """The contract's nextStreamId() counter as it reads now: it moves once per stream opened."""
        return int(self.rpc("eth_call", {"to": self.contract, "data": calldata("nextStreamId")}, "latest"), 16)

    def simulate(self, sender: str, function: str, *args: Any, value: int = 0) -> None:
        """eth_call the transaction: raises Reverted with the contract's reason if it would fail."""
        self.rpc("eth_call", {"from": sender, "to": self.contract, "data": calldata(function, *args),
                              "value": hex(value)}, "latest")

    def send(self, key: str, function: str, *args: Any, value: int = 0) -> dict[str, Any]:
        """Sign with ``key`` and send; returns the receipt of the mined transaction."""
        account = Account.from_key(key)
        data = calldata(function, *args)
        self.simulate(account.address, function, *args, value=value)
        with _send_lock:
            estimate = {"from": account.address, "to": self.contract, "data": data, "value": hex(value)}
            tx = {
                "to": to_checksum_address(self.contract), "data": data, "value": value,
                "nonce": int(self.rpc("eth_getTransactionCount", account.address, "pending"), 16),
                "gas": int(self.rpc("eth_estimateGas", estimate), 16),
                "gasPrice": int(self.rpc("eth_gasPrice"), 16),
                "chainId": int(self.rpc("eth_chainId"), 16),
            }
            raw = Account.sign_transaction(tx, account.key).raw_transaction
            tx_hash = self.rpc("eth_sendRawTransaction", "0x" + bytes(raw).hex())
        return self.receipt(tx_hash)

    def send_unlocked(self, sender: str, function: str, *args: Any, value: int = 0) -> dict[str, Any]:
        """Send from one of anvil's unlocked dev accounts (the oracle, strangers)."""
        tx_hash = self.rpc("eth_sendTransaction", {"from": sender, "to": self.contract,
                                                   "data": calldata(function, *args), "value": hex(value)})
        return self.receipt(tx_hash)

    def receipt(self, tx_hash: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt:
                if int(receipt["status"], 16) != 1:
                    raise Reverted(f"transaction {tx_hash} reverted")
                return receipt
            time.sleep(0.1)
        raise AssertionError(f"transaction {tx_hash} not mined within {timeout} s")

    def events(self, receipt: dict[str, Any], event: str) -> list[dict[str, Any]]:
        return [log for log in receipt["logs"]
                if log["address"].lower() == self.contract.lower() and log["topics"][0] == topic(event)]

    def advance(self, seconds: int) -> None:
        """Move chain time forward and mine a block at the new time."""
        self.rpc("evm_increaseTime", seconds)
        self.rpc("evm_mine")


def gas_cost(receipt: dict[str, Any]) -> int:
    return int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)


def words(log: dict[str, Any]) -> list[int]:
    """The non-indexed uint256/uint128 arguments of an event, in order."""
    data = bytes.fromhex(log["data"][2:])
    return [int.from_bytes(data[i:i + 32], "big") for i in range(0, len(data), 32)]
