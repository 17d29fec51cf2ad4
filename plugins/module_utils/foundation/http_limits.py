# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What bounds one HTTP exchange beyond a per-read timeout: its whole time, its size, its redirects.

Every server is a stranger. One that drips a byte every few seconds never trips a per-read
timeout, one that answers gigabytes fills memory, and a redirect could carry a POST's body
elsewhere or move a request from https to plain http. HttpClient (http.py) sends everything
through a session made here.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
except ImportError:
    HAS_REQUESTS = False
else:
    HAS_REQUESTS = True

# The largest answer read from any server: a provider, discovery, Golem Base or the payments node.
# Central discovery's list of every advert is a few MiB at most.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# A redirect is followed only when its own body is declared this small: requests reads it whole.
MAX_REDIRECT_BODY = 64 * 1024
FOLLOWED_METHODS = frozenset({"GET", "HEAD"})
_CHUNK = 64 * 1024

_current = threading.local()


class AnswerTooLarge(Exception):
    """An answer declared or grew past the size cap; ``size`` is what was declared or read so far."""

    def __init__(self, size: int, declared: bool) -> None:
        super().__init__(size)
        self.size = size
        self.declared = declared


class TimeUp(Exception):
    """An attempt was about to start after its exchange's time had ended (urllib3 does not retry this)."""


class Watch:
    """Ends each attempt of one exchange at its time, whatever the server is doing then.

    Each connection the exchange uses (urllib3 may retry on a new one) gets ``seconds`` from the
    moment it is taken, never past ``end``; when that time comes its socket is shut down, so a
    blocked read returns at once and the request fails. A connection handed back to its pool is
    no longer watched, and a timer that was replaced or ended does nothing: a connection another
    request takes from the pool later is never shut by this one. No timer outlives the exchange.
    """

    def __init__(self, seconds: float, end: float | None = None) -> None:
        self.seconds = seconds
        self.end = end
        self.fired = False  # a socket of this exchange was shut, or an attempt refused, for lack of time
        self._conn: Any = None
        # The socket of that connection, kept: once an answer that closes its connection has begun, the
        # connection drops it while the answer still reads from it.
        self._sock: Any = None
        self._timer: threading.Timer | None = None
        self._generation = 0
        self._open = False
        self._lock = threading.Lock()

    def __enter__(self) -> Watch:
        self._open = True
        _current.watch = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _current.watch = None
        with self._lock:
            self._open = False
            self._disarm()

    def using(self, conn: Any) -> None:
        """``conn`` is about to carry an attempt: its time starts now (TimeUp if none is left)."""
        now = time.monotonic()
        until = now + self.seconds if self.end is None else min(now + self.seconds, self.end)
        with self._lock:
            self._disarm()
            if until <= now:
                self.fired = True
                raise TimeUp()
            self._conn, self._sock = conn, getattr(conn, "sock", None)
            self.fired = False  # what counts is whether this attempt, the one that gives the answer, ran out
            self._arm(until - now)

    def connected(self, conn: Any) -> None:
        """``conn`` has just opened its socket."""
        with self._lock:
            if conn is self._conn:
                self._sock = conn.sock

    def released(self, conn: Any) -> None:
        """``conn`` went back to its pool, its answer read: it is no longer this exchange's to end."""
        with self._lock:
            if conn is self._conn:
                self._disarm()

    def _arm(self, seconds: float) -> None:
        self._generation += 1
        self._timer = threading.Timer(seconds, self._fire, args=(self._generation,))
        self._timer.daemon = True
        self._timer.start()

    def _disarm(self) -> None:
        self._generation += 1
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._conn, self._sock = None, None, None

    def _fire(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or not self._open:
                return  # replaced, released or ended meanwhile
            sock = self._sock
            if sock is None:
                # Still connecting (the connect has a timeout of its own): look again in a moment.
                self._arm(0.05)
                return
            try:
                # The plain socket's shutdown, also under TLS: the SSL object stays as its reader left it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: nothing left to end
            self.fired = True
            self._timer, self._conn, self._sock = None, None, None


def _watch() -> Watch | None:
    return getattr(_current, "watch", None)


def declared_length(resp: Any) -> int | None:
    """The answer's Content-Length as a number, or None when absent or unreadable (then the body counts)."""
    value = str(resp.headers.get("Content-Length") or "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    return MAX_ANSWER_BYTES * 1024 if len(value) > 15 else int(value)


def read_capped(resp: Any, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The whole body of a streamed ``resp``, refused past ``limit`` bytes (as declared, or as it comes)."""
    if resp._content_consumed:  # pylint: disable=protected-access
        return resp.content  # read already (a redirect's body, capped when it was read)
    declared = declared_length(resp)
    if declared is not None and declared > limit:
        resp.close()
        raise AnswerTooLarge(declared, True)
    chunks, size = [], 0
    for chunk in resp.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise AnswerTooLarge(size, False)
        chunks.append(chunk)
    body = b"".join(chunks)
    # Where requests keeps a body it read itself, so .json() and .text work on ours.
    resp._content = body  # pylint: disable=protected-access
    resp._content_consumed = True  # pylint: disable=protected-access
    return body


def not_followed(resp: Any) -> str | None:
    """Why the redirect ``resp`` is not followed, or None when it may be."""
    method = (resp.request.method or "").upper() if resp.request is not None else ""
    if method not in FOLLOWED_METHODS:
        return f"a redirect of a {method or 'request'} is never followed (its body would go to another server)"
    location = resp.headers.get("Location")
    if not location:
        return "it names no Location"
    target = urljoin(resp.url, location)
    if urlsplit(resp.url).scheme == "https" and urlsplit(target).scheme != "https":
        return "a redirect from https to plain http is never followed"
    declared = declared_length(resp)
    if "Transfer-Encoding" in resp.headers or declared is None or declared > MAX_REDIRECT_BODY:
        return f"a redirect whose body is not declared to be at most {MAX_REDIRECT_BODY} bytes is not followed"
    return None


if HAS_REQUESTS:

    def _watched_connection(connection_class: type) -> type:
        class WatchedConnection(connection_class):  # type: ignore[misc,valid-type]
            """A connection that tells the watch of the thread opening it which socket it opened."""

            def connect(self) -> None:
                super().connect()
                watch = _watch()
                if watch is not None:
                    watch.connected(self)

        WatchedConnection.__name__ = f"Watched{connection_class.__name__}"
        return WatchedConnection

    def _watched(pool_class: type) -> type:
        class Watched(pool_class):  # type: ignore[misc,valid-type]
            """A pool whose every attempt is watched by the exchange of the thread making it."""

            ConnectionCls = _watched_connection(pool_class.ConnectionCls)

            def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
                watch = _watch()
                if watch is not None:
                    watch.using(conn)
                return super()._make_request(conn, *args, **kwargs)

            def _put_conn(self, conn: Any) -> None:
                watch = _watch()
                if watch is not None:
                    watch.released(conn)
                super()._put_conn(conn)

        Watched.__name__ = f"Watched{pool_class.__name__}"
        return Watched

    _POOLS = {"http": _watched(HTTPConnectionPool), "https": _watched(HTTPSConnectionPool)}

    class LimitedAdapter(HTTPAdapter):
        """requests' adapter, with every connection watched by the exchange that uses it."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if not proxy.lower().startswith("socks"):  # SOCKS managers bring pools of their own
                manager.pool_classes_by_scheme = dict(_POOLS)
            return manager

    class LimitedSession(requests.Session):
        """requests' session, following only the redirects ``not_followed`` lets through.

        requests reads a redirect's body whole before following it (even to report one it does not
        follow): here that read is capped too.
        """

        def get_redirect_target(self, resp: Any) -> str | None:
            if not resp.is_redirect or not_followed(resp) is not None:
                return None
            try:
                target = super().get_redirect_target(resp)
            except UnicodeError:
                return None  # a Location that is not text: reported as a redirect not followed
            try:
                read_capped(resp, MAX_REDIRECT_BODY)
            except AnswerTooLarge:
                return None
            return target
