# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Servers that answer as upstream's newer, unreleased protocol (reference §8) are named as such, with what
was seen and what to do, never a parse error; servers of the 0.1.x network are not mistaken for them.

The answers are the newer servers' shapes read in upstream's repository: a provider whose /provider/info names
an ERC-20 GLM token (ProviderInfoService: glm_token_address and its alias eth_token_address, endpoint_url) and
whose create refuses a request without a lease payment (StreamStatusService.require_valid_lease); a provider
that serves its API over HTTPS only (network_setup/edge.py: aiohttp on an asyncio TLS transport, port 443 by
default), which closes a plain HTTP request's connection without a byte; a discovery service with no HTTP advert
routes whose WebSocket route refuses a plain GET; an Arkiv node, which knows arkiv_* and not golembase_* methods.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from loopback_servers import LOOPBACK, AcceptLoop, self_signed
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base import GolemBaseDiscovery
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    DiscoveryError,
    ProviderError,
    UnsupportedDiscovery,
    UnsupportedProvider,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.version import COLLECTION_VERSION
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity
from ansible_collections.golem.vm.plugins.module_utils.provider.models import build_create_request

Load = Callable[[str], Any]
INFO = "/api/v1/provider/info"
ADS = "/api/v1/advertisements"
WS = "/api/v1/discovery/requestors"
PROVIDER = "0x1b2e9b1f4c0d5a8e7f3a6c2d9e0b4a7c1f5d8e3a"
CONTRACT = "0x" + "5" * 40
GLM = "0x" + "6" * 40
ZERO = "0x" + "0" * 40
NOT_YET = f"golem.vm {COLLECTION_VERSION} does not support yet"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEMWzxlKqsW9eF8FT5PAbumGQhOrUh4YVx6GSbJ8UXi1 unit"


def newer_info(**changes: Any) -> dict[str, Any]:
    info = {"provider_id": PROVIDER, "stream_payment_address": CONTRACT, "glm_token_address": GLM,
            "eth_token_address": GLM, "ip_address": "127.0.0.60", "endpoint_url": "https://127.0.0.60:7466",
            "country": "SE", "platform": "x86_64"}
    info.update(changes)
    return info


def provider(httpserver: HTTPServer) -> ProviderClient:
    return ProviderClient("127.0.0.60", httpserver.port, retries=0)


# -- providers ---------------------------------------------------------------------------------------------------
def test_a_provider_paid_in_an_erc20_token_is_named_unsupported(httpserver: HTTPServer) -> None:
    httpserver.expect_request(INFO).respond_with_json(newer_info())
    with pytest.raises(UnsupportedProvider) as err:
        provider(httpserver).provider_info()
    msg = err.value.msg
    assert NOT_YET in msg and PROVIDER in msg and GLM in msg
    assert "POST /api/v1/payments/lease-quotes" in msg and "Hoodi" in msg
    assert "Nothing was paid to it or created on it" in msg and "provider of the 0.1.x network" in msg
    assert err.value.failure() == {"kind": "unsupported", "url": httpserver.url_for(INFO), "method": "GET"}
    assert err.value.info.provider_id == PROVIDER


@pytest.mark.parametrize("changes", [{}, {"stream_payment_address": ZERO, "glm_token_address": GLM},
                                     {"glm_token_address": "not an address"}, {"glm_token_address": None}])
def test_a_provider_of_the_01x_network_is_not_taken_for_a_newer_one(
        httpserver: HTTPServer, fixture_json: Load, changes: dict[str, Any]) -> None:
    # The recorded 0.1.x answer (token 0x0: native ETH), one that takes no payment, and malformed tokens.
    info = {**fixture_json("provider_info_from_reference.json"), **changes}
    httpserver.expect_request(INFO).respond_with_json(info)
    assert provider(httpserver).provider_info().provider_id == info["provider_id"]


def test_a_newer_provider_still_proves_who_it_is(httpserver: HTTPServer) -> None:
    # Deleting a VM needs only its provider's word on its id, whichever protocol it pays by.
    httpserver.expect_request(INFO).respond_with_json(newer_info())
    ProviderIdentity().prove(provider(httpserver), PROVIDER, "vm-1")


@pytest.mark.parametrize("status, body", [
    (400, {"detail": "payment proof required when payments are enabled"}),
    (400, {"detail": "invalid stream: lease mismatch"}),
    (401, {"detail": "requestor action signature required"}),
    (400, {"code": "validation_error", "message": "streaming payments required to create a VM"}),
])
def test_a_create_refused_for_want_of_a_lease_is_named_unsupported(
        httpserver: HTTPServer, status: int, body: dict[str, Any]) -> None:
    httpserver.expect_request("/api/v1/vms", method="POST").respond_with_json(body, status=status)
    request = build_create_request(name="vm-1", resources={"cpu": 1, "memory": 1, "storage": 10}, ssh_key=KEY)
    with pytest.raises(UnsupportedProvider) as err:
        provider(httpserver).create_vm(request)
    assert NOT_YET in err.value.msg and "lease payment or a signed request" in err.value.msg
    # Its status stays: the create is known to be refused (nothing made), so cleanup forgets the row.
    assert err.value.status == status and err.value.kind == "unsupported"


def test_the_01x_providers_own_refusal_stays_what_it_is(httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request("/api/v1/vms", method="POST").respond_with_json(
        fixture_json("provider_create_400_stream_from_reference.json"), status=400)
    request = build_create_request(name="vm-1", resources={"cpu": 1, "memory": 1, "storage": 10}, ssh_key=KEY)
    with pytest.raises(ProviderError) as err:
        provider(httpserver).create_vm(request)
    assert not isinstance(err.value, UnsupportedProvider)
    assert "stream_id required when payments are enabled" in err.value.msg


# -- providers serving HTTPS only ---------------------------------------------------------------------------------
NGINX_400 = ("<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n"
             "<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port"
             "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
GO_400 = "Client sent an HTTP request to an HTTPS server.\n"  # Go's net/http, whose TLS servers answer this way


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


class AsyncioTlsServer:
    """TLS only, on an asyncio transport, as upstream's HTTPS edge serves the provider API (aiohttp's TCPSite with
    an ssl context): a plain HTTP request fails the handshake and its connection is closed without a byte."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.handshakes = 0
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda _loop, _context: None)  # "SSL handshake failed" is the point
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, LOOPBACK, 0, ssl=context))
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _handle(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1  # only a completed handshake gets here
        writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class BlockingTlsServer(AcceptLoop):
    """TLS only, on a blocking ssl socket: a plain HTTP request fails the handshake and its connection is reset."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.handshakes = 0
        self.context = context
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            self.context.wrap_socket(conn, server_side=True).close()
            self.handshakes += 1
        except OSError:
            conn.close()


class PlainDroppingServer(AcceptLoop):
    """Plain TCP that takes the request and closes (``reset``: resets) without an answer, as a crashing server
    does; it speaks no TLS, so it is not taken for an HTTPS-only provider."""

    def __init__(self, reset: bool) -> None:
        self.reset = reset
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            conn.recv(65536)
        except OSError:
            pass
        if self.reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


@pytest.fixture(params=["asyncio", "blocking"])
def tls_only(request: pytest.FixtureRequest, certificate: tuple[Path, Path]) -> Iterator[Any]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = AsyncioTlsServer(context) if request.param == "asyncio" else BlockingTlsServer(context)
    yield server
    server.close()


def call_info(client: ProviderClient) -> Any:
    return client.provider_info()


def call_create(client: ProviderClient) -> Any:
    return client.create_vm(build_create_request(name="vm-1", resources={"cpu": 1, "memory": 1, "storage": 10},
                                                 ssh_key=KEY))


@pytest.mark.parametrize("call, method, path", [(call_info, "GET", INFO), (call_create, "POST", "/api/v1/vms")])
def test_a_provider_serving_https_only_is_named_unsupported(
        tls_only: Any, call: Callable[[ProviderClient], Any], method: str, path: str) -> None:
    base = f"http://{LOOPBACK}:{tls_only.port}"
    with pytest.raises(UnsupportedProvider) as err:
        call(ProviderClient(LOOPBACK, tls_only.port, retries=1, backoff_factor=0.01, backoff_jitter=0.01, timeout=5))
    msg = err.value.msg
    assert msg.startswith(f"provider at {base} serves its API over HTTPS only") and NOT_YET in msg
    assert f"{method} {base}{path}" in msg and "got no HTTP answer" in msg
    assert f"a TLS handshake with {LOOPBACK}:{tls_only.port} completes (TLSv1." in msg
    assert "plain HTTP" in msg and "provider of the 0.1.x network" in msg and "provider_id or provider_ip" in msg
    assert err.value.failure()["kind"] == "unsupported" and err.value.failure()["method"] == method
    assert err.value.failure()["url"].startswith(f"{base}{path}") and err.value.status is None
    for _wait in range(100):  # the server counts the handshake in its own thread
        if tls_only.handshakes:
            break
        time.sleep(0.05)
    assert tls_only.handshakes == 1, "one handshake tells, once the request's own tries are spent"


@pytest.mark.parametrize("body, content_type", [(NGINX_400, "text/html"), (GO_400, "text/plain; charset=utf-8")])
def test_an_https_server_refusing_plain_http_is_named_unsupported(
        httpserver: HTTPServer, body: str, content_type: str) -> None:
    # A TLS front (nginx, or Go's net/http) that answers a plain request on its HTTPS port with a 400 saying so.
    httpserver.expect_request(INFO).respond_with_data(body, status=400, content_type=content_type)
    with pytest.raises(UnsupportedProvider) as err:
        provider(httpserver).provider_info()
    msg = err.value.msg
    assert "serves its API over HTTPS only" in msg and NOT_YET in msg
    assert f"it answered GET {httpserver.url_for(INFO)} with HTTP 400" in msg and "HTTP request" in msg
    assert err.value.status == 400 and err.value.failure()["kind"] == "unsupported"


@pytest.mark.parametrize("reset", [False, True])
def test_a_plain_server_dropping_the_request_is_not_taken_for_an_https_one(reset: bool) -> None:
    server = PlainDroppingServer(reset)
    try:
        with pytest.raises(ProviderError) as err:
            ProviderClient(LOOPBACK, server.port, retries=0, timeout=5).provider_info()
    finally:
        server.close()
    assert not isinstance(err.value, UnsupportedProvider)
    assert f"could not talk to {LOOPBACK}:{server.port}" in err.value.msg and "HTTPS" not in err.value.msg
    assert server.accepted == 2, "the request, then one TLS handshake that the server did not answer"


def test_a_refused_connection_asks_no_tls_handshake(closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[Any] = []
    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", lambda *args, **kwargs: tried.append(args))
    with pytest.raises(ProviderError) as err:
        ProviderClient(LOOPBACK, closed_port, retries=0, timeout=5).provider_info()
    assert not isinstance(err.value, UnsupportedProvider) and "connection refused" in err.value.msg
    assert tried == []


def test_an_01x_provider_answering_400_stays_what_it_is(httpserver: HTTPServer) -> None:
    httpserver.expect_request(INFO).respond_with_json({"detail": "Bad Request"}, status=400)
    with pytest.raises(ProviderError) as err:
        provider(httpserver).provider_info()
    assert not isinstance(err.value, UnsupportedProvider) and "HTTP 400" in err.value.msg


# -- central discovery --------------------------------------------------------------------------------------------
GORILLA_400 = ("Bad Request\nwebsocket: the client is not using the websocket protocol: 'upgrade' token not found "
               "in 'Connection' header\n")


def central(httpserver: HTTPServer) -> DiscoveryClient:
    return DiscoveryClient(httpserver.url_for("").rstrip("/"), retries=0)


def test_a_websocket_only_discovery_is_named_unsupported(httpserver: HTTPServer) -> None:
    # Go's mux: a plain-text 404 for the old route; the WebSocket route refuses a GET without Upgrade.
    httpserver.expect_request(ADS).respond_with_data("404 page not found\n", status=404, content_type="text/plain")
    httpserver.expect_request(WS).respond_with_data(GORILLA_400, status=400, content_type="text/plain")
    with pytest.raises(UnsupportedDiscovery) as err:
        central(httpserver).list_advertisements(cpu=1)
    msg = err.value.msg
    assert "WebSocket-only discovery service" in msg and NOT_YET in msg
    assert f"GET {httpserver.url_for(WS)} answered HTTP 400" in msg and "HTTP 404" in msg
    assert "discovery_backend=golem_base" in msg and "discovery_url" in msg
    assert err.value.failure()["kind"] == "unsupported" and err.value.failure()["status"] == 400


def test_a_426_upgrade_required_on_the_advert_route_is_named_unsupported(httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_data("Upgrade Required", status=426)
    with pytest.raises(UnsupportedDiscovery) as err:
        central(httpserver).list_advertisements()
    assert "answered HTTP 426" in err.value.msg and "discovery_backend=golem_base" in err.value.msg


def test_a_404_from_something_else_is_not_taken_for_the_newer_discovery(httpserver: HTTPServer) -> None:
    # A FastAPI server without the route (say, a provider's address given as discovery_url) answers both with 404.
    for path in (ADS, WS):
        httpserver.expect_request(path).respond_with_json({"detail": "Not Found"}, status=404)
    with pytest.raises(DiscoveryError) as err:
        central(httpserver).list_advertisements()
    assert not isinstance(err.value, UnsupportedDiscovery) and "HTTP 404" in err.value.msg


def test_a_websocket_only_discovery_is_named_unsupported_when_asked_for_one_advert(httpserver: HTTPServer) -> None:
    # Identity proofs and pinned providers ask for one advert: Go's mux answers its route with a plain-text 404.
    one = f"{ADS}/{PROVIDER}"
    httpserver.expect_request(one).respond_with_data("404 page not found\n", status=404, content_type="text/plain")
    httpserver.expect_request(WS).respond_with_data(GORILLA_400, status=400, content_type="text/plain")
    with pytest.raises(UnsupportedDiscovery) as err:
        central(httpserver).get_advertisement(PROVIDER)
    msg = err.value.msg
    assert "WebSocket-only discovery service" in msg and NOT_YET in msg
    assert f"GET {httpserver.url_for(one)} answered HTTP 404" in msg
    assert f"GET {httpserver.url_for(WS)} answered HTTP 400" in msg
    assert "discovery_backend=golem_base" in msg and "discovery_url" in msg
    assert err.value.failure()["kind"] == "unsupported" and err.value.failure()["status"] == 400


def test_a_426_on_the_one_advert_route_is_named_unsupported(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{ADS}/{PROVIDER}").respond_with_data("Upgrade Required", status=426)
    with pytest.raises(UnsupportedDiscovery) as err:
        central(httpserver).get_advertisement(PROVIDER)
    assert "answered HTTP 426" in err.value.msg and "discovery_backend=golem_base" in err.value.msg


def test_the_01x_discoverys_no_such_advert_is_still_none_asking_nothing_more(
        httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(f"{ADS}/{PROVIDER}").respond_with_json(
        fixture_json("discovery_one_404.json"), status=404)
    assert central(httpserver).get_advertisement(PROVIDER) is None
    assert [entry[0].path for entry in httpserver.log] == [f"{ADS}/{PROVIDER}"]


def test_a_404_for_one_advert_from_something_else_is_still_none(httpserver: HTTPServer) -> None:
    for path in (f"{ADS}/{PROVIDER}", WS):
        httpserver.expect_request(path).respond_with_data("404 page not found\n", status=404)
    assert central(httpserver).get_advertisement(PROVIDER) is None


# -- Golem Base / Arkiv -------------------------------------------------------------------------------------------
def rpc_node(httpserver: HTTPServer, known: dict[str, Any]) -> str:
    def handle(request: Request) -> Response:
        call = json.loads(request.get_data())
        out: dict[str, Any] = {"jsonrpc": "2.0", "id": call["id"]}
        if call["method"] in known:
            out["result"] = known[call["method"]]
        else:
            out["error"] = {"code": -32601, "message": f"the method {call['method']} does not exist/is not available"}
        return Response(json.dumps(out), content_type="application/json")

    httpserver.expect_request("/rpc", method="POST").respond_with_handler(handle)
    return httpserver.url_for("/rpc")


def test_an_arkiv_node_is_named_unsupported(httpserver: HTTPServer) -> None:
    url = rpc_node(httpserver, {"arkiv_getBlockTiming": {"current_block": "0x10", "current_block_time": 1,
                                                         "duration": 2}})
    with pytest.raises(UnsupportedDiscovery) as err:
        GolemBaseDiscovery(url, retries=0).list_advertisements()
    msg = err.value.msg
    assert "is an Arkiv node" in msg and NOT_YET in msg and "golembase_queryEntities" in msg
    assert "discovery_backend=central" in msg and "golem_base_rpc_url" in msg
    assert err.value.failure() == {"kind": "unsupported", "url": url, "method": "POST"}


def test_a_plain_chain_node_is_still_not_a_golem_base_node(httpserver: HTTPServer) -> None:
    url = rpc_node(httpserver, {})
    with pytest.raises(DiscoveryError) as err:
        GolemBaseDiscovery(url, retries=0).list_advertisements()
    assert not isinstance(err.value, UnsupportedDiscovery) and "it is not a Golem Base node" in err.value.msg
