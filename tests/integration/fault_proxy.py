# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reverse proxy for fault tests: passes requests to a real server, and breaks the ones it is told to.

    proxy = FaultProxy("http://127.0.0.2:7466")
    proxy.inject("GET", r"/api/v1/vms/jobs/", "status", status=503, headers={"Retry-After": "1"}, times=2)
    ... point the collection at proxy.ip:proxy.port ...
    proxy.close()

A fault applies to the Nth request matching method and path (a regular expression searched
in the path and query), for ``times`` requests in a row, then requests pass through again.
Everything binds loopback only: the proxy listens on a 127.0.0.x address of its own and
talks to the real server from that same address, so servers that limit requests per
client address (discovery does) count the proxy's traffic apart from everyone else's.
"""

from __future__ import annotations

import http.client
import random
import re
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

# What each kind does with the request it hits.
KINDS = {
    "reset": "resets the connection before sending anything upstream",
    "status": "answers status/body/headers itself; nothing goes upstream",
    "slow": "waits delay seconds, then passes the request through",
    "slow_answer": "passes the request through, then waits delay seconds before answering",
    "hold_answer": "passes the request through, then keeps the answer until the client hangs up (delay: at most)",
    "truncate": "passes the request through, then sends half of the body and closes",
    "garbage": "passes the request through, then answers 200 with an HTML page instead",
    "drop_after": "passes the request through (the server does the work), then resets the connection",
    "hook": "passes the request on, runs hook() while the server works on it, then relays what comes back",
    "rewrite": "passes the request through, then answers with rewrite(body) instead of the server's body",
    "drip": "passes the request through, then sends the answer's body a byte every delay seconds",
    "flood": "passes the request through, then answers 200 with size bytes of JSON, chunked, with no length",
}


@dataclass
class Fault:
    method: str
    pattern: str
    kind: str
    nth: int = 1
    times: int = 1
    status: int = 500
    body: bytes = b'{"detail":"injected fault"}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hook: Callable[[], Any] | None = None
    rewrite: Callable[[bytes], bytes] | None = None
    seen: int = 0
    fired: int = 0
    hung_up: int = 0  # hold_answer: clients that gave up waiting
    size: int = 0  # flood: bytes of body
    sent: int = 0  # drip, flood: body bytes that reached the client

    def take(self, method: str, path: str) -> bool:
        if method != self.method or not re.search(self.pattern, path):
            return False
        self.seen += 1
        if self.nth <= self.seen < self.nth + self.times:
            self.fired += 1
            return True
        return False


def _loopback_ip() -> str:
    # Not .1-.4 (the local network's servers); a random one, so parallel test runs differ.
    return f"127.0.0.{random.randint(100, 250)}"


class FaultProxy:
    def __init__(self, upstream: str, ip: str | None = None, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if not (parts.hostname or "").startswith("127."):
            raise ValueError(f"the fault proxy only talks to loopback servers, not {upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, str, float]] = []  # (method, path, what happened, monotonic time)
        # What the real server answered, whatever the client then got: (method, path, status, body).
        self.answers: list[tuple[str, str, int, bytes]] = []
        self.down = False
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((ip or _loopback_ip(), port), _handler(self))
        self.server.daemon_threads = True
        self.ip, self.port = self.server.server_address[:2]
        self.url = f"http://{self.ip}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def inject(self, method: str, pattern: str, kind: str, **options: Any) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(KINDS)}")
        fault = Fault(method.upper(), pattern, kind, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        """Inject nothing more: every request passes through from now on."""
        with self._lock:
            self.faults.clear()

    def requests(self, method: str | None = None, pattern: str = "") -> list[tuple[str, str, str, float]]:
        with self._lock:
            return [e for e in self.log if (method is None or e[0] == method) and re.search(pattern, e[1])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            hit = None
            for fault in self.faults:
                if fault.take(method, path) and hit is None:
                    hit = fault
            return hit

    def _note(self, method: str, path: str, what: str) -> None:
        with self._lock:
            self.log.append((method, path, what, time.monotonic()))


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST instead of FIN, the way a crashed server's kernel does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _hangs_up(sock: socket.socket, limit: float) -> bool:
    """Wait until the client closes its side of ``sock``; False if ``limit`` seconds pass first."""
    end = time.monotonic() + limit
    while (left := end - time.monotonic()) > 0:
        if select.select([sock], [], [], min(left, 1.0))[0]:
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except OSError:
                return True
            time.sleep(0.05)  # bytes of a next request: not a hang-up; look again
    return False


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def _any(self) -> None:
            try:
                self._relay()
            except OSError:
                # The client gave up first (its timeout is shorter than a slow fault): nothing to answer.
                self.close_connection = True

        def _relay(self) -> None:
            method, path = self.command, self.path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            fault = proxy._pick(method, path)
            kind = fault.kind if fault else "pass"
            proxy._note(method, path, kind)
            if proxy.down or kind == "reset":
                self.close_connection = True
                _reset(self.connection)
                return
            if fault is not None and kind == "status":
                self._answer(fault.status, fault.body, fault.headers)
                return
            if fault is not None and kind == "slow":
                time.sleep(fault.delay)
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=600, source_address=(proxy.ip, 0))
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(method, path, body=body, headers=headers)
                if fault is not None and kind == "hook" and fault.hook is not None:
                    fault.hook()
                try:
                    resp = conn.getresponse()
                    status, data = resp.status, resp.read()
                    with proxy._lock:
                        proxy.answers.append((method, path, status, data))
                    out_headers = {k: v for k, v in resp.getheaders()
                                   if k.lower() not in ("content-length", "transfer-encoding", "connection")}
                except (OSError, http.client.HTTPException):
                    # The server died with the request: the client sees what it would see then.
                    proxy._note(method, path, "upstream died")
                    self.close_connection = True
                    _reset(self.connection)
                    return
            finally:
                conn.close()
            if fault is not None and kind == "slow_answer":
                time.sleep(fault.delay)
            if fault is not None and kind == "hold_answer":
                # An answer that never comes in time, however long the client's time is: the verdict
                # does not hang on how fast the machine got the client to this request.
                if _hangs_up(self.connection, fault.delay):
                    fault.hung_up += 1
                self.close_connection = True
                _reset(self.connection)
                return
            if fault is not None and kind == "drop_after":
                self.close_connection = True
                _reset(self.connection)
                return
            if fault is not None and kind in ("drip", "flood"):
                self._stream(fault, status, data, out_headers)
                return
            if fault is not None and kind == "rewrite" and fault.rewrite is not None:
                data = fault.rewrite(data)
            if fault is not None and kind == "garbage":
                page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
                self._answer(200, page, {"Content-Type": "text/html"})
                return
            if fault is not None and kind == "truncate":
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data[: max(1, len(data) // 2)])
                self.wfile.flush()
                self.close_connection = True
                _reset(self.connection)
                return
            self._answer(status, data, out_headers)

        def _stream(self, fault: Fault, status: int, data: bytes, headers: dict[str, str]) -> None:
            """drip and flood: the body as a server that never ends it in time would send it."""
            self.close_connection = True
            if fault.kind == "drip":
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.flush()
                for byte in data:
                    time.sleep(fault.delay)
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    fault.sent += 1
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"[" + b"0," * (512 * 1024)
            while fault.sent < fault.size:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                fault.sent += len(chunk)
                chunk = b"0," * (512 * 1024)
            self.wfile.write(b"0\r\n\r\n")

        def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if not any(k.lower() == "content-type" for k in headers):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

    return Handler
