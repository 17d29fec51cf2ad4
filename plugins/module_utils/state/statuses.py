# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VM's statuses: every one a provider reports, and the ones a state row may hold.

Defined here, below the provider's wire models and the VM filters, so the state, the models and
the filters all read the same names. No pydantic: the state and the filters run without it.
"""

from __future__ import annotations

from enum import Enum

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError


class VMStatus(str, Enum):
    """A VM's status as its provider reports it."""

    CREATING = "creating"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"
    DELETED = "deleted"


# A row-only status, never a provider's: golem_fleet gave up on the member (its provider stopped answering and
# its advert left discovery), terminated its stream and replaced it; the row stays until the provider's own
# word settles it (a proven 404, or the VM deleted there).
ABANDONED = "abandoned"
# What a row's status may hold. A provider's passing "stopping" and final "deleted" are only ever
# reported live: a row says "stopped" once the VM has stopped, and a VM's row goes with the VM.
STATUSES: tuple[str, ...] = (
    *(status.value for status in (VMStatus.CREATING, VMStatus.RUNNING, VMStatus.STOPPED, VMStatus.ERROR)), ABANDONED)


def check_status(status: str) -> None:
    """Refuse a status a row may not hold, before anything is written."""
    if status not in STATUSES:
        raise ValidationError(
            f"status must be one of {', '.join(STATUSES)}, got {status!r}", field="status", value=status
        )
