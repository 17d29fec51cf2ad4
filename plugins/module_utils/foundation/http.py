# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP client of the collection; the typed clients over it are in provider_client.py,
discovery_central.py and jsonrpc.py.

Every request has a timeout. Idempotent requests are retried with exponential backoff and
jitter on connection errors, on 429/502/503/504 (honouring Retry-After) and on answers that
break off or are not JSON; POST never is (but to a JSON-RPC node that is only read),
because a create that reached the provider must not be sent twice. Every failure becomes
the caller's error class with a message naming the URL and the cause.
"""

from __future__ import annotations

import ipaddress
import random
import ssl
import socket
import time
import traceback
from collections.abc import Callable
from http.client import BadStatusLine
from typing import Any, NamedTuple, Optional
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import show
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, MissingLibraryError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http_answers import (
    causes, error_body, has_cause, innermost, parse_json)
from ansible_collections.golem.vm.plugins.module_utils.foundation.http_limits import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    TimeUp,
    Watch,
    not_followed,
    read_capped,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.version import COLLECTION_VERSION

# What missing_required_lib() names; urllib3 2 brings backoff_jitter and backoff_max to Retry.
REQUESTS_LIBRARY = "requests (with urllib3 >= 2.0)"

try:
    import requests
    from ansible_collections.golem.vm.plugins.module_utils.foundation.http_limits import LimitedAdapter, LimitedSession
    from urllib3.exceptions import NameResolutionError, ReadTimeoutError
    from urllib3.util.retry import Retry
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR: str | None = traceback.format_exc()
    Retry = object  # type: ignore[assignment,misc]  # lets the subclass below be defined
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

API_PREFIX = "/api/v1"
DEFAULT_PROVIDER_PORT = 7466
DEFAULT_TIMEOUT = 30.0

# Retry policy; read at client creation, so a test can make it fast.
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_BACKOFF_MAX = 10.0
DEFAULT_BACKOFF_JITTER = 0.5

# At most this long is spent asking, after a request got no answer, what the server at its address speaks.
PROBE_TIMEOUT = 5.0

# Told, once a request's tries are spent, that the server took its connection and closed or reset it without an
# HTTP answer: (method, url, what was seen, a timeout); an error it returns is raised instead of the transport's.
# Optional, not "X | None": this alias is evaluated at run time (see discovery.OnInvalid).
Unanswered = Callable[[str, str, str, float], Optional[GolemError]]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def user_agent() -> str:
    try:
        from ansible.module_utils.ansible_release import __version__ as core_version
    except ImportError:  # pragma: no cover - ansible-core is always there when a module runs
        core_version = "unknown"
    return f"golem.vm/{COLLECTION_VERSION} (+ansible-core {core_version})"


def provider_url(ip_address: str, port: int = DEFAULT_PROVIDER_PORT) -> str:
    """http://<ip>:<port>; IPv6 literals get brackets."""
    host = ip_address
    try:
        if ipaddress.ip_address(ip_address).version == 6:
            host = f"[{ip_address}]"
    except ValueError:
        pass
    return f"http://{host}:{port}"


class _IdempotentRetry(Retry):  # type: ignore[misc,valid-type]
    """urllib3's Retry, but never for a non-idempotent method and never waiting longer than backoff_max.

    Plain Retry limits read and status retries to allowed_methods but still retries connection
    errors for any method; a POST whose connection attempt timed out may still have been
    received, so it gets no second try here.
    """

    def increment(self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if method is not None and not self._is_method_retryable(method):
            # A budget of zero makes urllib3 raise MaxRetryError now, which requests maps as usual.
            return super(_IdempotentRetry, self.new(total=0)).increment(method, url, *args, **kwargs)
        return super().increment(method, url, *args, **kwargs)

    def get_retry_after(self, response: Any) -> float | None:
        # A server asking for an hour's pause would otherwise hang the task for an hour.
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.backoff_max)


class HttpResponse(NamedTuple):
    status: int
    data: Any
    url: str


class HttpClient:
    """One requests.Session with retries, timeouts and our error mapping.

    ``service`` names the server in messages ("discovery", "provider"); ``error_class`` is the
    GolemError subclass raised on failures; ``hint`` is appended to transport errors so users
    know which option to check. With ``foreign_error``, answers that no such server would give
    (a redirect, a 2xx body that is not JSON, a 404 without a JSON error body) raise that class
    instead, and redirects are not followed: they come from whatever took over the address.
    """

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        error_class: type[GolemError],
        timeout: float = DEFAULT_TIMEOUT,
        validate_certs: bool = True,
        retries: int | None = None,
        backoff_factor: float | None = None,
        backoff_max: float | None = None,
        backoff_jitter: float | None = None,
        hint: str | None = None,
        foreign_error: type[GolemError] | None = None,
        posts_are_reads: bool = False,
        party: str | None = None,
        unanswered: Unanswered | None = None,
    ) -> None:
        """Retry settings left at None take the module-level DEFAULT_* values.

        ``party`` names the server and the setting that points at it in a message about the task's budget
        running out during a call to it, e.g. "the payments node (payments_rpc_url)"; by default the
        service and its URL.

        ``posts_are_reads``: every POST to this server only reads (a JSON-RPC node answering queries),
        so a POST is retried like a GET.

        ``unanswered`` is asked about a request whose connection the server took and then closed or reset
        without an HTTP answer (the provider client asks whether it speaks only TLS); see Unanswered.

        The n-th retry waits about backoff_factor * 2**(n-1) seconds plus up to backoff_jitter
        (the first retry is immediate), or what Retry-After asks, never more than backoff_max.
        """
        if not HAS_REQUESTS:
            raise MissingLibraryError(REQUESTS_LIBRARY, REQUESTS_IMPORT_ERROR, reason="to talk to VM on Golem")
        retries = DEFAULT_RETRIES if retries is None else retries
        backoff_factor = DEFAULT_BACKOFF_FACTOR if backoff_factor is None else backoff_factor
        backoff_max = DEFAULT_BACKOFF_MAX if backoff_max is None else backoff_max
        backoff_jitter = DEFAULT_BACKOFF_JITTER if backoff_jitter is None else backoff_jitter
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.party = party or f"the {service} at {self.base_url}"
        self.error_class = error_class
        self.timeout = timeout
        self.retries = retries
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.backoff_jitter = backoff_jitter
        self.hint = hint
        self.foreign_error = foreign_error
        self.unanswered = unanswered
        self.retried_methods = IDEMPOTENT_METHODS | ({"POST"} if posts_are_reads else set())
        # Set by a module that has one time budget for the task: no request outlives it.
        self.deadline: Deadline | None = None
        retry = _IdempotentRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=self.retried_methods,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            backoff_jitter=backoff_jitter,
            respect_retry_after_header=True,
            # Give us the last response, so the failure can quote the server's own reason.
            raise_on_status=False,
        )
        self.session = LimitedSession()
        self.session.verify = validate_certs
        self.session.headers.update({"User-Agent": user_agent(), "Accept": "application/json"})
        adapter = LimitedAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        missing_ok: bool = False,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Send one request; return status and parsed JSON (None for an empty body).

        With ``missing_ok`` a 404 comes back as status 404 and data None instead of an error, if its
        body is a JSON error (``{"detail": ...}``, as FastAPI servers send); with ``foreign_error``
        any other 404 raises that.
        An idempotent request whose answer breaks off, or is not JSON, is sent again like one
        whose connection failed: urllib3 retries nothing once the status line has come.
        """
        method = method.upper()
        query = {k: v for k, v in (params or {}).items() if v is not None}
        # Messages show the query too: "?cpu=0" is often the very reason for a 400.
        url = self.url(path) + (f"?{urlencode(query)}" if query else "")
        tries = 1 + (self.retries if method in self.retried_methods else 0)
        for attempt in range(1, tries + 1):
            this_timeout = self.timeout if timeout is None else timeout
            if self.deadline is not None:
                self.deadline.check(f"calling {method} {url}", self.party)
                this_timeout = self.deadline.bound(this_timeout)
            # However slowly the bytes come, an attempt ends with its timeout (and the task's budget).
            watch = Watch(this_timeout, self.deadline.end if self.deadline is not None else None)
            try:
                with watch:
                    # verify is passed on every request: left to the session, requests would let
                    # REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE in the environment turn validate_certs=false back on.
                    resp = self.session.request(method, url, json=json_body, timeout=this_timeout,
                                                verify=self.session.verify, stream=True,
                                                allow_redirects=self.foreign_error is None)
                    read_capped(resp)
                    if watch.fired:
                        # An answer read until its connection closed looks whole even when our watch closed it.
                        raise TimeUp()
            except AnswerTooLarge as exc:
                raise self._fail(method, url, f"its answer is {'declared as ' if exc.declared else 'over '}"
                                 f"{exc.size} bytes, more than the {MAX_ANSWER_BYTES} bytes any VM on Golem server "
                                 "sends; reading stopped there", status=resp.status_code) from None
            except (TimeUp, requests.exceptions.RequestException) as exc:
                if watch.fired:
                    # The answer did not end in time, however it was coming: a timeout like any other.
                    exc = requests.exceptions.ReadTimeout(str(exc))
                if not isinstance(exc, requests.exceptions.ChunkedEncodingError):
                    raise self._transport_error(method, url, exc, this_timeout) from None
                broken = self._transport_error(method, url, exc, this_timeout, tries=attempt)
            else:
                if 300 <= resp.status_code < 400:
                    where = resp.headers.get("Location")
                    redirect = f"HTTP {resp.status_code} answer is a redirect" + (f" to {show(where)}" if where else "")
                    if self.foreign_error is not None:
                        raise self._foreign(method, url, resp, redirect)
                    why = not_followed(resp) or "its Location or its body could not be taken"
                    raise self._fail(method, url, f"{redirect}, which was not followed: {why}",
                                     status=resp.status_code)
                if missing_ok and resp.status_code == 404:
                    if self.foreign_error is not None and error_body(resp) is None:
                        raise self._foreign(method, url, resp, "HTTP 404 answer has no JSON error body, "
                                            f"which a VM on Golem {self.service} always sends")
                    return HttpResponse(404, None, url)
                if resp.status_code >= 400:
                    raise self._http_error(method, url, resp)
                try:
                    return HttpResponse(resp.status_code, self._json(method, url, resp, tries=attempt), url)
                except GolemError as exc:
                    broken = exc
            if attempt == tries or not self._pause(attempt):
                raise broken
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int) -> bool:
        """Wait before sending again, as urllib3 would; False when the task's budget has no room for it."""
        pause = min(self.backoff_max, self.backoff_factor * 2 ** (attempt - 1)) + random.uniform(0, self.backoff_jitter)
        if self.deadline is not None and self.deadline.remaining() <= pause:
            return False
        time.sleep(pause)
        return True

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).data

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def _fail(self, method: str, url: str, cause: str, **fields: Any) -> GolemError:
        return self.error_class(
            f"{self.service} request {method} {url} failed: {cause}", url=url, method=method, **fields
        )

    def _foreign(self, method: str, url: str, resp: Any, what: str, tries: int = 1) -> GolemError:
        """An answer no VM on Golem server gives: whatever answered is not the server we wanted."""
        kind = resp.headers.get("Content-Type", "no content type")
        error_class = self.foreign_error or self.error_class
        return error_class(
            f"{self.service} request {method} {url} failed: {what} ({kind})"
            + (f" (tried {tries} times)" if tries > 1 else "")
            + f"; is {self.base_url} really a VM on Golem {self.service}?",
            url=url, method=method, status=resp.status_code, response=resp.text)

    def _json(self, method: str, url: str, resp: Any, tries: int = 1) -> Any:
        if not resp.content.strip():
            return None
        try:
            return parse_json(resp)
        except ValueError as exc:
            deep = " (it nests too deeply)" if "nests" in str(exc) else ""
            raise self._foreign(method, url, resp, f"HTTP {resp.status_code} answer is not JSON{deep}", tries) from None

    def _http_error(self, method: str, url: str, resp: Any) -> GolemError:
        reason = error_body(resp)
        cause = f"HTTP {resp.status_code} {resp.reason or ''}".rstrip()
        if reason:
            cause += f": {reason}"
        attempts = _attempts(resp)
        if attempts > 1:
            cause += f" (gave up after {attempts} attempts)"
        return self._fail(method, url, cause, status=resp.status_code, response=resp.text)

    def _transport_error(
        self, method: str, url: str, exc: Exception, timeout: float | None = None, tries: int = 1
    ) -> GolemError:
        """``timeout`` is the one the request really had (a create's, or one cut by the deadline);
        ``tries`` counts the sends of a request whose answer broke off (call() repeats those, not urllib3)."""
        # One decimal: a timeout cut by the deadline would otherwise read "5.4888 s".
        timeout = round(self.timeout if timeout is None else timeout, 1)
        parts = urlsplit(url)
        where = parts.netloc
        chain = list(causes(exc))
        # Only these failures go through urllib3's connect/read retry counters.
        retried = True
        if has_cause(chain, requests.exceptions.SSLError, ssl.SSLError):
            retried = False
            cause = (
                f"TLS verification failed for {where} ({innermost(chain)}); fix the server certificate, "
                "or set validate_certs=false only for a server you trust"
            )
        elif has_cause(chain, NameResolutionError, socket.gaierror):
            cause = f"the host name {parts.hostname!r} could not be resolved"
        elif has_cause(chain, ConnectionRefusedError):
            cause = f"connection refused by {where}: nothing listens there"
        elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
            # The status line came, the body broke off: urllib3 retries nothing past the headers.
            retried = False
            cause = f"the answer from {where} broke off before its end ({innermost(chain)})"
            if tries > 1:
                cause += f" (tried {tries} times)"
        elif has_cause(chain, requests.exceptions.ConnectTimeout):
            cause = f"could not connect to {where} within {timeout:g} s"
        elif has_cause(chain, requests.exceptions.ReadTimeout, ReadTimeoutError, socket.timeout):
            cause = f"{where} did not answer within {timeout:g} s (timeout)"
        elif isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
            retried = False
            cause = f"the URL is not valid ({exc})"
        else:
            cause = f"could not talk to {where}: {innermost(chain)}"
        if retried and method in self.retried_methods and self.retries:
            cause += f" (tried {self.retries + 1} times)"
        if self.hint:
            cause += f"; {self.hint}"
        # No status line at all (not a body that broke off): the server took the request and said nothing HTTP.
        if (self.unanswered is not None and not isinstance(exc, requests.exceptions.ChunkedEncodingError)
                and not has_cause(chain, requests.exceptions.SSLError, ssl.SSLError)
                and has_cause(chain, ConnectionResetError, BadStatusLine)):
            probe = PROBE_TIMEOUT if self.deadline is None else min(PROBE_TIMEOUT, self.deadline.remaining())
            if probe > 0:
                instead = self.unanswered(method, url, innermost(chain), min(probe, timeout))
                if instead is not None:
                    return instead
        return self._fail(method, url, cause)


def _attempts(resp: Any) -> int:
    retries = getattr(getattr(resp, "raw", None), "retries", None)
    history = getattr(retries, "history", None) or ()
    return len(history) + 1


def segment(value: str) -> str:
    """One URL path segment from a value a server sent (ids) or a user gave."""
    # Names are validated elsewhere, but ids come from servers; never let one add path segments.
    return quote(str(value), safe="")
