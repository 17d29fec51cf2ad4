# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the create transaction lets the payment step in: its own module, so paying code (and golem_stream,
which only tops up) need not load the create path to implement or name it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement


class CreateHooks:
    """Extension points of the create transaction; the default does nothing."""

    def bill(self, placement: Placement, client: Any, spec: ResourceSpec) -> dict[str, Any] | None:
        """Check mode: what a create on ``placement`` would pay, or None when it pays nothing. Reads only;
        raises as ``before_post`` would, so check mode refuses what a real run would refuse."""
        return None

    def before_post(self, placement: Placement, client: Any, spec: ResourceSpec,
                    note: Callable[[dict[str, Any]], None], act: Callable[[str], None], name: str) -> dict[str, Any]:
        """Runs after the row of VM ``name`` is written and before the POST; returns fields for the
        request (``stream_id``) and the row (a None value removes a key). ``note(config)`` records
        something at once (a transaction hash), so a failure right after it still leaves it in the row."""
        return {}

    def after_failure(self, placement: Placement, record: VMRecord | None, vm_gone: bool,
                      act: Callable[[str], None]) -> None:
        """Runs after a failed create on ``placement``; ``vm_gone`` when the VM is known not to exist.

        ``record`` is the row as it stands (None if there was none). Raising a GolemError keeps
        the row, with status error, for the next run to settle.
        """

    def carried(self, name: str, placement: Placement) -> dict[str, Any]:
        """Config keys a new row for ``name`` on ``placement`` starts with (a stream an earlier, unfinished
        create paid)."""
        return {}
