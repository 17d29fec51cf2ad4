# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading rows and updating their status, written once for both backends.

The SQL differs only where the two engines do, and a ``Dialect`` says where: the placeholder,
how a list of values is matched, the ORDER BY that sorts names as Python compares str, and how
the row ``set_status`` rewrites is locked. A backend says how to run a query (``_select``) and an
update of a row that may be there (``_update_existing``), and how to name itself in messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.rows import (
    COLUMNS,
    RawChange,
    RawRow,
    changed_under_us,
    dump_config,
    raw_row,
    record_from_row,
    stamped,
)
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import check_status

_T = TypeVar("_T")


@dataclass(frozen=True)
class Dialect:
    placeholder: str  # "?" or "%s"
    name_order: str  # an ORDER BY that sorts names bytewise, as Python compares str
    row_lock: str  # appended to the SELECT of a row about to be rewritten in the same transaction
    # Names in an IN (...) list up to this many, past which filtering in Python pays off;
    # None: every list goes as one array parameter, so there is no cap.
    max_in_list: int | None

    def select_row(self, *, locked: bool = False) -> str:
        return f"SELECT {COLUMNS} FROM vms WHERE name = {self.placeholder}" + (self.row_lock if locked else "")

    def one_of(self, column: str, values: list[str]) -> tuple[str, list[Any]]:
        """A WHERE clause that ``column`` is one of ``values``, and its parameters."""
        if self.max_in_list is None:
            return f"{column} = ANY({self.placeholder})", [values]
        return f"{column} IN ({', '.join([self.placeholder] * len(values))})", list(values)


def _as_list(values: Iterable[str] | str | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


class RowStore:
    """``get``, ``list``, ``raw_rows`` and ``set_status`` over the ``vms`` table, in ``dialect``'s SQL."""

    dialect: Dialect

    @property
    def _where(self) -> str:
        """The store, as a message names it: the file's path, or ``PostgreSQL at user@host:port/dbname``."""
        raise NotImplementedError

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The rows ``sql`` selects; a store not created yet reads as empty."""
        raise NotImplementedError

    def _update_existing(self, work: Callable[[Any], _T]) -> _T | None:
        """``work(connection)`` in one write transaction; None, and nothing created, when there is no store yet."""
        raise NotImplementedError

    # --- reading ---------------------------------------------------------------------

    def get(self, name: str) -> VMRecord | None:
        """The row called ``name``, or None; a store not created yet reads as empty."""
        rows = self._select(self.dialect.select_row(), (name,))
        return record_from_row(rows[0]) if rows else None

    def list(
        self,
        statuses: Iterable[str] | str | None = None,
        names: Iterable[str] | str | None = None,
        providers: Iterable[str] | str | None = None,
    ) -> list[VMRecord]:
        """Rows sorted by name, in one SELECT; unreadable configs come back flagged, not raised.

        ``providers`` matches a row's ``provider_id`` (from config) or its ``provider_ip``.
        """
        status_list = _as_list(statuses)
        name_list = _as_list(names)
        provider_set = set(_as_list(providers) or ()) if providers is not None else None
        if status_list == [] or name_list == [] or provider_set == set():
            return []
        cap = self.dialect.max_in_list
        names_in_sql = name_list is not None and (cap is None or len(name_list) <= cap)
        where = [self.dialect.one_of("status", status_list)] if status_list is not None else []
        if name_list is not None and names_in_sql:
            where.append(self.dialect.one_of("name", name_list))
        sql = f"SELECT {COLUMNS} FROM vms"
        if where:
            sql += " WHERE " + " AND ".join(clause for clause, _params in where)
        sql += f" ORDER BY {self.dialect.name_order}"
        params = tuple(param for _clause, clause_params in where for param in clause_params)
        records = [record_from_row(row) for row in self._select(sql, params)]
        if name_list is not None and not names_in_sql:
            wanted = set(name_list)
            records = [r for r in records if r.name in wanted]
        if provider_set is not None:
            records = [r for r in records if r.provider_ip in provider_set or r.provider_id in provider_set]
        return records

    def raw_rows(self) -> list[RawRow]:
        """Every row as stored, sorted by name (bytewise); a store not created yet reads as empty."""
        return [raw_row(r) for r in self._select(f"SELECT {COLUMNS} FROM vms ORDER BY {self.dialect.name_order}", ())]

    # --- writing ---------------------------------------------------------------------

    def set_status(self, name: str, status: str, **config_updates: Any) -> VMRecord | None:
        """Set ``status`` and merge ``config_updates`` into config (a None value removes the key).

        Returns the updated row, or None when there is no row ``name`` (and nothing is created).
        The row is read, merged and written in one transaction, so no concurrent writer's key is lost.
        """
        check_status(status)

        def write(conn: Any) -> VMRecord | None:
            row = conn.execute(self.dialect.select_row(locked=True), (name,)).fetchone()
            if row is None:
                return None
            current = record_from_row(row)
            if current.config_error is not None:
                raise StateError(f"{current.config_error}; fix or delete that row in {self._where} before updating it")
            config = stamped(current.config, config_updates)
            p = self.dialect.placeholder
            conn.execute(f"UPDATE vms SET status = {p}, config = {p} WHERE name = {p}",
                         (status, dump_config(name, config), name))
            current.status = status
            current.config = config
            return current

        return self._update_existing(write)

    def _check_unchanged(self, conn: Any, change: RawChange) -> None:
        """Raise StateError unless the row ``change`` rewrites is still ``change.before``, locking it where the
        engine locks rows."""
        name = change.after.name
        found = conn.execute(self.dialect.select_row(locked=True), (name,)).fetchone()
        if (raw_row(found) if found is not None else None) != change.before:
            raise StateError(changed_under_us(self._where, name))
