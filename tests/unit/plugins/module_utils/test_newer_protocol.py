# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Servers that answer as upstream's newer, unreleased protocol (reference §8) are named as such, with what
was seen and what to do, never a parse error; servers of the 0.1.x network are not mistaken for them.

The answers are the newer servers' shapes read in upstream's repository: a provider whose /provider/info names
an ERC-20 GLM token (ProviderInfoService: glm_token_address and its alias eth_token_address, endpoint_url) and
whose create refuses a request without a lease payment (StreamStatusService.require_valid_lease); a discovery
service with no HTTP advert route whose WebSocket route refuses a plain GET; an Arkiv node, which knows
arkiv_* and not golembase_* methods.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
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
