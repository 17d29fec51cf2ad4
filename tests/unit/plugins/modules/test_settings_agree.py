# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue #21 in the modules: the group's options accepted everywhere, golem-base and any-case country codes taken,
golem_state_copy reading GOLEM_REQUESTOR_STATE_URL, and a bad value from a variable named by that variable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.golem.vm.plugins.modules import (
    golem_provider_info,
    golem_state_copy,
    golem_stream,
    golem_vm,
    golem_vm_info,
)

KEY = "0x" + "ab" * 32
# What a play would put into module_defaults for group/golem.vm.golem: every shared option.
GROUP_DEFAULTS = {"state_path": "/nonexistent/golem/vms.db", "state_url": None, "known_hosts_path": "/tmp/kh",
                  "ethereum_private_key": KEY, "payments_rpc_url": "https://rpc.example/x", "payments_chain_id": 17000,
                  "stream_payment_address": "0x" + "12" * 20, "max_fee_per_gas_gwei": 5.0,
                  "discovery_backend": "golem-base"}


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., dict[str, Any]]:
    def run_module(module: Any, **args: Any) -> dict[str, Any]:
        with patch_module_args(args), pytest.raises(SystemExit):
            module.main()
        return json.loads(capsys.readouterr().out)

    return run_module


@pytest.fixture
def node(golem_base_node: Any) -> Any:
    for country in ("SE", "US"):
        golem_base_node.add(country, golem_base_node.recorded_advert(country))
    return golem_base_node


def test_provider_info_takes_the_whole_group_block_and_a_lower_case_country(run: Any, node: Any) -> None:
    result = run(golem_provider_info, golem_base_rpc_url=node.url, payment_terms=False, country="se",
                 **GROUP_DEFAULTS)
    assert not result.get("failed"), result["msg"]
    assert [p["country"] for p in result["providers"]] == ["SE"]
    assert KEY not in json.dumps(result)


def test_vm_info_takes_the_whole_group_block(run: Any, tmp_path: Path) -> None:
    result = run(golem_vm_info, **{**GROUP_DEFAULTS, "state_path": str(tmp_path / "vms.db")}, countries=["se"])
    assert not result.get("failed"), result["msg"]
    assert result["vms"] == []


def test_the_clis_spelling_of_the_backend_is_taken_from_the_option(run: Any, node: Any) -> None:
    result = run(golem_provider_info, golem_base_rpc_url=node.url, payment_terms=False, discovery_backend="golem-base")
    assert not result.get("failed"), result["msg"]
    assert len(result["providers"]) == 2 and node.queries


@pytest.mark.parametrize(("variable", "value", "args", "shown"), [
    ("GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL", "ftp://node", {}, "'ftp://node'"),
    ("GOLEM_REQUESTOR_DISCOVERY_URL", "node:9001", {}, "'node:9001'"),
    ("GOLEM_REQUESTOR_TIMEOUT", "soon", {}, "soon"),
    ("GOLEM_REQUESTOR_PROVIDER_PORT", "http", {}, "http"),
    ("GOLEM_REQUESTOR_VALIDATE_CERTS", "maybe", {}, "maybe"),
])
def test_a_bad_connection_variable_is_named(run: Any, monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
                                            args: dict[str, Any], shown: str) -> None:
    monkeypatch.setenv(variable, value)
    result = run(golem_provider_info, payment_terms=False, **args)
    assert result["failed"] and variable in result["msg"] and shown in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result)


def test_the_option_is_named_when_the_option_gave_the_bad_value(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL", "https://fine.example/rpc")
    result = run(golem_provider_info, golem_base_rpc_url="ftp://node", payment_terms=False)
    assert result["failed"] and result["msg"].startswith("golem_base_rpc_url 'ftp://node'"), result["msg"]
    assert "GOLEM_REQUESTOR" not in result["msg"] and result["failure"]["field"] == "golem_base_rpc_url"


@pytest.mark.parametrize("variable", ["GOLEM_REQUESTOR_POLYGON_RPC_URL", "GOLEM_REQUESTOR_L2_RPC_URL"])
def test_a_bad_payments_rpc_variable_is_named(run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              variable: str) -> None:
    monkeypatch.setenv(variable, "ws://node")
    result = run(golem_vm_info, state_path=str(tmp_path / "vms.db"))
    assert result["failed"] and result["msg"].startswith(f"{variable} (read for payments_rpc_url) 'ws://node'")
    assert result["failure"]["field"] == variable


def test_a_bad_key_variable_is_named_and_never_shown(run: Any, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    secret = "0x" + "zz" * 32
    monkeypatch.setenv("GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY", secret)
    result = run(golem_stream, stream_id=1, stream_payment_address="0x" + "12" * 20,
                 state_path=str(tmp_path / "vms.db"))
    assert result["failed"] and "GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY" in result["msg"], result["msg"]
    assert "zz" * 32 not in json.dumps(result)


def test_state_copy_reads_the_state_url_variable(run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_STATE_URL", "mysql://u:secret@db/golem")
    result = run(golem_state_copy, direction="to_sqlite", state_path=str(tmp_path / "vms.db"))
    assert result["failed"] and "GOLEM_REQUESTOR_STATE_URL must be a postgresql:// URL" in result["msg"], result
    assert "secret" not in json.dumps(result)
    monkeypatch.delenv("GOLEM_REQUESTOR_STATE_URL")
    result = run(golem_state_copy, direction="to_sqlite", state_path=str(tmp_path / "vms.db"))
    assert result["failed"] and result["msg"] == ("state_url is required: give it, or set "
                                                  "GOLEM_REQUESTOR_STATE_URL"), result["msg"]


# A provider pinned at a port nobody listens on: a check that came after asking it would fail otherwise.
NEVER_MADE = {"name": "never-made", "_ansible_check_mode": True, "provider_ip": "127.0.0.60", "provider_port": 1}
# Every GOLEM_REQUESTOR_* variable with a bad value, and a module that reads it.
BAD_VARIABLES: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("GOLEM_REQUESTOR_DISCOVERY_URL", "discovery:9001", golem_provider_info, {}),
    ("GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL", "ws://node/rpc", golem_provider_info, {}),
    ("GOLEM_REQUESTOR_DISCOVERY_DRIVER", "ipfs", golem_provider_info, {}),
    ("GOLEM_REQUESTOR_NETWORK", "holesky", golem_provider_info, {}),
    ("GOLEM_REQUESTOR_PAYMENTS_NETWORK", "l2 holesky", golem_provider_info, {}),
    ("GOLEM_REQUESTOR_PROVIDER_PORT", "seven", golem_provider_info, {}),
    ("GOLEM_REQUESTOR_TIMEOUT", "soon", golem_provider_info, {}),
    ("GOLEM_REQUESTOR_VALIDATE_CERTS", "maybe", golem_provider_info, {}),
    ("GOLEM_REQUESTOR_DB_PATH", "/", golem_vm_info, {}),
    ("GOLEM_REQUESTOR_STATE_URL", "mysql://golem@db/golem", golem_vm_info, {}),
    ("GOLEM_REQUESTOR_KNOWN_HOSTS_PATH", "/", golem_vm_info, {}),
    ("GOLEM_REQUESTOR_POLYGON_RPC_URL", "ws://chain", golem_vm_info, {}),
    ("GOLEM_REQUESTOR_L2_RPC_URL", "ws://chain", golem_vm_info, {}),
    ("GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS", "0x12", golem_vm_info, {}),
    ("GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY", "0x" + "zz" * 32, golem_vm, NEVER_MADE),
    ("GOLEM_REQUESTOR_MAX_GLM_PER_MONTH", "-1", golem_vm, NEVER_MADE),
    ("GOLEM_REQUESTOR_MAX_FEE_PER_GAS_GWEI", "lots", golem_vm, NEVER_MADE),
    ("GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH", "/nonexistent/key", golem_vm, NEVER_MADE),
]


@pytest.mark.parametrize(("variable", "value", "module", "args"), BAD_VARIABLES, ids=[c[0] for c in BAD_VARIABLES])
def test_every_variables_bad_value_is_named_by_it(run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  variable: str, value: str, module: Any, args: dict[str, Any]) -> None:
    if variable != "GOLEM_REQUESTOR_STATE_URL":
        monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", str(tmp_path / "vms.db"))
    monkeypatch.setenv(variable, value)
    result = run(module, **args)
    assert result["failed"] and variable in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result) and "zz" * 32 not in json.dumps(result)
    assert not (tmp_path / "vms.db").exists(), "nothing was recorded"
