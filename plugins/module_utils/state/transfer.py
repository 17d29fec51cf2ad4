# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy the state between two backends (SQLite file <-> PostgreSQL), idempotently.

Rows go as stored: name, provider IP, VM id, the config JSON text and created_at byte for
byte, so a row's history (updated_at, stream id, labels, host key references) moves with
it, and a second run finds nothing to do. The copy only adds and updates rows in the
destination; a row only the destination has stays.

A row on both sides with different content is a conflict, settled by ``on_conflict``:

* ``fail`` (default): nothing is copied and the conflicting names are listed; a person
  decides (often: the destination is newer because controllers already use it);
* ``newer``: the side whose ``config.updated_at`` is later wins (the destination is kept
  when it is the newer one); a tie, or a row without updated_at (written by the upstream
  CLI), is still a conflict, because "newer" cannot be told;
* ``source``: the source overwrites the destination.

All writes happen in one destination transaction that first checks each destination row
is still what the plan saw, so a controller writing meanwhile makes the copy stop with
nothing written instead of losing its write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation import wire_json
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.backend import RawChange, RawRow, StateBackend

ON_CONFLICT = ("fail", "newer", "source")
# A failure message lists this many names, then says how many more.
_LIST_LIMIT = 10


@dataclass
class CopyPlan:
    create: list[RawRow] = field(default_factory=list)
    update: list[RawChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # destination newer (on_conflict=newer)
    conflicts: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[RawChange]:
        return [RawChange(None, row) for row in self.create] + list(self.update)


def updated_at(row: RawRow) -> str | None:
    """The row's ``config.updated_at`` (ISO 8601 UTC, so it sorts as text); None if unreadable or absent."""
    try:
        config = wire_json.loads(row.config)
    except ValueError:
        return None
    value = config.get("updated_at") if isinstance(config, dict) else None
    return value if isinstance(value, str) and value else None


def plan_copy(source: Sequence[RawRow], destination: Sequence[RawRow], on_conflict: str = "fail") -> CopyPlan:
    if on_conflict not in ON_CONFLICT:
        raise ValidationError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, got {on_conflict!r}",
                              field="on_conflict", value=on_conflict)
    existing = {row.name: row for row in destination}
    plan = CopyPlan()
    for row in source:
        there = existing.get(row.name)
        if there is None:
            plan.create.append(row)
        elif there == row:
            plan.unchanged.append(row.name)
        elif on_conflict == "source":
            plan.update.append(RawChange(there, row))
        elif on_conflict == "newer":
            ours, theirs = updated_at(row), updated_at(there)
            if ours is None or theirs is None or ours == theirs:
                plan.conflicts.append(row.name)
            elif ours > theirs:
                plan.update.append(RawChange(there, row))
            else:
                plan.kept.append(row.name)
        else:
            plan.conflicts.append(row.name)
    return plan


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_LIST_LIMIT])
    return shown + (f" and {len(names) - _LIST_LIMIT} more" if len(names) > _LIST_LIMIT else "")


def row_view(row: RawRow) -> dict[str, Any]:
    """A row for people (diffs, results): config parsed when it is JSON, as text when not."""
    try:
        config: Any = wire_json.loads(row.config)
    except ValueError:
        config = row.config
    return {"provider_ip": row.provider_ip, "vm_id": row.vm_id, "status": row.status,
            "created_at": row.created_at, "config": config}


@dataclass
class CopyResult:
    plan: CopyPlan
    written: int
    dry_run: bool

    @property
    def changed(self) -> bool:
        return bool(self.plan.changes)

    def summary(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "dry_run": self.dry_run,
            "created": [row.name for row in self.plan.create],
            "updated": [change.after.name for change in self.plan.update],
            "kept": list(self.plan.kept),
            "unchanged": len(self.plan.unchanged),
        }

    def diff(self, source: str, destination: str) -> dict[str, Any]:
        """Ansible's diff: the destination's affected rows before and after, by name."""
        before = {c.after.name: row_view(c.before) for c in self.plan.changes if c.before is not None}
        after = {c.after.name: row_view(c.after) for c in self.plan.changes}
        return {"before": before, "after": after, "before_header": destination,
                "after_header": f"{destination} (rows from {source})"}


def copy_state(source: StateBackend, destination: StateBackend, *, on_conflict: str = "fail",
               dry_run: bool = False) -> CopyResult:
    """Copy every row of ``source`` into ``destination``; with ``dry_run``, only plan.

    Raises StateError when the source has no state at all (most likely a wrong path or
    URL) and when conflicts remain under ``on_conflict``, writing nothing in both cases.
    """
    if not source.exists():
        raise StateError(f"there is no state to copy in {source.backend} {source.location}: "
                         "check the path or URL (nothing was copied)")
    plan = plan_copy(source.raw_rows(), destination.raw_rows(), on_conflict)
    if plan.conflicts:
        hint = {"fail": "choose on_conflict=newer or on_conflict=source, or remove one side's rows",
                "newer": "their updated_at is equal or missing, so neither is newer; use on_conflict=source "
                         "to take the source's"}.get(on_conflict, "")
        raise StateError(
            f"{len(plan.conflicts)} row(s) differ between {source.backend} {source.location} and "
            f"{destination.backend} {destination.location}: {_names(plan.conflicts)}; nothing was copied "
            f"({hint})")
    written = 0 if dry_run else destination.apply_raw(plan.changes)
    return CopyResult(plan=plan, written=written, dry_run=dry_run)
