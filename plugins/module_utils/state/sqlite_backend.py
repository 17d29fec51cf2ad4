# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQLite state file behind the backend interface: ``StateStore`` plus a name lock and raw rows.

``StateStore`` (state.py) is unchanged; this subclass adds what ``state_backend.StateBackend``
asks for beyond it, so code written against the interface runs on either backend.

The name lock is an exclusive ``flock`` on a sidecar file per name, in ``<state file>.locks/``
(0700), named by a hash of the VM name so any name is a safe file name. flock belongs to
the open file, not to the process, so two locks on one name conflict even inside one
process, as two PostgreSQL sessions do; the kernel drops it when the holder dies. The lock
files are never removed: unlinking one while another process waits on it would let two
holders in at once (see ``_files.file_lock``). They are empty; one per name ever locked.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError
from ansible_collections.golem.vm.plugins.module_utils.foundation.files import ensure_private_dir, file_lock
from ansible_collections.golem.vm.plugins.module_utils.state.backend import (
    RawChange,
    RawRow,
    changed_under_us,
    raw_row,
)
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore

_RAW_COLUMNS = "name, provider_ip, vm_id, config, status, created_at"


class _FileNameLock:
    """A held flock; it cannot be lost while its descriptor is open, so ``verify`` has nothing to do."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path

    def verify(self) -> None:
        return None


class SQLiteStateStore(StateStore):
    backend = "sqlite"

    @property
    def location(self) -> str:
        return self.path

    def lock_path(self, name: str) -> str:
        digest = hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).hexdigest()[:40]
        return os.path.join(self.path + ".locks", digest + ".lock")

    @contextmanager
    def lock(self, name: str, *, timeout: float) -> Iterator[_FileNameLock]:
        """Hold the lock on VM name ``name`` for the block; StateError if not had within ``timeout`` s."""
        self._check_not_directory()
        path = self.lock_path(name)
        ensure_private_dir(os.path.dirname(path))
        with ExitStack() as stack:
            try:
                stack.enter_context(file_lock(path, timeout=max(timeout, 0.0)))
            except StateError as exc:
                if "still locked" in exc.msg:
                    raise StateError(
                        f"VM name {name!r} is locked by another run using state file {self.path} "
                        f"(it is probably creating that VM) and was not released within {timeout:g} s"
                    ) from None
                raise
            yield _FileNameLock(name, path)

    # --- raw rows, for the copy tool ------------------------------------------------------

    def raw_rows(self) -> list[RawRow]:
        # SQLite's BINARY collation compares UTF-8 bytes, which orders as Python compares str.
        return [raw_row(r) for r in self._read(f"SELECT {_RAW_COLUMNS} FROM vms ORDER BY name", ())]

    def apply_raw(self, changes: Sequence[RawChange]) -> int:
        if not changes:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            for change in changes:
                name = change.after.name
                found = conn.execute(f"SELECT {_RAW_COLUMNS} FROM vms WHERE name = ?", (name,)).fetchone()
                if (raw_row(found) if found is not None else None) != change.before:
                    raise StateError(changed_under_us(self.path, name))
                after = change.after
                conn.execute(
                    f"INSERT INTO vms ({_RAW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET provider_ip = excluded.provider_ip, vm_id = excluded.vm_id, "
                    "config = excluded.config, status = excluded.status, created_at = excluded.created_at",
                    tuple(after),
                )
            return len(changes)

        return self._write(write)

    def close(self) -> None:
        """Nothing to close: every call opens and closes its own connection."""

    def __enter__(self) -> SQLiteStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
