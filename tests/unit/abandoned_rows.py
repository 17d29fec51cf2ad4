# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What golem_fleet leaves in the row of a member it gave up on, for the tests of how such a row is shown
(golem_vm_info, the inventory): its times and a history in which someone else's hand put entries of every
wrong shape next to the two golem_fleet wrote."""

from __future__ import annotations

from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.state.history import event

TX = "0x" + "9f" * 32
UNREACHABLE_SINCE = 1764403200
ABANDONED_AT = 1764406800
GOOD_HISTORY = [
    event("unreachable", "its provider did not answer", at=UNREACHABLE_SINCE),
    event("abandoned", "unreachable for 1 h and gone from discovery; stream terminated", wei=12 * 10 ** 14, tx=TX,
          at=ABANDONED_AT),
]
# Each carries a marker that must never reach what a user sees.
HOSTILE_HISTORY: list[Any] = [
    {"at": 1, "event": "abandoned", "detail": "HOSTILE extra key", "ansible_host": "evil.example"},
    {"at": True, "event": "abandoned", "detail": "HOSTILE bool time"},
    {"at": -5, "event": "abandoned", "detail": "HOSTILE negative time"},
    {"at": 5, "event": "pwned", "detail": "HOSTILE unknown event"},
    {"at": 5, "event": "topped_up", "detail": "HOSTILE short tx", "tx": "0xdead"},
    {"at": 5, "event": "topped_up", "detail": "HOSTILE negative wei", "wei": -1},
    {"at": 5, "event": "topped_up", "detail": "HOSTILE bool wei", "wei": True},
    {"at": 5, "event": "settled", "detail": "HOSTILE" + "x" * 600},
    {"at": 5, "event": "settled", "detail": ["HOSTILE not text"]},
    "HOSTILE {{ lookup('pipe', 'id') }}",
    ["HOSTILE", "a list"],
]
HOSTILE = "HOSTILE"


def abandoned_config() -> dict[str, Any]:
    """The config keys golem_fleet adds to an abandoned member's row."""
    history = [HOSTILE_HISTORY[0], GOOD_HISTORY[0], *HOSTILE_HISTORY[1:6], GOOD_HISTORY[1], *HOSTILE_HISTORY[6:]]
    return {"history": history, "unreachable_since": UNREACHABLE_SINCE, "abandoned_at": ABANDONED_AT}
