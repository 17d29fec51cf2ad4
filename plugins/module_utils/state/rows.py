# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One ``vms`` row as both backends read and write it: upstream's columns, the record a row makes,
its config JSON, and the row as stored (``RawRow``) for copying between backends.

Shared by the SQLite file and PostgreSQL, so a row reads and writes the same whichever one holds it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation import wire_json
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord

# Named columns, never SELECT *: some upstream versions added an ssh_key_name column.
COLUMNS = "name, provider_ip, vm_id, config, status, created_at"


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


def text_or_none(value: Any) -> str | None:
    """A column value as text: SQLite may hand back int or bytes for a TEXT column."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return str(value)


def raw_row(row: Sequence[Any]) -> RawRow:
    """The ``COLUMNS`` of one row as stored."""
    name, provider_ip, vm_id, config, status, created_at = row
    return RawRow(
        name=text_or_none(name) or "",
        provider_ip=text_or_none(provider_ip) or "",
        vm_id=text_or_none(vm_id) or "",
        config=text_or_none(config) or "",
        status=text_or_none(status) or "",
        created_at=text_or_none(created_at),
    )


def record_from_row(row: Sequence[Any]) -> VMRecord:
    """The ``COLUMNS`` of one row as a VMRecord; an unreadable config is flagged on it, not raised."""
    name, provider_ip, vm_id, raw_config, status, created_at = row
    record = VMRecord(
        name=str(name),
        provider_ip="" if provider_ip is None else str(provider_ip),
        vm_id="" if vm_id is None else str(vm_id),
        status="" if status is None else str(status),
        created_at=None if created_at is None else str(created_at),
    )
    try:
        config = wire_json.loads(raw_config)
    except (TypeError, ValueError) as exc:
        record.config_error = f"config of VM {record.name!r} is not valid JSON: {exc}"
        return record
    if not isinstance(config, dict):
        record.config_error = f"config of VM {record.name!r} is JSON {type(config).__name__}, not an object"
        return record
    record.config = config
    return record


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamped(config: Mapping[str, Any], updates: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``config`` with ``updates`` merged in (a None value removes the key) and ``updated_at`` now."""
    merged = dict(config)
    for key, value in (updates or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    merged["updated_at"] = utc_now()
    return merged


def dump_config(name: str, config: Mapping[str, Any]) -> str:
    """The config column's text for VM ``name``."""
    try:
        return json.dumps(dict(config), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"config of VM {name!r} cannot be stored as JSON: {exc}", field="config", value=None
        ) from exc


def changed_under_us(location: str, name: str) -> str:
    return (f"row {name!r} in {location} changed while it was being copied (another controller wrote it); "
            "nothing was copied: run the copy again")
