# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory's ``filters`` (labels, countries, providers, statuses: golem_vm_info's rules), the
``golem_labels`` host variable in keyed groups, and the documented examples doing what they say."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from ansible.errors import AnsibleParserError
from pytest_httpserver import HTTPServer
# Fixtures, used by name. pylint: disable-next=unused-import
from test_golem import (  # noqa: F401
    LOOPBACK,
    PROVIDER_SE,
    PROVIDER_US,
    Build,
    Messages,
    _cache_options,
    hostvars,
    inventory,
    members,
    messages,
    parse_direct,
    provider,
    provider_vm,
    state,
    vm,
    write_config,
)

from ansible_collections.golem.vm.plugins.inventory import golem as golem_inventory
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore


@pytest.fixture
def labelled(state: StateStore) -> StateStore:  # noqa: F811 - the fixture of test_golem
    state.upsert(vm("web-1", labels={"role": "web", "tier": "1"}))
    state.upsert(vm("web-2", ip="127.0.0.3", port=21001, provider_id=PROVIDER_US, country="US",
                    labels={"role": "web", "tier": "2"}))
    state.upsert(vm("web-3", "stopped", port=20003, labels={"role": "web"}))
    state.upsert(vm("db-1", port=20002, labels={"role": "db"}))
    state.upsert(vm("cli-1", port=20004, provider_id=None, country=None))  # as the upstream CLI writes rows
    return state


def test_a_label_filter_and_keyed_groups_on_labels(inventory: Build, labelled: StateStore,  # noqa: F811
                                                   messages: Messages) -> None:  # noqa: F811
    inv = inventory({"labels": {"role": "web"},
                     "keyed_groups": [{"key": "golem_labels.tier", "prefix": "tier"},
                                      {"key": "golem_labels", "prefix": "label"}]})
    assert sorted(inv.hosts) == ["web-1", "web-2"], "running (the default statuses) and labelled role=web"
    assert hostvars(inv, "web-1")["golem_labels"] == {"role": "web", "tier": "1"}
    assert members(inv, "tier_1") == ["web-1"] and members(inv, "tier_2") == ["web-2"]
    assert members(inv, "label_role_web") == ["web-1", "web-2"]
    assert not messages.warnings

    every = inventory({"keyed_groups": [{"key": "golem_labels.role", "prefix": "role"}]})
    assert members(every, "role_web") == ["web-1", "web-2"] and members(every, "role_db") == ["db-1"]
    assert hostvars(every, "cli-1")["golem_labels"] == {}, "a VM without labels is in no role group, and listed"
    assert not messages.warnings


@pytest.mark.parametrize(("filters", "expected"), [
    ({"labels": {"role": "web", "tier": 2}}, ["web-2"]),
    ({"countries": ["se"]}, ["db-1", "web-1"]),
    ({"countries": ["SE"], "statuses": ["running", "stopped"]}, ["db-1", "web-1", "web-3"]),
    ({"statuses": []}, ["cli-1", "db-1", "web-1", "web-2", "web-3"]),
    ({"providers": [PROVIDER_US.upper().replace("0X", "0x")]}, ["web-2"]),
    ({"labels": {"role": "web"}, "statuses": ["stopped"]}, ["web-3"]),
])
def test_filters_keep_only_the_vms_matching_every_key(inventory: Build, labelled: StateStore,  # noqa: F811
                                                      filters: dict[str, Any], expected: list[str]) -> None:
    assert sorted(inventory({"filters": filters}).hosts) == expected


@pytest.mark.parametrize(("options", "text"), [
    ({"filters": {"country": ["SE"]}}, "filters has the unknown key country; known: labels, countries"),
    ({"filters": {"labels": "role=web"}}, "filters.labels must be a dictionary of names to text"),
    ({"filters": {"countries": ["Sweden"]}}, "filters.countries 'Sweden' must be a two-letter country code"),
    ({"filters": {"statuses": ["runing"]}}, "unknown status runing in filters.statuses"),
    ({"filters": {"providers": [{"id": 1}]}}, r"filters.providers\[0\] must be a provider id or IP address"),
    ({"statuses": ["running"], "filters": {"statuses": ["stopped"]}}, "statuses and filters.statuses are both set"),
    ({"providers": ["127.0.0.2"], "filters": {"providers": []}}, "providers and filters.providers are both set"),
])
def test_bad_filters_are_parse_errors_naming_the_key(parse_direct: Callable[..., Any],  # noqa: F811
                                                     labelled: StateStore, options: dict[str, Any],
                                                     text: str) -> None:
    with pytest.raises(AnsibleParserError, match=text):
        parse_direct(options)


def test_a_cached_entry_for_other_filters_is_not_used(inventory: Build, labelled: StateStore,  # noqa: F811
                                                      tmp_path: Path) -> None:
    assert sorted(inventory(_cache_options(tmp_path, filters={"labels": {"role": "db"}})).hosts) == ["db-1"]
    assert sorted(inventory(_cache_options(tmp_path, filters={"labels": {"role": "web"}})).hosts) == ["web-1", "web-2"]
    assert sorted(inventory(_cache_options(tmp_path, filters={"countries": ["US"]})).hosts) == ["web-2"]


def test_a_refresh_asks_only_about_the_vms_the_filters_keep(inventory: Build, state: StateStore,  # noqa: F811
                                                            provider: HTTPServer) -> None:  # noqa: F811
    state.upsert(vm("web-1", ip=LOOPBACK, provider_port=provider.port, labels={"role": "web"}))
    state.upsert(vm("db-1", ip=LOOPBACK, provider_port=provider.port, port=20002, labels={"role": "db"}))
    provider.expect_request("/api/v1/vms/web-1").respond_with_json(provider_vm("web-1", "running"))
    inv = inventory({"refresh": True, "filters": {"labels": {"role": "web"}}})
    assert sorted(inv.hosts) == ["web-1"] and hostvars(inv, "web-1")["golem_live_status"] == "running"
    assert [req.path for req, _resp in provider.log] == ["/api/v1/vms/web-1"]


# --- the documented examples ---------------------------------------------------------------------


def _example(title: str) -> dict[str, Any]:
    """The example of the plugin's EXAMPLES whose comment starts with ``title``."""
    for block in golem_inventory.EXAMPLES.split("\n---\n"):
        if block.strip().startswith(f"# {title}"):
            return yaml.safe_load(block)
    raise AssertionError(f"no example {title!r}")


def test_the_sweden_example_lists_only_sweden(inventory: Build, labelled: StateStore) -> None:  # noqa: F811
    example = _example("Running and stopped VMs in Sweden")
    example.pop("state_path")  # the test's own state file instead of /srv/golem/vms.db
    inv = inventory(example)
    assert sorted(inv.hosts) == ["se-db-1", "se-web-1", "se-web-3"]
    assert hostvars(inv, "se-web-3")["golem_status"] == "stopped"
    assert members(inv, "size_small") == ["se-db-1", "se-web-1", "se-web-3"]


def test_the_hostname_of_the_examples_never_says_none(inventory: Build, labelled: StateStore) -> None:  # noqa: F811
    template = _example("Running and stopped VMs in Sweden")["hostname"]
    inv = inventory({"hostname": template, "statuses": []})
    assert "xx-cli-1" in inv.hosts and not any(h.startswith("none-") for h in inv.hosts)
    assert "us-web-2" in inv.hosts


def test_the_label_examples_group_as_they_say(inventory: Build, labelled: StateStore) -> None:  # noqa: F811
    web = inventory(_example("Only the VMs labelled role=web"))
    assert sorted(web.hosts) == ["web-1", "web-2"]
    assert members(web, "tier_1") == ["web-1"] and members(web, "label_role_web") == ["web-1", "web-2"]
    by_role = inventory(_example("Every running VM, in the groups role_web"))
    assert members(by_role, "role_web") == ["web-1", "web-2"] and members(by_role, "role_db") == ["db-1"]
