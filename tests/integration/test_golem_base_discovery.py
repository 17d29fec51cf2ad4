# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_provider_info on Golem Base (the default backend) beside the upstream CLI and central discovery.

SE and US advertise on both with upstream's own advertisers (provider 0.1.63); DE, of the MVP era, only
on central. The CLI 0.1.58 reads the same node with golem-base-sdk. Free resources follow VMs coming
and going, so comparisons wait until all the readers see the same adverts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .ansible_runner import Ansible
from .devnet_helpers import status, wait_until
from .fault_proxy import FaultProxy
from .golem_base_helpers import upstream_cli


def _info(ansible: Ansible, **args: Any) -> list[dict[str, Any]]:
    result = ansible.module("golem_provider_info", args)
    assert not result["failed"], result.get("msg")
    assert "[WARNING]" not in result["_stderr"], result["_stderr"]
    return result["providers"]


def _by_id(providers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["provider_id"]: p for p in providers}


def _cli(home: Path, *args: str) -> dict[str, dict[str, Any]]:
    listed = upstream_cli(home, "vm", "providers", "--json", *args)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return _by_id(json.loads(listed.stdout)["providers"])


def test_golem_base_lists_what_the_upstream_cli_lists_and_central_lists_for_them(ansible, providers, tmp_path):
    se, us, de = (providers[k]["provider_id"] for k in ("se", "us", "de"))

    def agree() -> Any:
        ours = _by_id(_info(ansible, size="small"))
        cli = _cli(tmp_path, "--cpu", "1", "--memory", "1", "--storage", "10")
        central = _by_id(_info(ansible, size="small", discovery_backend="central"))
        same = set(ours) == set(cli) and all(
            p["resources"] == cli[pid]["resources"] == central[pid]["resources"] for pid, p in ours.items())
        return (ours, cli, central) if same else None

    ours, cli, central = wait_until(agree, timeout=90, interval=2, what="Golem Base, the CLI and central to agree")
    assert set(ours) == {se, us} and de in central  # DE advertises only on central
    for pid, mine in ours.items():
        theirs = cli[pid]
        assert (mine["ip_address"], mine["country"], mine["platform"]) == (
            theirs["ip_address"], theirs["country"], theirs["platform"]) == (
            providers["se" if pid == se else "us"]["ip"], "SE" if pid == se else "US", "x86_64")
        assert mine["pricing"] == theirs["pricing"] and mine["estimate"] == theirs["estimate"], (mine, theirs)
        # The same advert through central: discovery 0.1.25 drops the platform; only central stamps adverts.
        assert mine["updated_at"] is None and central[pid]["updated_at"] is not None
        assert {**mine, "platform": None, "updated_at": None} == {**central[pid], "updated_at": None}


# golem_provider_info options -> the CLI's, where the CLI has them.
FILTERS: list[tuple[dict[str, Any], tuple[str, ...] | None]] = [
    ({"cpu": 4}, ("--cpu", "4")),
    ({"memory": 32}, ("--memory", "32")),
    ({"storage": 500}, ("--storage", "500")),
    ({"country": "SE"}, ("--country", "SE")),
    ({"country": "US", "cpu": 2, "memory": 2, "storage": 20},
     ("--country", "US", "--cpu", "2", "--memory", "2", "--storage", "20")),
    ({"cpu": 100000}, ("--cpu", "100000")),
    ({"size": "medium", "sort": "price"}, None),
    ({"sort": "price", "limit": 1}, None),
    ({"sort": "memory"}, None),
    ({"max_price_usd_month": 9.0}, None),
]


@pytest.mark.parametrize("options, cli_args", FILTERS, ids=[json.dumps(f[0]) for f in FILTERS])
def test_filters_give_the_same_answers_on_both_backends_and_in_the_cli(
        ansible, providers, tmp_path, options, cli_args):
    de = providers["de"]["provider_id"]

    def both() -> Any:
        on_chain = [p["provider_id"] for p in _info(ansible, **options)]
        central = [p["provider_id"] for p in _info(ansible, discovery_backend="central", **options) if p["provider_id"] != de]
        return (on_chain,) if on_chain == central else None  # a tuple: an empty answer is an answer

    [on_chain] = wait_until(both, timeout=60, interval=2, what=f"both backends to answer {options} alike")
    if cli_args is not None:
        assert sorted(on_chain) == sorted(_cli(tmp_path, *cli_args))
    if options.get("cpu") == 100000:
        assert on_chain == []
    else:
        assert on_chain, "a filter that matches nobody proves little"


def test_a_lookup_costs_two_requests_to_the_node(ansible, providers):
    # A plain proxy in front of the node counts what reaches it.
    with FaultProxy(status()["golem_base"]["rpc_url"].rsplit("/", 1)[0]) as proxy:
        listed = _info(ansible, golem_base_rpc_url=proxy.url + "/rpc")
        assert len(listed) >= 2
        assert [(e[0], e[1]) for e in proxy.requests()] == [("POST", "/rpc"), ("POST", "/rpc")]


def test_module_defaults_for_the_group_set_the_backend_once(ansible, providers, tmp_path):
    out = tmp_path / "found.json"
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/golem.vm.golem": {"discovery_backend": "central"}},
        "tasks": [
            {"golem.vm.golem_provider_info": {}, "register": "central"},
            {"golem.vm.golem_provider_info": {"discovery_backend": "golem_base"}, "register": "on_chain"},
            {"ansible.builtin.copy": {"dest": str(out), "mode": "0600",
                                      "content": "{{ {'central': central.providers, 'on_chain': on_chain.providers}"
                                                 " | to_json }}"}},
        ]}]))  # JSON is YAML
    run = ansible.playbook(play, "-i", "localhost,", "-c", "local")
    assert run.returncode == 0, run.stdout + run.stderr
    found = {k: {p["provider_id"] for p in v} for k, v in json.loads(out.read_text()).items()}
    de = providers["de"]["provider_id"]
    assert de in found["central"] and de not in found["on_chain"]
    assert providers["se"]["provider_id"] in found["on_chain"]
