# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest
from loopback_servers import LOOPBACK, AcceptLoop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ansible.module_utils.ansible_release import __version__ as core_version
from pytest_httpserver import HTTPServer
from urllib3.util import connection as urllib3_connection
from werkzeug import Request, Response

from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    DiscoveryError,
    IdentityError,
    ProviderError,
    ValidationError,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import HttpClient, provider_url, user_agent
from ansible_collections.golem.vm.plugins.module_utils.foundation.http_answers import error_reason
from ansible_collections.golem.vm.plugins.module_utils.foundation.version import COLLECTION_VERSION
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient, ProviderInfoMemo
from ansible_collections.golem.vm.plugins.module_utils.provider.models import VMStatus, build_create_request

ADS = "/api/v1/advertisements"
Load = Callable[[str], Any]

ED25519 = (
    ed25519.Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    .decode()
)


def base(server: HTTPServer) -> str:
    return server.url_for("").rstrip("/")


def client(server: HTTPServer, **kwargs: Any) -> HttpClient:
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("backoff_factor", 0.01)
    kwargs.setdefault("backoff_jitter", 0.01)
    kwargs.setdefault("timeout", 5)
    return HttpClient(base(server), service="discovery", error_class=DiscoveryError, **kwargs)


class Script:
    """Answers requests with the given responses in turn and remembers what it was asked."""

    def __init__(self, *responses: Response) -> None:
        self.responses = list(responses)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        return self.responses[min(len(self.requests), len(self.responses)) - 1]


def json_response(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


# --- versions and URLs --------------------------------------------------------------------------


def test_collection_version_matches_galaxy_yml() -> None:
    galaxy = Path(__file__).parents[4] / "galaxy.yml"
    assert re.search(r"^version:\s*(\S+)", galaxy.read_text(), re.M).group(1) == COLLECTION_VERSION


def test_user_agent_names_collection_and_core_version(httpserver: HTTPServer) -> None:
    script = Script(json_response([]))
    httpserver.expect_request(ADS).respond_with_handler(script)
    client(httpserver).get(ADS)
    assert script.requests[0].headers["User-Agent"] == f"golem.vm/{COLLECTION_VERSION} (+ansible-core {core_version})"
    assert user_agent().startswith(f"golem.vm/{COLLECTION_VERSION} (+ansible-core 2.")


def test_provider_url_brackets_ipv6() -> None:
    assert provider_url("203.0.113.5") == "http://203.0.113.5:7466"
    assert provider_url("2001:db8::1", 8000) == "http://[2001:db8::1]:8000"


# --- error bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("discovery_list_400_adv002.json", "Resource requirements must be >= 1 (ADV_002)"),
        ("discovery_one_404.json", "Advertisement not found (ADV_004)"),
        ("discovery_list_422.json", "query.cpu: value is not a valid integer"),
        ("discovery_post_422_missing_header.json", "header.x-provider-signature: field required"),
        ("discovery_unknown_path_404.json", "Not Found"),
        ("provider_vm_404_message_from_reference.json", "VM web-9 not found"),
        ("provider_create_400_stream_from_reference.json", "stream_id required when payments are enabled"),
    ],
)
def test_error_reason_reads_every_upstream_shape(fixture_json: Load, fixture: str, reason: str) -> None:
    assert error_reason(fixture_json(fixture)) == reason


def test_error_reason_of_rate_limit_and_unknown_bodies() -> None:
    assert error_reason({"code": "RATE_001", "message": "Too many requests", "timestamp": "x"}) == (
        "Too many requests (RATE_001)"
    )
    assert error_reason({"detail": [{"loc": ["body", "resources"], "msg": "bad"}, {"msg": "worse"}]}) == (
        "body.resources: bad; worse"
    )
    assert error_reason(["not", "a", "dict"]) is None
    assert error_reason({"unexpected": 1}) is None


# --- successful calls ---------------------------------------------------------------------------


def test_get_returns_parsed_json_and_drops_unset_query_params(httpserver: HTTPServer, fixture_json: Load) -> None:
    body = fixture_json("discovery_list_cpu2_memory4.json")
    httpserver.expect_request(ADS, query_string="cpu=2&memory=4").respond_with_json(body)
    assert client(httpserver).get(ADS, params={"cpu": 2, "memory": 4, "storage": None}) == body


def test_empty_body_is_none(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/vms/web-1", method="DELETE").respond_with_data("", status=204)
    assert client(httpserver).request("DELETE", "/api/v1/vms/web-1") is None


# --- retries ------------------------------------------------------------------------------------


def test_503_with_retry_after_is_retried_after_the_asked_wait(httpserver: HTTPServer) -> None:
    script = Script(json_response({"detail": "busy"}, 503, **{"Retry-After": "1"}), json_response(["ok"]))
    httpserver.expect_request(ADS).respond_with_handler(script)
    started = time.monotonic()
    assert client(httpserver, backoff_max=5).get(ADS) == ["ok"]
    assert len(script.requests) == 2
    # backoff_factor is 0.01, so only Retry-After explains a pause of a second.
    assert time.monotonic() - started >= 0.9


def test_retry_after_is_capped_so_a_server_cannot_stall_the_task(httpserver: HTTPServer) -> None:
    script = Script(json_response({}, 429, **{"Retry-After": "30"}), json_response(["ok"]))
    httpserver.expect_request(ADS).respond_with_handler(script)
    started = time.monotonic()
    assert client(httpserver, backoff_max=0.2).get(ADS) == ["ok"]
    assert time.monotonic() - started < 20  # far below the 30 s asked; capped at 0.2 s


def test_502_every_time_gives_up_after_all_attempts(httpserver: HTTPServer) -> None:
    script = Script(Response("<html>Bad Gateway</html>", status=502, content_type="text/html"))
    httpserver.expect_request(ADS).respond_with_handler(script)
    with pytest.raises(DiscoveryError) as err:
        client(httpserver, retries=3).get(ADS)
    assert len(script.requests) == 4
    url = base(httpserver) + ADS
    assert err.value.msg == f"discovery request GET {url} failed: HTTP 502 BAD GATEWAY (gave up after 4 attempts)"
    assert err.value.failure() == {
        "kind": "discovery",
        "url": url,
        "method": "GET",
        "status": 502,
        "response": "<html>Bad Gateway</html>",
    }


def test_500_is_not_retried(httpserver: HTTPServer) -> None:
    script = Script(json_response({"message": "An unexpected error occurred"}, 500))
    httpserver.expect_request(ADS).respond_with_handler(script)
    with pytest.raises(DiscoveryError) as err:
        client(httpserver).get(ADS)
    assert len(script.requests) == 1
    assert err.value.msg.endswith("HTTP 500 INTERNAL SERVER ERROR: An unexpected error occurred")


def test_post_is_never_retried_even_on_503(httpserver: HTTPServer) -> None:
    script = Script(json_response({"detail": "busy"}, 503), json_response({"job_id": "j"}, 202))
    httpserver.expect_request("/api/v1/vms", method="POST").respond_with_handler(script)
    with pytest.raises(DiscoveryError) as err:
        client(httpserver).request("POST", "/api/v1/vms", json_body={"name": "web-1"})
    assert len(script.requests) == 1
    assert err.value.status == 503 and "attempts" not in err.value.msg


class DroppingServer(AcceptLoop):
    """Accepts TCP connections and closes them at once: the request may have arrived, no answer came."""

    def handle(self, conn: socket.socket) -> None:
        conn.recv(65536)
        conn.close()


@pytest.fixture
def dropping() -> Iterator[DroppingServer]:
    server = DroppingServer()
    yield server
    server.close()


def test_dropped_connection_is_retried_for_get_but_not_for_post(dropping: DroppingServer) -> None:
    http = HttpClient(
        f"http://{LOOPBACK}:{dropping.port}",
        service="provider",
        error_class=ProviderError,
        retries=2,
        backoff_factor=0.01,
        backoff_jitter=0.01,
        timeout=5,
    )
    with pytest.raises(ProviderError) as err:
        http.get("/api/v1/vms/web-1")
    assert dropping.accepted == 3
    assert f"could not talk to {LOOPBACK}:{dropping.port}" in err.value.msg and "(tried 3 times)" in err.value.msg
    with pytest.raises(ProviderError) as err:
        http.request("POST", "/api/v1/vms", json_body={})
    assert dropping.accepted == 4
    assert "tried" not in err.value.msg


def test_refused_connection_is_retried_for_get_but_not_for_post(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing answers a refused connection, so count connection attempts on our side.
    attempts: list[tuple[str, int]] = []
    real = urllib3_connection.create_connection

    def counting(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3_connection, "create_connection", counting)
    http = HttpClient(
        f"http://{LOOPBACK}:{closed_port}",
        service="provider",
        error_class=ProviderError,
        retries=2,
        backoff_factor=0.01,
        backoff_jitter=0.01,
        timeout=5,
    )
    with pytest.raises(ProviderError):
        http.get("/api/v1/vms/web-1")
    assert len(attempts) == 3
    with pytest.raises(ProviderError) as err:
        http.request("POST", "/api/v1/vms", json_body={})
    assert len(attempts) == 4
    assert "connection refused" in err.value.msg and "tried" not in err.value.msg


# --- transport errors ---------------------------------------------------------------------------


def test_connection_refused_names_url_cause_and_what_to_check(closed_port: int) -> None:
    discovery = DiscoveryClient(
        f"http://{LOOPBACK}:{closed_port}", retries=2, backoff_factor=0.01, backoff_jitter=0.01, timeout=5
    )
    with pytest.raises(DiscoveryError) as err:
        discovery.list_advertisements()
    url = f"http://{LOOPBACK}:{closed_port}{ADS}"
    assert err.value.msg == (
        f"discovery request GET {url} failed: connection refused by {LOOPBACK}:{closed_port}: nothing listens there "
        "(tried 3 times); check discovery_url and that the discovery service is up"
    )
    assert err.value.failure() == {"kind": "discovery", "url": url, "method": "GET"}


def test_timeout_is_reported_in_seconds(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return json_response([])

    httpserver.expect_request(ADS).respond_with_handler(slow)
    with pytest.raises(DiscoveryError) as err:
        client(httpserver, retries=0, timeout=0.3).get(ADS)
    url = base(httpserver) + ADS
    assert err.value.msg == (
        f"discovery request GET {url} failed: {LOOPBACK}:{httpserver.port} did not answer within 0.3 s (timeout)"
    )


def test_non_json_body_is_an_error_that_quotes_the_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_data("<html>captive portal</html>", content_type="text/html")
    with pytest.raises(DiscoveryError) as err:
        client(httpserver).get(ADS)
    assert "HTTP 200 answer is not JSON (text/html) (tried 3 times)" in err.value.msg
    assert f"is {base(httpserver)} really a VM on Golem discovery?" in err.value.msg
    assert err.value.response == "<html>captive portal</html>"


def test_invalid_scheme_is_reported_without_retry_claims() -> None:
    http = HttpClient("gopher://example.invalid", service="discovery", error_class=DiscoveryError)
    with pytest.raises(DiscoveryError) as err:
        http.get(ADS)
    assert "the URL is not valid" in err.value.msg and "tried" not in err.value.msg


# --- DiscoveryClient ----------------------------------------------------------------------------


def test_discovery_sends_filters_as_query_params(httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS, query_string="country=DE").respond_with_json(
        fixture_json("discovery_list_country_de.json")
    )
    ads = DiscoveryClient(base(httpserver)).list_advertisements(country="DE")
    assert [a.country for a in ads] == ["DE"]


def test_malformed_advertisement_is_reported_and_skipped(httpserver: HTTPServer, fixture_json: Load) -> None:
    body = fixture_json("discovery_list.json")
    body.insert(1, dict(body[0], provider_id="0xbad", resources={"cpu": "abc", "memory": 1, "storage": 10}))
    body.append("not an ad")
    httpserver.expect_request(ADS).respond_with_json(body)
    skipped: list[tuple[str | None, ValidationError]] = []
    ads = DiscoveryClient(base(httpserver)).list_advertisements(on_invalid=lambda pid, exc: skipped.append((pid, exc)))
    assert len(ads) == 3
    assert [pid for pid, _exc in skipped] == ["0xbad", None]
    assert skipped[0][1].field == "resources.cpu"


def test_malformed_advertisement_raises_without_a_handler(httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_json([{"provider_id": "0xbad"}])
    with pytest.raises(ValidationError) as err:
        DiscoveryClient(base(httpserver)).list_advertisements()
    assert err.value.msg.startswith(f"discovery {base(httpserver)} answered GET /api/v1/advertisements with an advertisement without the required field")


def test_a_list_answer_that_is_not_a_list_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(ADS).respond_with_json({"providers": []})
    with pytest.raises(DiscoveryError) as err:
        DiscoveryClient(base(httpserver)).list_advertisements()
    assert "with dict, not a list of advertisements" in err.value.msg


def test_get_advertisement_found_and_missing(httpserver: HTTPServer, fixture_json: Load) -> None:
    pid = "0x7d4c2a9e5b1f3d8c6a0e2b4f7c9d1a3e5b8f0c2d"
    httpserver.expect_request(f"{ADS}/{pid}").respond_with_json(fixture_json("discovery_one.json"))
    httpserver.expect_request(f"{ADS}/0xgone").respond_with_json(fixture_json("discovery_one_404.json"), status=404)
    discovery = DiscoveryClient(base(httpserver))
    found = discovery.get_advertisement(pid)
    assert found is not None and found.country == "DE"
    assert discovery.get_advertisement("0xgone") is None


def test_real_400_from_discovery_is_explained(httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request(ADS).respond_with_json(fixture_json("discovery_list_400_adv002.json"), status=400)
    with pytest.raises(DiscoveryError) as err:
        DiscoveryClient(base(httpserver)).list_advertisements(cpu=0)
    assert err.value.msg == (
        f"discovery request GET {base(httpserver)}{ADS}?cpu=0 failed: HTTP 400 BAD REQUEST: "
        "Resource requirements must be >= 1 (ADV_002)"
    )
    assert err.value.status == 400


# --- ProviderClient -----------------------------------------------------------------------------


@pytest.fixture
def provider(httpserver: HTTPServer) -> ProviderClient:
    return ProviderClient(LOOPBACK, httpserver.port, retries=1, backoff_factor=0.01)


def test_create_posts_async_with_resources(
    httpserver: HTTPServer, provider: ProviderClient, fixture_json: Load
) -> None:
    script = Script(json_response(fixture_json("provider_create_async_202_from_reference.json"), 202))
    httpserver.expect_request("/api/v1/vms", method="POST", query_string="async=true").respond_with_handler(script)
    job = provider.create_vm(
        build_create_request(name="web-1", resources={"cpu": 1, "memory": 1, "storage": 10}, ssh_key=ED25519)
    )
    assert job.job_id == "5b0c8a56-2f0e-4f7a-9d43-1c2b3a4d5e6f" and job.vm_id == "web-1"
    sent = json.loads(script.requests[0].data)
    assert sent["resources"] == {"cpu": 1, "memory": 1, "storage": 10}
    assert sent["name"] == "web-1" and sent["image"] == "24.04"


def test_access_pending_then_ready(httpserver: HTTPServer, provider: ProviderClient, fixture_json: Load) -> None:
    script = Script(
        json_response(fixture_json("provider_access_pending_202_from_reference.json"), 202),
        json_response(fixture_json("provider_access_from_reference.json")),
    )
    httpserver.expect_request("/api/v1/vms/web-1/access").respond_with_handler(script)
    assert provider.get_access("web-1").ssh_port is None
    ready = provider.get_access("web-1")
    assert (ready.ssh_host, ready.ssh_port) == ("127.0.0.1", 50800)


def test_get_vm_missing(httpserver: HTTPServer, provider: ProviderClient, fixture_json: Load) -> None:
    httpserver.expect_request("/api/v1/vms/web-9").respond_with_json(
        fixture_json("provider_vm_404_message_from_reference.json"), status=404
    )
    assert provider.get_vm("web-9", missing_ok=True) is None
    with pytest.raises(ProviderError) as err:
        provider.get_vm("web-9")
    assert err.value.status == 404
    assert err.value.msg.endswith("HTTP 404 NOT FOUND: VM web-9 not found")
    assert f"provider request GET http://{LOOPBACK}:{httpserver.port}/api/v1/vms/web-9" in err.value.msg


@pytest.mark.parametrize(("answer", "shown"), [
    (Response("", status=404), "HTTP 404 answer has no JSON error body"),
    (Response("<html><h1>Not Found</h1></html>", status=404, content_type="text/html"), "has no JSON error body"),
    (json_response(["not", "an", "error"], status=404), "has no JSON error body"),
    (Response("<html>login</html>", status=200, content_type="text/html"), "HTTP 200 answer is not JSON"),
    (Response("", status=302, headers={"Location": "http://portal.example/login"}),
     "redirect to 'http://portal.example/login'"),
])
def test_answers_no_provider_gives_are_identity_errors(
        httpserver: HTTPServer, provider: ProviderClient, answer: Response, shown: str) -> None:
    # What a captive portal, a web server or a proxy on a reused address sends: never "VM gone".
    httpserver.expect_request("/api/v1/vms/web-9").respond_with_response(answer)
    with pytest.raises(IdentityError) as err:
        provider.get_vm("web-9", missing_ok=True)
    assert shown in err.value.msg and err.value.kind == "identity"
    assert f"is http://{LOOPBACK}:{httpserver.port} really a VM on Golem provider?" in err.value.msg
    # The redirect was not followed: only our one request reached the server.
    assert all(req.path == "/api/v1/vms/web-9" for req, _resp in httpserver.log)


def test_provider_info_of_an_mvp_provider_is_none(httpserver: HTTPServer, provider: ProviderClient) -> None:
    httpserver.expect_request("/api/v1/provider/info").respond_with_json({"detail": "Not Found"}, status=404)
    assert provider.provider_info() is None


def test_one_task_asks_each_provider_who_it_is_once(httpserver: HTTPServer, fixture_json: Load) -> None:
    httpserver.expect_request("/api/v1/provider/info").respond_with_json(
        fixture_json("provider_info_from_reference.json"))
    memo = ProviderInfoMemo()
    clients = [ProviderClient(LOOPBACK, httpserver.port, info_memo=memo, retries=0) for _client in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda c: c.provider_info(), clients))
    assert {a.country for a in answers} == {"SE"}
    assert len(httpserver.log) == 1, "eight clients of one task, one request"
    # Without a memo (another task), the provider is asked again.
    assert ProviderClient(LOOPBACK, httpserver.port, retries=0).provider_info().country == "SE"
    assert len(httpserver.log) == 2


def test_a_failed_provider_info_is_asked_again(httpserver: HTTPServer, fixture_json: Load) -> None:
    memo = ProviderInfoMemo()
    client = ProviderClient(LOOPBACK, httpserver.port, info_memo=memo, retries=0)
    httpserver.expect_oneshot_request("/api/v1/provider/info").respond_with_data("busy", status=503)
    with pytest.raises(ProviderError):
        client.provider_info()
    httpserver.expect_request("/api/v1/provider/info").respond_with_json(
        fixture_json("provider_info_from_reference.json"))
    assert client.provider_info().country == "SE"


def test_job_stop_delete_and_info(httpserver: HTTPServer, provider: ProviderClient, fixture_json: Load) -> None:
    httpserver.expect_request("/api/v1/vms/jobs/8e7d").respond_with_json(
        fixture_json("provider_job_failed_from_reference.json")
    )
    httpserver.expect_request("/api/v1/vms/web-1/stop", method="POST").respond_with_json(
        fixture_json("provider_vm_stopped_from_reference.json")
    )
    httpserver.expect_request("/api/v1/vms/web-1", method="DELETE").respond_with_json(None)
    httpserver.expect_request("/api/v1/provider/info").respond_with_json(
        fixture_json("provider_info_from_reference.json")
    )
    assert provider.get_job("8e7d").error == "Insufficient resources available on provider"
    assert provider.stop_vm("web-1").status is VMStatus.STOPPED
    assert provider.delete_vm("web-1") is None
    assert provider.provider_info().country == "SE"
    httpserver.check_assertions()


def test_provider_answer_of_wrong_shape_names_the_provider(httpserver: HTTPServer, provider: ProviderClient) -> None:
    httpserver.expect_request("/api/v1/vms/web-1").respond_with_json({"id": "web-1", "status": "Suspended"})
    with pytest.raises(ValidationError) as err:
        provider.get_vm("web-1")
    assert err.value.msg.startswith(f"provider http://{LOOPBACK}:{httpserver.port} answered GET /api/v1/vms/web-1 with a VM whose field 'status'")


def test_ids_cannot_add_path_segments(httpserver: HTTPServer, provider: ProviderClient, fixture_json: Load) -> None:
    script = Script(json_response(fixture_json("provider_job_ready_from_reference.json")))
    httpserver.expect_request(re.compile(r"^/api/v1/vms/jobs/.*")).respond_with_handler(script)
    provider.get_job("../admin")
    assert script.requests[0].environ["RAW_URI"] == "/api/v1/vms/jobs/..%2Fadmin"


# --- faults seen through the fault proxy --------------------------------------------------------


class TruncatingServer(AcceptLoop):
    """Answers 200 with a Content-Length of 100 bytes, sends 10 and closes; ``whole_after`` answers later are whole."""

    def __init__(self, whole_after: int = 1000) -> None:
        self.whole_after = whole_after
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        conn.recv(65536)
        if self.accepted > self.whole_after:
            body = b'{"job_id": "j1", "status": "ready"}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                         b'{"job_id":')
        conn.close()


def _truncating_client(server: TruncatingServer) -> HttpClient:
    return HttpClient(f"http://{LOOPBACK}:{server.port}", service="provider", error_class=ProviderError,
                      retries=2, backoff_factor=0.01, backoff_jitter=0.01, timeout=5)


def test_a_get_whose_answer_broke_off_is_sent_again() -> None:
    server = TruncatingServer(whole_after=1)
    try:
        assert _truncating_client(server).get("/api/v1/vms/jobs/j1") == {"job_id": "j1", "status": "ready"}
    finally:
        server.close()
    assert server.accepted == 2


def test_a_body_that_always_breaks_off_says_so_and_how_often_it_was_tried() -> None:
    server = TruncatingServer()
    try:
        with pytest.raises(ProviderError) as err:
            _truncating_client(server).get("/api/v1/vms/jobs/j1")
        assert server.accepted == 3
        assert f"the answer from {LOOPBACK}:{server.port} broke off before its end" in err.value.msg
        assert "(tried 3 times)" in err.value.msg
        # A POST whose answer broke off may have created something: it is never sent again.
        with pytest.raises(ProviderError) as err:
            _truncating_client(server).request("POST", "/api/v1/vms", json_body={})
        assert server.accepted == 4 and "tried" not in err.value.msg
    finally:
        server.close()


def test_a_get_answered_with_html_is_sent_again_but_a_post_is_not(httpserver: HTTPServer) -> None:
    page = Response("<html>502 Bad Gateway</html>", status=200, content_type="text/html")
    script = Script(page, json_response(["ok"]))
    httpserver.expect_request(ADS).respond_with_handler(script)
    assert client(httpserver).get(ADS) == ["ok"]
    assert len(script.requests) == 2
    posted = Script(page, json_response({"job_id": "j"}, 202))
    httpserver.expect_request("/api/v1/vms", method="POST").respond_with_handler(posted)
    with pytest.raises(DiscoveryError) as err:
        client(httpserver).request("POST", "/api/v1/vms", json_body={})
    assert len(posted.requests) == 1 and "is not JSON" in err.value.msg and "tried" not in err.value.msg


def test_a_timeout_names_the_time_the_request_really_had(httpserver: HTTPServer) -> None:
    # A create gets a longer timeout than the option; the message used to quote the option.
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return json_response({"job_id": "j"}, 202)

    httpserver.expect_request("/api/v1/vms", method="POST").respond_with_handler(slow)
    with pytest.raises(DiscoveryError) as err:
        client(httpserver, timeout=30).request("POST", "/api/v1/vms", json_body={}, timeout=0.4)
    assert "did not answer within 0.4 s (timeout)" in err.value.msg


def test_a_broken_answer_is_not_sent_again_past_the_task_budget() -> None:
    server = TruncatingServer(whole_after=1)
    try:
        http = HttpClient(f"http://{LOOPBACK}:{server.port}", service="provider", error_class=ProviderError,
                          retries=2, backoff_factor=5, backoff_jitter=0, timeout=5)
        http.deadline = Deadline(2)
        with pytest.raises(ProviderError) as err:
            http.get("/api/v1/vms/jobs/j1")
    finally:
        server.close()
    assert server.accepted == 1 and "broke off" in err.value.msg
