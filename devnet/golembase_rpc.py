# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stand-in's answers in golem-base-geth's JSON shapes: the ``golembase_*`` reads, and the
logs, blooms and headers it adds to what anvil says. Runs under the provider's virtualenv.
"""

from __future__ import annotations

import base64
from typing import Any

import rlp
from eth_utils import keccak

from golembase_query import QueryError, matches, parse
from golembase_state import STORAGE_ADDRESS, Entity, Log, Store


class RpcFailure(Exception):
    """A JSON-RPC error answer; -32000 is geth's code for a failed call."""

    def __init__(self, message: str, code: int = -32000) -> None:
        super().__init__(message)
        self.code = code


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _b64(raw: bytes) -> str:
    # Go's encoding/json writes []byte as standard base64; the SDK b64-decodes it.
    return base64.b64encode(raw).decode()


def _key(text: Any) -> bytes:
    if not isinstance(text, str) or not text.startswith("0x") or len(text) != 66:
        raise RpcFailure(f"invalid entity key {text!r}: want 0x and 64 hex digits", -32602)
    return bytes.fromhex(text[2:])


def _find(store: Store, head: int, key: Any) -> Entity:
    raw = _key(key)
    ent = store.entities.get(raw)
    if ent is None or ent.expires_at <= head:
        raise RpcFailure(f"entity {_hex(raw)} not found")
    return ent


def metadata(ent: Entity) -> dict[str, Any]:
    return {
        "expiresAtBlock": ent.expires_at,
        "payload": _b64(ent.payload),
        "stringAnnotations": [{"key": k, "value": v} for k, v in ent.strings],
        "numericAnnotations": [{"key": k, "value": v} for k, v in ent.numbers],
        "owner": ent.owner,
    }


def answer(store: Store, head: int, method: str, params: list[Any]) -> Any:
    """One ``golembase_*`` read, against the entities alive after block ``head``."""
    live = store.live(head)
    if method == "golembase_queryEntities":
        try:
            query = parse(str(params[0]))
        except (QueryError, IndexError) as exc:
            raise RpcFailure(f"failed to parse query: {exc}") from None
        return [{"key": _hex(e.key), "value": _b64(e.payload)} for e in live if matches(query, e.annotated())]
    if method == "golembase_getEntityMetaData":
        return metadata(_find(store, head, params[0]))
    if method == "golembase_getStorageValue":
        return _b64(_find(store, head, params[0]).payload)
    if method == "golembase_getEntityCount":
        return len(live)
    keys: list[Entity] | None = None
    if method == "golembase_getAllEntityKeys":
        keys = live
    elif method == "golembase_getEntitiesOfOwner":
        keys = [e for e in live if e.owner == str(params[0]).lower()]
    elif method == "golembase_getEntitiesToExpireAtBlock":
        keys = [e for e in live if e.expires_at == int(params[0])]
    elif method == "golembase_getEntitiesForStringAnnotationValue":
        keys = [e for e in live if (params[0], params[1]) in e.strings]
    elif method == "golembase_getEntitiesForNumericAnnotationValue":
        keys = [e for e in live if (params[0], int(params[1])) in e.numbers]
    if keys is None:
        raise RpcFailure(f"the method {method} does not exist/is not available", -32601)
    return [_hex(e.key) for e in keys]


def log_json(entry: Log, block: dict[str, Any], tx: dict[str, Any], index: int) -> dict[str, Any]:
    return {
        "address": STORAGE_ADDRESS, "topics": [_hex(t) for t in entry.topics], "data": _hex(entry.data),
        "blockNumber": block["number"], "blockHash": block["hash"], "transactionHash": tx["hash"],
        "transactionIndex": tx["transactionIndex"], "logIndex": hex(index), "removed": False,
    }


def log_matches(entry: dict[str, Any], filt: dict[str, Any]) -> bool:
    """eth_subscribe("logs", filter) semantics: address one-of, topics by position, None = any."""
    address = filt.get("address")
    if address:
        wanted = [address] if isinstance(address, str) else address
        if entry["address"] not in [a.lower() for a in wanted]:
            return False
    for pos, want in enumerate(filt.get("topics") or []):
        if want is None:
            continue
        options = [want] if isinstance(want, str) else want
        if pos >= len(entry["topics"]) or entry["topics"][pos] not in [o.lower() for o in options]:
            return False
    return True


def bloom(logs: list[dict[str, Any]]) -> str:
    """The 2048-bit log bloom of the yellow paper, over each log's address and topics."""
    bits = 0
    for entry in logs:
        for item in [entry["address"], *entry["topics"]]:
            digest = keccak(bytes.fromhex(item[2:]))
            for i in (0, 2, 4):
                bits |= 1 << (int.from_bytes(digest[i:i + 2], "big") & 2047)
    return "0x" + bits.to_bytes(256, "big").hex()


def header_json(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k not in ("transactions", "uncles", "withdrawals")}


def check_raw_transaction(raw_hex: Any) -> None:
    """The node refuses a storage transaction without data when it is submitted."""
    try:
        raw = bytes.fromhex(str(raw_hex)[2:])
        if raw[0] >= 0xc0:  # legacy: nonce, gasPrice, gas, to, value, data, ...
            fields, to_at = rlp.decode(raw), 3
        elif raw[0] in (1, 2):  # EIP-2930 / EIP-1559: the chain id and fee fields come first
            fields, to_at = rlp.decode(raw[1:]), 4 if raw[0] == 1 else 5
        else:
            return
        to, data = fields[to_at], fields[to_at + 2]
    except (ValueError, IndexError, rlp.exceptions.DecodingError):
        return  # anvil answers malformed transactions itself
    if _hex(to) == STORAGE_ADDRESS and not data:
        raise RpcFailure("storage transaction has no data")
