# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Puts raw entities on the local Golem Base: signs and sends storage transactions of any content.

For tests that need adverts no real provider would post (malformed ones, or many). Each
transaction is a JSON object; all are sent at once (consecutive nonces), then their receipts
are awaited:

    {"key": "0x…" (signer, optional: anvil's first dev account, funded),
     "creates": [{"btl": 60, "data": "", "strings": [["golem_type", "provider"]], "numbers": [["golem_cpu", 4]]}],
     "updates": [{"entity": "0x…", "btl": 60, "data": "", "strings": [], "numbers": []}],
     "deletes": ["0x…"], "extends": [["0x…", 30]], "gas": 200000 (optional: skips estimation),
     "raw": "0x…" (optional: these bytes as the data instead, e.g. not RLP at all)}

Values are encoded as given: a JSON string as UTF-8, an integer as an RLP integer, and
{"hex": "…"} as raw bytes, so a number can be sent where a string belongs and the reverse.
Output: one JSON object per transaction, {tx_hash, status, sender, created: [{key, expiresAtBlock}], logs}.

    python golembase_seed.py RPC_URL < transactions.json      (under the provider's virtualenv)
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from typing import Any

import rlp
from eth_account import Account

from golembase_state import CREATED, STORAGE_ADDRESS

# anvil's first development account (its well-known test mnemonic): funded on every anvil chain.
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the local network's RPC
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error'].get('message')}")
    return answer["result"]


def _value(value: Any) -> Any:
    if isinstance(value, dict) and "hex" in value:
        return bytes.fromhex(value["hex"].removeprefix("0x"))
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def _key(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def encode(tx: dict[str, Any]) -> bytes:
    """The storage transaction's data, in golem-base-sdk 0.1.0's layout."""
    return rlp.encode([
        [[c["btl"], _value(c.get("data", "")), _value(c.get("strings", [])), _value(c.get("numbers", []))]
         for c in tx.get("creates", [])],
        [[_key(u["entity"]), u["btl"], _value(u.get("data", "")), _value(u.get("strings", [])),
          _value(u.get("numbers", []))] for u in tx.get("updates", [])],
        [_key(k) for k in tx.get("deletes", [])],
        [[_key(k), n] for k, n in tx.get("extends", [])],
    ])


def send_all(url: str, txs: list[dict[str, Any]], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Signs and sends every transaction, then waits for all their receipts."""
    chain_id = int(rpc(url, "eth_chainId"), 16)
    tip = int(rpc(url, "eth_maxPriorityFeePerGas"), 16)
    base_fee = int(rpc(url, "eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    nonces: dict[str, int] = {}
    sent = []
    for tx in txs:
        account = Account.from_key(tx.get("key") or DEV_KEY)
        if account.address not in nonces:
            nonces[account.address] = int(rpc(url, "eth_getTransactionCount", account.address, "pending"), 16)
        data = tx["raw"] if "raw" in tx else "0x" + encode(tx).hex()
        call = {"from": account.address, "to": STORAGE_ADDRESS, "data": data, "value": "0x0"}
        gas = tx.get("gas") or int(rpc(url, "eth_estimateGas", call), 16)
        signed = account.sign_transaction({
            "type": 2, "chainId": chain_id, "nonce": nonces[account.address], "to": STORAGE_ADDRESS,
            "value": 0, "data": data, "gas": gas, "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * base_fee + tip,
        })
        nonces[account.address] += 1
        sent.append((account.address, rpc(url, "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())))
    results = []
    deadline = time.monotonic() + timeout
    for sender, tx_hash in sent:
        while (receipt := rpc(url, "eth_getTransactionReceipt", tx_hash)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash} within {timeout} s")
            time.sleep(0.1)
        created = [{"key": entry["topics"][1], "expiresAtBlock": int(entry["data"], 16)}
                   for entry in receipt["logs"] if entry["topics"][0] == "0x" + CREATED.hex()]
        results.append({"tx_hash": tx_hash, "status": int(receipt["status"], 16), "sender": sender,
                        "block": int(receipt["blockNumber"], 16), "created": created, "logs": receipt["logs"]})
    return results


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    request = json.load(sys.stdin)
    print(json.dumps(send_all(sys.argv[1], request if isinstance(request, list) else [request])))
