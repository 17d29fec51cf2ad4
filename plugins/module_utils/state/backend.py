# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface to the state, whoever stores it.

Two implementations, picked by ``state_open.open_store``:

* ``state_sqlite.SQLiteStateStore``: the upstream CLI's SQLite file (``state.StateStore``)
  plus a per-name lock, for one controller;
* ``state_postgres.PostgresStateStore``: one PostgreSQL database a team shares.

Both keep the same rows (upstream's ``vms`` columns, ``config`` as JSON text, every key of
ours in it) and raise ``StateError`` with a message naming the file or the server, never a
password.

``lock(name, timeout=...)`` is what makes two controllers asking for the same VM name at
the same time create one VM: a create holds it from "is there a row?" to "the row says
running", so the second asker waits, then finds the first one's row and adopts it instead
of renting a second VM. It is not reentrant: taking the same name twice in one process
waits for itself until the timeout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import VMRecord

# Long enough for a create (placement, provider job, SSH wait); callers pass their own budget.
DEFAULT_NAME_LOCK_TIMEOUT = 600.0


class RawRow(NamedTuple):
    """One ``vms`` row exactly as stored (config unparsed), for copying between backends."""

    name: str
    provider_ip: str
    vm_id: str
    config: str
    status: str
    created_at: str | None


class RawChange(NamedTuple):
    """Write ``after``, provided the row is still ``before`` (None: still absent)."""

    before: RawRow | None
    after: RawRow


class NameLock(Protocol):
    """What ``with store.lock(name, timeout=...) as held`` gives the holder."""

    name: str

    def verify(self) -> None:
        """Raise StateError if the lock may have been lost (e.g. the PostgreSQL session died).

        Worth calling right before the step that must not happen twice, such as asking a
        provider for a new VM.
        """


class StateBackend(Protocol):
    """The state store's interface; see ``state.StateStore`` for the semantics of each call."""

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


def text_or_none(value: Any) -> str | None:
    """A column value as text: SQLite may hand back int or bytes for a TEXT column."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return str(value)


def raw_row(row: Sequence[Any]) -> RawRow:
    name, provider_ip, vm_id, config, status, created_at = row
    return RawRow(
        name=text_or_none(name) or "",
        provider_ip=text_or_none(provider_ip) or "",
        vm_id=text_or_none(vm_id) or "",
        config=text_or_none(config) or "",
        status=text_or_none(status) or "",
        created_at=text_or_none(created_at),
    )


def changed_under_us(location: str, name: str) -> str:
    return (f"row {name!r} in {location} changed while it was being copied (another controller wrote it); "
            "nothing was copied: run the copy again")
