# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the inventory's options come from: the file, the documented variables and defaults as Ansible reads
them, and for the settings the modules share, the modules' rule (an empty variable is not set)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

from ansible_collections.golem.vm.plugins.plugin_utils.inventory_source import Query, Snapshot

VARIABLES = ("GOLEM_REQUESTOR_DB_PATH", "GOLEM_REQUESTOR_STATE_URL", "GOLEM_REQUESTOR_KNOWN_HOSTS_PATH",
             "GOLEM_INVENTORY_KNOWN_HOSTS_PATH", "GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH",
             "GOLEM_REQUESTOR_DISCOVERY_URL", "GOLEM_REQUESTOR_POLYGON_RPC_URL", "GOLEM_REQUESTOR_L2_RPC_URL",
             "GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS")
URL = "postgresql://golem@db.example:5432/golem"
ADDRESS = "0x" + "ab" * 20


@pytest.fixture
def query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Query the plugin builds from a golem.yml holding ``options``; nothing is read."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    seen: list[Query] = []
    monkeypatch.setattr(Snapshot, "read", classmethod(lambda cls, q: seen.append(q) or cls([])))

    def build(**options: Any) -> Query:
        path = tmp_path / "golem.yml"
        path.write_text(yaml.safe_dump({"plugin": "golem.vm.golem", **options}))
        inventory_loader.get("golem.vm.golem").parse(InventoryData(), DataLoader(), str(path), cache=False)
        return seen[-1]

    return build


def test_the_documented_defaults(query: Any, tmp_path: Path) -> None:
    got = query(refresh=True)
    assert got.state_path == str(tmp_path / "home" / ".golem" / "requestor" / "vms.db")
    assert got.known_hosts_path == str(tmp_path / "home" / ".golem" / "requestor" / "known_hosts")
    assert got.private_key_path is None
    assert got.refresh_options.discovery_url == "http://195.201.39.101:9001"
    assert got.refresh_options.payments_rpc_url == "https://l2.holesky.golemdb.io/rpc"
    assert got.refresh_options.stream_payment_address is None


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_shared_variable_is_not_set(query: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             value: str) -> None:
    for name in VARIABLES:
        monkeypatch.setenv(name, value)
    got = query(refresh=True)
    assert got.state_path == str(tmp_path / "home" / ".golem" / "requestor" / "vms.db"), "not the current directory"
    assert got.state_url is None and got.private_key_path is None
    assert got.known_hosts_path == str(tmp_path / "home" / ".golem" / "requestor" / "known_hosts")
    assert got.refresh_options.discovery_url == "http://195.201.39.101:9001"
    assert got.refresh_options.payments_rpc_url == "https://l2.holesky.golemdb.io/rpc"
    assert got.refresh_options.stream_payment_address is None


def test_shared_variables_are_read_without_the_white_space_around(query: Any, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", f" {tmp_path}/vms.db ")
    monkeypatch.setenv("GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH", " ~/id ")
    monkeypatch.setenv("GOLEM_REQUESTOR_DISCOVERY_URL", " http://discovery.example:9001 ")
    got = query()
    assert got.state_path == f"{tmp_path}/vms.db" and got.known_hosts_path == f"{tmp_path}/known_hosts"
    assert got.private_key_path == str(tmp_path / "home" / "id")
    assert got.refresh_options.discovery_url == "http://discovery.example:9001"


def test_a_path_from_a_variable_is_made_as_the_modules_make_it(query: Any, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH", "$HOME/id")
    assert query().private_key_path == str(tmp_path / "$HOME" / "id"), "as settings.private_key_path reads it"


def test_an_empty_string_in_the_file_is_not_set_either(query: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_DISCOVERY_URL", "http://discovery.example:9001")
    assert query(discovery_url="").refresh_options.discovery_url == "http://discovery.example:9001"


@pytest.mark.parametrize(("polygon", "l2", "used"), [
    ("http://polygon.example", "http://l2.example", "http://polygon.example"),
    ("", "http://l2.example", "http://l2.example"),
    ("http://polygon.example", "", "http://polygon.example"),
    (None, "http://l2.example", "http://l2.example"),
])
def test_the_payments_rpc_variables_in_the_modules_order(query: Any, monkeypatch: pytest.MonkeyPatch,
                                                         polygon: str | None, l2: str, used: str) -> None:
    if polygon is not None:
        monkeypatch.setenv("GOLEM_REQUESTOR_POLYGON_RPC_URL", polygon)
    monkeypatch.setenv("GOLEM_REQUESTOR_L2_RPC_URL", l2)
    assert query(refresh=True).refresh_options.payments_rpc_url == used
    assert query(refresh=True, payments_rpc_url="http://file.example").refresh_options.payments_rpc_url == \
        "http://file.example"


def test_a_bad_value_of_the_other_payments_variable_names_it(query: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_POLYGON_RPC_URL", "")
    monkeypatch.setenv("GOLEM_REQUESTOR_L2_RPC_URL", "ws://chain")
    with pytest.raises(AnsibleParserError, match=r"GOLEM_REQUESTOR_L2_RPC_URL \(read for payments_rpc_url\)"):
        query(refresh=True)


def test_stream_payment_address_from_its_variable(query: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS", ADDRESS)
    assert query(refresh=True).refresh_options.stream_payment_address == ADDRESS


def test_a_state_url_from_the_file_or_its_variable(query: Any, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    requestor = tmp_path / "home" / ".golem" / "requestor"
    got = query(state_url=URL)
    assert got.state_url == URL and got.state_path == "" and got.location == "golem@db.example:5432/golem"
    assert got.known_hosts_path == str(requestor / "known_hosts"), "the upstream CLI's directory"
    # The file's URL wins over the variable's path; the file's path over the variable's URL.
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", str(tmp_path / "env.db"))
    got = query(state_url=URL)
    assert got.state_url == URL and got.known_hosts_path == str(requestor / "known_hosts")
    monkeypatch.delenv("GOLEM_REQUESTOR_DB_PATH")
    monkeypatch.setenv("GOLEM_REQUESTOR_STATE_URL", URL)
    assert query().state_url == URL
    got = query(state_path=str(tmp_path / "file.db"))
    assert got.state_url is None and got.state_path == str(tmp_path / "file.db")


def test_a_state_url_and_a_state_path_are_refused_together(query: Any, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    with pytest.raises(AnsibleParserError, match="state_url and state_path are mutually exclusive"):
        query(state_url=URL, state_path=str(tmp_path / "vms.db"))
    monkeypatch.setenv("GOLEM_REQUESTOR_STATE_URL", URL)
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", str(tmp_path / "vms.db"))
    with pytest.raises(AnsibleParserError,
                       match="GOLEM_REQUESTOR_STATE_URL and GOLEM_REQUESTOR_DB_PATH are both set"):
        query()


def test_a_bad_state_path_from_its_variable_is_named_by_it(query: Any, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", str(tmp_path))
    with pytest.raises(AnsibleParserError, match=f"GOLEM_REQUESTOR_DB_PATH {str(tmp_path)!r} is a directory"):
        query()
    monkeypatch.setenv("GOLEM_REQUESTOR_KNOWN_HOSTS_PATH", str(tmp_path))
    with pytest.raises(AnsibleParserError, match=f"GOLEM_REQUESTOR_KNOWN_HOSTS_PATH {str(tmp_path)!r} is a dir"):
        query(state_path=str(tmp_path / "vms.db"))


@pytest.mark.parametrize(("option", "value", "field"), [
    ("discovery_url", "http://discovery.example:9001", "discovery_url"),
    ("state_path", "~/elsewhere/vms.db", "state_path"),
    ("payments_rpc_url", "http://rpc.example", "payments_rpc_url"),
])
def test_the_documented_default_is_the_one_used(query: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                option: str, value: str, field: str) -> None:
    definition = inventory_loader.get("golem.vm.golem").option_definitions[option]
    monkeypatch.setitem(definition, "default", value)
    got = query(refresh=True)
    used = {"discovery_url": got.refresh_options.discovery_url, "state_path": got.state_path,
            "payments_rpc_url": got.refresh_options.payments_rpc_url}[field]
    assert used == os.path.expanduser(value)
