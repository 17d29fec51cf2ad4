# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQLite state file behind the backend interface: ``StateStore`` plus a name lock and raw writes.

``StateStore`` (sqlite_file.py) is unchanged; this subclass adds what ``backend.StateBackend``
asks for beyond it, so code written against the interface runs on either backend.

The name lock is an exclusive ``flock`` on a sidecar file per name, in ``<state file>.locks/``
(0700), named by a hash of the VM name so any name is a safe file name. flock belongs to
the open file, not to the process, so two locks on one name conflict even inside one
process, as two PostgreSQL sessions do; the kernel drops it when the holder dies. The lock
files are never removed: unlinking one while another process waits on it would let two
holders in at once (see ``foundation.files.file_lock``). They are empty; one per name ever locked.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError
from ansible_collections.golem.vm.plugins.module_utils.foundation.files import ensure_private_dir, file_lock
from ansible_collections.golem.vm.plugins.module_utils.state.rows import COLUMNS, RawChange
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore


class _FileNameLock:
    """A held flock; it cannot be lost while its descriptor is open, so ``verify`` has nothing to do."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path

    def verify(self) -> None:
        return None


class SQLiteStateStore(StateStore):
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

    # --- raw writes, for the copy tool ----------------------------------------------------

    def apply_raw(self, changes: Sequence[RawChange]) -> int:
        if not changes:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            for change in changes:
                self._check_unchanged(conn, change)
                after = change.after
                conn.execute(
                    f"INSERT INTO vms ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
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
