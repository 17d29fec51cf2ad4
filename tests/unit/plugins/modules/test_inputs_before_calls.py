# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a create needs is checked before discovery or any provider is asked, so their errors cannot hide it:
a key that cannot be used (here passphrase-protected, given as a lone private key as an AWX credential gives
it) and, with an account to pay from, the chain libraries. The stand-in discovery answers every request with
an error, so a request made first would show as that error instead; none may be made at all."""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.vm import want as vm_want

ADS = "/api/v1/advertisements"
ACCOUNT = "0x" + "11" * 32


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY", "GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH",
                 "GOLEM_REQUESTOR_DB_PATH", "GOLEM_REQUESTOR_STATE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def broken_discovery(httpserver: HTTPServer) -> str:
    httpserver.expect_request(ADS).respond_with_json({"detail": "discovery is down"}, status=500)
    return httpserver.url_for("").rstrip("/")


def locked_key(tmp_path: Path) -> Path:
    key = tmp_path / "keys" / "locked"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(key)], check=True)
    key.with_suffix(".pub").unlink()  # only the private key, as an AWX credential injects it
    return key


def run(module: str, args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    main = importlib.import_module(f"ansible_collections.golem.vm.plugins.modules.{module}").main
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)


def common(tmp_path: Path, discovery: str, name_args: dict[str, Any]) -> dict[str, Any]:
    return {**name_args, "discovery_backend": "central", "discovery_url": discovery,
            "state_path": str(tmp_path / "requestor" / "vms.db")}


CREATES = [("golem_vm", {"name": "web-1"}), ("golem_fleet", {"name": "web", "count": 2})]


@pytest.mark.parametrize("module, name_args", CREATES)
def test_a_passphrase_protected_key_is_named_before_discovery_is_asked(
        module: str, name_args: dict[str, Any], tmp_path: Path, broken_discovery: str, httpserver: HTTPServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    key = locked_key(tmp_path)
    result = run(module, {**common(tmp_path, broken_discovery, name_args), "ssh_private_key_path": str(key)}, capsys)
    assert result["failed"] is True, result
    assert "passphrase-protected" in result["msg"] and str(key) in result["msg"], result["msg"]
    assert result["failure"]["field"] == "ssh_private_key_path"
    assert "discovery is down" not in result["msg"] and httpserver.log == []


@pytest.mark.parametrize("module, name_args", CREATES)
def test_missing_chain_libraries_are_named_before_discovery_is_asked(
        module: str, name_args: dict[str, Any], tmp_path: Path, broken_discovery: str, httpserver: HTTPServer,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    real = vm_want.find_spec
    monkeypatch.setattr(vm_want, "find_spec", lambda name: None if name == "eth_account" else real(name))
    result = run(module, {**common(tmp_path, broken_discovery, name_args), "ethereum_private_key": ACCOUNT}, capsys)
    assert result["failed"] is True, result
    assert "eth-account" in result["msg"] and "eth_account cannot be imported" in result["msg"], result["msg"]
    assert result["failure"]["kind"] == "missing_library" and httpserver.log == []
    # Still no default key pair: it is made only once discovery has answered.
    assert not (tmp_path / "requestor" / "ssh").exists()


@pytest.mark.parametrize("module, name_args", CREATES)
def test_with_usable_inputs_the_discovery_error_is_what_is_reported(
        module: str, name_args: dict[str, Any], tmp_path: Path, broken_discovery: str, httpserver: HTTPServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The checks add nothing to a run whose inputs are fine; and the default pair is still not made.
    result = run(module, common(tmp_path, broken_discovery, name_args), capsys)
    assert result["failed"] is True and "discovery is down" in result["msg"], result
    assert httpserver.log and not (tmp_path / "requestor" / "ssh").exists()


def test_no_library_is_asked_for_when_a_stream_is_given() -> None:
    class Paying:
        can_pay, given_stream = True, 7

    class Want:
        public_key, load_key = "ssh-ed25519 AAAA", None

    real = vm_want.find_spec
    try:
        vm_want.find_spec = lambda name: None  # type: ignore[assignment]
        vm_want.check_create_inputs(Want(), Paying())  # the given stream pays: nothing is signed
    finally:
        vm_want.find_spec = real


def test_a_given_private_key_is_read_once_and_kept_for_the_create() -> None:
    loads: list[bool] = []

    class Want:
        public_key, private_key_path = None, "/k/id"

        @staticmethod
        def load_key(generate: bool) -> vm_want.KeyInfo:
            loads.append(generate)
            return vm_want.KeyInfo("ssh-ed25519 AAAA", "SHA256:x", "/k/id")

    assert vm_want.check_create_inputs(Want()) == ("ssh-ed25519 AAAA", "SHA256:x", "/k/id")
    # Never generate=True here: that would make the default pair before discovery answered.
    assert loads == [False]


def test_the_default_key_pair_is_not_read_before_discovery() -> None:
    class Want:
        public_key = private_key_path = None

        @staticmethod
        def load_key(generate: bool) -> None:
            raise AssertionError("the default pair is read (or made) only after discovery")

    assert vm_want.check_create_inputs(Want()) is None
