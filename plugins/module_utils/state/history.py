# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A row's history: what golem_fleet did to a member and why (it stopped answering, was abandoned and replaced,
was settled, had its stream topped up), kept in the row's config under ``history``, which the upstream CLI
ignores.

A row may have been written by someone else, so history is read through ``read_history``, which keeps only
entries of the shape written here; the newest ``MAX_EVENTS`` are kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

HISTORY_KEY = "history"
MAX_EVENTS = 50
EVENTS = ("unreachable", "answered", "abandoned", "stream_terminated", "replacement", "settled", "topped_up")
_TX = re.compile(r"0x[0-9a-fA-F]{64}")
_DETAIL_MAX = 500


def event(kind: str, detail: str, *, wei: int | None = None, tx: str | None = None,
          at: int | None = None) -> dict[str, Any]:
    """One entry: ``kind`` (one of EVENTS), a sentence saying why, the wei it moved and its transaction."""
    if kind not in EVENTS:
        raise ValueError(f"unknown history event {kind!r}")
    entry: dict[str, Any] = {"at": int(time.time()) if at is None else at, "event": kind, "detail": detail[:_DETAIL_MAX]}
    if wei is not None:
        entry["wei"] = int(wei)
    if tx is not None:
        entry["tx"] = tx
    return entry


def _valid(entry: Any) -> bool:
    if not isinstance(entry, Mapping) or set(entry) - {"at", "event", "detail", "wei", "tx"}:
        return False
    at, wei, tx = entry.get("at"), entry.get("wei"), entry.get("tx")
    return (isinstance(at, int) and not isinstance(at, bool) and at >= 0
            and entry.get("event") in EVENTS
            and isinstance(entry.get("detail"), str) and len(entry["detail"]) <= _DETAIL_MAX
            and (wei is None or (isinstance(wei, int) and not isinstance(wei, bool) and wei >= 0))
            and (tx is None or (isinstance(tx, str) and _TX.fullmatch(tx) is not None)))


def read_history(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The row's entries that have the shape written here, oldest first; anything else is left out."""
    entries = config.get(HISTORY_KEY)
    if not isinstance(entries, list):
        return []
    return [dict(e) for e in entries if _valid(e)][-MAX_EVENTS:]


def with_event(config: Mapping[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The history to write back (``set_status(..., history=...)``): the row's, plus ``entry``."""
    return (read_history(config) + [entry])[-MAX_EVENTS:]
