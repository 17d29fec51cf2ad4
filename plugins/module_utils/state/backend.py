# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface to the state, whoever stores it.

Two implementations, picked by ``open_store.open_store``:

* ``sqlite_backend.SQLiteStateStore``: the upstream CLI's SQLite file (``sqlite_file.StateStore``)
  plus a per-name lock, for one controller;
* ``postgres.PostgresStateStore``: one PostgreSQL database a team shares.

Both keep the same rows (upstream's ``vms`` columns, ``config`` as JSON text, every key of
ours in it; see ``rows.py``) and raise ``StateError`` with a message naming the file or the
server, never a password.

``lock(name, timeout=...)`` is what makes two controllers asking for the same VM name at
the same time create one VM: a create holds it from "is there a row?" to "the row says
running", so the second asker waits, then finds the first one's row and adopts it instead
of renting a second VM. It is not reentrant: taking the same name twice in one process
waits for itself until the timeout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.rows import RawChange, RawRow

# How long a call waits for another writer's lock, on either backend, before it gives up.
BUSY_TIMEOUT = 30.0


class NameLock(Protocol):
    """What ``with store.lock(name, timeout=...) as held`` gives the holder."""

    name: str

    def verify(self) -> None:
        """Raise StateError if the lock may have been lost (e.g. the PostgreSQL session died).

        Worth calling right before the step that must not happen twice, such as asking a
        provider for a new VM.
        """


class StateBackend(Protocol):
    """The state store's interface; ``row_store.RowStore`` and ``sqlite_file.StateStore`` say what each call does."""

    @property
    def location(self) -> str:
        """The file path or ``user@host:port/dbname``, for messages; never holds a password."""

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""

    def exists(self) -> bool: ...

    def get(self, name: str) -> VMRecord | None: ...

    def list(
        self,
        statuses: Iterable[str] | str | None = None,
        names: Iterable[str] | str | None = None,
        providers: Iterable[str] | str | None = None,
    ) -> list[VMRecord]: ...

    def upsert(self, record: VMRecord) -> VMRecord: ...

    def set_status(self, name: str, status: str, **config_updates: Any) -> VMRecord | None: ...

    def delete(self, name: str) -> bool: ...

    def lock(self, name: str, *, timeout: float) -> AbstractContextManager[NameLock]: ...

    def raw_rows(self) -> list[RawRow]:
        """Every row as stored, sorted by name (bytewise); a missing store reads as empty."""

    def apply_raw(self, changes: Sequence[RawChange]) -> int:
        """Write every change in one transaction, or none of them if any row is no longer ``before``."""

    def close(self) -> None: ...
