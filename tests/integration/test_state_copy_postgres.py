# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copying the state between SQLite and the devnet's PostgreSQL: state_copy and golem_state_copy."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError
from ansible_collections.golem.vm.plugins.module_utils.state.postgres import PostgresStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.transfer import copy_state

# Fixtures are used by name, which linters cannot see.
from .postgres_helpers import (  # noqa: F401  pylint: disable=unused-import
    admin,
    ctl,
    load_test_module,
    pg_schema,
    pg_url,
    postgres,
    tables,
    url_for,
)

UPSTREAM_CREATE = load_test_module("tests/unit/plugins/module_utils/test_state.py",
                                   "golem_unit_test_state").UPSTREAM_CREATE


def _sqlite_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every column with its SQLite storage class, so "equal" means byte for byte, NULL for NULL."""
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT name, provider_ip, vm_id, config, status, created_at, typeof(config), typeof(created_at) "
            "FROM vms ORDER BY name").fetchall()


def _varied_sqlite_state(path: Path) -> None:
    """A state file as it is found in the wild: made by the CLI, added to by us, with odd rows."""
    with sqlite3.connect(path) as conn:
        conn.execute(UPSTREAM_CREATE)
        conn.execute("INSERT INTO vms (name, provider_ip, vm_id, config, status) VALUES "
                     "('cli-vm', '192.0.2.1', 'cli-vm', '{\"cpu\": 2, \"memory\": 4, \"storage\": 20, "
                     "\"ssh_port\": 50801, \"stream_id\": 77}', 'running')")
        conn.execute("INSERT INTO vms (name, provider_ip, vm_id, config, status, created_at) VALUES "
                     "('broken', '192.0.2.9', 'b', '{not json', 'error', NULL)")
    store = SQLiteStateStore(str(path))
    store.upsert(VMRecord("web-1", "192.0.2.2", "job-1", "running", {
        "cpu": 1, "ssh_port": 50802, "stream_id": 12, "labels": {"role": "web", "tier": "1"},
        "host_key_fingerprint": "SHA256:abc", "ssh_private_key_path": "/root/.golem/requestor/ssh/id"}))
    store.upsert(VMRecord("vm-é-ü", "192.0.2.3", "x", "stopped", {"note": "naïve ☃", "nested": {"a": [1, 2.5, None]}}))


def test_round_trip_sqlite_postgresql_sqlite_is_byte_for_byte(tmp_path: Path, pg_url: str) -> None:
    original = tmp_path / "original.db"
    back = tmp_path / "back" / "vms.db"
    _varied_sqlite_state(original)
    src, pg, dst = SQLiteStateStore(str(original)), PostgresStateStore(pg_url), SQLiteStateStore(str(back))
    there = copy_state(src, pg)
    assert there.summary()["created"] == ["broken", "cli-vm", "vm-é-ü", "web-1"] and there.written == 4
    home = copy_state(pg, dst)
    assert home.written == 4
    assert _sqlite_rows(back) == _sqlite_rows(original)
    assert pg.raw_rows() == src.raw_rows() == dst.raw_rows()
    # Idempotent both ways: nothing left to copy, nothing written.
    for source, destination in ((src, pg), (pg, dst), (dst, pg)):
        again = copy_state(source, destination)
        assert not again.changed and again.written == 0 and again.summary()["unchanged"] == 4
    pg.close()


def test_dry_run_changes_nothing(tmp_path: Path, pg_url: str, postgres: dict, pg_schema: str) -> None:
    original = tmp_path / "vms.db"
    _varied_sqlite_state(original)
    before = original.read_bytes()
    with PostgresStateStore(pg_url) as pg:
        plan = copy_state(SQLiteStateStore(str(original)), pg, dry_run=True)
        assert plan.changed and len(plan.summary()["created"]) == 4 and plan.written == 0
        assert tables(postgres, pg_schema) == []  # not even the schema was created
        copy_state(SQLiteStateStore(str(original)), pg)
        with admin(postgres) as conn:
            conn.execute(f"UPDATE {pg_schema}.vms SET status = 'stopped' WHERE name = 'web-1'")
        reverse = copy_state(pg, SQLiteStateStore(str(original)), on_conflict="source", dry_run=True)
    assert reverse.summary()["updated"] == ["web-1"]
    assert original.read_bytes() == before


def test_conflicts_between_sqlite_and_postgresql(tmp_path: Path, pg_url: str, postgres: dict) -> None:
    sqlite = SQLiteStateStore(str(tmp_path / "vms.db"))
    with PostgresStateStore(pg_url) as pg:
        sqlite.upsert(VMRecord("a", "192.0.2.1", "a", "running", {"v": "sqlite-old"}))
        pg.upsert(VMRecord("a", "192.0.2.1", "a", "running", {"v": "pg"}))
        pg.upsert(VMRecord("b", "192.0.2.1", "b", "running", {}))
        with pytest.raises(StateError) as err:
            copy_state(sqlite, pg)
        assert "'a'" in err.value.msg and "nothing was copied" in err.value.msg
        assert "postgresql golem@" in err.value.msg and "sqlite " + sqlite.path in err.value.msg
        assert postgres["password"] not in err.value.msg
        forced = copy_state(sqlite, pg, on_conflict="source")
        assert forced.summary()["updated"] == ["a"] and pg.get("a").config["v"] == "sqlite-old"  # type: ignore[union-attr]


def test_a_write_between_plan_and_copy_stops_the_copy(tmp_path: Path, pg_url: str, postgres: dict,
                                                      pg_schema: str) -> None:
    sqlite = SQLiteStateStore(str(tmp_path / "vms.db"))
    for name in ("a", "b"):
        sqlite.upsert(VMRecord(name, "192.0.2.1", name, "running", {}))
    with PostgresStateStore(pg_url) as pg:
        pg.upsert(VMRecord("seed", "192.0.2.1", "seed", "running", {}))
        plan = copy_state(sqlite, pg, dry_run=True).plan
        pg.upsert(VMRecord("b", "192.0.2.7", "b", "running", {"by": "another controller"}))
        with pytest.raises(StateError) as err:
            pg.apply_raw(plan.changes)
        assert "'b'" in err.value.msg and "changed while it was being copied" in err.value.msg
        assert [r.name for r in pg.list()] == ["b", "seed"]  # "a" was rolled back with it
        assert pg.get("b").config["by"] == "another controller"  # type: ignore[union-attr]


# --- the module, as users run it ---------------------------------------------------------------


def test_module_check_mode_diff_copy_and_second_run(ansible: Any, postgres: dict, pg_schema: str) -> None:
    ansible.state_path.parent.mkdir(parents=True)
    _varied_sqlite_state(ansible.state_path)
    url = url_for(postgres, pg_schema)
    args = {"direction": "to_postgresql", "state_url": url}
    plan = ansible.module("golem_state_copy", args, check=True, diff=True)
    assert not plan["failed"], plan
    assert plan["changed"] and plan["dry_run"] and plan["created"] == ["broken", "cli-vm", "vm-é-ü", "web-1"]
    assert plan["destination"] == {"backend": "postgresql", "location": f"golem@{postgres['ip']}:5432/golem"}
    assert "web-1" in plan["_stdout"] and "SHA256:abc" in plan["_stdout"]  # the diff shows the rows
    assert tables(postgres, pg_schema) == []
    done = ansible.module("golem_state_copy", args)
    assert done["changed"] and not done["dry_run"] and len(done["created"]) == 4
    again = ansible.module("golem_state_copy", args)
    assert not again["failed"] and not again["changed"] and again["unchanged"] == 4
    home = ansible.state_path.parent / "copy" / "vms.db"
    back = ansible.module("golem_state_copy", {"direction": "to_sqlite", "state_url": url, "state_path": str(home)})
    assert back["changed"] and _sqlite_rows(home) == _sqlite_rows(ansible.state_path)
    for result in (plan, done, again, back):
        assert postgres["password"] not in result["_stdout"] + result["_stderr"]


def test_module_never_shows_the_password_even_failing_at_vvv(ansible: Any, postgres: dict, pg_schema: str) -> None:
    ansible.state_path.parent.mkdir(parents=True)
    SQLiteStateStore(str(ansible.state_path)).upsert(VMRecord("vm-1", "192.0.2.1", "vm-1", "running", {}))
    url = url_for(postgres, pg_schema)
    where = f"golem@{postgres['ip']}:{postgres['port']}/golem"
    ok = ansible.module("golem_state_copy", {"direction": "to_postgresql", "state_url": url}, verbosity=4)
    assert ok["changed"] and postgres["password"] not in ok["_stdout"] + ok["_stderr"]
    ctl("stop", "postgres")
    try:
        down = ansible.module("golem_state_copy", {"direction": "to_sqlite", "state_url": url}, verbosity=4)
    finally:
        ctl("start", "postgres")
    assert down["failed"] and down["msg"].startswith(f"cannot connect to PostgreSQL at {where}"), down["msg"]
    assert down["failure"]["kind"] == "state" and "exception" not in down
    output = down["_stdout"] + down["_stderr"]
    assert postgres["password"] not in output and "Traceback" not in output
    wrong = url_for({**postgres, "password": "not-the-password-x9"}, pg_schema)
    refused = ansible.module("golem_state_copy", {"direction": "to_postgresql", "state_url": wrong}, verbosity=4)
    assert refused["failed"] and "refused the login" in refused["msg"]
    assert "not-the-password-x9" not in refused["_stdout"] + refused["_stderr"]
    with PostgresStateStore(url) as pg:  # the server is back with what was copied
        assert [r.name for r in pg.list()] == ["vm-1"]
    assert json.loads(json.dumps(ok["source"])) == {"backend": "sqlite", "location": str(ansible.state_path)}
