# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The golem.vm.golem inventory plugin, in-process as ansible-inventory runs it, over state files from StateStore."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.utils.display import Display
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.foundation import http
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_hosts import HostBuilder
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_options import OptionValue
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_source import Query

# This suite's own loopback address: the team shares the machine, other suites use others.
LOOPBACK = "127.0.0.61"
PROVIDER_SE = "0x" + "1b" * 20
PROVIDER_US = "0x" + "7d" * 20
KEY = "/keys/golem_id_ed25519"


def vm(name: str, status: str = "running", *, ip: str = "127.0.0.2", port: int | None = 20001,
       **config: Any) -> VMRecord:
    """A row as golem_vm writes it."""
    base: dict[str, Any] = {
        "cpu": 1, "memory": 1, "storage": 10, "ssh_port": port, "provider_id": PROVIDER_SE, "provider_port": 7466,
        "country": "SE", "ssh_user": "root", "ssh_private_key_path": KEY, "ssh_public_key": "ssh-ed25519 AAAA test",
        "ssh_key_fingerprint": "SHA256:test", "image": "24.04", "size": "small", "ssh_host": ip,
    }
    base.update(config)
    return VMRecord(name=name, provider_ip=ip, vm_id=name, status=status,
                    config={k: v for k, v in base.items() if v is not None})


@dataclass
class Messages:
    warnings: list[str] = field(default_factory=list)
    verbose: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> Messages:
    seen = Messages()
    monkeypatch.setattr(Display, "warning", lambda self, msg, *a, **k: seen.warnings.append(str(msg)))
    monkeypatch.setattr(Display, "v", lambda self, msg, *a, **k: seen.verbose.append(str(msg)))
    # The manager turns a plugin's exception into this warning; the tests want to see it.
    monkeypatch.setattr(Display, "error_as_warning",
                        lambda self, msg, exception, *a, **k: seen.failures.append(exception))
    return seen


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    return StateStore(str(tmp_path / "requestor" / "vms.db"))


@pytest.fixture
def write_config(tmp_path: Path, state: StateStore) -> Callable[..., Path]:
    def write(options: dict[str, Any] | None = None, name: str = "golem.yml") -> Path:
        config = {"plugin": "golem.vm.golem", "state_path": state.path, **running_only(options or {})}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config))
        return path

    return write


def running_only(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` listing only running VMs unless they name statuses: these tests were written when that was
    the default (since issue #21 the default is every status, as golem_vm_info's; test_golem_settings checks it)."""
    filters = options.get("filters")
    if "statuses" in options or (isinstance(filters, dict) and "statuses" in filters) \
            or os.environ.get("GOLEM_INVENTORY_STATUSES"):
        return options
    return {"statuses": ["running"], **options}


@pytest.fixture
def inventory(write_config: Callable[..., Path], messages: Messages) -> Callable[..., InventoryManager]:
    """The inventory ansible-inventory would build from a golem.yml with these options; parse errors raise."""

    def build(options: dict[str, Any] | None = None, *, cache: bool = True,
              name: str = "golem.yml") -> InventoryManager:
        path = write_config(options, name)
        manager = InventoryManager(loader=DataLoader(), sources=[str(path)], cache=cache)
        if messages.failures:
            raise messages.failures[0]
        return manager

    return build


@pytest.fixture
def parse_direct(write_config: Callable[..., Path]) -> Callable[..., InventoryData]:
    """The plugin's parse() called directly, so its exceptions reach the test unchanged."""

    def parse(options: dict[str, Any] | None = None) -> InventoryData:
        plugin = inventory_loader.get("golem.vm.golem")
        data = InventoryData()
        plugin.parse(data, DataLoader(), str(write_config(options)), cache=False)
        return data

    return parse


def hostvars(manager: InventoryManager, host: str) -> dict[str, Any]:
    return dict(manager.get_host(host).get_vars())


def members(manager: InventoryManager, group: str) -> list[str]:
    return sorted(h.name for h in manager.groups[group].get_hosts())


@pytest.fixture
def provider() -> Iterator[HTTPServer]:
    """A stand-in provider API on this suite's loopback address."""
    server = HTTPServer(host=LOOPBACK, port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.fixture
def closed_port() -> int:
    """A port on LOOPBACK where connections are refused."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on LOOPBACK that accepts connections (into the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(64)
        yield sock.getsockname()[1]


Build = Callable[..., InventoryManager]
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
COLLECTION_ROOT = Path(__file__).resolve().parents[4]


def provider_vm(name: str, status: str) -> dict[str, Any]:
    # The reference shape of GET /api/v1/vms/NAME, renamed.
    body = json.loads((FIXTURES / f"provider_vm_{status}_from_reference.json").read_text())
    body.update(id=name, name=name)
    return body


@pytest.fixture
def fleet(state: StateStore) -> StateStore:
    """Two running VMs on two providers, one stopped, one creating without a port yet."""
    state.upsert(vm("web-1"))
    state.upsert(vm("web-2", ip="127.0.0.3", port=21001, provider_id=PROVIDER_US, country="US", size="medium",
                    cpu=2, memory=4, storage=20))
    state.upsert(vm("db-1", "stopped", port=20002))
    state.upsert(vm("new-1", "creating", port=None))
    return state


# --- hosts, hostvars, groups --------------------------------------------------------------


def test_running_vms_are_hosts_ready_to_connect(inventory: Build, fleet: StateStore, messages: Messages) -> None:
    inv = inventory()
    assert sorted(inv.hosts) == ["web-1", "web-2"]
    known_hosts = os.path.join(os.path.dirname(fleet.path), "known_hosts")
    web = hostvars(inv, "web-1")
    assert web["ansible_host"] == "127.0.0.2"
    assert web["ansible_port"] == 20001
    assert web["ansible_user"] == "root"
    assert web["ansible_ssh_private_key_file"] == KEY
    args = shlex.split(web["ansible_ssh_common_args"])
    assert f"UserKnownHostsFile={known_hosts}" in args and "StrictHostKeyChecking=yes" in args
    assert not any("StrictHostKeyChecking=no" in a for a in args)
    assert web["golem_name"] == "web-1" and web["golem_vm_id"] == "web-1"
    assert web["golem_provider_id"] == PROVIDER_SE and web["golem_provider_ip"] == "127.0.0.2"
    assert web["golem_provider_port"] == 7466
    assert web["golem_country"] == "SE" and web["golem_status"] == "running" and web["golem_size"] == "small"
    assert web["golem_resources"] == {"cpu": 1, "memory": 1, "storage": 10}
    assert web["golem_created_at"] and web["golem_updated_at"]
    assert web["golem_known_hosts_path"] == known_hosts
    assert web["golem_ssh_command"].startswith(f"ssh -i {KEY} -p 20001 ")
    assert web["golem_host_key_known"] is False
    assert hostvars(inv, "web-2")["golem_resources"] == {"cpu": 2, "memory": 4, "storage": 20}
    assert not messages.warnings, "a creating VM that is filtered out is not a bad row"


def test_host_keys_recorded_in_the_state_are_checked_strictly_without_a_known_hosts_file(
        inventory: Build, state: StateStore) -> None:
    # A VM another controller created (a PostgreSQL state): its key is in the row, not in this known_hosts.
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsArHYqp3DEoafCMRhr6m96DdPxz30Qa+D2zW7+sI/M"
    state.upsert(vm("web-1", host_keys=["ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", key, "garbage"]))
    web = hostvars(inventory(), "web-1")
    args = shlex.split(web["ansible_ssh_common_args"])
    assert f"KnownHostsCommand=/bin/echo [127.0.0.2]:20001 {key}" in args, args
    assert "UserKnownHostsFile=/dev/null" in args and "StrictHostKeyChecking=yes" in args
    assert web["golem_host_key_known"] is True


def test_groups_out_of_the_box(inventory: Build, fleet: StateStore) -> None:
    inv = inventory({"statuses": []})
    assert members(inv, "golem") == ["db-1", "web-1", "web-2"]
    assert members(inv, f"golem_provider_{PROVIDER_SE}") == ["db-1", "web-1"]
    assert members(inv, f"golem_provider_{PROVIDER_US}") == ["web-2"]
    assert members(inv, "golem_country_se") == ["db-1", "web-1"]
    assert members(inv, "golem_country_us") == ["web-2"]
    assert members(inv, "golem_status_running") == ["web-1", "web-2"]
    assert members(inv, "golem_status_stopped") == ["db-1"]
    children = sorted(g.name for g in inv.groups["golem"].child_groups)
    assert children == sorted(["golem_country_se", "golem_country_us", f"golem_provider_{PROVIDER_SE}",
                               f"golem_provider_{PROVIDER_US}", "golem_status_running", "golem_status_stopped"])
    assert "golem_unreachable" not in inv.groups, "only a refresh can say a provider is unreachable"


def test_provider_group_falls_back_to_the_sanitised_ip(inventory: Build, state: StateStore) -> None:
    state.upsert(vm("mvp-1", ip="127.0.0.4", provider_id=None))
    inv = inventory()
    assert members(inv, "golem_provider_127_0_0_4") == ["mvp-1"]
    assert hostvars(inv, "mvp-1")["golem_provider_id"] is None


def test_hostvars_are_plain_json(inventory: Build, fleet: StateStore, tmp_path: Path) -> None:
    inv = inventory({"statuses": []})
    for host in inv.hosts:
        variables = {k: v for k, v in hostvars(inv, host).items() if not k.startswith("inventory_")}
        assert json.loads(json.dumps(variables)) == variables
    builder = HostBuilder("golem_", str(tmp_path / "known_hosts"), None)
    entry = builder.build(fleet.get("web-1"))
    text = json.dumps(entry.hostvars, allow_nan=False)
    plain_types = (str, int, bool, type(None), dict, list)
    assert all(type(v) in plain_types for v in entry.hostvars.values()), text


def test_host_key_known_from_the_collections_known_hosts(inventory: Build, fleet: StateStore) -> None:
    known_hosts = Path(fleet.path).parent / "known_hosts"
    known_hosts.write_text("[127.0.0.2]:20001 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJlbmNo\n")
    inv = inventory()
    assert hostvars(inv, "web-1")["golem_host_key_known"] is True
    assert hostvars(inv, "web-2")["golem_host_key_known"] is False


def test_known_hosts_path_option_and_its_env(
        inventory: Build, fleet: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "elsewhere" / "known_hosts"
    inv = inventory({"known_hosts_path": str(custom)})
    assert f"UserKnownHostsFile={custom}" in hostvars(inv, "web-1")["ansible_ssh_common_args"]
    # The one variable golem_vm and golem_fleet read too, so keys are checked where they are recorded.
    monkeypatch.setenv("GOLEM_REQUESTOR_KNOWN_HOSTS_PATH", str(tmp_path / "env_known_hosts"))
    inv = inventory()
    assert hostvars(inv, "web-1")["golem_known_hosts_path"] == str(tmp_path / "env_known_hosts")
    # The old inventory-only variable agreeing with it is fine; pointing elsewhere is refused.
    monkeypatch.setenv("GOLEM_INVENTORY_KNOWN_HOSTS_PATH", str(tmp_path / "env_known_hosts"))
    assert hostvars(inventory(), "web-1")["golem_known_hosts_path"] == str(tmp_path / "env_known_hosts")
    monkeypatch.setenv("GOLEM_INVENTORY_KNOWN_HOSTS_PATH", str(tmp_path / "other"))
    with pytest.raises(AnsibleParserError, match="GOLEM_INVENTORY_KNOWN_HOSTS_PATH is no longer read"):
        inventory()


def test_state_path_from_the_same_variable_as_golem_vm(write_config: Callable[..., Path], fleet: StateStore,
                                                       monkeypatch: pytest.MonkeyPatch, messages: Messages) -> None:
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", fleet.path)
    path = write_config()
    path.write_text("plugin: golem.vm.golem\nstatuses: [running]\n")
    inv = InventoryManager(loader=DataLoader(), sources=[str(path)])
    assert not messages.failures
    assert sorted(inv.hosts) == ["web-1", "web-2"]


def test_empty_state_path_variable_means_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     messages: Messages) -> None:
    # As for golem_vm: GOLEM_REQUESTOR_DB_PATH="" is unset, so ~/.golem/requestor/vms.db (the CLI's), not the cwd.
    home = tmp_path / "home"
    StateStore(str(home / ".golem" / "requestor" / "vms.db")).upsert(vm("web-1"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", "")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "golem.yml"
    path.write_text("plugin: golem.vm.golem\nstatuses: [running]\n")
    inv = InventoryManager(loader=DataLoader(), sources=[str(path)])
    assert not messages.failures
    assert sorted(inv.hosts) == ["web-1"]


def test_one_key_for_every_host_from_the_credential_variable(inventory: Build, fleet: StateStore,
                                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # An AWX job's key file is new in every job: the recorded path is stale, the variable names this job's file.
    job_key = str(tmp_path / "job" / "tmpkey")
    monkeypatch.setenv("GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH", job_key)
    web = hostvars(inventory(), "web-1")
    assert web["ansible_ssh_private_key_file"] == job_key
    assert "IdentitiesOnly=yes" in web["ansible_ssh_common_args"]
    assert web["golem_ssh_private_key_path"] == KEY
    assert f"-i {job_key} " in web["golem_ssh_command"], "the line to paste uses the key connections use"
    monkeypatch.setenv("GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH", "")
    assert hostvars(inventory(), "web-1")["ansible_ssh_private_key_file"] == KEY


def test_hostvars_prefix(inventory: Build, fleet: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    web = hostvars(inventory({"hostvars_prefix": "vm_"}), "web-1")
    assert web["vm_status"] == "running" and "golem_status" not in web
    assert web["ansible_port"] == 20001, "connection variables never get the prefix"
    monkeypatch.setenv("GOLEM_INVENTORY_HOSTVARS_PREFIX", "env_")
    assert "env_status" in hostvars(inventory(), "web-1")


def test_no_key_recorded_means_no_key_file_and_no_identities_only(inventory: Build, state: StateStore) -> None:
    state.upsert(vm("agent-1", ssh_private_key_path=None, ssh_user="ubuntu"))
    web = hostvars(inventory(), "agent-1")
    assert "ansible_ssh_private_key_file" not in web
    assert web["ansible_user"] == "ubuntu"
    assert "IdentitiesOnly" not in web["ansible_ssh_common_args"]


# --- bad rows, missing files, wrong options -----------------------------------------------


def test_bad_rows_are_skipped_with_a_warning_naming_the_vm(
        inventory: Build, fleet: StateStore, messages: Messages) -> None:
    fleet.upsert(vm("broken-json"))
    fleet.upsert(vm("no-port", port=None))
    with sqlite3.connect(fleet.path) as conn:
        conn.execute("UPDATE vms SET config = '{oops' WHERE name = 'broken-json'")
    inv = inventory()
    assert sorted(inv.hosts) == ["web-1", "web-2"]
    assert len(messages.warnings) == 2
    assert any("broken-json" in w and "not valid JSON" in w for w in messages.warnings)
    assert any("no-port" in w and "no SSH port" in w for w in messages.warnings)


def test_missing_state_file_is_an_empty_inventory(inventory: Build, state: StateStore, messages: Messages) -> None:
    inv = inventory()
    assert not inv.hosts and "golem" in inv.groups
    assert any(state.path in m and "does not exist" in m for m in messages.verbose)
    assert not messages.warnings
    assert not os.path.exists(state.path), "reading must never create the state file"


def test_state_file_that_is_not_a_database_is_a_clear_parse_error(parse_direct: Callable[..., Any],
                                                                  state: StateStore) -> None:
    os.makedirs(os.path.dirname(state.path))
    Path(state.path).write_text("not sqlite at all, just text that is long enough to be read as a header")
    with pytest.raises(AnsibleParserError, match="not an SQLite database"):
        parse_direct()


@pytest.mark.parametrize("option, value, shown", [
    ("state_path", "TMP", "is a directory"),
    ("state_path", "TMP/notes.txt/vms.db", "TMP/notes.txt is a file, not a directory"),
    ("known_hosts_path", "TMP", "is a directory"),
    ("hostvars_prefix", "1-x", "cannot start a variable name"),
    ("hostvars_prefix", "golem-", "cannot start a variable name"),
])
def test_unusable_paths_and_prefix_fail_naming_the_option(
        parse_direct: Callable[..., Any], fleet: StateStore, tmp_path: Path, option: str, value: str,
        shown: str) -> None:
    """These used to give an empty inventory, or hosts whose variables no template can name."""
    (tmp_path / "notes.txt").write_text("notes\n")
    value = value.replace("TMP", str(tmp_path))
    before = Path(fleet.path).read_bytes()
    with pytest.raises(AnsibleParserError) as err:
        parse_direct({option: value})
    assert f"{option} {value!r}" in str(err.value) and shown.replace("TMP", str(tmp_path)) in str(err.value)
    assert Path(fleet.path).read_bytes() == before


def test_unknown_status_fails_instead_of_listing_nothing(parse_direct: Callable[..., Any], fleet: StateStore) -> None:
    with pytest.raises(AnsibleParserError, match="unknown status runing"):
        parse_direct({"statuses": ["runing"]})


@pytest.mark.parametrize("name", ["golem.yml", "golem.yaml", "prod.golem.yml", "prod_golem.yaml"])
def test_verify_file_accepts_golem_yml(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("plugin: golem.vm.golem\n")
    assert inventory_loader.get("golem.vm.golem").verify_file(str(tmp_path / name))


@pytest.mark.parametrize("name", ["hosts.yml", "golem.json", "golem.yml.bak", "missing.golem.yml"])
def test_verify_file_rejects_other_files(tmp_path: Path, name: str) -> None:
    if not name.startswith("missing"):
        (tmp_path / name).write_text("plugin: golem.vm.golem\n")
    assert not inventory_loader.get("golem.vm.golem").verify_file(str(tmp_path / name))


def test_short_plugin_name_when_enabled_by_full_name(
        inventory: Build, fleet: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(C, "INVENTORY_ENABLED", ["golem.vm.golem"])
    assert sorted(inventory({"plugin": "golem"}).hosts) == ["web-1", "web-2"]


def test_other_plugin_name_is_refused(parse_direct: Callable[..., Any], fleet: StateStore) -> None:
    with pytest.raises(AnsibleParserError, match="Incorrect plugin name"):
        parse_direct({"plugin": "hetzner.hcloud.hcloud"})


# --- filters --------------------------------------------------------------------------------


def test_statuses_filter_and_its_env(inventory: Build, fleet: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sorted(inventory({"statuses": ["stopped"]}).hosts) == ["db-1"]
    assert sorted(inventory({"statuses": ["running", "stopped"]}).hosts) == ["db-1", "web-1", "web-2"]
    monkeypatch.setenv("GOLEM_INVENTORY_STATUSES", "stopped,running")
    assert sorted(inventory().hosts) == ["db-1", "web-1", "web-2"]


def test_names_filter_exact_and_patterns(inventory: Build, fleet: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sorted(inventory({"names": ["web-2"]}).hosts) == ["web-2"]
    assert sorted(inventory({"names": ["web-*"]}).hosts) == ["web-1", "web-2"]
    assert sorted(inventory({"names": ["db-1", "web-?"], "statuses": []}).hosts) == ["db-1", "web-1", "web-2"]
    assert not inventory({"names": ["nothing"]}).hosts
    monkeypatch.setenv("GOLEM_INVENTORY_NAMES", "web-1")
    assert sorted(inventory().hosts) == ["web-1"]


def test_providers_filter_by_id_or_ip(inventory: Build, fleet: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sorted(inventory({"providers": [PROVIDER_US]}).hosts) == ["web-2"]
    assert sorted(inventory({"providers": ["127.0.0.2"]}).hosts) == ["web-1"]
    monkeypatch.setenv("GOLEM_INVENTORY_PROVIDERS", f"{PROVIDER_SE},{PROVIDER_US}")
    assert sorted(inventory().hosts) == ["web-1", "web-2"]


# --- hostname template, constructed ---------------------------------------------------------


def test_hostname_template(inventory: Build, fleet: StateStore) -> None:
    inv = inventory({"hostname": "{{ golem_country | lower }}-{{ golem_name }}"})
    assert sorted(inv.hosts) == ["se-web-1", "us-web-2"]
    assert members(inv, "golem_country_us") == ["us-web-2"]
    assert hostvars(inv, "se-web-1")["golem_name"] == "web-1"


def test_hostname_template_from_the_environment_is_trusted(inventory: Build, fleet: StateStore,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Values from the environment carry no trust in ansible-core 2.19; the user's own setting still counts.
    monkeypatch.setenv("GOLEM_INVENTORY_HOSTNAME", "{{ golem_name }}.{{ golem_country | lower }}")
    assert sorted(inventory().hosts) == ["web-1.se", "web-2.us"]


def test_vm_data_is_never_evaluated_as_a_template(inventory: Build, state: StateStore) -> None:
    # (A login name of "{{ 6 * 7 }}" is no login name: such a row is no host at all; see the bad endpoint test.)
    # (Nor is a host name with spaces: templates without them here.)
    state.upsert(vm("sly-1", country="{{6*7}}", labels={"role": "{{ 'X' * 3 }}"}))
    inv = inventory({"hostname": "{{ golem_name }}-{{ golem_country }}",
                     "compose": {"role_copy": "golem_labels.role"}})
    assert list(inv.hosts) == ["sly-1-{{6*7}}"]
    host = hostvars(inv, "sly-1-{{6*7}}")
    assert host["golem_country"] == "{{6*7}}" and host["role_copy"] == "{{ 'X' * 3 }}"


def test_hostname_template_failure_warns_and_falls_back_unless_strict(
        inventory: Build, parse_direct: Callable[..., Any], fleet: StateStore, messages: Messages) -> None:
    inv = inventory({"hostname": "{{ golem_nope }}"})
    assert sorted(inv.hosts) == ["web-1", "web-2"]
    assert any("web-1" in w and "hostname template" in w for w in messages.warnings)
    with pytest.raises(AnsibleError, match="hostname template for VM web-1"):
        parse_direct({"hostname": "{{ golem_nope }}", "strict": True})


def test_duplicate_hostnames_keep_the_first_and_warn(inventory: Build, fleet: StateStore, messages: Messages) -> None:
    inv = inventory({"hostname": "{{ golem_status }}"})
    assert list(inv.hosts) == ["running"]
    assert hostvars(inv, "running")["golem_name"] == "web-1"
    assert any("web-2" in w and "already VM web-1" in w for w in messages.warnings)


def test_compose_groups_keyed_groups(inventory: Build, fleet: StateStore) -> None:
    inv = inventory({
        "statuses": [],
        "compose": {"ansible_python_interpreter": "'/usr/bin/python3'", "cores": "golem_resources.cpu"},
        "groups": {"big": "golem_resources.cpu >= 2", "sweden": "golem_country == 'SE'"},
        "keyed_groups": [{"key": "golem_size", "prefix": "size"}, {"key": "golem_image", "prefix": "image"}],
    })
    assert hostvars(inv, "web-2")["cores"] == 2
    assert hostvars(inv, "web-1")["ansible_python_interpreter"] == "/usr/bin/python3"
    assert members(inv, "big") == ["web-2"]
    assert members(inv, "sweden") == ["db-1", "web-1"]
    assert members(inv, "size_small") == ["db-1", "web-1"] and members(inv, "size_medium") == ["web-2"]
    assert members(inv, "image_24_04") == ["db-1", "web-1", "web-2"]


def test_strict_compose_errors_surface(parse_direct: Callable[..., Any], fleet: StateStore) -> None:
    with pytest.raises(AnsibleError, match="nope"):
        parse_direct({"compose": {"x": "nope.attr"}, "strict": True})


# --- cache ------------------------------------------------------------------------------------


def _cache_options(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"),
            "cache_timeout": 3600, **extra}


def _cache_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The one entry in the jsonfile cache, decoded (ansible-core 2.19 wraps it in a __payload__ string)."""
    (entry,) = (tmp_path / "cache").iterdir()
    data = json.loads(entry.read_text())
    if isinstance(data, dict) and "__payload__" in data:
        data = json.loads(data["__payload__"])
    return entry, data


def test_cache_round_trip_reapplies_constructed(inventory: Build, fleet: StateStore, tmp_path: Path) -> None:
    options = _cache_options(tmp_path, keyed_groups=[{"key": "golem_size", "prefix": "size"}],
                             compose={"cores": "golem_resources.cpu"})
    first = inventory(options)
    _entry, cached = _cache_file(tmp_path)
    assert cached["format"] == 1 and sorted(r["name"] for r in cached["rows"]) == ["web-1", "web-2"]
    assert all(set(r) >= {"name", "provider_ip", "vm_id", "status", "created_at", "config"} for r in cached["rows"])
    assert "hostvars" not in json.dumps(cached) and "size_small" not in json.dumps(cached), "only raw rows are cached"

    fleet.delete("web-2")  # the cache, not the file, answers the next run
    hit = inventory(options)
    assert sorted(hit.hosts) == ["web-1", "web-2"]
    for host in ("web-1", "web-2"):
        assert hostvars(hit, host) == hostvars(first, host)
    assert members(hit, "size_medium") == ["web-2"] and hostvars(hit, "web-2")["cores"] == 2

    # More keyed groups on a cache hit: populate runs again over the cached rows.
    hit2 = inventory({**options, "keyed_groups": [{"key": "golem_country", "prefix": "in"}]})
    assert members(hit2, "in_US") == ["web-2"]

    flushed = inventory(options, cache=False)  # --flush-cache
    assert sorted(flushed.hosts) == ["web-1"]
    assert [r["name"] for r in _cache_file(tmp_path)[1]["rows"]] == ["web-1"]


def test_cache_entry_for_other_filters_is_not_used(inventory: Build, fleet: StateStore, tmp_path: Path) -> None:
    inventory(_cache_options(tmp_path))
    assert sorted(inventory(_cache_options(tmp_path, statuses=["stopped"])).hosts) == ["db-1"]


def test_a_cache_hit_does_not_rewrite_the_entry(inventory: Build, fleet: StateStore, tmp_path: Path) -> None:
    inventory(_cache_options(tmp_path))
    entry = next((tmp_path / "cache").iterdir())
    before = entry.stat().st_mtime_ns
    time.sleep(0.02)
    inventory(_cache_options(tmp_path))
    assert entry.stat().st_mtime_ns == before, "rewriting on a hit would reset the cache's time-out"


def test_unusable_cache_entry_is_read_again(inventory: Build, fleet: StateStore, tmp_path: Path) -> None:
    inventory(_cache_options(tmp_path))
    entry, cached = _cache_file(tmp_path)
    entry.write_text(json.dumps({"format": 1, "query": cached["query"], "rows": [{"x": 1}]}))
    assert sorted(inventory(_cache_options(tmp_path)).hosts) == ["web-1", "web-2"]


def test_record_dict_round_trip(fleet: StateStore) -> None:
    for record in fleet.list():
        assert VMRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


# --- refresh ------------------------------------------------------------------------------------


def _on(server_port: int, name: str, status: str = "running", **config: Any) -> VMRecord:
    return vm(name, status, ip=LOOPBACK, provider_port=server_port, **config)


def test_refresh_reports_live_status_asking_one_vm_at_a_time(
        inventory: Build, state: StateStore, provider: HTTPServer, closed_port: int, messages: Messages) -> None:
    port = provider.port
    state.upsert(_on(port, "live-1"))
    state.upsert(_on(port, "now-stopped", port=20002))
    state.upsert(_on(port, "gone-1", port=20003))
    state.upsert(_on(port, "broken-1", port=20004))
    state.upsert(vm("far-1", ip=LOOPBACK, provider_port=closed_port, provider_id=PROVIDER_US, port=20005))
    provider.expect_request("/api/v1/vms/live-1", method="GET").respond_with_json(provider_vm("live-1", "running"))
    provider.expect_request("/api/v1/vms/now-stopped", method="GET").respond_with_json(
        provider_vm("now-stopped", "stopped"))
    provider.expect_request("/api/v1/vms/gone-1", method="GET").respond_with_json(
        {"message": "VM gone-1 not found"}, status=404)
    provider.expect_request("/api/v1/vms/broken-1", method="GET").respond_with_json(
        {"detail": "An unexpected error occurred"}, status=500)
    # gone-1's 404 counts only once the server proves it is the recorded provider.
    provider.expect_request("/api/v1/provider/info", method="GET").respond_with_json({"provider_id": PROVIDER_SE})

    inv = inventory({"refresh": True, "statuses": []})
    paths = sorted(req.path for req, _resp in provider.log)
    assert "/api/v1/vms" not in paths, "the list endpoint kills pending creates upstream"
    assert set(paths) == {f"/api/v1/vms/{n}" for n in ("live-1", "now-stopped", "gone-1", "broken-1")} | {
        "/api/v1/provider/info"}
    assert paths.count("/api/v1/provider/info") == 1
    assert all(req.method == "GET" for req, _resp in provider.log)

    live = hostvars(inv, "live-1")
    assert live["golem_status"] == "running" and live["golem_live_status"] == "running"
    assert live["golem_provider_reachable"] is True and live["golem_refresh_error"] is None
    stopped = hostvars(inv, "now-stopped")
    assert stopped["golem_status"] == "stopped" and stopped["golem_recorded_status"] == "running"
    assert members(inv, "golem_status_stopped") == ["now-stopped"]
    assert hostvars(inv, "gone-1")["golem_status"] == "missing"
    broken = hostvars(inv, "broken-1")
    assert broken["golem_status"] == "running" and broken["golem_provider_reachable"] is True
    assert "HTTP 500" in broken["golem_refresh_error"]
    far = hostvars(inv, "far-1")
    assert far["golem_provider_reachable"] is False and far["golem_status"] == "running"
    assert "connection refused" in far["golem_refresh_error"]
    assert members(inv, "golem_unreachable") == ["far-1"]
    assert any("unreachable" in m and str(closed_port) in m for m in messages.verbose)

    # The default statuses ([running]) then apply to the live status, the recorded one where none came.
    assert sorted(inventory({"refresh": True}).hosts) == ["broken-1", "far-1", "live-1"]


def test_refresh_never_reports_missing_on_the_word_of_something_else(
        inventory: Build, state: StateStore, provider: HTTPServer) -> None:
    # The recorded address now answers as a web server (404 with HTML) and as another provider.
    state.upsert(_on(provider.port, "html-1"))
    state.upsert(_on(provider.port, "other-1", port=20002))
    provider.expect_request("/api/v1/vms/html-1").respond_with_data(
        "<html>Not Found</html>", status=404, content_type="text/html")
    provider.expect_request("/api/v1/vms/other-1").respond_with_json({"detail": "VM other-1 not found"}, status=404)
    provider.expect_request("/api/v1/provider/info").respond_with_json({"provider_id": PROVIDER_US})
    inv = inventory({"refresh": True, "statuses": []})
    html, other = hostvars(inv, "html-1"), hostvars(inv, "other-1")
    for host in (html, other):
        assert host["golem_status"] == "running" and host["golem_live_status"] is None, "never 'missing'"
        assert host["golem_provider_reachable"] is False
    assert "has no JSON error body" in html["golem_refresh_error"]
    assert PROVIDER_US in other["golem_refresh_error"] and PROVIDER_SE in other["golem_refresh_error"]
    assert members(inv, "golem_unreachable") == ["html-1", "other-1"]
    assert "golem_status_missing" not in inv.groups


def test_refresh_warns_only_about_rows_the_filters_keep(inventory: Build, state: StateStore, provider: HTTPServer,
                                                        messages: Messages) -> None:
    state.upsert(_on(provider.port, "live-1"))
    state.upsert(_on(provider.port, "new-1", "creating", port=None))
    provider.expect_request("/api/v1/vms/live-1").respond_with_json(provider_vm("live-1", "running"))
    assert list(inventory({"refresh": True}).hosts) == ["live-1"]
    assert not messages.warnings, "a creating VM without a port yet is filtered out, not a bad row"
    assert [req.path for req, _resp in provider.log] == ["/api/v1/vms/live-1"], "a row without a port is not asked"


def test_refresh_never_puts_an_invalid_recorded_name_into_a_url(inventory: Build, state: StateStore,
                                                                provider: HTTPServer, messages: Messages) -> None:
    state.upsert(_on(provider.port, "live-1"))
    state.upsert(_on(provider.port, "../../admin", port=20002))
    provider.expect_request("/api/v1/vms/live-1").respond_with_json(provider_vm("live-1", "running"))
    inv = inventory({"refresh": True})
    assert [req.path for req, _resp in provider.log] == ["/api/v1/vms/live-1"]
    assert sorted(inv.hosts) == ["../../admin", "live-1"], "the row is still listed, with its recorded status"
    assert any("'../../admin'" in m and "not a valid VM name" in m for m in messages.verbose)


def test_an_unreachable_provider_never_empties_the_inventory(inventory: Build, state: StateStore,
                                                             closed_port: int) -> None:
    for i in range(5):
        state.upsert(vm(f"far-{i}", ip=LOOPBACK, provider_port=closed_port, port=20000 + i))
    inv = inventory({"refresh": True})
    assert sorted(inv.hosts) == [f"far-{i}" for i in range(5)]
    assert members(inv, "golem_unreachable") == sorted(inv.hosts)


BUDGET_OF_2_S = r"no answer within refresh_timeout \(2 s\)|did not answer within (2|1\.\d+) s \(timeout\)"


def test_refresh_keeps_to_its_time_budget(inventory: Build, state: StateStore, silent_port: int,
                                          provider: HTTPServer) -> None:
    for i in range(20):
        state.upsert(vm(f"slow-{i}", ip=LOOPBACK, provider_port=silent_port, port=20000 + i))
    state.upsert(_on(provider.port, "quick-1", port=20100))
    provider.expect_request("/api/v1/vms/quick-1").respond_with_json(provider_vm("quick-1", "running"))
    started = time.monotonic()
    inv = inventory({"refresh": True, "refresh_timeout": 2.0, "refresh_concurrency": 4})
    elapsed = time.monotonic() - started
    # The budget the user set is the one that ended the refresh (the default is 10 s): the budget's end or a
    # request's timeout cut to it, whichever came first; the cap only guards against a hang, far from the
    # budget, so a loaded machine cannot flip the verdict.
    for i in range(20):
        assert re.search(BUDGET_OF_2_S, hostvars(inv, f"slow-{i}")["golem_refresh_error"])
    assert elapsed < 60, f"refresh took {elapsed:.1f} s with a 2 s budget"
    assert len(inv.hosts) == 21
    assert members(inv, "golem_unreachable") == sorted(f"slow-{i}" for i in range(20))
    assert hostvars(inv, "quick-1")["golem_provider_reachable"] is True


def test_refresh_results_are_cached(inventory: Build, state: StateStore, provider: HTTPServer,
                                    tmp_path: Path) -> None:
    state.upsert(_on(provider.port, "live-1"))
    provider.expect_request("/api/v1/vms/live-1").respond_with_json(provider_vm("live-1", "stopped"))
    options = _cache_options(tmp_path, refresh=True, statuses=[])
    assert hostvars(inventory(options), "live-1")["golem_status"] == "stopped"
    calls = len(provider.log)
    assert hostvars(inventory(options), "live-1")["golem_status"] == "stopped"
    assert len(provider.log) == calls, "a cache hit asks no provider"


def test_refresh_without_requests_is_a_clear_error(parse_direct: Callable[..., Any], fleet: StateStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "HAS_REQUESTS", False)
    with pytest.raises(AnsibleParserError, match=r"the required Python library \(requests .*required to refresh.*"
                                                 r"requirements\.txt"):
        parse_direct({"refresh": True})


def test_listing_needs_neither_requests_nor_pydantic(tmp_path: Path, fleet: StateStore) -> None:
    """ansible-inventory in a process where importing requests, urllib3 or pydantic fails."""
    (tmp_path / "coll" / "ansible_collections" / "golem").mkdir(parents=True)
    (tmp_path / "coll" / "ansible_collections" / "golem" / "vm").symlink_to(COLLECTION_ROOT)
    config = tmp_path / "golem.yml"
    config.write_text(f"plugin: golem.vm.golem\nstate_path: {fleet.path}\nstatuses: [running]\n")
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('requests', 'urllib3', 'pydantic'):\n"
        "            raise ImportError(f'blocked {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from ansible.cli.inventory import InventoryCLI\n"
        "InventoryCLI.cli_executor(['ansible-inventory', '-i', sys.argv[1], '--list', '--output', sys.argv[2]])\n"
    )
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "coll"),
           "ANSIBLE_CONFIG": str(tmp_path / "none.cfg")}
    (tmp_path / "none.cfg").write_text("[defaults]\n")
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-c", script, str(config), str(out)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(json.loads(out.read_text())["_meta"]["hostvars"]) == ["web-1", "web-2"]
    config.write_text(f"plugin: golem.vm.golem\nstate_path: {fleet.path}\nrefresh: true\n")
    proc = subprocess.run([sys.executable, "-c", script, str(config), str(out)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert "Failed to import the required Python library" in proc.stderr and "required to refresh" in proc.stderr


@pytest.mark.parametrize("budget", [0, -1, float("nan"), float("inf")])
def test_query_rejects_a_budget_that_is_not_a_positive_number(budget: float) -> None:
    options = {"state_path": "/x/vms.db", "known_hosts_path": None, "statuses": ["running"], "names": [],
               "providers": [], "filters": {}, "refresh": True, "refresh_timeout": budget, "refresh_concurrency": 4}
    with pytest.raises(GolemError, match="refresh_timeout must be more than 0 seconds"):
        Query.from_options(lambda name: OptionValue(options.get(name), name, name in options))


@pytest.mark.parametrize(("config", "field"), [
    ({"ssh_host": '127.0.0.2\nMatch exec "touch /tmp/pwned"\nHost zz'}, "ssh_host"),
    ({"ssh_host": "-oProxyCommand=touch"}, "ssh_host"),
    ({"port": 70000}, "ssh_port"),
    ({"provider_port": 0}, "provider_port"),
    ({"ssh_user": "root\nHost *"}, "ssh_user"),
    ({"ssh_user": "{{ 6 * 7 }}"}, "ssh_user"),
    ({"ssh_private_key_path": "/k/id\nMatch exec id"}, "ssh_private_key_path"),
])
def test_a_row_with_a_bad_endpoint_is_never_an_ansible_host(
        inventory: Build, state: StateStore, messages: Messages, config: dict[str, Any], field: str) -> None:
    """A state row someone else wrote (a shared PostgreSQL state, a tampered file) is judged where it is read."""
    state.upsert(vm("good-1"))
    state.upsert(vm("bad-1", **config))
    inv = inventory({})
    assert sorted(inv.hosts) == ["good-1"]
    [warning] = [m for m in messages.warnings if "bad-1" in m]
    assert field in warning and "\n" not in warning


def test_a_row_whose_name_would_be_two_words_is_never_a_host(inventory: Build, state: StateStore,
                                                             messages: Messages) -> None:
    state.upsert(vm("good-1"))
    state.upsert(vm("web\n    ProxyCommand touch /tmp/pwned"))
    assert sorted(inventory({}).hosts) == ["good-1"]
    assert any("name" in m and "\n" not in m for m in messages.warnings)


def test_a_hostname_template_that_makes_two_words_falls_back_to_the_name(inventory: Build, state: StateStore,
                                                                         messages: Messages) -> None:
    state.upsert(vm("web-1", labels={"role": "web\nHost *\n  ProxyCommand touch /tmp/pwned"}))
    inv = inventory({"hostname": "{{ golem_name }}-{{ golem_labels.role }}"})
    assert list(inv.hosts) == ["web-1"]
    assert any("hostname template" in m and "one word" in m for m in messages.warnings)
