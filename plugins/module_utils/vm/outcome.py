# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one VM's task did: whether it changed anything, the actions it reports, and in check mode what a
create would send and pay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    changed: bool = False
    actions: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None
    # Check mode: what the create would pay (CreateHooks.bill); None when it pays nothing.
    bill: dict[str, Any] | None = None
    # The VM was given up on (healing.py): why, the stream terminated and the wei that came back.
    abandoned: dict[str, Any] | None = None
