# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A JSON-RPC fault proxy in front of the local payments chain: the chain node that lies, for payment fault tests.

    proxy = RpcProxy(devnet_env()["GOLEM_REQUESTOR_POLYGON_RPC_URL"])
    proxy.inject("eth_sendRawTransaction", "status", status=502)       # forwarded, then the client hears 502
    proxy.inject("eth_chainId", "answer", result="0x89", times=None)    # never forwarded: the node says Polygon
    ... point payments_rpc_url at proxy.url ...
    assert proxy.count("eth_sendRawTransaction") == 0
    proxy.close()

Faults are per JSON-RPC method, in single calls and in batches alike, and fire on the first ``times`` calls of
their method (None: every call). Kinds, beside ``answer``, act on the whole HTTP exchange the call came in:
the request still reaches the node, so the node does the work, and only the client is misled.
Like fault_proxy.py, it listens on a 127.0.0.x address of its own and talks to the node from that address.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from .fault_proxy import _hangs_up, _loopback_ip, _reset

KINDS = {
    "status": "forwards the request, then answers HTTP status (502 by default) instead of the node's answer",
    "hang": "forwards the request, then answers nothing until the client hangs up (limit: at most), then resets",
    "reset": "forwards the request, then resets the connection without answering",
    "answer": "answers result (or error) for that call itself; the call never reaches the node",
    "hook": "forwards the request, then runs hook() before the node's answer is relayed",
}
# Kinds that act on the HTTP exchange rather than on one call's result.
_TRANSPORT = ("status", "hang", "reset", "hook")


@dataclass
class RpcFault:
    method: str
    kind: str
    times: int | None = 1  # None: every call of the method
    status: int = 502
    body: bytes = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    result: Any = None
    error: dict[str, Any] | None = None
    hook: Callable[[], Any] | None = None
    limit: float = 300.0
    fired: int = 0
    hung_up: int = 0  # hang: clients that gave up waiting

    def take(self, method: str) -> bool:
        if method != self.method or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


@dataclass
class Call:
    """One JSON-RPC call the proxy saw, and what it did with it."""

    method: str
    params: list[Any]
    what: str
    at: float = field(default_factory=time.monotonic)


class RpcProxy:
    def __init__(self, upstream: str, ip: str | None = None, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if not (parts.hostname or "").startswith("127."):
            raise ValueError(f"the RPC proxy only talks to loopback nodes, not {upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.path = parts.path or "/"
        self.faults: list[RpcFault] = []
        self.log: list[Call] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((ip or _loopback_ip(), port), _handler(self))
        self.server.daemon_threads = True
        self.ip, self.port = self.server.server_address[:2]
        self.url = f"http://{self.ip}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def inject(self, method: str, kind: str, **options: Any) -> RpcFault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(KINDS)}")
        fault = RpcFault(method, kind, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        with self._lock:
            self.faults.clear()

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.log if method is None or c.method == method]

    def count(self, method: str) -> int:
        return len(self.calls(method))

    def raw_transactions(self) -> set[str]:
        """The signed transactions sent through the proxy (a re-broadcast of one is one)."""
        return {str(c.params[0]).lower() for c in self.calls("eth_sendRawTransaction") if c.params}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> RpcProxy:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _pick(self, calls: list[dict[str, Any]]) -> tuple[dict[int, RpcFault], RpcFault | None]:
        """Faults for this request: per call index the ``answer`` ones, and at most one for the exchange."""
        answers: dict[int, RpcFault] = {}
        transport: RpcFault | None = None
        with self._lock:
            for index, call in enumerate(calls):
                method, what = str(call.get("method")), "forwarded"
                for fault in self.faults:
                    if fault.kind == "answer" and index not in answers and fault.take(method):
                        answers[index], what = fault, fault.kind
                    elif fault.kind in _TRANSPORT and transport is None and fault.take(method):
                        transport, what = fault, f"forwarded, then {fault.kind}"
                params = call.get("params")
                self.log.append(Call(method, params if isinstance(params, list) else [], what))
        return answers, transport


def _reply(call: dict[str, Any], fault: RpcFault) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": call.get("id")}
    if fault.error is not None:
        out["error"] = fault.error
    else:
        out["result"] = fault.result
    return out


def _handler(proxy: RpcProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def do_POST(self) -> None:
            try:
                self._relay()
            except OSError:
                # The client went away first (it timed out, or a hook killed it): nothing to answer.
                self.close_connection = True

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            batch = isinstance(parsed, list)
            calls = [c for c in (parsed if batch else [parsed]) if isinstance(c, dict)]
            answers, transport = proxy._pick(calls)
            if calls and len(answers) == len(calls):
                replies = [_reply(c, answers[i]) for i, c in enumerate(calls)]
                self._answer(200, json.dumps(replies if batch else replies[0]).encode())
                return
            if answers:
                rest = [c for i, c in enumerate(calls) if i not in answers]
                body = json.dumps(rest if batch else rest[0]).encode()
            status, data = self._forward(body)
            if status is None:
                return
            if answers and batch:
                try:
                    merged = json.loads(data) + [_reply(calls[i], f) for i, f in answers.items()]
                    data = json.dumps(merged).encode()
                except (ValueError, TypeError):
                    pass  # the node's own error: relayed as it is
            if transport is not None and transport.kind == "hook" and transport.hook is not None:
                transport.hook()
            elif transport is not None and transport.kind == "status":
                self._answer(transport.status, transport.body, "text/html")
                return
            elif transport is not None and transport.kind == "hang":
                # Whatever the client's timeout and the machine's speed: the answer never comes in time.
                if _hangs_up(self.connection, transport.limit):
                    transport.hung_up += 1
                self.close_connection = True
                _reset(self.connection)
                return
            elif transport is not None and transport.kind == "reset":
                self.close_connection = True
                _reset(self.connection)
                return
            self._answer(status, data)

        def _forward(self, body: bytes) -> tuple[int | None, bytes]:
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=120, source_address=(proxy.ip, 0))
            try:
                conn.request("POST", proxy.path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                # The node is gone: the client sees what it would see then.
                self.close_connection = True
                _reset(self.connection)
                return None, b""
            finally:
                conn.close()

        def _answer(self, status: int, data: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
