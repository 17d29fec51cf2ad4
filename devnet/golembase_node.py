# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Golem Base node stood in: JSON-RPC over HTTP (``/rpc``) and WebSocket (``/rpc/ws``) in front of anvil.

No Golem Base node installs offline (reference §7.5), so this stands in for golem-base-geth
as far as golem-base-sdk 0.1.0, the upstream provider's advertiser and the upstream CLI use it:

* ``eth_*``, ``net_*``, ``web3_*`` go to anvil, which runs the chain (blocks, gas, nonces, signatures);
* every block anvil mines is read back; its transactions to the storage address are decoded and
  applied to the entities (golembase_state), entities due to expire are dropped first;
* a receipt of such a transaction carries the node's events, or status 0 if the node would
  have failed it; eth_call / eth_estimateGas of a failing one answer the node's error;
* ``golembase_*`` reads answer from the entities as of the chain's head;
* over WebSocket, ``eth_subscribe`` serves ``logs`` (the SDK's ``watch_logs``) and ``newHeads``.

Run by devnetd under the provider's virtualenv (aiohttp, rlp, eth-utils):

    python golembase_node.py --host IP --port N --anvil URL
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import secrets
from typing import Any

import aiohttp
from aiohttp import web

import golembase_rpc as reads
from golembase_rpc import RpcFailure
from golembase_state import STORAGE_ADDRESS, Store, StorageTxError

FORWARDED = ("eth_", "net_", "web3_")
FOLLOW_EVERY = 0.25  # seconds between looks at anvil's head; blocks come every second
log = logging.getLogger("golembase")


class Outcome:
    """What the node made of one storage transaction."""

    def __init__(self, ok: bool, error: str, logs: list[dict[str, Any]]) -> None:
        self.ok, self.error, self.logs = ok, error, logs


class Node:
    def __init__(self, anvil_url: str) -> None:
        self.anvil_url = anvil_url
        self.store = Store()
        self.head = -1  # last block applied to the store
        self.outcomes: dict[str, Outcome] = {}
        self.subscriptions: dict[str, tuple[web.WebSocketResponse, str, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self.session: aiohttp.ClientSession | None = None

    # -- anvil ------------------------------------------------------------------------------------
    async def anvil(self, method: str, params: list[Any]) -> dict[str, Any]:
        assert self.session is not None
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        async with self.session.post(self.anvil_url, json=body) as resp:
            return await resp.json(content_type=None)

    async def anvil_result(self, method: str, *params: Any) -> Any:
        answer = await self.anvil(method, list(params))
        if "error" in answer:
            raise RpcFailure(answer["error"].get("message", "anvil error"), answer["error"].get("code", -32000))
        return answer["result"]

    # -- following the chain ------------------------------------------------------------------------
    async def follow(self) -> None:
        while True:
            try:
                await self.catch_up(int(await self.anvil_result("eth_blockNumber"), 16))
            except (aiohttp.ClientError, RpcFailure, OSError) as exc:
                log.warning("following anvil: %s", exc)
            await asyncio.sleep(FOLLOW_EVERY)

    async def catch_up(self, target: int) -> None:
        async with self._lock:
            while self.head < target:
                block = await self.anvil_result("eth_getBlockByNumber", hex(self.head + 1), True)
                self._process(block)
                self.head += 1
                await self._publish(block)

    def _process(self, block: dict[str, Any]) -> None:
        number = int(block["number"], 16)
        gone = self.store.expire(number)
        if gone:
            log.info("block %d: %d entities expired", number, len(gone))
        log_index = 0
        for tx in block["transactions"]:
            if (tx.get("to") or "").lower() != STORAGE_ADDRESS:
                continue
            tx_hash = tx["hash"].lower()
            try:
                logs = self.store.apply(bytes.fromhex(tx["input"][2:]), block=number,
                                        tx_hash=bytes.fromhex(tx_hash[2:]), sender=tx["from"])
                outcome = Outcome(True, "", [])
            except StorageTxError as exc:
                logs, outcome = [], Outcome(False, str(exc), [])
                log.info("block %d: storage tx %s failed: %s", number, tx_hash, exc)
            for entry in logs:
                outcome.logs.append(reads.log_json(entry, block, tx, log_index))
                log_index += 1
            self.outcomes[tx_hash] = outcome

    async def _publish(self, block: dict[str, Any]) -> None:
        """Notifies subscribers of a new block: its header, then its logs in block order."""
        for sub_id, (ws, _kind, _filt) in list(self.subscriptions.items()):
            if ws.closed:
                self.subscriptions.pop(sub_id, None)
        logs = [entry for tx in block["transactions"]
                for entry in (self.outcomes[tx["hash"].lower()].logs if tx["hash"].lower() in self.outcomes else [])]
        items = [("newHeads", reads.header_json(block))] + [("logs", entry) for entry in logs]
        for kind, item in items:
            for sub_id, (ws, sub_kind, filt) in list(self.subscriptions.items()):
                if sub_kind == kind and (kind == "newHeads" or reads.log_matches(item, filt)):
                    await ws.send_json({"jsonrpc": "2.0", "method": "eth_subscription",
                                        "params": {"subscription": sub_id, "result": item}})

    async def synced(self) -> int:
        """Applies every block anvil has mined; returns the head the store now reflects."""
        await self.catch_up(int(await self.anvil_result("eth_blockNumber"), 16))
        return self.head

    # -- methods --------------------------------------------------------------------------------------
    async def dispatch(self, method: str, params: list[Any], ws: web.WebSocketResponse | None) -> Any:
        if method.startswith("golembase_"):
            return reads.answer(self.store, await self.synced(), method, params)
        if method == "eth_getTransactionReceipt":
            return await self.receipt(params)
        if method in ("eth_call", "eth_estimateGas") and params and _to_storage(params[0]):
            await self.dry_run(params[0])
        if method == "eth_sendRawTransaction" and params:
            reads.check_raw_transaction(params[0])
        if method in ("eth_subscribe", "eth_unsubscribe"):
            return self.subscribe(method, params, ws)
        if not method.startswith(FORWARDED):
            raise RpcFailure(f"the method {method} does not exist/is not available", -32601)
        return await self.anvil_result(method, *params)

    async def receipt(self, params: list[Any]) -> Any:
        receipt = await self.anvil_result("eth_getTransactionReceipt", *params)
        if not receipt or (receipt.get("to") or "").lower() != STORAGE_ADDRESS:
            return receipt
        await self.catch_up(int(receipt["blockNumber"], 16))
        outcome = self.outcomes.get(receipt["transactionHash"].lower())
        if outcome is None:
            return receipt
        return {**receipt, "status": "0x1" if outcome.ok else "0x0", "logs": outcome.logs,
                "logsBloom": reads.bloom(outcome.logs)}

    async def dry_run(self, call: dict[str, Any]) -> None:
        """The node runs a storage transaction to estimate or call it: an invalid one is an error."""
        head = await self.synced()
        data = call.get("data") or call.get("input") or "0x"
        try:
            self.store.apply(bytes.fromhex(data[2:]), block=head + 1, tx_hash=bytes(32),
                             sender=call.get("from") or "0x" + "0" * 40, dry_run=True)
        except StorageTxError as exc:
            raise RpcFailure(f"failed to run storage transaction: {exc}") from None

    def subscribe(self, method: str, params: list[Any], ws: web.WebSocketResponse | None) -> Any:
        if ws is None:
            raise RpcFailure("notifications not supported", -32601)
        if method == "eth_unsubscribe":
            return self.subscriptions.pop(params[0], None) is not None
        kind = params[0] if params else ""
        if kind not in ("logs", "newHeads"):
            raise RpcFailure(f"no subscription of kind {kind!r} here (logs and newHeads are served)")
        sub_id = "0x" + secrets.token_hex(16)
        self.subscriptions[sub_id] = (ws, kind, params[1] if len(params) > 1 else {})
        return sub_id

    async def handle(self, request: Any, ws: web.WebSocketResponse | None, peer: str) -> Any:
        if isinstance(request, list):
            return [await self.handle(item, ws, peer) for item in request]
        req_id = request.get("id") if isinstance(request, dict) else None
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return {"jsonrpc": "2.0", "id": req_id, "error": {"code": -32600, "message": "invalid request"}}
        method, params = request["method"], request.get("params") or []
        log.info("%s %s %s", peer, "ws" if ws is not None else "http", method)
        try:
            return {"jsonrpc": "2.0", "id": req_id, "result": await self.dispatch(method, params, ws)}
        except RpcFailure as exc:
            return {"jsonrpc": "2.0", "id": req_id, "error": {"code": exc.code, "message": str(exc)}}
        except (aiohttp.ClientError, OSError) as exc:
            return {"jsonrpc": "2.0", "id": req_id, "error": {"code": -32603, "message": f"chain unreachable: {exc}"}}
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return {"jsonrpc": "2.0", "id": req_id, "error": {"code": -32602, "message": f"invalid params: {exc}"}}


def _to_storage(call: Any) -> bool:
    return isinstance(call, dict) and (call.get("to") or "").lower() == STORAGE_ADDRESS


def app(node: Node) -> web.Application:
    async def http_rpc(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            return web.json_response({"jsonrpc": "2.0", "id": None,
                                      "error": {"code": -32700, "message": "parse error"}})
        return web.json_response(await node.handle(body, None, request.remote or "?"))

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        log.info("%s ws connected", request.remote)
        async for msg in ws:
            # web3's WebSocketProvider sends binary frames unless told otherwise; geth takes both.
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            try:
                body = json.loads(msg.data)
            except ValueError:
                await ws.send_json({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
                continue
            await ws.send_json(await node.handle(body, ws, request.remote or "?"))
        for sub_id in [s for s, (sock, _k, _f) in node.subscriptions.items() if sock is ws]:
            node.subscriptions.pop(sub_id, None)
        log.info("%s ws closed", request.remote)
        return ws

    application = web.Application()
    for path in ("/", "/rpc"):
        application.router.add_post(path, http_rpc)
    for path in ("/", "/rpc", "/rpc/ws", "/ws"):
        application.router.add_get(path, websocket)
    return application


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--anvil", required=True, help="the anvil this node fronts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    node = Node(args.anvil)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        node.session = session
        follower = asyncio.create_task(node.follow())
        runner = web.AppRunner(app(node), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port).start()
        log.info("golem base stand-in on http://%s:%d/rpc in front of %s", args.host, args.port, args.anvil)
        try:
            await asyncio.Event().wait()
        finally:
            follower.cancel()
            await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
