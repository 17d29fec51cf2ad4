# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What both backends share: the statuses, and the SQL ``RowStore`` writes in each dialect.

The PostgreSQL store runs here on a stand-in connection that only records what it is asked,
so the SQL it sends is pinned without a server (tests/integration runs it against one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.provider import models
from ansible_collections.golem.vm.plugins.module_utils.state.rows import COLUMNS, RawChange, RawRow
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import SQLITE
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED, STATUSES, VMStatus, check_status
from ansible_collections.golem.vm.plugins.module_utils.vm import filters

ROW = ("web-1", "192.0.2.1", "vm-1", json.dumps({"cpu": 1, "gone": "x"}), "running", "2026-01-01 00:00:00")
SELECT = f"SELECT {COLUMNS} FROM vms"


def test_statuses_are_defined_once() -> None:
    assert models.VMStatus is VMStatus
    assert STATUSES == ("creating", "running", "stopped", "error", "abandoned")
    # Every status a row holds is a provider's, but the one golem_fleet gives a member it gave up on.
    assert set(STATUSES) - {ABANDONED} < {s.value for s in VMStatus} and ABANDONED not in {s.value for s in VMStatus}
    assert filters.KNOWN_STATUSES == {"creating", "running", "stopping", "stopped", "error", "deleted", "missing",
                                      "abandoned"}
    check_status("stopped")
    with pytest.raises(ValidationError, match="status must be one of creating, running, stopped, error, abandoned"):
        check_status("stopping")


def test_sqlite_lists_values_inline() -> None:
    assert SQLITE.select_row(locked=True) == f"{SELECT} WHERE name = ?"
    assert SQLITE.one_of("status", ["a", "b"]) == ("status IN (?, ?)", ["a", "b"])


class _Cursor:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.rowcount = len(rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class _Connection:
    """Answers every statement with ``rows`` and records it."""

    closed = broken = False

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.log: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> _Cursor:
        self.log.append((sql, params))
        return _Cursor(self.rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.log.append(("BEGIN", None))
        yield
        self.log.append(("COMMIT", None))


def _postgres(rows: list[tuple[Any, ...]]) -> tuple[Any, _Connection]:
    pytest.importorskip("psycopg")
    from ansible_collections.golem.vm.plugins.module_utils.state.postgres import PostgresStateStore

    store = PostgresStateStore("postgresql://golem@127.0.0.60:1/golem")
    conn = _Connection(rows)
    store._conn, store._conn_pid, store._schema_ok = conn, os.getpid(), True
    return store, conn


def test_postgres_reads_with_arrays_in_bytewise_order() -> None:
    store, conn = _postgres([ROW])
    assert store.get("web-1").vm_id == "vm-1"
    assert [r.name for r in store.list(statuses="running", names=["web-1", "b"], providers=["192.0.2.1"])] == ["web-1"]
    assert store.list(providers=["192.0.2.9"]) == []
    assert store.raw_rows() == [RawRow(*ROW)]
    assert conn.log == [
        (f"{SELECT} WHERE name = %s", ("web-1",)),
        (f'{SELECT} WHERE status = ANY(%s) AND name = ANY(%s) ORDER BY name COLLATE "C"',
         (["running"], ["web-1", "b"])),
        (f'{SELECT} ORDER BY name COLLATE "C"', ()),
        (f'{SELECT} ORDER BY name COLLATE "C"', ()),
    ]


def test_postgres_set_status_merges_under_a_row_lock() -> None:
    store, conn = _postgres([ROW])
    record = store.set_status("web-1", "stopped", gone=None, added=2)
    assert record.status == "stopped" and set(record.config) == {"cpu", "added", "updated_at"}
    (begin, select, update, commit) = conn.log
    assert (begin, commit) == (("BEGIN", None), ("COMMIT", None))
    assert select == (f"{SELECT} WHERE name = %s FOR UPDATE", ("web-1",))
    assert update[0] == "UPDATE vms SET status = %s, config = %s WHERE name = %s"
    assert update[1][0] == "stopped" and json.loads(update[1][1]) == record.config and update[1][2] == "web-1"


def test_postgres_set_status_of_a_missing_row_or_an_unreadable_one() -> None:
    store, _conn = _postgres([])
    assert store.set_status("web-1", "running") is None
    store, _conn = _postgres([ROW[:3] + ("[1]",) + ROW[4:]])
    with pytest.raises(StateError, match="fix or delete that row in PostgreSQL at golem@127.0.0.60:1/golem"):
        store.set_status("web-1", "running")


def test_postgres_copy_stops_on_a_row_changed_meanwhile() -> None:
    store, conn = _postgres([ROW])
    with pytest.raises(StateError, match="changed while it was being copied"):
        store.apply_raw([RawChange(RawRow(*ROW)._replace(vm_id="other"), RawRow(*ROW))])
    assert conn.log[1] == (f"{SELECT} WHERE name = %s FOR UPDATE", ("web-1",))
