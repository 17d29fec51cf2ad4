# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue #21 on the local network, with the collection as users install it: one module_defaults block drives every
module of the action group in one play; the inventory's top-level filters list what golem_vm_info lists; a bad value
in any GOLEM_REQUESTOR_* variable fails naming that variable."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .ansible_runner import BIN, Ansible
from .devnet_helpers import devnet_env, plain, status

# The variables that would otherwise set what the play's module_defaults must set: empty counts as unset.
UNSET = {name: "" for name in ("GOLEM_REQUESTOR_DB_PATH", "GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL",
                               "GOLEM_REQUESTOR_POLYGON_RPC_URL", "GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS",
                               "GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY")}

PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/golem.vm.golem:
      state_path: "{{ golem.state_path }}"
      known_hosts_path: "{{ golem.known_hosts_path }}"
      discovery_backend: golem-base
      golem_base_rpc_url: "{{ golem.golem_base_rpc_url }}"
      payments_rpc_url: "{{ golem.payments_rpc_url }}"
      stream_payment_address: "{{ golem.stream_payment_address }}"
      ethereum_private_key: "{{ golem.ethereum_private_key }}"
      max_fee_per_gas_gwei: 50
  tasks:
    - name: Providers in Sweden, the country given in lower case
      golem.vm.golem_provider_info:
        country: se
        payment_terms: false
      register: found
    - name: A VM there
      golem.vm.golem_vm:
        name: "{{ vm_name }}"
        country: se
        labels: {team: "{{ team }}"}
        wait: false
      register: made
    - name: Listed by country, in lower case too
      golem.vm.golem_vm_info:
        countries: [se]
        labels: {team: "{{ team }}"}
      register: listed
    - name: Its stream, read
      golem.vm.golem_stream:
        name: "{{ vm_name }}"
      register: stream
    - name: A fleet of none, which the group's defaults do not break either
      golem.vm.golem_fleet:
        name: "{{ fleet_name }}"
        count: 0
      register: fleet
    - name: Every module did its part
      ansible.builtin.assert:
        that:
          - found.providers | length > 0
          - found.providers | map(attribute='country') | unique == ['SE']
          - made.vm.country == 'SE'
          - listed.vms | map(attribute='name') | list == [vm_name]
          - stream.stream.stream_id == made.vm.stream_id
          - fleet.vms | length == 0
    - name: Gone
      golem.vm.golem_vm:
        name: "{{ vm_name }}"
        state: absent
"""


def _settings(ansible: Ansible) -> dict[str, str]:
    env = devnet_env()
    return {"state_path": str(ansible.state_path), "known_hosts_path": str(ansible.state_dir / "known_hosts"),
            "golem_base_rpc_url": status()["golem_base"]["rpc_url"],
            "payments_rpc_url": env["GOLEM_REQUESTOR_POLYGON_RPC_URL"],
            "stream_payment_address": env["GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS"],
            "ethereum_private_key": env["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"]}


def test_one_module_defaults_block_drives_every_module_in_one_play(ansible: Ansible, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY)
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"golem": _settings(ansible), "vm_name": f"grp-{tag}", "team": tag,
                                 "fleet_name": f"none-{tag}"}))
    try:
        proc = ansible.playbook(playbook, "-e", f"@{extra}", env=UNSET)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Unsupported parameters" not in proc.stdout
    finally:
        ansible.module("golem_vm", {"name": f"grp-{tag}", "state": "absent"})


@pytest.fixture
def two_labelled(ansible: Ansible, providers: dict[str, dict]) -> Iterator[tuple[str, dict[str, str]]]:
    """One VM on SE (role=web) and one on US (role=db), both labelled with this test's team."""
    team = uuid.uuid4().hex[:6]
    wanted = {f"web-{team}": ("se", "web"), f"db-{team}": ("us", "db")}
    try:
        for name, (key, role) in wanted.items():
            result = ansible.module("golem_vm", {"name": name, "provider_id": providers[key]["provider_id"],
                                                 "labels": {"team": team, "role": role}, "wait": False})
            assert not result["failed"], result.get("msg")
        yield team, {name: key for name, (key, _role) in wanted.items()}
    finally:
        for name in wanted:
            ansible.module("golem_vm", {"name": name, "state": "absent"})


def _inventory(ansible: Ansible, directory: Path, **options: Any) -> list[str]:
    directory.mkdir(parents=True)
    config = directory / "golem.yml"
    config.write_text(json.dumps({"plugin": "golem.vm.golem", **options}))
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list"], env=ansible.env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
    return sorted(plain(json.loads(proc.stdout))["_meta"]["hostvars"])


def test_the_inventorys_top_level_filters_list_what_golem_vm_info_lists(
        ansible: Ansible, two_labelled: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    team, where = two_labelled
    cases = [{"labels": {"team": team}},
             {"labels": {"team": team}, "countries": ["se"]},
             {"labels": {"team": team, "role": "db"}},
             {"labels": {"team": team}, "countries": ["US"], "statuses": ["running"]},
             {"labels": {"team": team}, "statuses": ["stopped"]}]
    for i, filters in enumerate(cases):
        info = ansible.module("golem_vm_info", filters)
        assert not info["failed"], info.get("msg")
        listed = sorted(vm["name"] for vm in info["vms"])
        assert _inventory(ansible, tmp_path / f"inv-{i}", **filters) == listed, filters
    assert sorted(where) == _inventory(ansible, tmp_path / "all", labels={"team": team})


# Each variable with a bad value, the module that reads it, and its arguments (check mode: nothing is created).
BAD_VARIABLES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("GOLEM_REQUESTOR_DISCOVERY_URL", "discovery:9001", "golem_provider_info", {}),
    ("GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL", "ws://node/rpc", "golem_provider_info", {}),
    ("GOLEM_REQUESTOR_DISCOVERY_DRIVER", "ipfs", "golem_provider_info", {}),
    ("GOLEM_REQUESTOR_NETWORK", "holesky", "golem_provider_info", {}),
    ("GOLEM_REQUESTOR_PAYMENTS_NETWORK", "l2 holesky", "golem_provider_info", {}),
    ("GOLEM_REQUESTOR_PROVIDER_PORT", "seven", "golem_provider_info", {}),
    ("GOLEM_REQUESTOR_TIMEOUT", "soon", "golem_provider_info", {}),
    ("GOLEM_REQUESTOR_VALIDATE_CERTS", "maybe", "golem_provider_info", {}),
    ("GOLEM_REQUESTOR_DB_PATH", "/", "golem_vm_info", {}),
    ("GOLEM_REQUESTOR_STATE_URL", "mysql://golem@db/golem", "golem_vm_info", {"state_path": None}),
    ("GOLEM_REQUESTOR_KNOWN_HOSTS_PATH", "/", "golem_vm_info", {}),
    ("GOLEM_REQUESTOR_POLYGON_RPC_URL", "ws://chain", "golem_vm_info", {}),
    ("GOLEM_REQUESTOR_L2_RPC_URL", "ws://chain", "golem_vm_info", {"_unset": "GOLEM_REQUESTOR_POLYGON_RPC_URL"}),
    ("GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS", "0x12", "golem_vm_info", {}),
    ("GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY", "0x" + "zz" * 32, "golem_vm", {"name": "never-made", "_check": True}),
    ("GOLEM_REQUESTOR_MAX_GLM_PER_MONTH", "-1", "golem_vm", {"name": "never-made", "_check": True}),
    ("GOLEM_REQUESTOR_MAX_FEE_PER_GAS_GWEI", "lots", "golem_vm", {"name": "never-made", "_check": True}),
]


@pytest.mark.parametrize(("variable", "value", "module", "args"), BAD_VARIABLES, ids=[c[0] for c in BAD_VARIABLES])
def test_a_bad_variable_is_named(ansible: Ansible, variable: str, value: str, module: str,
                                 args: dict[str, Any]) -> None:
    args = dict(args)
    env = {variable: value}
    if "_unset" in args:
        env[args.pop("_unset")] = ""
    check = bool(args.pop("_check", False))
    if args.pop("state_path", "keep") is None:
        env["GOLEM_REQUESTOR_DB_PATH"] = ""
    result = ansible.module(module, args, check=check, env=env)
    assert result["failed"] and variable in result["msg"], result.get("msg")
    assert "Traceback" not in result["_stdout"] + result["_stderr"]
    if "KEY" in variable:
        assert "zz" * 32 not in result["_stdout"] + result["_stderr"]
    assert not ansible.state_path.exists() or "never-made" not in ansible.state_path.read_bytes().decode(
        "utf-8", "replace")
