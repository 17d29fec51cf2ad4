# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A refresh, payments' half: each paid VM's runway, read from the chain in JSON-RPC batches.

Used by the inventory's ``refresh: true`` and golem_vm_info's, through module_utils.vm_refresh.

Why the chain and not the provider's ``GET /api/v1/vms/NAME/stream``: the chain is what the provider
itself reads (it answers that route with two ``streams(id)`` calls and two block reads of its own),
so one batch of ``eth_call streams(id)`` for every VM is one request instead of one per VM; it
answers for VMs whose provider is down (their stream still runs out); and it answers for VMs that
are gone - a provider forgets a VM's stream when its monitor deletes the VM, so only the chain can
say that the stream ran out. The provider's own verdict is golem_stream's ``provider_view``.

No chain library is imported: ``streams(uint256)`` takes one word and returns nine static ones, so
the call data is a fixed selector and a number, and the answer is cut into 32-byte words.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.runway import ending
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError
from ansible_collections.golem.vm.plugins.module_utils.foundation.jsonrpc import (
    Call,
    RpcFault,
    batch_answers,
    batch_request,
    fault,
    is_answer,
    outcome,
)

# keccak256("streams(uint256)")[:4]; tests/unit check it against eth-utils.
STREAMS_SELECTOR = "64d60d91"
STREAM_WORDS = 9  # token, sender, recipient, startTime, stopTime, ratePerSecond, deposit, withdrawn, halted
# Public RPCs cap batches (often at 100 to 1,000 calls); a few batches go out at once.
BATCH_SIZE = 100
BATCH_CONCURRENCY = 4

StreamKey = tuple[str, int]  # (contract in lower case, stream id)


@dataclass(frozen=True)
class StreamRunway:
    """What the chain says of one VM's stream; ``error`` when it could not be read."""

    stream_id: int | None
    remaining_seconds: int | None = None
    ended: str | None = None  # why it pays no more: "ran out at chain time 123", "was terminated", ...
    error: str | None = None

    def to_list(self) -> list[Any]:
        return [self.stream_id, self.remaining_seconds, self.ended, self.error]

    @classmethod
    def from_list(cls, data: Any) -> StreamRunway:
        stream_id, remaining, ended, error = data
        return cls(None if stream_id is None else int(stream_id), None if remaining is None else int(remaining),
                   None if ended is None else str(ended), None if error is None else str(error))


def call_data(stream_id: int) -> str:
    return "0x" + STREAMS_SELECTOR + format(stream_id, "064x")


def decode(result: Any, now: int, stream_id: int) -> StreamRunway:
    """streams(id)'s nine words at block time ``now``; a reply of another shape is an error, not a guess."""
    if not isinstance(result, str) or not result.startswith("0x") or len(result) != 2 + 64 * STREAM_WORDS:
        return StreamRunway(stream_id, error=f"streams({stream_id}) did not answer the 0.1.x StreamPayment's "
                                             f"{STREAM_WORDS} words; is it the contract the VM was paid at?")
    try:
        words = [int(result[2 + 64 * i:2 + 64 * (i + 1)], 16) for i in range(STREAM_WORDS)]
    except ValueError:
        return StreamRunway(stream_id, error=f"streams({stream_id}) answered something that is not hexadecimal")
    _token, sender, recipient, _start, stop, _rate, _deposit, _withdrawn, halted = words
    remaining, ended = ending(found=sender != 0, is_terminated=recipient == 0, halted=bool(halted),
                              stop_time=stop, now=now, brief=True)
    return StreamRunway(stream_id, remaining, ended)


class _Batches:
    def __init__(self, rpc_url: str, deadline: Deadline, timeout: float, validate_certs: bool) -> None:
        self.url, self.deadline, self.timeout, self.validate_certs = rpc_url, deadline, timeout, validate_certs

    def read(self, keys: list[StreamKey]) -> dict[StreamKey, StreamRunway]:
        """One batch: every stream plus the latest block, so all are judged at the same block time."""
        from ansible_collections.golem.vm.plugins.module_utils.foundation.http import HttpClient

        # A client per batch: batches go out from several threads, and a requests.Session is not thread-safe.
        http = HttpClient(self.url, service="payments RPC", error_class=GolemError, timeout=self.timeout, retries=0,
                          validate_certs=self.validate_certs,
                          hint="check payments_rpc_url (GOLEM_REQUESTOR_POLYGON_RPC_URL)",
                          party=f"the payments node at {self.url} (payments_rpc_url)")
        http.deadline = self.deadline
        try:
            return self._read(http, keys)
        finally:
            http.close()

    def _read(self, http: Any, keys: list[StreamKey]) -> dict[StreamKey, StreamRunway]:
        calls: list[Call] = [("eth_getBlockByNumber", ["latest", False])]
        calls += [("eth_call", [{"to": contract, "data": call_data(stream_id)}, "latest"])
                  for contract, stream_id in keys]
        try:
            answer = http.request("POST", "", json_body=batch_request(calls))
        except GolemError as exc:
            return {key: StreamRunway(key[1], error=exc.msg) for key in keys}
        if not isinstance(answer, list):
            # A JSON-RPC server that does not take batches answers with one error object.
            why = (fault(answer["error"]).message if isinstance(answer, dict) and answer.get("error") is not None
                   else type(answer).__name__)
            msg = f"payments RPC {self.url} did not answer a JSON-RPC batch ({why})"
            return {key: StreamRunway(key[1], error=msg) for key in keys}
        head, *items = batch_answers(answer, len(calls))
        block = outcome(head) if is_answer(head) else None
        try:
            now = int(block["timestamp"], 16)
        except (KeyError, TypeError, ValueError):
            msg = f"payments RPC {self.url} gave no latest block: {(head or {}).get('error')}"
            return {key: StreamRunway(key[1], error=msg) for key in keys}
        found: dict[StreamKey, StreamRunway] = {}
        for key, item in zip(keys, items):
            result = outcome(item) if is_answer(item) else RpcFault(None, "no answer")
            if isinstance(result, RpcFault):
                found[key] = StreamRunway(key[1], error=f"payments RPC {self.url} refused streams({key[1]}) of "
                                                        f"{key[0]}: {result.message}")
            else:
                found[key] = decode(result, now, key[1])
        return found


def read_runways(rpc_url: str, keys: Iterable[StreamKey], *, timeout: float, request_timeout: float | None = None,
                 validate_certs: bool = True) -> dict[StreamKey, StreamRunway]:
    """Every stream in ``keys``, in batches of BATCH_SIZE, a few at once, within ``timeout`` seconds
    (one request at most ``request_timeout``, by default the whole budget)."""
    unique = sorted(set(keys))
    if not unique:
        return {}
    batches = _Batches(rpc_url, Deadline(timeout, option="refresh_timeout"),
                       timeout if request_timeout is None else min(timeout, request_timeout), validate_certs)
    chunks = [unique[i:i + BATCH_SIZE] for i in range(0, len(unique), BATCH_SIZE)]
    found: dict[StreamKey, StreamRunway] = {}
    if len(chunks) == 1:
        return batches.read(chunks[0])
    with ThreadPoolExecutor(max_workers=min(BATCH_CONCURRENCY, len(chunks)), thread_name_prefix="golem-chain") as pool:
        for part in pool.map(batches.read, chunks):
            found.update(part)
    return found
