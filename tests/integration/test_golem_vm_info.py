# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_vm_info and the inventory's label filters on the real local network: two labelled VMs, one on the
paying SE provider and one on the MVP-era DE provider, listed, filtered, refreshed, and one deleted behind the
collection's back; the upstream CLI still reads the state."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .ansible_runner import BIN, Ansible
from .devnet_helpers import REPO, http, plain, state_rows
from .postgres_helpers import pg_schema, pg_url, postgres  # noqa: F401  pylint: disable=unused-import

CLI = Path(os.environ.get("GOLEM_DEVNET_CACHE", "/var/cache/golem-vm-devnet")) / "venvs" / \
    "requestor-0.1.58-abi0.1.1" / "bin" / "golem"


@pytest.fixture
def labelled_vms(ansible: Ansible, providers: dict[str, dict], tmp_path: Path) -> Iterator[dict[str, dict]]:
    """web-... on SE (paid for with a stream) labelled role=web, db-... on DE (no payments) labelled role=db,
    recorded in the upstream CLI's own state file of a HOME of this test; destroyed afterwards."""
    ansible.env["GOLEM_REQUESTOR_DB_PATH"] = str(tmp_path / "home" / ".golem" / "requestor" / "vms.db")
    tag = uuid.uuid4().hex[:6]
    wanted = {f"web-{tag}": ("se", {"role": "web", "team": tag}), f"db-{tag}": ("de", {"role": "db", "team": tag})}
    made: dict[str, dict] = {}
    try:
        for name, (key, labels) in wanted.items():
            # DE, the MVP-era provider, advertises only on central discovery.
            found_on = {"discovery_backend": "central"} if key == "de" else {}
            result = ansible.module("golem_vm", {"name": name, "provider_id": providers[key]["provider_id"],
                                                 "labels": labels, "wait": False, **found_on})
            assert not result["failed"], result.get("msg")
            made[name] = result
        yield made
    finally:
        for name in wanted:
            ansible.module("golem_vm", {"name": name, "state": "absent"})


def _state(ansible: Ansible) -> Path:
    """The state file the fixture's VMs are recorded in (the upstream CLI's own, under the test's HOME)."""
    return Path(ansible.env["GOLEM_REQUESTOR_DB_PATH"])


def _rows(path: Path) -> list[tuple]:
    """Every row as stored, config and timestamps included."""
    with sqlite3.connect(path) as conn:
        query = "SELECT name, provider_ip, vm_id, config, status, created_at FROM vms ORDER BY name"
        return conn.execute(query).fetchall()


# A refresh's budget far above what the local servers need on a busy machine (the default is 10 s); a provider
# that is down refuses at once, so no verdict here waits on it.
REFRESH_TIMEOUT = 120


def _info(ansible: Ansible, check: bool = False, **args: Any) -> dict[str, dict[str, Any]]:
    if args.get("refresh"):
        args.setdefault("refresh_timeout", REFRESH_TIMEOUT)
    result = ansible.module("golem_vm_info", args, check=check)
    assert not result["failed"] and result["changed"] is False, result.get("msg") or result["_stdout"]
    return {vm["name"]: vm for vm in result["vms"]}


def test_lists_filters_and_refreshes_labelled_vms_and_sees_one_deleted_behind_its_back(
        ansible: Ansible, providers: dict[str, dict], labelled_vms: dict[str, dict], tmp_path: Path) -> None:
    web, db = sorted(labelled_vms, reverse=True)
    team = labelled_vms[web]["vm"]["labels"]["team"]
    assert state_rows(_state(ansible)) == {web: "running", db: "running"}
    before = _rows(_state(ansible))

    listed = _info(ansible, labels={"team": team})
    assert sorted(listed) == sorted([web, db])
    for name, made in labelled_vms.items():
        assert listed[name] == made["vm"], "the same VM as golem_vm returned, field for field"
    assert listed[web]["labels"] == {"role": "web", "team": team} and listed[db]["country"] == "DE"
    assert list(_info(ansible, labels={"team": team, "role": "web"})) == [web]
    assert list(_info(ansible, labels={"team": team}, countries=["de"])) == [db]
    assert list(_info(ansible, names=[f"web-{team}*"], providers=[providers["se"]["provider_id"].lower()])) == [web]
    assert _info(ansible, labels={"team": team}, statuses=["stopped"]) == {}

    refreshed = _info(ansible, labels={"team": team}, refresh=True)
    for name in (web, db):
        vm = refreshed[name]
        assert (vm["live_status"], vm["status"], vm["provider_reachable"], vm["refresh_error"]) == (
            "running", "running", True, None), vm
    paid = refreshed[web]
    assert paid["stream_id"] == labelled_vms[web]["stream"]["stream_id"] and paid["stream_error"] is None
    assert 0 < paid["stream_remaining_seconds"] <= 3600, "a stream opened for payment_hours=1"
    assert refreshed[db]["stream_id"] is None and refreshed[db]["stream_remaining_seconds"] is None

    # Deleted on its provider directly: the refresh says so from the provider's own 404, and the row stays.
    status, _body = http("DELETE", f"{providers['de']['url']}/api/v1/vms/{db}")
    assert status == 200
    assert http("GET", f"{providers['de']['url']}/api/v1/vms/{db}")[0] == 404
    gone = _info(ansible, labels={"team": team}, refresh=True)[db]
    assert (gone["live_status"], gone["status"], gone["recorded_status"]) == ("missing", "missing", "running"), gone
    assert gone["provider_reachable"] is True and gone["missing_reason"] is None, "a VM without a stream: no reason"
    assert list(_info(ansible, labels={"team": team}, refresh=True, statuses=["missing"])) == [db]

    checked = _info(ansible, check=True, labels={"team": team}, refresh=True)
    assert {n: v["status"] for n, v in checked.items()} == {web: "running", db: "missing"}
    assert _rows(_state(ansible)) == before, "nothing was written: the row of the deleted VM stays as it was"

    # The upstream CLI reads the labelled rows as before (its own state file, under this HOME).
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8",
           "PYTHONPATH": str(REPO / "devnet" / "hostshim")}
    listed_by_cli = subprocess.run([str(CLI), "vm", "list", "--json"], env=env, capture_output=True, text=True,
                                   timeout=120, check=False)
    assert listed_by_cli.returncode == 0, listed_by_cli.stderr
    rows = {v["name"]: v for v in json.loads(listed_by_cli.stdout)["vms"]}
    assert sorted(rows) == sorted([web, db])
    assert rows[web]["config"]["labels"] == {"role": "web", "team": team} and rows[web]["config"]["cpu"] == 1
    plain_list = subprocess.run([str(CLI), "vm", "list"], env=env, capture_output=True, text=True, timeout=120,
                                check=False)
    assert plain_list.returncode == 0 and web in plain_list.stdout, plain_list.stdout + plain_list.stderr


def test_lists_a_team_s_postgresql_state_as_golem_vm_finds_it(ansible: Ansible, labelled_vms: dict[str, dict],
                                                                pg_url: str) -> None:  # noqa: F811
    web, db = sorted(labelled_vms, reverse=True)
    team = labelled_vms[web]["vm"]["labels"]["team"]
    copied = ansible.module("golem_state_copy", {"direction": "to_postgresql", "state_url": pg_url,
                                                 "state_path": str(_state(ansible))})
    assert not copied["failed"] and copied["changed"] is True, copied.get("msg")
    # The team's state from the variable golem_vm reads; the SQLite file is not read at all.
    env = {"GOLEM_REQUESTOR_STATE_URL": pg_url, "GOLEM_REQUESTOR_DB_PATH": ""}
    result = ansible.module("golem_vm_info", {"labels": {"team": team}, "refresh": True,
                                              "refresh_timeout": REFRESH_TIMEOUT}, env=env)
    assert not result["failed"] and result["changed"] is False, result.get("msg")
    vms = {vm["name"]: vm for vm in result["vms"]}
    assert sorted(vms) == sorted([web, db])
    assert vms[web]["labels"] == {"role": "web", "team": team} and vms[web]["live_status"] == "running"
    assert vms[web]["stream_remaining_seconds"] > 0 and vms[db]["live_status"] == "running"
    assert pg_url.split("@")[0].split(":")[-1] not in result["_stdout"], "the password is never shown"
    by_role = ansible.module("golem_vm_info", {"labels": {"team": team, "role": "db"}}, env=env)
    assert [vm["name"] for vm in by_role["vms"]] == [db]


def test_the_inventory_filters_by_label_and_groups_by_labels(ansible: Ansible, labelled_vms: dict[str, dict],
                                                             tmp_path: Path) -> None:
    web, db = sorted(labelled_vms, reverse=True)
    team = labelled_vms[web]["vm"]["labels"]["team"]
    config = tmp_path / "inventory" / "golem.yml"
    config.parent.mkdir()
    config.write_text(json.dumps({
        "plugin": "golem.vm.golem",
        "labels": {"role": "web", "team": team},
        "keyed_groups": [{"key": "golem_labels.role", "prefix": "role"}, {"key": "golem_labels", "prefix": "label"}],
    }))
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list"], env=ansible.env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
    listing = plain(json.loads(proc.stdout))
    assert sorted(listing["_meta"]["hostvars"]) == [web]
    assert listing["_meta"]["hostvars"][web]["golem_labels"] == {"role": "web", "team": team}
    assert listing["role_web"]["hosts"] == [web] and listing["label_role_web"]["hosts"] == [web]
    assert listing[f"label_team_{team}"]["hosts"] == [web]
    assert "role_db" not in listing, f"{db} is filtered out"

    config.write_text(json.dumps({"plugin": "golem.vm.golem", "labels": {"team": team},
                                  "keyed_groups": [{"key": "golem_labels.role", "prefix": "role"}]}))
    both = plain(json.loads(subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list"],
                                           env=ansible.env, capture_output=True, text=True, timeout=120,
                                           check=True).stdout))
    assert both["role_web"]["hosts"] == [web] and both["role_db"]["hosts"] == [db]
