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
    """An answer declared or grew past the size cap; ``size`` is what was seen so far."""

    def __init__(self, size: int, declared: bool) -> None:
        super().__init__(size)
        self.size = size
        self.declared = declared


class Watch:
    """Ends each attempt of one exchange at its time, whatever the server is doing then.

    Each connection the exchange uses (urllib3 may retry on a new one) gets ``seconds`` from the
    moment it is taken, never past ``end``; when that time comes its socket is shut down, so a
    blocked read returns at once and the request fails. The timer thread ends with the exchange.
    """

    def __init__(self, seconds: float, end: float | None = None) -> None:
        self.seconds = seconds
        self.end = end
        self.fired = False
        self._conn: Any = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Watch:
        _current.watch = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _current.watch = None
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._conn = None

    def using(self, conn: Any) -> None:
        """``conn`` is about to carry an attempt: its time starts now."""
        now = time.monotonic()
        until = now + self.seconds if self.end is None else min(now + self.seconds, self.end)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._conn = conn
            self.fired = False
            self._timer = threading.Timer(max(0.0, until - now), self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sock = getattr(self._conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: nothing left to end


def _attach(conn: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.using(conn)


def read_capped(resp: Any, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The whole body of a streamed ``resp``, refused past ``limit`` bytes (as declared, or as it comes)."""
    declared = str(resp.headers.get("Content-Length") or "").strip()
    if declared.isdigit() and int(declared) > limit:
        resp.close()
        raise AnswerTooLarge(int(declared), True)
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
    return body


def not_followed(resp: Any) -> str | None:
    """Why the redirect ``resp`` is not followed, or None when it may be."""
    method = (resp.request.method or "").upper() if resp.request is not None else ""
    if method not in FOLLOWED_METHODS:
        return f"a redirect of a {method or 'request'} is never followed (its body would go to another server)"
    target = urljoin(resp.url, resp.headers.get("Location", ""))
    if urlsplit(resp.url).scheme == "https" and urlsplit(target).scheme != "https":
        return "a redirect from https to plain http is never followed"
    declared = str(resp.headers.get("Content-Length") or "").strip()
    if not declared.isdigit() or int(declared) > MAX_REDIRECT_BODY:
        return f"a redirect whose body is not declared to be at most {MAX_REDIRECT_BODY} bytes is not followed"
    return None


if HAS_REQUESTS:

    class _WatchedPool(HTTPConnectionPool):
        def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
            _attach(conn)
            return super()._make_request(conn, *args, **kwargs)

    class _WatchedHTTPSPool(HTTPSConnectionPool):
        def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
            _attach(conn)
            return super()._make_request(conn, *args, **kwargs)

    class LimitedAdapter(HTTPAdapter):
        """requests' adapter, with every connection watched by the exchange that uses it."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if not proxy.lower().startswith("socks"):  # SOCKS managers bring pools of their own
                manager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}
            return manager

    class LimitedSession(requests.Session):
        """requests' session, following only the redirects ``not_followed`` lets through."""

        def get_redirect_target(self, resp: Any) -> str | None:
            target = super().get_redirect_target(resp)
            if target is None or not_followed(resp) is not None:
                return None
            return target
