# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_provider_info meeting upstream's newer protocol (reference §8), end to end in-process: a WebSocket-only
discovery fails the task with the message and no traceback; a newer provider is listed with null terms and a
warning saying what it is. The clients' recognition itself: module_utils/test_newer_protocol.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.foundation.version import COLLECTION_VERSION
from ansible_collections.golem.vm.plugins.modules import golem_provider_info

ADS, INFO, WS = "/api/v1/advertisements", "/api/v1/provider/info", "/api/v1/discovery/requestors"
PROVIDER = "0x1b2e9b1f4c0d5a8e7f3a6c2d9e0b4a7c1f5d8e3a"
GLM = "0x" + "6" * 40
NOT_YET = f"golem.vm {COLLECTION_VERSION} does not support yet"
# What upstream's newer provider answers (ProviderInfoService): an ERC-20 token and a contract, both set.
NEWER_INFO = {"provider_id": PROVIDER, "stream_payment_address": "0x" + "5" * 40, "glm_token_address": GLM,
              "eth_token_address": GLM, "ip_address": "127.0.0.60", "endpoint_url": "https://127.0.0.60:7466"}


def test_golem_provider_info_fails_with_the_message_and_no_traceback(
        httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]) -> None:
    httpserver.expect_request(ADS).respond_with_data("404 page not found\n", status=404)
    httpserver.expect_request(WS).respond_with_data("Upgrade Required", status=426)
    args = {"discovery_backend": "central", "discovery_url": httpserver.url_for("").rstrip("/"),
            "payment_terms": False}
    with patch_module_args(args), pytest.raises(SystemExit):
        golem_provider_info.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True and NOT_YET in result["msg"]
    assert result["failure"]["kind"] == "unsupported" and "exception" not in result


def test_golem_provider_info_lists_a_newer_provider_with_null_terms_and_says_why(
        httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]) -> None:
    # Listing is not failed for one such provider: its terms are null and the warning says what it is.
    httpserver.expect_request(ADS).respond_with_json([
        {"provider_id": PROVIDER, "ip_address": "127.0.0.60", "country": "SE",
         "resources": {"cpu": 4, "memory": 8, "storage": 80}}])
    httpserver.expect_request(INFO).respond_with_json(NEWER_INFO)
    args = {"discovery_backend": "central", "discovery_url": httpserver.url_for("").rstrip("/"),
            "provider_port": httpserver.port}
    with patch_module_args(args), pytest.raises(SystemExit):
        golem_provider_info.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed") is not True and result["providers"][0]["payment_terms"] is None
    warnings = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    assert any(NOT_YET in w and GLM in w for w in warnings), warnings


def test_golem_vm_creates_nothing_on_a_newer_provider_and_says_what_to_do(
        httpserver: HTTPServer, capsys: pytest.CaptureFixture[str], tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
    from ansible_collections.golem.vm.plugins.modules import golem_vm

    monkeypatch.delenv("GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY", raising=False)
    httpserver.expect_request(ADS).respond_with_json([
        {"provider_id": PROVIDER, "ip_address": "127.0.0.60", "country": "SE",
         "resources": {"cpu": 4, "memory": 8, "storage": 80},
         "pricing": {"glm_per_core_month": 1.0, "glm_per_gb_ram_month": 1.0, "glm_per_gb_storage_month": 0.1}}])
    httpserver.expect_request(INFO).respond_with_json(NEWER_INFO)
    # Whether the name is taken there is asked first (a 404 with its JSON body: it is not).
    not_found = {"detail": "VM not found"}
    httpserver.expect_request("/api/v1/vms/web-1", method="GET").respond_with_json(not_found, status=404)
    state = tmp_path / "vms.db"
    args = {"name": "web-1", "discovery_backend": "central", "discovery_url": httpserver.url_for("").rstrip("/"),
            "provider_port": httpserver.port, "state_path": str(state), "wait": False,
            "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFkq6ib9hU0KsdBPXHcbhsl6GbEQtwXZdSnxkQUz6CJ+"}
    with patch_module_args(args), pytest.raises(SystemExit):
        golem_vm.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True and NOT_YET in result["msg"] and GLM in result["msg"], result
    # Not pinned, so the next provider would have been tried: the failure sums up every provider's refusal.
    assert "provider of the 0.1.x network" in result["msg"] and "no provider could create VM web-1" in result["msg"]
    assert not any(req.method == "POST" for req, _resp in httpserver.log), "nothing was sent to create"
    assert StateStore(str(state)).get("web-1") is None
