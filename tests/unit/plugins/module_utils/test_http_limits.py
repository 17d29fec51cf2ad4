# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A server is a stranger: however slowly, however much and wherever it answers, a request ends clean."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError, ProviderError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import HttpClient
from ansible_collections.golem.vm.plugins.module_utils.foundation.http_limits import MAX_ANSWER_BYTES, Watch
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient

LOOPBACK = "127.0.0.1"
# The slow servers below would take this long to finish; every bound under test is far shorter.
DRIP_SECONDS = 60.0


class RawServer:
    """A loopback server that answers each connection with ``answer(conn)`` after reading the request."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.sock = socket.create_server((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.requests += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                self.answer(conn, self.stopped)
            except OSError:
                pass  # the client hung up: what a bounded client does

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[Any]:
    made: list[RawServer] = []

    def make(answer: Any) -> RawServer:
        made.append(RawServer(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


def drip_body(conn: socket.socket, stopped: threading.Event) -> None:
    """Valid JSON, a byte at a time: each byte well inside a per-read timeout, the whole far outside any bound."""
    body = json.dumps({"ok": "x" * 200}).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    for byte in body:
        if stopped.wait(DRIP_SECONDS / len(body)):
            return
        conn.sendall(bytes([byte]))


def drip_headers(conn: socket.socket, stopped: threading.Event) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"p" * 200 + b"\r\n"
    for byte in head:
        if stopped.wait(DRIP_SECONDS / len(head)):
            return
        conn.sendall(bytes([byte]))
    conn.sendall(b"Content-Length: 2\r\n\r\n{}")


@pytest.fixture
def high_limit() -> Iterator[None]:
    """The recursion limit as eth-account's py_ecc import leaves it: deep JSON would overflow the C stack."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 100_000))
    yield
    sys.setrecursionlimit(limit)


def client_of(url: str, **kwargs: Any) -> HttpClient:
    kwargs.setdefault("retries", 0)
    return HttpClient(url, service="discovery", error_class=DiscoveryError, **kwargs)


def _timers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]


@pytest.mark.parametrize("answer", [drip_body, drip_headers], ids=["body", "headers"])
def test_a_dripping_answer_ends_with_the_request_timeout(raw: Any, answer: Any) -> None:
    server = raw(answer)
    started = time.monotonic()
    with pytest.raises(DiscoveryError) as err:
        client_of(server.url, timeout=1).get("/api/v1/advertisements")
    # Each byte comes well within the 1 s per-read timeout: only a bound on the whole answer ends it.
    assert "did not answer within 1 s (timeout)" in err.value.msg, err.value.msg
    assert time.monotonic() - started < DRIP_SECONDS / 2, "the request ran as long as the server dripped"
    deadline = time.monotonic() + 5
    while _timers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _timers(), "no timer thread outlives its request"


def test_a_dripping_answer_ends_with_the_task_s_budget(raw: Any) -> None:
    server = raw(drip_body)
    http = client_of(server.url, timeout=30, party="the discovery service (discovery_url)")
    http.deadline = Deadline(1.5)
    with pytest.raises(DiscoveryError) as err:
        http.get("/api/v1/advertisements")
    assert "did not answer within 1.5 s (timeout)" in err.value.msg, err.value.msg


def test_a_get_whose_headers_never_end_is_tried_again_like_one_that_timed_out(raw: Any) -> None:
    server = raw(drip_headers)
    with pytest.raises(DiscoveryError) as err:
        client_of(server.url, timeout=0.5, retries=2, backoff_factor=0.01, backoff_jitter=0.01).get("/x")
    assert "did not answer within 0.5 s" in err.value.msg
    assert server.requests == 3, "each try of a GET has its own time, as with a read timeout"


def test_an_answer_declared_larger_than_the_cap_is_not_read(raw: Any) -> None:
    def huge(conn: socket.socket, stopped: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n["
                     % (100 * 1024 * 1024))
        stopped.wait(DRIP_SECONDS)  # never sends the rest: the client must not wait for it

    server = raw(huge)
    with pytest.raises(DiscoveryError) as err:
        client_of(server.url, timeout=30).get("/api/v1/advertisements")
    assert f"declared as {100 * 1024 * 1024} bytes, more than the {MAX_ANSWER_BYTES} bytes" in err.value.msg


def test_an_answer_that_grows_past_the_cap_is_cut_off(httpserver: HTTPServer) -> None:
    sent: list[int] = []

    def endless() -> Iterator[bytes]:
        yield b"["
        while len(sent) < 64:  # 64 MiB at most, if nobody stopped reading
            sent.append(1)
            yield b"1," * (512 * 1024)

    httpserver.expect_request("/big").respond_with_response(Response(endless(), content_type="application/json"))
    with pytest.raises(DiscoveryError) as err:
        client_of(httpserver.url_for("").rstrip("/")).get("/big")
    assert f"more than the {MAX_ANSWER_BYTES} bytes" in err.value.msg and "reading stopped" in err.value.msg
    assert len(sent) < 64, "reading stopped at the cap"


@pytest.mark.parametrize("body", ["[" * 200_000, '{"a":' * 200_000, "[" * 100_000 + "]" * 100_000])
def test_json_nested_however_deep_is_a_clean_error(httpserver: HTTPServer, body: str, high_limit: None) -> None:
    httpserver.expect_request("/deep").respond_with_data(body, content_type="application/json")
    httpserver.expect_request("/deep-error").respond_with_data(body, status=400, content_type="application/json")
    http = client_of(httpserver.url_for("").rstrip("/"))
    with pytest.raises(DiscoveryError) as err:
        http.get("/deep")
    assert "is not JSON" in err.value.msg
    with pytest.raises(DiscoveryError) as err:
        http.get("/deep-error")
    assert "HTTP 400" in err.value.msg


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_of_a_post_is_not_followed(httpserver: HTTPServer, status: int) -> None:
    elsewhere = HTTPServer(host=LOOPBACK, port=0)
    elsewhere.start()
    try:
        elsewhere.expect_request("/rpc").respond_with_json({"jsonrpc": "2.0", "id": 1, "result": "0x1"})
        httpserver.expect_request("/rpc", method="POST").respond_with_response(
            Response(b"", status=status, headers={"Location": elsewhere.url_for("/rpc"), "Content-Length": "0"}))
        http = client_of(httpserver.url_for("").rstrip("/"), posts_are_reads=True)
        with pytest.raises(DiscoveryError) as err:
            http.request("POST", "/rpc", json_body={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
        assert f"HTTP {status} answer is a redirect to '{elsewhere.url_for('/rpc')}'" in err.value.msg
        assert "never followed" in err.value.msg
        assert elsewhere.log == [], "the POST's body went to another server"
    finally:
        elsewhere.clear()
        elsewhere.stop()


def test_a_redirect_of_a_get_is_still_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/advertisements/").respond_with_response(
        Response(b"", status=307, headers={"Location": "/api/v1/advertisements", "Content-Length": "0"}))
    httpserver.expect_request("/api/v1/advertisements").respond_with_json([{"provider_id": "0xp"}])
    assert client_of(httpserver.url_for("").rstrip("/")).get("/api/v1/advertisements/") == [{"provider_id": "0xp"}]


def test_a_redirect_with_a_large_or_undeclared_body_is_not_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_response(
        Response(iter([b"x" * 1024] * 8), status=302, headers={"Location": "/b"}))
    httpserver.expect_request("/b").respond_with_json([])
    with pytest.raises(DiscoveryError) as err:
        client_of(httpserver.url_for("").rstrip("/")).get("/a")
    assert "HTTP 302 answer is a redirect to '/b'" in err.value.msg and "not followed" in err.value.msg


def test_a_provider_that_drips_fails_naming_the_provider(raw: Any) -> None:
    server = raw(drip_body)
    provider = ProviderClient(LOOPBACK, port=server.port, timeout=1, retries=0)
    with pytest.raises(ProviderError) as err:
        provider.get_vm("web-1")
    assert f"{server.url}/api/v1/vms/web-1" in err.value.msg and "did not answer within 1 s" in err.value.msg


def test_a_state_row_nested_however_deep_is_an_unreadable_row_not_a_crash(tmp_path: Any, high_limit: None) -> None:
    import sqlite3
    from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore
    from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord

    store = SQLiteStateStore(str(tmp_path / "vms.db"))
    store.upsert(VMRecord("ok-1", "127.0.0.2", "ok-1", "running", {"ssh_port": 20001}))
    with sqlite3.connect(store.path) as conn:
        conn.execute("INSERT INTO vms (name, provider_ip, vm_id, config, status) VALUES ('deep', '127.0.0.2', "
                     "'deep', ?, 'running')", ('{"a":' * 200_000,))
    rows = {record.name: record for record in store.list()}
    assert rows["ok-1"].ok and not rows["deep"].ok and "nests deeper" in rows["deep"].config_error


def test_brackets_inside_strings_are_text_not_nesting(httpserver: HTTPServer) -> None:
    body = {"note": "[{" * 5000 + '\\"[', "list": [[[1]]]}
    httpserver.expect_request("/text").respond_with_json(body)
    assert client_of(httpserver.url_for("").rstrip("/")).get("/text") == body


def drip_until_close(conn: socket.socket, stopped: threading.Event) -> None:
    """No length, no chunks: the body ends when the connection does, so a cut looks like an end."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    for byte in json.dumps({"ok": "x" * 200}).encode():
        if stopped.wait(DRIP_SECONDS / 200):
            return
        conn.sendall(bytes([byte]))


def test_an_answer_cut_off_by_its_time_is_a_timeout_not_a_short_answer(raw: Any) -> None:
    server = raw(drip_until_close)
    with pytest.raises(DiscoveryError) as err:
        client_of(server.url, timeout=1).get("/x")
    assert "did not answer within 1 s (timeout)" in err.value.msg, err.value.msg


def test_a_retry_after_the_budget_ended_is_never_sent_unwatched(raw: Any) -> None:
    # The budget ends while the first try's headers drip in; urllib3 then tries again on a new connection,
    # which must not get a timer that fires before its socket exists and so never ends it.
    server = raw(drip_headers)
    http = client_of(server.url, timeout=30, retries=2, backoff_factor=0.01, backoff_jitter=0.01)
    http.deadline = Deadline(1.0)
    with pytest.raises(DiscoveryError) as err:
        http.get("/x")
    assert "within 1 s (timeout)" in err.value.msg, err.value.msg


@pytest.mark.parametrize("length", ["\u00b2", "9" * 5000])
def test_a_content_length_no_number_reads_is_no_traceback(raw: Any, length: str) -> None:
    def answer(conn: socket.socket, stopped: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + length.encode("latin-1") + b"\r\nConnection: close\r\n\r\n[]")

    server = raw(answer)
    try:
        data = client_of(server.url, timeout=5).get("/x")
    except DiscoveryError as exc:
        assert "Traceback" not in exc.msg
    else:
        assert data == []


def test_a_location_that_is_not_text_is_a_redirect_not_followed(raw: Any) -> None:
    def answer(conn: socket.socket, stopped: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /\xff\xfe\r\nContent-Length: 0\r\n\r\n")

    server = raw(answer)
    with pytest.raises(DiscoveryError) as err:
        client_of(server.url, timeout=5).get("/x")
    assert "HTTP 302 answer is a redirect" in err.value.msg and "not followed" in err.value.msg


def test_a_redirect_with_an_endless_chunked_body_is_neither_followed_nor_read_whole(raw: Any) -> None:
    sent: list[int] = []

    def answer(conn: socket.socket, stopped: threading.Event) -> None:
        # Content-Length says small, Transfer-Encoding says chunked: the chunks are what a client reads.
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /y\r\nContent-Length: 10\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * (1024 * 1024)
        while len(sent) < 64 and not stopped.is_set():
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent.append(1)

    server = raw(answer)
    for follows in (True, False):
        http = client_of(server.url, timeout=30)
        if not follows:
            http.foreign_error = ProviderError  # a provider's client follows nothing
        with pytest.raises((DiscoveryError, ProviderError)) as err:
            http.get("/x")
        assert "redirect" in err.value.msg or f"more than the {MAX_ANSWER_BYTES}" in err.value.msg, err.value.msg
    assert len(sent) < 64, "a redirect's body was read to its end"


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair()


def test_the_watch_shuts_the_socket_in_use_when_the_time_is_up() -> None:
    ours, server = _pair()
    with Watch(0.1) as watch:
        watch.using(SimpleNamespace(sock=ours))
        ours.settimeout(30)
        assert ours.recv(1) == b"", "a blocked read returns once the time is up"
    assert watch.fired
    server.close()


def test_a_connection_handed_back_to_its_pool_is_never_shut_by_the_exchange_it_served() -> None:
    ours, server = _pair()
    conn = SimpleNamespace(sock=ours)
    with Watch(0.1) as watch:
        watch.using(conn)
        watch.released(conn)  # the answer was read: the pool may give it to another request now
        time.sleep(0.3)
    ours.sendall(b"x")
    assert server.recv(1) == b"x" and not watch.fired
    ours.close()
    server.close()


def test_a_get_whose_first_try_runs_out_of_time_is_answered_by_the_next(raw: Any) -> None:
    tries: list[int] = []

    def answer(conn: socket.socket, stopped: threading.Event) -> None:
        tries.append(1)
        if len(tries) == 1:
            drip_headers(conn, stopped)  # never trips a per-read timeout: only the attempt's time ends it
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")

    server = raw(answer)
    http = client_of(server.url, timeout=1, retries=2, backoff_factor=0.01, backoff_jitter=0.01)
    assert http.get("/x") == [] and len(tries) == 2
