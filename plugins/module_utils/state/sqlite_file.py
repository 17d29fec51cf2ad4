# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local state store: one SQLite file shared with the upstream ``golem`` CLI.

The table is upstream's ``vms`` table, unchanged, so ``golem vm list`` keeps working on
VMs this collection created. The CLI reads ``config`` as ``{cpu, memory, storage,
ssh_port, stream_id?}``; everything only we need lives in that same JSON object, because
the CLI ignores keys it does not know and a new column would break nothing today but
might break a future upstream migration. Config keys we write:

    cpu, memory, storage, ssh_port, stream_id     (read by the CLI)
    provider_id, provider_port, country, ssh_host, ssh_user, ssh_private_key_path,
    image, size, error, updated_at, job_id, api
    stream_tx, stream_contract, stream_sender, stream_opened, stream_rate_wei,
    stream_deposit_wei, stream_terminated          (a payment stream the collection opened)

Concurrency: Ansible runs each fork as its own process, so every operation opens its own
connection, writes in a short ``BEGIN IMMEDIATE`` transaction in WAL mode and closes.
Readers never create anything; writers create the directory 0700 and the file 0600.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.files import (
    create_private_file,
    ensure_private_dir,
    tighten_mode,
)
from ansible_collections.golem.vm.plugins.module_utils.state.backend import BUSY_TIMEOUT
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.row_store import Dialect, RowStore
from ansible_collections.golem.vm.plugins.module_utils.state.rows import COLUMNS, dump_config, record_from_row, stamped
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import check_status

# Byte-for-byte what we execute; upstream's own statement differs only in whitespace.
UPSTREAM_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS vms (name TEXT PRIMARY KEY, provider_ip TEXT NOT NULL, "
    "vm_id TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'running', "
    "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
)

SQLITE = Dialect(
    placeholder="?",
    # SQLite's BINARY collation compares UTF-8 bytes, which orders as Python compares str.
    name_order="name",
    # No row locks: every write runs in BEGIN IMMEDIATE, which already keeps other writers out.
    row_lock="",
    max_in_list=500,
)
SQLITE_HEADER = b"SQLite format 3\x00"

_T = TypeVar("_T")


def check_state_path(path: str, field: str = "state_path") -> None:
    """Refuse a state path that can only fail later, naming ``field``; reads at most 16 bytes, writes nothing.

    A missing file is fine (it is created on the first write), but not a directory in its place,
    a file that is not an SQLite database, or a parent that is a file.
    """
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
        raise ValidationError(f"{field} {path!r} is a directory; give the path of the SQLite state file",
                              field=field, value=path)
    if os.path.lexists(path):
        if not os.path.isfile(path):
            raise ValidationError(f"{field} {path!r} is not a regular file", field=field, value=path)
        try:
            with open(path, "rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise ValidationError(f"{field} {path!r} cannot be read: {exc.strerror or exc}",
                                  field=field, value=path) from None
        # An empty file is what a fresh, never-written database looks like to SQLite.
        if header and header != SQLITE_HEADER:
            raise ValidationError(
                f"{field} {path!r} is not an SQLite database (it does not start with the SQLite header); "
                "it was left unchanged", field=field, value=path)
        return
    probe = os.path.dirname(path)
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValidationError(f"{field} {path!r} cannot be created: {probe} is a file, not a directory",
                              field=field, value=path)


class StateStore(RowStore):
    """The ``vms`` table in one SQLite file; every call opens, uses and closes its own connection.

    ``get``, ``list``, ``raw_rows`` and ``set_status`` come from ``RowStore``, in SQLite's SQL.
    """

    backend = "sqlite"
    dialect = SQLITE

    def __init__(self, path: str | None = None, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = os.path.abspath(os.path.expanduser(path)) if path else settings.state_path(None).value
        self.busy_timeout = busy_timeout

    @property
    def location(self) -> str:
        """Where the rows are, for messages: the file's path."""
        return self.path

    @property
    def _where(self) -> str:
        return self.path

    # --- reading (get, list and raw_rows are RowStore's) -------------------------------

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    # --- writing ---------------------------------------------------------------------

    def upsert(self, record: VMRecord) -> VMRecord:
        """Insert or replace the row ``record.name``; keeps the original ``created_at``. Returns the stored row.

        The name and addresses were checked where the user gave them; they are trusted here.
        """
        check_status(record.status)
        config_json = dump_config(record.name, stamped(record.config))

        def write(conn: sqlite3.Connection) -> VMRecord:
            conn.execute(
                f"INSERT INTO vms ({COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, COALESCE(?, CURRENT_TIMESTAMP)) "
                "ON CONFLICT(name) DO UPDATE SET provider_ip = excluded.provider_ip, "
                "vm_id = excluded.vm_id, config = excluded.config, status = excluded.status",
                (record.name, record.provider_ip, record.vm_id, config_json, record.status, record.created_at),
            )
            row = conn.execute(self.dialect.select_row(), (record.name,)).fetchone()
            return record_from_row(row)

        return self._write(write)

    def delete(self, name: str) -> bool:
        """Remove the row ``name``; True if there was one. A missing state file is left missing."""
        if not os.path.lexists(self.path):
            self._check_not_directory()
            return False
        return self._write(lambda conn: conn.execute("DELETE FROM vms WHERE name = ?", (name,)).rowcount > 0)

    # --- connections -----------------------------------------------------------------

    def _check_not_directory(self) -> None:
        if os.path.isdir(self.path):
            raise StateError(f"state path {self.path} is a directory, not an SQLite file")

    def _connect(self, mode: str) -> sqlite3.Connection:
        # A URI with mode=ro/rw never creates the file: creation is ours, with 0600.
        uri = f"file:{quote(self.path)}?mode={mode}"
        return sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None)

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        self._check_not_directory()
        if not os.path.exists(self.path):
            return []

        def read() -> list[tuple[Any, ...]]:
            conn = self._connect("ro")
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table: vms" in str(exc):
                    return []
                raise
            finally:
                conn.close()

        return self._retry(read, "read")

    def _prepare_for_write(self) -> None:
        self._check_not_directory()
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            ensure_private_dir(directory)
        try:
            create_private_file(self.path)
        except OSError as exc:
            raise StateError(f"cannot create state file {self.path}: {exc.strerror or exc}") from exc

    def _update_existing(self, work: Callable[[sqlite3.Connection], _T]) -> _T | None:
        if not os.path.lexists(self.path):
            self._check_not_directory()
            return None  # nothing to update, and no reason to create the file
        return self._write(work)

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        self._prepare_for_write()

        def attempt() -> _T:
            conn = self._connect("rw")
            try:
                # Reading the mode first reads the header, so a foreign file fails here untouched.
                journal_mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                # Only now is it known to be a database: never chmod someone else's file.
                for suffix in ("", "-wal", "-shm"):
                    tighten_mode(self.path + suffix)
                if journal_mode != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(UPSTREAM_SCHEMA)
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result
            finally:
                conn.close()

        return self._retry(attempt, "write")

    def _retry(self, attempt: Callable[[], _T], action: str) -> _T:
        """Run ``attempt``, retrying the cases where SQLite reports busy without waiting.

        The busy timeout covers ordinary lock waits, but SQLite can return SQLITE_BUSY without
        calling the busy handler (e.g. during WAL recovery, or to break a lock-upgrade deadlock);
        those get a jittered retry until the same deadline.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.01
        while True:
            try:
                return attempt()
            except sqlite3.Error as exc:
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.5)
                    continue
                raise self._state_error(exc, action) from exc
            except OSError as exc:
                raise StateError(f"cannot {action} state file {self.path}: {exc.strerror or exc}") from exc

    def _state_error(self, exc: sqlite3.Error, action: str) -> StateError:
        name = getattr(exc, "sqlite_errorname", "") or ""
        cause = str(exc)
        path = self.path
        if name == "SQLITE_NOTADB" or "not a database" in cause:
            msg = f"state file {path} is not an SQLite database; it was left unchanged"
        elif name.startswith("SQLITE_CORRUPT"):
            msg = f"state file {path} is corrupt"
        elif name.startswith("SQLITE_CANTOPEN"):
            msg = f"cannot open state file {path} (does it exist, and is its directory readable/writable?)"
        elif name.startswith("SQLITE_READONLY"):
            msg = f"state file {path} is read-only (check its permissions and those of its directory)"
        elif name == "SQLITE_FULL" or (name.startswith("SQLITE_IOERR") and self._disk_full()):
            msg = f"no space left to {action} state file {path}; the file was left as it was"
        elif name.startswith("SQLITE_IOERR"):
            msg = f"I/O error while trying to {action} state file {path} (failing disk or file size limit?)"
        elif _is_busy(exc):
            msg = f"state file {path} is still locked by another process after {self.busy_timeout:g} s"
        elif "no such column" in cause or "has no column" in cause:
            msg = f"state file {path} has a vms table without upstream's columns"
        else:
            msg = f"cannot {action} state file {path}"
        return StateError(f"{msg} (sqlite: {cause})")

    def _disk_full(self) -> bool:
        # ENOSPC while creating the WAL index surfaces as a generic I/O error; ask the filesystem.
        try:
            st = os.statvfs(os.path.dirname(self.path))
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < 64 * 1024


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return True
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text
