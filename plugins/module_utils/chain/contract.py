# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The StreamPayment contract on chain: open, top up, terminate and read payment streams.

JSON-RPC goes through the collection's one HTTP client; eth-account signs (EIP-1559) and eth-abi
encodes, both imported only when a task pays. The contract is the 0.1.x network's
(golem-streaming-abi 0.1.1): payable createStream(token, recipient, deposit, ratePerSecond),
topUp(id, amount), terminate(id) and the 9-field streams(id). Native ETH only (token 0x0), as
the 0.1.x network pays.

Transactions from one account are numbered: the nonce is read and the transaction sent under a
lock file beside the state, so forks and fleet threads paying at once never reuse a nonce. Other
controllers paying from the same account may still take one: a nonce refused as taken is tried again
with the next, and each transaction carries a tag of its own, so two controllers' never coincide. The
private key stays in this object; no message, result or exception carries it.

Imported only when a task pays or reads a stream: eth-account and eth-abi cost more to import than a
whole no-op run takes.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.network import GWEI, check_chain_id
from ansible_collections.golem.vm.plugins.module_utils.chain.runway import ChainStream
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import ZERO_ADDRESS, succeeded
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    MissingLibraryError, NotSent, PaymentError, PaymentPending, TaskTimeout)
from ansible_collections.golem.vm.plugins.module_utils.foundation.files import ensure_private_dir, file_lock
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import HttpClient
from ansible_collections.golem.vm.plugins.module_utils.foundation.jsonrpc import METHOD_NOT_FOUND, RpcFault, outcome, request

CHAIN_LIBRARY = "eth-account >= 0.13 (with eth-abi)"
try:
    from eth_abi import decode as abi_decode
    from eth_abi import encode as abi_encode
    from eth_account import Account
    from eth_utils import keccak, to_checksum_address
except ImportError:
    HAS_CHAIN_LIBS = False
    CHAIN_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_CHAIN_LIBS = True
    CHAIN_IMPORT_ERROR = None

_STREAM_FIELDS = ("token", "sender", "recipient", "start_time", "stop_time", "rate", "deposit", "withdrawn", "halted")
_STREAM_TYPES = ["address", "address", "address", "uint128", "uint128", "uint128", "uint256", "uint256", "bool"]
STREAM_CREATED = "StreamCreated(uint256,address,address,address,uint256,uint256,uint256,uint256)"
RECEIPT_POLL = 0.1
# How nodes (geth, anvil, reth) refuse a transaction whose nonce another one took first.
NONCE_TAKEN = ("nonce too low", "replacement transaction underpriced", "nonce too high")
NONCE_TRIES = 6
# Estimated in this block, mined in the next: a terminate estimated when nothing had vested pays the
# provider nothing, but mined a second later it sends ETH (up to ~34,000 gas more, to a new account).
# Unused gas is not charged, so the margin costs nothing.
TRANSFER_GAS = 60_000  # blocks come every second or so; a late look costs a whole block
READ_TRIES = 3
CALL_TAG_BYTES = 16


class NodeRefused(PaymentError):
    """The node answered with a JSON-RPC error: it read the call and said no."""


# How the HTTP client says a request never left: nothing listened, no such host, no connection made.
_NEVER_SENT = ("connection refused by", "could not be resolved", "could not connect to")
# What nodes (geth, anvil, reth, erigon) answer when they refuse a transaction for good. Any other JSON-RPC
# error (a gateway's "internal error", "upstream timeout") may come after the node took it.
_REFUSALS = ("nonce too low", "nonce too high", "underpriced", "insufficient funds", "intrinsic gas too low",
             "exceeds block gas limit", "invalid sender", "less than block base fee", "invalid chain id",
             "fee cap", "exceeds the configured cap", "gas limit reached", "invalid transaction")


def _ambiguous(exc: PaymentError) -> bool:
    """Whether a failed send may still have reached the node: anything but a known refusal or a request that
    never left (a timeout, a reset, a gateway's 502, an answer that is not JSON-RPC, an unknown error)."""
    if isinstance(exc, NodeRefused):
        return not any(m in exc.msg.lower() for m in _REFUSALS)
    if exc.status is not None and 400 <= exc.status < 500:
        return False
    return not (exc.status is None and any(m in exc.msg for m in _NEVER_SENT))


def hex_int(value: Any, what: str) -> int:
    """A JSON-RPC quantity; a node answering anything else fails the task, named, never with a traceback."""
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise PaymentError(f"the payments node answered {what} with {str(value)[:80]!r}, not a hexadecimal quantity; "
                       "is payments_rpc_url an Ethereum RPC endpoint?")


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


class StreamChain:
    """One account paying on one chain; ``lock_dir`` holds the nonce lock (the state file's directory)."""

    def __init__(self, rpc_url: str, private_key: str | None, *, lock_dir: str, deadline: Deadline,
                 timeout: float = 30.0, validate_certs: bool = True, chain_id: int | None = None,
                 network: str | None = None, recorded_chain_ids: Callable[[], Iterable[int]] | None = None,
                 max_fee_wei: int | None = None) -> None:
        """Without ``private_key`` the client only reads (streams, receipts). The chain the node serves must be
        ``chain_id`` when given, else fit ``network`` and the ids ``recorded_chain_ids()`` gives (payment_network);
        no transaction is signed for a fee above ``max_fee_wei`` a gas."""
        if not HAS_CHAIN_LIBS:
            raise MissingLibraryError(CHAIN_LIBRARY, CHAIN_IMPORT_ERROR, reason="to pay providers")
        self._account: Any = None
        if private_key is not None:
            try:
                self._account = Account.from_key(private_key)
            except Exception:  # any parse failure; never echo the value
                raise PaymentError("ethereum_private_key is not a valid private key (64 hex digits, with or "
                                   "without 0x); the value is not shown") from None
        self.address: str = self._account.address if self._account is not None else ZERO_ADDRESS
        self.rpc_url = rpc_url
        self.deadline = deadline
        self.expected_chain_id = chain_id
        self.network = network
        self._recorded_chain_ids = recorded_chain_ids or (lambda: ())
        self.max_fee_wei = max_fee_wei
        self._timeout, self._verify = timeout, validate_certs
        self._local = threading.local()
        self._chain_id: int | None = None
        self._checked: set[str] = set()
        self._guard = threading.Lock()
        self.lock_path = os.path.join(lock_dir, f".payments-{self.address.lower()}.lock")

    # -- JSON-RPC ------------------------------------------------------------------------------
    def _http(self) -> HttpClient:
        # One requests Session per thread: fleet members pay from their own threads.
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = HttpClient(self.rpc_url, service="payments RPC", error_class=PaymentError,
                                                 timeout=self._timeout, validate_certs=self._verify, retries=0,
                                                 hint="check payments_rpc_url and that the chain's RPC is up",
                                                 party=f"the payments node at {self.rpc_url} (payments_rpc_url)")
            http.deadline = self.deadline
        return http

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """This thread's calls get a budget of their own: settling a stream after a failure must not be
        cut short by the task's budget, which may be what ran out."""
        http = self._http()
        saved, http.deadline = http.deadline, Deadline(seconds, option="the time to settle a payment stream")
        try:
            yield
        finally:
            http.deadline = saved

    def rpc(self, method: str, *params: Any, read: bool = True) -> Any:
        """One call; a read is tried again on a transport error (a send never is: it may have arrived)."""
        tries = READ_TRIES if read else 1
        for attempt in range(1, tries + 1):
            try:
                answer = self._http().request("POST", "", json_body=request(1, method, params))
            except PaymentError as exc:
                if attempt == tries or exc.status is not None or self.deadline.remaining() < 0.5:
                    raise
                time.sleep(0.2 * attempt)
                continue
            if not isinstance(answer, dict):
                raise PaymentError(f"payments RPC {self.rpc_url} answered {method} with {type(answer).__name__}, "
                                   "not a JSON-RPC response; is payments_rpc_url an Ethereum RPC endpoint?")
            result = outcome(answer)
            if isinstance(result, RpcFault):
                if result.code == METHOD_NOT_FOUND:
                    raise PaymentError(f"payments RPC {self.rpc_url} does not know {method}; is payments_rpc_url an "
                                       "Ethereum RPC endpoint?")
                raise NodeRefused(f"payments RPC {self.rpc_url} refused {method}: {result.message}",
                                  response=result.data[:300])
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    # -- chain facts ---------------------------------------------------------------------------
    def chain_id(self) -> int:
        if self._chain_id is None:
            found = hex_int(self.rpc("eth_chainId"), "eth_chainId")
            check_chain_id(found, network=self.network, pinned=self.expected_chain_id,
                           recorded=self._recorded_chain_ids(), url=self.rpc_url)
            self._chain_id = found
        return self._chain_id

    def check_contract(self, contract: str) -> None:
        """A provider's StreamPayment address must hold code on this chain: else the RPC is another chain."""
        with self._guard:
            if contract.lower() in self._checked:
                return
        chain = self.chain_id()
        if self.rpc("eth_getCode", contract, "latest") in (None, "0x", "0x0"):
            raise PaymentError(f"there is no StreamPayment contract at {contract} on chain {chain} at payments RPC "
                               f"{self.rpc_url}; the provider is paid on another chain: point payments_rpc_url "
                               "at that chain")
        with self._guard:
            self._checked.add(contract.lower())

    def balance(self) -> int:
        return hex_int(self.rpc("eth_getBalance", self.address, "latest"), "eth_getBalance")

    def block_time(self, block: str = "latest") -> int:
        found = self.rpc("eth_getBlockByNumber", block, False)
        return hex_int(found.get("timestamp") if isinstance(found, dict) else None, "eth_getBlockByNumber")

    def nonce(self, block: str = "pending") -> int:
        """How many transactions of this account the node counts at ``block``: the next nonce."""
        return hex_int(self.rpc("eth_getTransactionCount", self.address, block), "eth_getTransactionCount")

    def read(self, contract: str, stream_id: int) -> ChainStream:
        data = self.rpc("eth_call", {"to": contract, "data": "0x" + (_selector("streams(uint256)") + abi_encode(
            ["uint256"], [stream_id])).hex()}, "latest")
        try:
            values = abi_decode(_STREAM_TYPES, bytes.fromhex(data[2:]))
        except Exception as exc:  # a contract of another shape (e.g. golem-streaming-abi 0.1.2's)
            raise PaymentError(f"streams({stream_id}) of {contract} at payments RPC {self.rpc_url} is not the "
                               f"0.1.x StreamPayment's 9 fields: {exc}") from None
        fields = dict(zip(_STREAM_FIELDS, values))
        for key in ("token", "sender", "recipient"):
            fields[key] = to_checksum_address(fields[key])
        return ChainStream(stream_id=stream_id, now=self.block_time(), **fields)

    # -- transactions --------------------------------------------------------------------------
    def send(self, contract: str, signature: str, types: list[str], args: list[Any], *, value: int = 0,
             what: str, before_send: Callable[[str, int, str], None] | None = None) -> str:
        """Sign and send one call of ``contract``; returns the transaction hash. ``what`` names it in errors.

        ``before_send(hash, nonce, raw)`` runs once the transaction is signed and before it leaves (its nonce still held),
        so the caller records what may be paid before it can be. NotSent means nothing was paid; PaymentPending
        that it may have been sent and could not be confirmed in time; any other error comes before signing."""
        if self._account is None:
            raise PaymentError(f"{what} needs ethereum_private_key (or GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY)",
                               field="ethereum_private_key")
        # A tag of its own after the arguments (the contract's decoder reads what it needs and ignores the rest):
        # without it, two controllers sharing the account and paying the same provider the same terms at the same
        # nonce sign the very same transaction, and both rows would record the one stream it opens.
        data = "0x" + (_selector(signature) + abi_encode(types, args) + os.urandom(CALL_TAG_BYTES)).hex()
        call = {"from": self.address, "to": contract, "value": hex(value), "data": data}
        try:
            chain_id = self.chain_id()
            # The node runs the call: a revert (the contract's reason) or missing funds shows here.
            gas = int(hex_int(self.rpc("eth_estimateGas", call), "eth_estimateGas") * 1.25) + TRANSFER_GAS
            priority = hex_int(self.rpc("eth_maxPriorityFeePerGas"), "eth_maxPriorityFeePerGas")
            block = self.rpc("eth_getBlockByNumber", "latest", False)
            base = hex_int((block.get("baseFeePerGas") if isinstance(block, dict) else None) or "0x0",
                           "eth_getBlockByNumber")
        except PaymentError as exc:
            raise self._refused(what, value, exc) from None
        max_fee = 2 * base + priority
        if self.max_fee_wei is not None and max_fee > self.max_fee_wei:
            raise PaymentError(f"payments RPC {self.rpc_url} asks a fee of up to {max_fee / GWEI:g} gwei a gas "
                               f"(base {base / GWEI:g}, priority {priority / GWEI:g}), over max_fee_per_gas_gwei "
                               f"{self.max_fee_wei / GWEI:g}; {what} was not signed",
                               field="max_fee_per_gas_gwei", value=self.max_fee_wei / GWEI)
        needed = value + gas * max_fee
        have = self.balance()
        if have < needed:
            raise PaymentError(f"account {self.address} has {have} wei at payments RPC {self.rpc_url}; {what} needs "
                               f"{value} wei plus up to {gas * max_fee} wei of gas ({needed} wei): insufficient funds")
        ensure_private_dir(os.path.dirname(self.lock_path))
        tx = {"type": 2, "chainId": chain_id, "to": to_checksum_address(contract), "value": value, "data": data,
              "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority}
        for attempt in range(1, NONCE_TRIES + 1):
            with file_lock(self.lock_path):
                try:
                    nonce = self.nonce()
                except PaymentError as exc:
                    raise self._refused(what, value, exc) from None
                signed = self._account.sign_transaction({**tx, "nonce": nonce})
                raw = "0x" + bytes(getattr(signed, "raw_transaction", None) or signed.rawTransaction).hex()
                tx_hash = "0x" + bytes(signed.hash).hex()
                if before_send is not None:
                    before_send(tx_hash, nonce, raw)
                try:
                    self.rpc("eth_sendRawTransaction", raw, read=False)
                    return tx_hash
                except TaskTimeout:
                    # Raised before the request leaves: the task's time was up.
                    raise NotSent(f"{what} was not sent: the task's time ran out first") from None
                except PaymentError as exc:
                    if "already known" in exc.msg.lower():
                        return tx_hash  # these very bytes (its tag makes them this call's) are in the pool already
                    if _ambiguous(exc):
                        # It may have arrived: find it by its hash (sending it again is the same transaction).
                        return self._confirm_sent(tx_hash, raw, what)
                    # The lock covers this controller only: another one paying from the same account (a team
                    # sharing a credential) may have taken the nonce. Refused for it means not accepted.
                    if attempt < NONCE_TRIES and any(m in exc.msg.lower() for m in NONCE_TAKEN):
                        time.sleep(0.05 * attempt)
                        continue
                    raise self._refused(what, value, exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _confirm_sent(self, tx_hash: str, raw: str, what: str) -> str:
        """After a send whose answer was lost: the hash once the node knows the transaction (mined or waiting),
        sending the same signed bytes again while it does not. PaymentPending when the budget runs out first."""
        last = "no answer"
        while self.deadline.remaining() > RECEIPT_POLL:
            try:
                if self.rpc("eth_getTransactionByHash", tx_hash) is not None:
                    return tx_hash
                self.rpc("eth_sendRawTransaction", raw, read=False)
            except TaskTimeout:
                break
            except PaymentError as exc:
                last = exc.msg
                if "already known" in exc.msg.lower():
                    return tx_hash
                if not _ambiguous(exc) and any(m in exc.msg.lower() for m in NONCE_TAKEN):
                    # Its nonce is used: by this very transaction, mined meanwhile, or by another one. Either
                    # way the next run can tell, from the receipt and the nonce the row records.
                    break
            time.sleep(RECEIPT_POLL)
        raise PaymentPending(f"{what} was sent as transaction {tx_hash}, but payments RPC {self.rpc_url} did not "
                             f"confirm it within the task's time ({last})", tx=tx_hash)

    def _refused(self, what: str, value: int, exc: PaymentError) -> NotSent:
        return NotSent(f"{what} from {self.address} ({value} wei) was refused: {exc.msg}", response=exc.response)

    def receipt(self, tx_hash: str, until: float, *, check: bool = True) -> dict[str, Any] | None:
        """The receipt once mined (with ``check``, a reverted one raises), or None when ``until`` comes first."""
        while True:
            found = self.rpc("eth_getTransactionReceipt", tx_hash)
            if found is not None:
                if check and not succeeded(found):
                    raise PaymentError(f"transaction {tx_hash} from {self.address} at payments RPC {self.rpc_url} "
                                       "reverted")
                return found
            if time.monotonic() + RECEIPT_POLL >= until:
                return None
            time.sleep(RECEIPT_POLL)

    def rebroadcast(self, raw: str, tx_hash: str) -> None:
        """Send a recorded signed transaction again (the same one: same nonce, same hash); errors are the
        caller's to ignore, as the transaction may be mined or known already. Bytes that are not the
        transaction ``tx_hash`` (a row someone else wrote) are never sent."""
        try:
            same = "0x" + keccak(hexstr=raw).hex() == tx_hash.lower()
        except (TypeError, ValueError):
            same = False
        if not same:
            raise PaymentError(f"the signed bytes recorded for transaction {tx_hash} are not that transaction; "
                               "they were not sent")
        self.rpc("eth_sendRawTransaction", raw, read=False)

    def known(self, tx_hash: str) -> bool:
        """Whether the node knows the transaction at all (mined or waiting)."""
        return self.rpc("eth_getTransactionByHash", tx_hash) is not None

    @staticmethod
    def created_stream(receipt: dict[str, Any], contract: str) -> int:
        topic = "0x" + keccak(text=STREAM_CREATED).hex()
        for log in receipt.get("logs") or ():
            topics = log.get("topics") or []
            if str(log.get("address", "")).lower() == contract.lower() and len(topics) > 1 \
                    and str(topics[0]).lower() == topic:
                return hex_int(topics[1], "the StreamCreated event's stream id")
        raise PaymentError(f"transaction {receipt.get('transactionHash')} created no stream at {contract} (no "
                           "StreamCreated event); is it the 0.1.x StreamPayment contract?")

    # -- the three calls --------------------------------------------------------------------------
    def open(self, contract: str, recipient: str, deposit: int, rate: int,
             before_send: Callable[[str, int, str], None] | None = None) -> str:
        self.check_contract(contract)
        return self.send(contract, "createStream(address,address,uint256,uint128)",
                         ["address", "address", "uint256", "uint128"],
                         [ZERO_ADDRESS, to_checksum_address(recipient), deposit, rate], value=deposit,
                         what=f"opening a stream of {deposit} wei to {recipient}", before_send=before_send)

    def top_up(self, contract: str, stream_id: int, amount: int, *,
               before_send: Callable[[str, int, str], None] | None = None) -> str:
        return self.send(contract, "topUp(uint256,uint256)", ["uint256", "uint256"], [stream_id, amount],
                         value=amount, what=f"topping up stream {stream_id} by {amount} wei", before_send=before_send)

    def terminate(self, contract: str, stream_id: int) -> str:
        return self.send(contract, "terminate(uint256)", ["uint256"], [stream_id],
                         what=f"terminating stream {stream_id}")
