# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_vm_info and the members golem_fleet gave up on (status abandoned): listed like any VM, filtered in or
out by status, never reported running whatever their provider says, and shown with their history - only the
entries golem_fleet could have written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from abandoned_rows import ABANDONED_AT, GOOD_HISTORY, HOSTILE, UNREACHABLE_SINCE, abandoned_config
from pytest_httpserver import HTTPServer
# Fixtures, used by name. pylint: disable-next=unused-import
from test_golem_vm_info import (  # noqa: F401
    US_ID,
    Run,
    by_name,
    names,
    provider_vm,
    run,
    state,
    vm,
)

from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore


@pytest.fixture
def members(state: StateStore, httpserver: HTTPServer) -> StateStore:  # noqa: F811
    """A fleet after golem_fleet replaced one member: running, stopped, abandoned (its provider elsewhere)."""
    port = httpserver.port
    state.upsert(vm("web-1", port=port))
    state.upsert(vm("db-1", "stopped", port=port, ssh_port=20002))
    state.upsert(vm("old-1", "abandoned", port=port, ssh_port=20003, provider_id=US_ID, **abandoned_config()))
    # A running member whose provider was silent for a while, in a row where someone wrote a time that is none.
    state.upsert(vm("web-2", port=port, ssh_port=20004, unreachable_since=True, abandoned_at="yesterday"))
    return state


@pytest.mark.parametrize(("args", "expected"), [
    ({}, ["db-1", "old-1", "web-1", "web-2"]),
    ({"statuses": ["abandoned"]}, ["old-1"]),
    ({"statuses": ["ABANDONED"]}, ["old-1"]),
    ({"exclude_statuses": ["abandoned"]}, ["db-1", "web-1", "web-2"]),
    ({"exclude_statuses": ["abandoned", "stopped"]}, ["web-1", "web-2"]),
    ({"statuses": ["running"]}, ["web-1", "web-2"]),
    ({"statuses": ["running", "abandoned"], "exclude_statuses": ["stopped"]}, ["old-1", "web-1", "web-2"]),
    ({"providers": [US_ID], "exclude_statuses": ["abandoned"]}, []),
])
def test_abandoned_members_are_listed_and_filtered_by_status(run: Run, members: StateStore,  # noqa: F811
                                                             args: dict[str, Any], expected: list[str]) -> None:
    assert names(run(**args)) == expected


def test_a_status_both_wanted_and_excluded_is_refused(run: Run, members: StateStore) -> None:  # noqa: F811
    result = run(statuses=["running", "abandoned"], exclude_statuses=["abandoned"])
    assert result["failed"] is True and result["failure"]["field"] == "exclude_statuses", result
    assert result["failure"]["value"] == "abandoned"
    assert "status abandoned is in both statuses and exclude_statuses" in result["msg"]
    typo = run(exclude_statuses=["abandonned"])
    assert typo["failure"]["field"] == "exclude_statuses" and "unknown status abandonned" in typo["msg"]


def test_history_and_times_are_shown_and_nothing_hostile(run: Run, members: StateStore) -> None:  # noqa: F811
    result = run()
    vms = by_name(result)
    old = vms["old-1"]
    assert old["status"] == "abandoned"
    assert old["history"] == GOOD_HISTORY, "only the entries of golem_fleet's shape, oldest first"
    assert (old["unreachable_since"], old["abandoned_at"]) == (UNREACHABLE_SINCE, ABANDONED_AT)
    assert HOSTILE not in json.dumps(result) and "evil.example" not in json.dumps(result)
    web2 = vms["web-2"]
    assert (web2["unreachable_since"], web2["abandoned_at"], web2["history"]) == (None, None, [])
    assert vms["web-1"]["history"] == [] and vms["web-1"]["unreachable_since"] is None


def test_with_refresh_an_abandoned_member_is_never_running(run: Run, members: StateStore,  # noqa: F811
                                                           httpserver: HTTPServer) -> None:
    # Its provider answers again and still runs the VM: golem_fleet stopped paying for it all the same.
    for name in ("web-1", "web-2", "old-1"):
        httpserver.expect_request(f"/api/v1/vms/{name}").respond_with_json(provider_vm(name, "running"))
    httpserver.expect_request("/api/v1/vms/db-1").respond_with_json(provider_vm("db-1", "stopped"))

    old = by_name(run(refresh=True))["old-1"]
    assert (old["status"], old["recorded_status"], old["live_status"], old["provider_reachable"]) == (
        "abandoned", "abandoned", "running", True)
    assert old["history"] == GOOD_HISTORY
    assert names(run(refresh=True, statuses=["running"])) == ["web-1", "web-2"]
    assert names(run(refresh=True, statuses=["abandoned"])) == ["old-1"]

    httpserver.clear_log()
    assert names(run(refresh=True, exclude_statuses=["abandoned"])) == ["db-1", "web-1", "web-2"]
    asked = {req.path for req, _resp in httpserver.log}
    assert "/api/v1/vms/old-1" not in asked, "a member the filters leave out is not worth a request"
