# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy tool's planning and conflict rules, between two SQLite files (PostgreSQL: tests/integration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.backend import RawChange, RawRow
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.transfer import copy_state, plan_copy


def _row(name: str, updated: str | None = "2026-01-01T00:00:00Z", **config: object) -> RawRow:
    if updated is not None:
        config["updated_at"] = updated
    return RawRow(name, "192.0.2.1", name, json.dumps(config, sort_keys=True), "running", "2026-01-01 00:00:00")


@pytest.fixture
def two(tmp_path: Path) -> tuple[SQLiteStateStore, SQLiteStateStore]:
    return SQLiteStateStore(str(tmp_path / "a.db")), SQLiteStateStore(str(tmp_path / "b.db"))


def test_plan_sorts_rows_into_create_update_unchanged() -> None:
    src = [_row("new"), _row("same"), _row("differs", cpu=2)]
    dst = [_row("same"), _row("differs", cpu=1), _row("only-there")]
    plan = plan_copy(src, dst, "source")
    assert [r.name for r in plan.create] == ["new"]
    assert plan.update == [RawChange(_row("differs", cpu=1), _row("differs", cpu=2))]
    assert plan.unchanged == ["same"] and plan.conflicts == [] and plan.kept == []
    assert plan_copy(src, dst, "fail").conflicts == ["differs"]
    with pytest.raises(ValidationError):
        plan_copy(src, dst, "merge")


def test_newer_wins_and_undecidable_rows_stay_conflicts() -> None:
    src = [_row("src-newer", "2026-02-01T00:00:00Z", v=1), _row("dst-newer", "2026-01-01T00:00:00Z", v=1),
           _row("tie", "2026-01-01T00:00:00Z", v=1), _row("no-stamp", None, v=1)]
    dst = [_row("src-newer", "2026-01-01T00:00:00Z", v=2), _row("dst-newer", "2026-03-01T00:00:00Z", v=2),
           _row("tie", "2026-01-01T00:00:00Z", v=2), _row("no-stamp", "2026-01-01T00:00:00Z", v=2)]
    plan = plan_copy(src, dst, "newer")
    assert [c.after.name for c in plan.update] == ["src-newer"]
    assert plan.kept == ["dst-newer"] and plan.conflicts == ["tie", "no-stamp"]


def test_copy_is_idempotent_and_dry_run_writes_nothing(two: tuple[SQLiteStateStore, SQLiteStateStore]) -> None:
    src, dst = two
    src.apply_raw([RawChange(None, _row(f"vm-{i}", cpu=i)) for i in range(3)])
    dry = copy_state(src, dst, dry_run=True)
    assert dry.changed and dry.summary()["created"] == ["vm-0", "vm-1", "vm-2"] and dry.written == 0
    assert not Path(dst.path).exists()  # a dry run does not even create the file
    first = copy_state(src, dst)
    assert first.written == 3 and dst.raw_rows() == src.raw_rows()
    again = copy_state(src, dst)
    assert not again.changed and again.summary() == {"changed": False, "dry_run": False, "created": [],
                                                     "updated": [], "kept": [], "unchanged": 3}


def test_conflicts_fail_whole_by_default(two: tuple[SQLiteStateStore, SQLiteStateStore]) -> None:
    src, dst = two
    src.apply_raw([RawChange(None, _row("a", cpu=1)), RawChange(None, _row("b", cpu=1))])
    dst.apply_raw([RawChange(None, _row("b", cpu=9))])
    with pytest.raises(StateError) as err:
        copy_state(src, dst)
    assert "'b'" in err.value.msg and "nothing was copied" in err.value.msg and "on_conflict" in err.value.msg
    assert [r.name for r in dst.raw_rows()] == ["b"]  # not even the clean row "a"
    result = copy_state(src, dst, on_conflict="source")
    assert result.summary()["created"] == ["a"] and result.summary()["updated"] == ["b"]
    diff = result.diff("src", "dst")
    assert diff["before"]["b"]["config"]["cpu"] == 9 and diff["after"]["b"]["config"]["cpu"] == 1
    assert "a" not in diff["before"] and diff["after"]["a"]["status"] == "running"
    assert dst.raw_rows() == src.raw_rows()


def test_missing_source_is_an_error(two: tuple[SQLiteStateStore, SQLiteStateStore]) -> None:
    src, dst = two
    with pytest.raises(StateError) as err:
        copy_state(src, dst)
    assert src.path in err.value.msg and "nothing was copied" in err.value.msg
