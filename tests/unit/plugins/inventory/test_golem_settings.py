# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue #21 in the inventory: golem_vm_info's filter options and defaults at the top level, the same VMs
listed for the same filters, an unknown key refused with the valid ones, and ``filters`` deprecated but read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.utils.display import Display
# Fixtures, used by name. pylint: disable-next=unused-import
from test_golem import state  # noqa: F401
from test_golem_filters import labelled  # noqa: F401  pylint: disable=unused-import

from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.vm.filters import VMFilter
from ansible_collections.golem.vm.plugins.module_utils.vm.info import list_vms
from ansible_collections.golem.vm.plugins.modules.golem_vm_info import ARGUMENT_SPEC


def parse(tmp_path: Path, store: StateStore, options: dict[str, Any]) -> list[str]:
    """The hosts, from a golem.yml holding exactly ``options`` (no test default added)."""
    path = tmp_path / "golem.yml"
    path.write_text(yaml.safe_dump({"plugin": "golem.vm.golem", "state_path": store.path, **options}))
    data = InventoryData()
    inventory_loader.get("golem.vm.golem").parse(data, DataLoader(), str(path), cache=False)
    return sorted(data.hosts)


def info(store: StateStore, **filters: Any) -> list[str]:
    """What golem_vm_info lists for these filters (its defaults for the rest)."""
    defaults = {k: ARGUMENT_SPEC[k].get("default") for k in ("names", "providers", "countries", "statuses", "labels")}
    vm_filter = VMFilter.parse(**{**defaults, **filters})
    return sorted(vm["name"] for vm in list_vms(SQLiteStateStore(store.path), vm_filter, known_hosts_path=None))


@pytest.mark.parametrize("filters", [
    {},
    {"countries": ["se"]},
    {"labels": {"role": "web"}},
    {"countries": ["SE"], "labels": {"role": "web"}},
    {"labels": {"role": "web", "tier": 2}, "statuses": ["running"]},
    {"statuses": ["stopped"], "countries": ["se"]},
])
def test_the_top_level_filters_list_what_golem_vm_info_lists(tmp_path: Path, labelled: StateStore,  # noqa: F811
                                                            filters: dict[str, Any]) -> None:
    listed = parse(tmp_path, labelled, filters)
    assert listed == info(labelled, **filters)
    assert listed, "each case lists something, so the comparison means something"


def test_the_statuses_default_is_every_status_as_golem_vm_info_has_it(tmp_path: Path,
                                                                      labelled: StateStore) -> None:  # noqa: F811
    assert "web-3" in parse(tmp_path, labelled, {}), "a stopped VM is listed by default"
    assert parse(tmp_path, labelled, {"statuses": ["running"]}) == ["cli-1", "db-1", "web-1", "web-2"]


def test_an_unknown_key_fails_with_the_valid_ones(tmp_path: Path, labelled: StateStore) -> None:  # noqa: F811
    with pytest.raises(AnsibleParserError) as err:
        parse(tmp_path, labelled, {"country": ["SE"]})
    assert "unknown key country; valid keys: " in str(err.value)
    for key in ("countries", "labels", "names", "providers", "statuses", "keyed_groups", "state_path"):
        assert key in str(err.value).split("valid keys: ")[1]


@pytest.mark.parametrize("key", ["countries", "labels", "statuses", "providers"])
def test_a_filter_given_both_ways_is_refused(tmp_path: Path, labelled: StateStore, key: str) -> None:  # noqa: F811
    value = {"countries": ["SE"], "labels": {"role": "web"}, "statuses": ["running"], "providers": ["127.0.0.2"]}[key]
    with pytest.raises(AnsibleParserError, match=f"{key} and filters.{key} are both set; keep {key}"):
        parse(tmp_path, labelled, {key: value, "filters": {key: value}})


def test_filters_still_works_and_says_it_is_deprecated(tmp_path: Path, labelled: StateStore,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(Display, "deprecated", lambda self, msg, *a, **k: said.append(msg))
    old = parse(tmp_path, labelled, {"filters": {"countries": ["se"], "labels": {"role": "web"}}})
    assert old == parse(tmp_path, labelled, {"countries": ["se"], "labels": {"role": "web"}}) == ["web-1", "web-3"]
    assert len(said) == 1 and "filters is deprecated" in said[0]


@pytest.mark.parametrize(("variable", "value"), [("GOLEM_REQUESTOR_POLYGON_RPC_URL", "ws://chain"),
                                                 ("GOLEM_REQUESTOR_L2_RPC_URL", "ws://chain"),
                                                 ("GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS", "0x12")])
def test_a_bad_refresh_variable_is_named_by_it(tmp_path: Path, labelled: StateStore,  # noqa: F811
                                               monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(AnsibleParserError, match=f"{variable} \\(read for "):
        parse(tmp_path, labelled, {"refresh": True})
    monkeypatch.delenv(variable)
    option = "stream_payment_address" if "ADDRESS" in variable else "payments_rpc_url"
    with pytest.raises(AnsibleParserError, match=f": {option} '{value}'"):
        parse(tmp_path, labelled, {"refresh": True, option: value})
