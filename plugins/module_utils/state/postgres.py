# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state in one PostgreSQL database, so a team's controllers share it.

Same rows, same VMRecord, same guarantees as the SQLite file (sqlite_file.py): every write is
one short transaction; ``set_status`` reads, merges and writes under a row lock so no
concurrent writer's key is lost; readers never create anything; failures are StateError
naming ``user@host:port/dbname`` and never the password (libpq's messages are scrubbed of
it too). Schema and migrations: postgres_schema.py. ``get``, ``list``, ``raw_rows`` and
``set_status`` are ``row_store.RowStore``'s, in PostgreSQL's SQL (``POSTGRES``).

Connections: one per store object, opened on first use, reopened after an error, never
shared across a fork. The password comes from the URL, ``PGPASSWORD`` or a passfile,
found by libpq itself; ``sslmode`` and every other URL parameter go to libpq unchanged.

The name lock (``lock``) is a session-level ``pg_advisory_lock`` on a hash of the name,
taken on a connection of its own that does nothing else. Why not ``SELECT ... FOR UPDATE``:
before a create there is no row to lock, and a row lock lives in a transaction, which would
have to stay open for the minutes a create takes, holding back VACUUM and blocking this
very process's own writes to that row (they run on the store's connection). An advisory
lock needs no row and no open transaction, and the server drops it the moment the holder's
session ends, so a killed fork never leaves a stale lock. It needs a real session: behind
PgBouncer in transaction mode, point the URL at the server or a session-mode pool.
"""

from __future__ import annotations

import os
import re
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import MissingLibraryError, StateError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.backend import BUSY_TIMEOUT
from ansible_collections.golem.vm.plugins.module_utils.state.postgres_schema import (
    MIGRATIONS,
    Migration,
    SchemaTooNew,
    current_version,
    ensure_schema,
    name_lock_key,
)
from ansible_collections.golem.vm.plugins.module_utils.state.postgres_url import environment_secrets, parse_state_url
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.row_store import Dialect, RowStore
from ansible_collections.golem.vm.plugins.module_utils.state.rows import (
    COLUMNS,
    RawChange,
    changed_under_us,
    dump_config,
    record_from_row,
    stamped,
)
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import check_status

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.conninfo import conninfo_to_dict
except ImportError:
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None

PSYCOPG_LIBRARY = "psycopg[binary] >= 3.1"
CONNECT_TIMEOUT = 10
POSTGRES = Dialect(
    placeholder="%s",
    # "C" compares bytes, as Python compares str; the database's default collation may not.
    name_order='name COLLATE "C"',
    # A second writer waits here, then merges into this one's result.
    row_lock=" FOR UPDATE",
    # Lists go as arrays (= ANY(%s)), so there is no IN-list cap.
    max_in_list=None,
)
# How soon the server drops the session (and so the name lock) of a holder that vanished
# from the network: idle 30 s, then 3 probes 10 s apart. Set per session; no effect on a socket.
_LOCK_KEEPALIVES = (("tcp_keepalives_idle", "30"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "3"))

_T = TypeVar("_T")


class _PgNameLock:
    def __init__(self, store: PostgresStateStore, name: str, conn: Any) -> None:
        self.name = name
        self._store = store
        self._conn = conn

    def verify(self) -> None:
        """A live session still holds its advisory lock; a dead one has lost it."""
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise StateError(
                f"lost the lock on VM name {self.name!r}: the connection to PostgreSQL at {self._store.location} "
                f"broke, which releases it, so another controller may now hold it "
                f"(postgresql: {self._store._cause(exc)})"
            ) from None


class PostgresStateStore(RowStore):
    """The ``vms`` table in a PostgreSQL database; see the module docstring."""

    backend = "postgresql"
    dialect = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = BUSY_TIMEOUT,
        connect_timeout: int = CONNECT_TIMEOUT,
        migrations: Sequence[Migration] = MIGRATIONS,
        field_name: str = "state_url",
    ) -> None:
        if not HAS_PSYCOPG:
            raise MissingLibraryError(PSYCOPG_LIBRARY, PSYCOPG_IMPORT_ERROR, reason="for the PostgreSQL state")
        self._url = parse_state_url(url, field_name)
        self.location = self._url.display()
        self.busy_timeout = busy_timeout
        self.migrations = tuple(migrations)
        try:
            params: dict[str, Any] = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ValidationError(f"{field_name}: libpq cannot read the URL: {self._cause(exc)}",
                                  field=field_name, value=None) from None
        # Defaults only: whatever the URL says wins.
        params.setdefault("connect_timeout", str(connect_timeout))
        params.setdefault("application_name", "golem.vm")
        self._params = params  # holds the password, if the URL has one: never logged or returned
        self._conn: Any = None
        self._conn_pid: int | None = None
        self._schema_ok = False
        # golem_fleet's threads share one store; a psycopg connection runs one transaction at a time.
        self._guard = threading.RLock()

    def __repr__(self) -> str:
        return f"PostgresStateStore({self._url.redacted()!r})"

    # --- reading ---------------------------------------------------------------------

    def exists(self) -> bool:
        """True once golem.vm's table is there (a reachable but empty database reads as not there)."""
        return bool(self._run("read", lambda c: c.execute("SELECT to_regclass('vms') IS NOT NULL").fetchone()[0],
                              retry=True))

    # --- writing ---------------------------------------------------------------------

    def upsert(self, record: VMRecord) -> VMRecord:
        """Insert or replace the row ``record.name``; keeps the original ``created_at``."""
        for attr in ("name", "provider_ip", "vm_id"):
            value = getattr(record, attr)
            if not isinstance(value, str) or not value:
                raise ValidationError(f"{attr} must be a non-empty string", field=attr, value=value)
        check_status(record.status)
        config_json = dump_config(record.name, stamped(record.config))

        def write(conn: Any) -> VMRecord:
            row = conn.execute(
                f"INSERT INTO vms ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, "
                "COALESCE(%s, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))) "
                "ON CONFLICT (name) DO UPDATE SET provider_ip = EXCLUDED.provider_ip, vm_id = EXCLUDED.vm_id, "
                f"config = EXCLUDED.config, status = EXCLUDED.status RETURNING {COLUMNS}",
                (record.name, record.provider_ip, record.vm_id, config_json, record.status, record.created_at),
            ).fetchone()
            return record_from_row(row)

        return self._write(write, create=True)

    def delete(self, name: str) -> bool:
        """Remove the row ``name``; True if there was one. An empty database is left empty."""
        return self._write(lambda c: c.execute("DELETE FROM vms WHERE name = %s", (name,)).rowcount > 0,
                           create=False, absent=False)

    def apply_raw(self, changes: Sequence[RawChange]) -> int:
        if not changes:
            return 0

        def write(conn: Any) -> int:
            with conn.transaction():
                for change in changes:
                    name = change.after.name
                    # Inserting a row that is not there yet cannot lock it: ON CONFLICT DO NOTHING
                    # plus the check below catches a concurrent insert instead.
                    self._check_unchanged(conn, change)
                    if change.before is None:
                        inserted = conn.execute(
                            f"INSERT INTO vms ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                            tuple(change.after)).rowcount
                        if inserted != 1:
                            raise StateError(changed_under_us(self._where, name))
                    else:
                        conn.execute("UPDATE vms SET provider_ip = %s, vm_id = %s, config = %s, status = %s, "
                                     "created_at = %s WHERE name = %s", (*change.after[1:], name))
            return len(changes)

        return self._write(write, create=True)

    # --- the name lock ----------------------------------------------------------------

    @contextmanager
    def lock(self, name: str, *, timeout: float) -> Iterator[_PgNameLock]:
        """Hold the advisory lock on VM name ``name`` for the block, on a connection of its own.

        ``timeout`` is how long to wait for another holder (0: do not wait); connecting has its own.
        """
        key = name_lock_key(name)
        conn = self._run("lock", lambda _c: self._open(), reuse=False)
        try:
            try:
                conn.execute("SELECT " + ", ".join("set_config(%s, %s, false)" for _pair in _LOCK_KEEPALIVES),
                             [v for pair in _LOCK_KEEPALIVES for v in pair])
                if timeout > 0:
                    # lock_timeout bounds the wait server-side, so a wait cannot outlive the budget.
                    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, int(timeout * 1000))}ms",))
                    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
                elif not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                    raise pg_errors.LockNotAvailable("the lock is held")
            except pg_errors.LockNotAvailable:
                raise StateError(
                    f"VM name {name!r} is locked by another controller using PostgreSQL at {self.location} "
                    f"(it is probably creating that VM) and was not released within {timeout:g} s") from None
            except psycopg.Error as exc:
                raise self._state_error(exc, "lock a VM name in", conn) from None
            yield _PgNameLock(self, name, conn)
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                pass  # the session is gone, and the server released its locks with it
            finally:
                conn.close()

    # --- connections and errors -----------------------------------------------------

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._conn_pid == os.getpid():
            conn.close()

    def __enter__(self) -> PostgresStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> Any:
        conn = psycopg.connect(**self._params, autocommit=True)
        try:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, int(self.busy_timeout * 1000))}ms",))
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> Any:
        if self._conn is not None and (self._conn_pid != os.getpid() or self._conn.closed or self._conn.broken):
            # After a fork the parent's connection is the parent's; psycopg leaves it alone.
            self._conn = None
            self._schema_ok = False
        if self._conn is None:
            self._conn = self._open()
            self._conn_pid = os.getpid()
        return self._conn

    def _run(self, action: str, work: Callable[[Any], _T], *, reuse: bool = True, retry: bool = False) -> _T:
        """Run ``work`` on the store's connection, turning psycopg errors into StateError.

        ``retry``: for reads only, one more go on a new connection when a kept one turns out
        dead (the server restarted since); a write is never repeated, its outcome is unknown.
        """
        with self._guard:
            return self._run_locked(action, work, reuse=reuse, retry=retry)

    def _run_locked(self, action: str, work: Callable[[Any], _T], *, reuse: bool, retry: bool) -> _T:
        conn = None
        try:
            kept = reuse and self._conn is not None
            conn = self._connection() if reuse else None
            try:
                return work(conn)
            except psycopg.OperationalError:
                if not (retry and kept and conn is not None and conn.broken):
                    raise
                self.close()
                conn = None  # so a failure to reconnect reads as "cannot connect"
                conn = self._connection()
                return work(conn)
        except psycopg.Error as exc:
            if reuse and self._conn is not None and (self._conn.broken or isinstance(exc, psycopg.OperationalError)):
                self.close()  # the next call starts on a fresh connection
            raise self._state_error(exc, action, conn) from None

    @property
    def _where(self) -> str:
        return f"PostgreSQL at {self.location}"

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        def read(conn: Any) -> list[tuple[Any, ...]]:
            try:
                return conn.execute(sql, params).fetchall()
            except pg_errors.UndefinedTable:
                return []  # nothing created yet, as a missing state file reads as empty

        return self._run("read", read, retry=True)

    def _update_existing(self, work: Callable[[Any], _T]) -> _T | None:
        def in_transaction(conn: Any) -> _T:
            with conn.transaction():
                return work(conn)

        return self._write(in_transaction, create=False, absent=None)

    def _write(self, work: Callable[[Any], _T], *, create: bool, absent: Any = None) -> _T:
        def run(conn: Any) -> _T:
            if not self._schema_ok:
                if not create and current_version(conn) is None:
                    return absent  # no table: nothing to update, and no reason to create one
                try:
                    ensure_schema(conn, self.migrations)
                except SchemaTooNew as exc:
                    raise StateError(
                        f"PostgreSQL at {self.location} holds golem.vm state schema version {exc.found}, newer than "
                        f"this collection knows ({exc.known}); upgrade the golem.vm collection on this controller"
                    ) from None
                self._schema_ok = True
            return work(conn)

        return self._run("write", run)

    def _cause(self, exc: BaseException) -> str:
        text = re.sub(r"\s+", " ", str(exc)).strip()
        return self._url.scrub(text, environment_secrets()) or type(exc).__name__

    def _state_error(self, exc: BaseException, action: str, conn: Any = None) -> StateError:
        where = f"PostgreSQL at {self.location}"
        cause = self._cause(exc)
        lowered = cause.lower()
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if conn is None and isinstance(exc, psycopg.OperationalError):
            if "password" in lowered or sqlstate.startswith("28"):
                msg = (f"{where} refused the login; check the password (in the URL, PGPASSWORD or a passfile) "
                       "and that pg_hba.conf lets this host in")
            else:
                msg = f"cannot connect to {where} (is it running, and is the address right?)"
        elif isinstance(exc, pg_errors.LockNotAvailable):
            msg = f"{where}: a row is still locked by another process after {self.busy_timeout:g} s"
        elif isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            msg = f"{where} is read-only (a standby?); point the URL at the primary"
        elif isinstance(exc, pg_errors.InsufficientPrivilege):
            msg = f"the role in the URL may not {action} the golem.vm tables in {where}"
        elif isinstance(exc, pg_errors.DiskFull):
            msg = f"{where} has no space left to {action} the state"
        elif isinstance(exc, pg_errors.DuplicateTable):
            msg = (f"{where} already has a vms table that golem.vm did not create; use another database, "
                   "or another schema with ?options=-csearch_path%3D<schema>")
        elif isinstance(exc, (pg_errors.UndefinedColumn, pg_errors.UndefinedTable)):
            msg = f"{where} has a vms table without upstream's columns"
        elif isinstance(exc, psycopg.OperationalError):
            msg = f"lost the connection to {where} while trying to {action} the state"
        else:
            msg = f"cannot {action} the state in {where}"
        return StateError(f"{msg} (postgresql: {cause})")
