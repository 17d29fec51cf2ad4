# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""https is verified by default: a self-signed server is refused, naming the URL, until it is trusted."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback_servers import LOOPBACK, self_signed
from pytest_httpserver import HTTPServer
from werkzeug import Response

from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_discovery(certificate: tuple[Path, Path]) -> Iterator[HTTPServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = HTTPServer(host=LOOPBACK, port=0, ssl_context=context)
    server.start()
    server.expect_request("/api/v1/advertisements").respond_with_json([])
    yield server
    server.clear()
    server.stop()


def url_of(server: HTTPServer) -> str:
    return f"https://{LOOPBACK}:{server.port}"


def test_a_self_signed_server_is_refused_by_default_naming_the_url(
    https_discovery: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = DiscoveryClient(url_of(https_discovery), retries=0)
    with pytest.raises(DiscoveryError) as err:
        client.list_advertisements()
    msg = err.value.msg
    assert f"{url_of(https_discovery)}/api/v1/advertisements" in msg
    assert "TLS verification failed" in msg and "validate_certs=false" in msg
    assert https_discovery.log == [], "no request may be answered over an unverified connection"


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
@pytest.mark.parametrize("bundle_env", [None, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_validate_certs_false_accepts_it_whatever_the_environment_says(
    https_discovery: HTTPServer, monkeypatch: pytest.MonkeyPatch, bundle_env: str | None
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    if bundle_env:
        # requests lets these override a session's verify=False unless verify is given per request.
        monkeypatch.setenv(bundle_env, ssl.get_default_verify_paths().openssl_cafile)
    client = DiscoveryClient(url_of(https_discovery), validate_certs=False, retries=0)
    assert client.list_advertisements() == []


def test_a_ca_bundle_from_requests_ca_bundle_is_trusted_with_verification_on(
    https_discovery: HTTPServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    client = DiscoveryClient(url_of(https_discovery), retries=0)
    assert client.http.session.verify is True
    assert client.list_advertisements() == []


def test_a_redirect_from_https_to_plain_http_is_never_followed(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    secure, plain = HTTPServer(host=LOOPBACK, port=0, ssl_context=context), HTTPServer(host=LOOPBACK, port=0)
    secure.start()
    plain.start()
    try:
        plain.expect_request("/api/v1/advertisements").respond_with_json([{"provider_id": "0xforged"}])
        target = plain.url_for("/api/v1/advertisements")
        secure.expect_request("/api/v1/advertisements").respond_with_response(
            Response(b"", status=302, headers={"Location": target, "Content-Length": "0"}))
        with pytest.raises(DiscoveryError) as err:
            DiscoveryClient(url_of(secure), retries=0).list_advertisements()
        assert f"redirect to '{target}'" in err.value.msg and "https to plain http" in err.value.msg
        assert plain.log == [], "the request went on over plain http"
    finally:
        for server in (secure, plain):
            server.clear()
            server.stop()
