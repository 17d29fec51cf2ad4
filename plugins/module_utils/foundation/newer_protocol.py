# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recognising upstream's newer, unreleased protocol where the public network may already run it.

This version speaks the 0.1.x protocol (native-ETH streams, Golem Base, HTTP discovery). Upstream's
next one pays GLM as an ERC-20 token on Ethereum Hoodi against provider-signed lease
quotes, advertises on Arkiv (Golem Base renamed), runs its central discovery over WebSocket only and
serves the provider API over HTTPS (its HTTPS edge, port 443 by default, with an IP certificate).
A server that answers that way would otherwise surface as a refused stream, a "not a Golem Base node",
a bare HTTP 404 or a connection closed without an answer; here it becomes one message saying what was
seen and what to do instead.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    ProviderError,
    UnsupportedDiscovery,
    UnsupportedProvider,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.settings import (
    DEFAULT_DISCOVERY_URL,
    DEFAULT_GOLEM_BASE_RPC_URL,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.version import COLLECTION_VERSION

NOT_YET = f"which golem.vm {COLLECTION_VERSION} does not support yet"
NEWER = "upstream's newer VM on Golem protocol (lease quotes, GLM on Ethereum Hoodi; not released on PyPI)"
USE_01X_PROVIDER = ("Use a provider of the 0.1.x network instead (golem.vm.golem_provider_info lists them; "
                    "choose with provider_id or provider_ip)")
PROVIDER_ADVICE = f"Nothing was paid to it or created on it. {USE_01X_PROVIDER}"
CENTRAL_ADVICE = (f"Point discovery_url at a discovery service of the 0.1.x network (the default is "
                  f"{DEFAULT_DISCOVERY_URL}), or set discovery_backend=golem_base")
ARKIV_ADVICE = (f"Point golem_base_rpc_url at a Golem Base node of the 0.1.x network (the default is "
                f"{DEFAULT_GOLEM_BASE_RPC_URL}), or set discovery_backend=central")

# What only the newer provider says when it refuses a create or a call (its lease and request-signing checks);
# the 0.1.x provider's own refusals ("stream_id required ...", "invalid stream: recipient mismatch") hold none.
PROVIDER_MARKERS = ("payment proof required", "lease", "requestor action signature", "requestor signer",
                    "streaming payments required", "x-golem-")
# What a TLS server says when it answers a plain HTTP request at all (nginx; Go's net/http; Apache httpd).
PLAIN_HTTP_MARKERS = ("plain http request was sent to https port", "http request to an https server",
                      "speaking plain http to an ssl-enabled server port")
# gorilla/websocket and most WebSocket servers answer a plain GET on a WebSocket route with one of these.
WEBSOCKET_MARKERS = ("websocket", "upgrade required")
UPGRADE_REQUIRED = 426


def _address(value: Any) -> int | None:
    """The number an 0x address stands for; None for anything else (an unset or malformed field)."""
    if not isinstance(value, str) or not value.lower().startswith("0x"):
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def provider_info_problem(info: Any) -> str | None:
    """What in a provider's /provider/info shows the newer protocol, or None for a 0.1.x (or MVP-era) provider.

    A 0.1.x provider that takes payment streams native ETH (token 0x0, from its packaged deployment file);
    the newer one must name its ERC-20 GLM token, or it cannot sign a lease quote.
    """
    contract, token = _address(getattr(info, "stream_payment_address", None)), _address(
        getattr(info, "glm_token_address", None))
    if not contract or not token:
        return None
    return (f"its GET /api/v1/provider/info names the ERC-20 token {info.glm_token_address} as what it is paid in "
            "(a provider of the 0.1.x network is paid in native ETH, token 0x0), so it takes only GLM streams "
            "opened against its signed lease quotes (POST /api/v1/payments/lease-quotes)")


def unsupported_provider(info: Any, where: str, url: str) -> UnsupportedProvider:
    """The failure for a provider whose /provider/info shows the newer protocol."""
    return UnsupportedProvider(
        f"provider {info.provider_id} at {where} speaks {NEWER}, {NOT_YET}: {provider_info_problem(info)}. "
        f"{PROVIDER_ADVICE}", info=info, url=url, method="GET")


def provider_refusal(exc: ProviderError, where: str) -> UnsupportedProvider | None:
    """``exc`` as the newer protocol's refusal, when a provider's 4xx answer is one only that protocol gives
    (or the 400 of a TLS server that a plain HTTP request reached)."""
    if exc.status is None or not 400 <= exc.status < 500 or exc.status == 404:
        return None
    said = f"{exc.msg} {exc.response or ''}".lower()
    if exc.status == 400 and any(m in said for m in PLAIN_HTTP_MARKERS):
        seen = f"it answered {exc.method} {exc.url} with HTTP 400 ({(exc.response or exc.msg)[:200]!r})"
        return https_only(where, seen, url=exc.url, method=exc.method, status=exc.status, response=exc.response)
    marker = next((m for m in PROVIDER_MARKERS if m in said), None)
    if marker is None:
        return None
    return UnsupportedProvider(
        f"provider at {where} speaks {NEWER}, {NOT_YET}: it refused {exc.method} {exc.url} with HTTP {exc.status} "
        f"asking for what only that protocol sends (a lease payment or a signed request; it said "
        f"{(exc.response or exc.msg)[:200]!r}). {PROVIDER_ADVICE}",
        url=exc.url, method=exc.method, status=exc.status, response=exc.response)


def https_only(where: str, seen: str, **fields: Any) -> UnsupportedProvider:
    """The failure for a provider that serves its API over HTTPS only, as the newer provider does."""
    return UnsupportedProvider(
        f"provider at {where} serves its API over HTTPS only, as providers of {NEWER} do, {NOT_YET}: {seen}. "
        "golem.vm talks plain HTTP to providers, as the 0.1.x network serves them, so the request never reached "
        f"its API. {USE_01X_PROVIDER}", **fields)


def tls_version(url: str, timeout: float) -> str | None:
    """The TLS version a handshake with the host and port of ``url`` agrees on; None when none completes.

    Only the handshake is made: nothing is sent over it and the certificate is not checked, since a server
    that completes one speaks TLS, whoever it is.
    """
    parts = urlsplit(url)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=parts.hostname) as tls:
                return tls.version() or "TLS"
    except (OSError, ValueError):  # refused, reset, timed out, not TLS (ssl.SSLError is an OSError)
        return None


def tls_only_provider(where: str, method: str, url: str, why: str, timeout: float) -> UnsupportedProvider | None:
    """The failure of a plain HTTP request the provider's server took and left unanswered (``why``), when a
    TLS handshake with the same address completes: what the newer provider's HTTPS edge does with it."""
    version = tls_version(url, timeout)
    if version is None:
        return None
    parts = urlsplit(url)
    seen = (f"{method} {url} got no HTTP answer ({why}), and a TLS handshake with {parts.netloc} completes "
            f"({version})")
    return https_only(where, seen, url=url, method=method)


def websocket_answer(status: int | None, response: str | None) -> bool:
    """Whether an HTTP answer is a WebSocket endpoint refusing a plain request."""
    if status == UPGRADE_REQUIRED:
        return True
    return status == 400 and any(m in (response or "").lower() for m in WEBSOCKET_MARKERS)


def unsupported_central(source: str, seen: str, *, url: str, status: int | None,
                        response: str | None) -> UnsupportedDiscovery:
    return UnsupportedDiscovery(
        f"{source} is upstream's newer WebSocket-only discovery service, {NOT_YET}: {seen}; it has no HTTP routes "
        f"for advertisements (GET /api/v1/advertisements, and /api/v1/advertisements/{{provider_id}} for one) as the "
        f"0.1.x discovery service has. {CENTRAL_ADVICE}",
        url=url, method="GET", status=status, response=response)


def unsupported_arkiv(url: str, method: str) -> UnsupportedDiscovery:
    return UnsupportedDiscovery(
        f"{url} is an Arkiv node (upstream's newer network, Golem Base renamed), {NOT_YET}: it does not know "
        f"{method} but answers arkiv_getBlockTiming. {ARKIV_ADVICE}", url=url, method="POST")
