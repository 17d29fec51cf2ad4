# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The entities of the Golem Base stand-in and the storage transactions that change them.

What a golem-base-geth node does with a transaction to the storage address, as far as a
requestor or provider can see it: the data is
``rlp([creates, updates, deletes, extends])`` (the layout golem-base-sdk 0.1.0 encodes in
``utils.rlp_encode_transaction``), checked and applied atomically in the order creates,
deletes, updates, extends, with one log per operation. Entity keys are derived as the node
derives them: keccak256(transaction hash ‖ payload ‖ the create's index as 32 bytes).
Runs under the provider's virtualenv (rlp, eth-utils).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import rlp
from eth_utils import keccak, to_checksum_address

from golembase_query import ANNOTATION_KEY, Annotated

STORAGE_ADDRESS = "0x0000000000000000000000000000000060138453"
# Topic 0 of each event: the SDK finds the event by this hash (constants.GOLEM_BASE_ABI).
CREATED = keccak(b"GolemBaseStorageEntityCreated(uint256,uint256)")
UPDATED = keccak(b"GolemBaseStorageEntityUpdated(uint256,uint256)")
DELETED = keccak(b"GolemBaseStorageEntityDeleted(uint256)")
EXTENDED = keccak(b"GolemBaseStorageEntityBTLExtended(uint256,uint256,uint256)")


class StorageTxError(Exception):
    """The node fails such a transaction as a whole; nothing of it is applied."""


@dataclass
class Entity:
    key: bytes
    owner: str  # lower-case hex, as geth writes an address in JSON
    payload: bytes
    strings: list[tuple[str, str]]
    numbers: list[tuple[str, int]]
    expires_at: int
    created_at: int

    def annotated(self) -> Annotated:
        return Annotated(dict(self.strings), dict(self.numbers))


@dataclass
class Write:
    """A create (key None) or an update."""

    key: bytes | None
    btl: int
    payload: bytes
    strings: list[tuple[str, str]]
    numbers: list[tuple[str, int]]


@dataclass
class StorageTx:
    creates: list[Write] = field(default_factory=list)
    updates: list[Write] = field(default_factory=list)
    deletes: list[bytes] = field(default_factory=list)
    extends: list[tuple[bytes, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Log:
    topics: tuple[bytes, ...]
    data: bytes


# -- decoding: as strict as Go's rlp package on the node's structs --------------------------------
def _list(item: object, size: int | None, what: str) -> list:
    if not isinstance(item, list):
        raise StorageTxError(f"{what}: expected a list")
    if size is not None and len(item) != size:
        raise StorageTxError(f"{what}: expected {size} elements, got {len(item)}")
    return item


def _bytes(item: object, what: str) -> bytes:
    if not isinstance(item, bytes):
        raise StorageTxError(f"{what}: expected a string, got a list")
    return item


def _uint64(item: object, what: str) -> int:
    raw = _bytes(item, what)
    if raw[:1] == b"\0":
        raise StorageTxError(f"{what}: non-canonical integer (leading zero bytes)")
    if len(raw) > 8:
        raise StorageTxError(f"{what}: integer does not fit 64 bits")
    return int.from_bytes(raw, "big")


def _hash(item: object, what: str) -> bytes:
    raw = _bytes(item, what)
    if len(raw) != 32:
        raise StorageTxError(f"{what}: an entity key is 32 bytes, got {len(raw)}")
    return raw


def _annotations(item: object, numeric: bool, what: str) -> list:
    out = []
    for i, pair in enumerate(_list(item, None, what)):
        key, value = _list(pair, 2, f"{what}[{i}]")
        # Go keeps a string's bytes; JSON then shows invalid UTF-8 as U+FFFD, as "replace" does.
        name = _bytes(key, f"{what}[{i}] key").decode("utf-8", "replace")
        out.append((name, _uint64(value, f"{what}[{i}] value") if numeric
                    else _bytes(value, f"{what}[{i}] value").decode("utf-8", "replace")))
    return out


def _write(item: object, update: bool, what: str) -> Write:
    fields = _list(item, 5 if update else 4, what)
    key = _hash(fields.pop(0), f"{what} key") if update else None
    return Write(key, _uint64(fields[0], f"{what} btl"), _bytes(fields[1], f"{what} payload"),
                 _annotations(fields[2], False, f"{what} string annotations"),
                 _annotations(fields[3], True, f"{what} numeric annotations"))


def _extend(item: object, what: str) -> tuple[bytes, int]:
    key, blocks = _list(item, 2, what)
    return _hash(key, f"{what} key"), _uint64(blocks, f"{what} blocks")


def decode(data: bytes) -> StorageTx:
    try:
        top = rlp.decode(data)
    except rlp.exceptions.DecodingError as exc:
        raise StorageTxError(f"failed to decode storage transaction: {exc}") from None
    creates, updates, deletes, extends = _list(top, 4, "storage transaction")
    return StorageTx(
        [_write(c, False, f"create[{i}]") for i, c in enumerate(_list(creates, None, "creates"))],
        [_write(u, True, f"update[{i}]") for i, u in enumerate(_list(updates, None, "updates"))],
        [_hash(d, f"delete[{i}]") for i, d in enumerate(_list(deletes, None, "deletes"))],
        [_extend(e, f"extend[{i}]") for i, e in enumerate(_list(extends, None, "extends"))],
    )


def validate(tx: StorageTx) -> None:
    """The node's checks that need no state: BTLs, annotation names, no duplicate names."""
    for kind, writes in (("create", tx.creates), ("update", tx.updates)):
        for i, write in enumerate(writes):
            if write.btl == 0:
                raise StorageTxError(f"{kind}[{i}] BTL is 0")
            for label, pairs in (("string", write.strings), ("numeric", write.numbers)):
                names = [name for name, _value in pairs]
                for name in names:
                    if not ANNOTATION_KEY.match(name):
                        raise StorageTxError(f"invalid annotation identifier: {name!r}")
                if len(set(names)) != len(names):
                    raise StorageTxError(f"{kind}[{i}] {label} annotation key is duplicated")
    for i, (_key, blocks) in enumerate(tx.extends):
        if blocks == 0:
            raise StorageTxError(f"extend[{i}] number of blocks is 0")


def entity_key(tx_hash: bytes, payload: bytes, index: int) -> bytes:
    return keccak(tx_hash + payload + index.to_bytes(32, "big"))


def _word(*numbers: int) -> bytes:
    return b"".join(n.to_bytes(32, "big") for n in numbers)


class Store:
    """All entities of the chain, as of the last block the stand-in has processed."""

    def __init__(self) -> None:
        self.entities: dict[bytes, Entity] = {}

    def expire(self, block: int) -> list[bytes]:
        """The housekeeping at the start of ``block``: entities whose expiry is due are gone."""
        due = [key for key, ent in self.entities.items() if ent.expires_at <= block]
        for key in due:
            del self.entities[key]
        return due

    def live(self, head: int) -> list[Entity]:
        return [ent for ent in self.entities.values() if ent.expires_at > head]

    def apply(self, data: bytes, *, block: int, tx_hash: bytes, sender: str, dry_run: bool = False) -> list[Log]:
        """Runs one storage transaction at ``block``: all of it, or nothing and StorageTxError."""
        tx = decode(data)
        validate(tx)
        sender = sender.lower()
        staged = dict(self.entities)  # entities are replaced, never changed in place
        logs: list[Log] = []
        for i, create in enumerate(tx.creates):
            key = entity_key(tx_hash, create.payload, i)
            staged[key] = Entity(key, sender, create.payload, create.strings, create.numbers,
                                 block + create.btl, block)
            logs.append(Log((CREATED, key), _word(block + create.btl)))
        for key in tx.deletes:
            self._owned(staged, key, sender, "delete")
            del staged[key]
            logs.append(Log((DELETED, key), b""))
        for update in tx.updates:
            assert update.key is not None
            old = self._owned(staged, update.key, sender, "update")
            staged[update.key] = Entity(update.key, old.owner, update.payload, update.strings, update.numbers,
                                        block + update.btl, old.created_at)
            logs.append(Log((UPDATED, update.key), _word(block + update.btl)))
        for key, blocks in tx.extends:
            old = self._found(staged, key, "extend BTL of")
            staged[key] = replace(old, expires_at=old.expires_at + blocks)
            logs.append(Log((EXTENDED, key), _word(old.expires_at, old.expires_at + blocks)))
        if not dry_run:
            self.entities = staged
        return logs

    @staticmethod
    def _found(staged: dict[bytes, Entity], key: bytes, what: str) -> Entity:
        if key not in staged:
            raise StorageTxError(f"failed to {what} entity 0x{key.hex()}: entity not found")
        return staged[key]

    def _owned(self, staged: dict[bytes, Entity], key: bytes, sender: str, what: str) -> Entity:
        ent = self._found(staged, key, what)
        if ent.owner != sender:
            raise StorageTxError(f"failed to {what} entity 0x{key.hex()}: "
                                 f"{to_checksum_address(sender)} is not the owner")
        return ent
