# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory and the members golem_fleet gave up on (status abandoned): hosts in golem_status_abandoned and
no other group of golem's, with nothing a play could connect to, their history shown as golem_fleet wrote it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from abandoned_rows import ABANDONED_AT, GOOD_HISTORY, HOSTILE, UNREACHABLE_SINCE, abandoned_config
from ansible.errors import AnsibleParserError
from fake_rpc import FakeRPC
from pytest_httpserver import HTTPServer
# Fixtures, used by name. pylint: disable-next=unused-import
from test_golem import (  # noqa: F401
    LOOPBACK,
    PROVIDER_SE,
    PROVIDER_US,
    Build,
    Messages,
    closed_port,
    hostvars,
    inventory,
    members,
    messages,
    provider,
    provider_vm,
    state,
    vm,
    write_config,
)
from test_golem_runway import CONTRACT, ME, RATE, chain  # noqa: F401  pylint: disable=unused-import

from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_hosts import NO_HOST

CONNECTION_VARS = ("ansible_port", "ansible_user", "ansible_ssh_private_key_file", "ansible_ssh_common_args")


@pytest.fixture
def fleet(state: StateStore) -> StateStore:  # noqa: F811
    """After golem_fleet replaced old-1 with web-2: running, stopped and abandoned members."""
    state.upsert(vm("web-1"))
    state.upsert(vm("web-2", ip="127.0.0.3", port=21001, provider_id=PROVIDER_US, country="US"))
    state.upsert(vm("db-1", "stopped", port=20002))
    state.upsert(vm("old-1", "abandoned", port=20003, **abandoned_config()))
    return state


def test_abandoned_members_are_in_a_group_of_their_own(inventory: Build, fleet: StateStore,  # noqa: F811
                                                       messages: Messages) -> None:  # noqa: F811
    inv = inventory({"statuses": []})
    assert members(inv, "golem") == ["db-1", "old-1", "web-1", "web-2"], "listed by default, as every status is"
    assert members(inv, "golem_status_abandoned") == ["old-1"]
    assert "golem_status_abandoned" in {g.name for g in inv.groups["golem"].child_groups}
    running = members(inv, "golem_status_running")
    assert running == ["web-1", "web-2"]
    groups = {g.name for g in inv.get_host("old-1").get_groups()}
    assert groups == {"all", "golem", "golem_status_abandoned"}, "not by provider or country either"
    assert members(inv, f"golem_provider_{PROVIDER_SE}") == ["db-1", "web-1"]
    assert members(inv, "golem_country_se") == ["db-1", "web-1"]
    assert not any("old-1" in w for w in messages.warnings)


def test_an_abandoned_host_has_nothing_to_connect_to(inventory: Build, fleet: StateStore) -> None:  # noqa: F811
    inv = inventory({"statuses": [], "ssh_private_key_path": "/keys/job_key"})
    old = hostvars(inv, "old-1")
    assert old["ansible_host"] == NO_HOST and NO_HOST.endswith(".invalid"), "a name that never resolves"
    assert not set(CONNECTION_VARS) & set(old), old
    assert old["golem_status"] == "abandoned" and old["golem_host_key_known"] is None
    # What the row records is still shown, for the user to act on.
    assert (old["golem_ssh_port"], old["golem_provider_id"]) == (20003, PROVIDER_SE)
    web = hostvars(inv, "web-1")
    assert web["ansible_host"] == "127.0.0.2" and all(v in web for v in CONNECTION_VARS)


def test_history_is_shown_as_golem_fleet_wrote_it_and_nothing_else(inventory: Build,  # noqa: F811
                                                                   fleet: StateStore) -> None:  # noqa: F811
    inv = inventory({"statuses": ["abandoned"]})
    assert sorted(inv.hosts) == ["old-1"]
    old = hostvars(inv, "old-1")
    assert old["golem_history"] == GOOD_HISTORY
    assert (old["golem_unreachable_since"], old["golem_abandoned_at"]) == (UNREACHABLE_SINCE, ABANDONED_AT)
    shown = json.dumps({k: v for k, v in old.items() if not k.startswith("inventory_")})
    assert HOSTILE not in shown and "evil.example" not in shown
    assert hostvars(inventory({"statuses": ["running"]}), "web-1")["golem_history"] == []


@pytest.mark.parametrize(("options", "expected"), [
    ({"statuses": [], "exclude_statuses": ["abandoned"]}, ["db-1", "web-1", "web-2"]),
    ({"statuses": ["running"]}, ["web-1", "web-2"]),
    ({"statuses": ["abandoned", "stopped"]}, ["db-1", "old-1"]),
])
def test_abandoned_hosts_are_filtered_like_golem_vm_info(inventory: Build, fleet: StateStore,  # noqa: F811
                                                         options: dict[str, Any], expected: list[str]) -> None:
    assert sorted(inventory(options).hosts) == expected


@pytest.mark.parametrize(("options", "text"), [
    ({"statuses": ["abandoned"], "exclude_statuses": ["abandoned"]},
     "status abandoned is in both statuses and exclude_statuses"),
    ({"filters": {"statuses": ["abandoned"]}, "exclude_statuses": ["abandoned"]},
     "status abandoned is in both filters.statuses and exclude_statuses"),
    ({"exclude_statuses": ["abandonned"]}, "unknown status abandonned in exclude_statuses"),
])
def test_a_status_both_wanted_and_excluded_is_refused(inventory: Build, fleet: StateStore,  # noqa: F811
                                                      options: dict[str, Any], text: str) -> None:
    with pytest.raises(AnsibleParserError, match=text):
        inventory(options)


def test_excluded_statuses_from_the_variable(inventory: Build, fleet: StateStore,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLEM_INVENTORY_EXCLUDE_STATUSES", "abandoned,stopped")
    assert sorted(inventory({"statuses": []}).hosts) == ["web-1", "web-2"]


def test_cached_listing_is_not_used_for_other_excluded_statuses(inventory: Build, fleet: StateStore,  # noqa: F811
                                                                tmp_path: Any) -> None:
    cache = {"statuses": [], "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
             "cache_connection": str(tmp_path / "cache")}
    assert "old-1" in inventory(cache).hosts
    assert "old-1" not in inventory({**cache, "exclude_statuses": ["abandoned"]}).hosts


def test_an_abandoned_host_without_a_port_is_listed_and_a_bad_one_is_skipped(
        inventory: Build, state: StateStore, messages: Messages) -> None:  # noqa: F811
    state.upsert(vm("half-1", "abandoned", port=None))
    state.upsert(vm("evil-1", "abandoned", ssh_user="-oProxyCommand=touch /tmp/x"))
    inv = inventory({"statuses": []})
    assert sorted(inv.hosts) == ["half-1"], "nothing from a row reaches a host var unchecked"
    assert hostvars(inv, "half-1")["ansible_host"] == NO_HOST
    assert any("skipped VM evil-1" in w and "ssh_user" in w for w in messages.warnings), messages.warnings


def test_refresh_never_makes_an_abandoned_member_running_or_worth_a_top_up(
        inventory: Build, state: StateStore, provider: HTTPServer, chain: FakeRPC,  # noqa: F811
        closed_port: int) -> None:  # noqa: F811
    # Its provider answers again, still running the VM, and its stream somehow still runs low: neither makes
    # it a running host or one a top-up job pays for.
    chain.add(1, sender=ME, recipient=PROVIDER_SE, left=600, rate=RATE)
    state.upsert(vm("old-1", "abandoned", ip=LOOPBACK, provider_port=provider.port, port=20001, stream_id=1,
                    stream_contract=CONTRACT, **abandoned_config()))
    state.upsert(vm("old-2", "abandoned", ip=LOOPBACK, provider_port=closed_port, port=20002))
    provider.expect_request("/api/v1/vms/old-1").respond_with_json(provider_vm("old-1", "running"))

    inv = inventory({"refresh": True, "statuses": [], "payments_rpc_url": provider.url_for("/rpc")})
    old = hostvars(inv, "old-1")
    assert (old["golem_status"], old["golem_live_status"], old["golem_recorded_status"]) == (
        "abandoned", "running", "abandoned")
    assert old["golem_stream_remaining_seconds"] == 600 and old["golem_history"] == GOOD_HISTORY
    assert hostvars(inv, "old-2")["golem_provider_reachable"] is False
    assert members(inv, "golem_status_abandoned") == ["old-1", "old-2"]
    for group in ("golem_status_running", "golem_runway_low", "golem_unreachable"):
        assert group not in inv.groups or members(inv, group) == [], group
    assert not set(CONNECTION_VARS) & set(old)

    assert sorted(inventory({"refresh": True, "statuses": ["running"],
                             "payments_rpc_url": provider.url_for("/rpc")}).hosts) == []
