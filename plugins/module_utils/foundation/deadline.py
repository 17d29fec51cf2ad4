# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One time budget for a whole task (create, poll, access, SSH wait share it)."""

from __future__ import annotations

import time

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import TaskTimeout


class Deadline:
    def __init__(self, seconds: float, option: str = "wait_timeout") -> None:
        self.seconds = seconds
        self.option = option
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self, doing: str, party: str = "the provider") -> None:
        """``party`` names who the task was waiting on and the setting that points at it, so the user
        knows whether to look at a provider, the payments node or a discovery backend."""
        if self.remaining() <= 0:
            raise TaskTimeout(
                f"{self.option} of {self.seconds:g} s ran out while {doing}; "
                f"raise {self.option} or check {party}"
            )

    def bound(self, timeout: float) -> float:
        """A per-request timeout that never outlives the budget (at least a sliver, so the call can fail)."""
        return max(0.05, min(timeout, self.remaining()))

    def sleep(self, interval: float, doing: str, party: str = "the provider") -> None:
        self.check(doing, party)
        time.sleep(max(0.0, min(interval, self.remaining())))
        self.check(doing, party)
