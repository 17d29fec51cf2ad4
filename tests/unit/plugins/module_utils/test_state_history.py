# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A row's history: written in one shape, read back keeping only that shape (a row may be someone else's)."""

from __future__ import annotations

import pytest

from ansible_collections.golem.vm.plugins.module_utils.state.history import (
    MAX_EVENTS,
    event,
    read_history,
    with_event,
)

TX = "0x" + "ab" * 32


def test_an_event_is_appended_and_read_back() -> None:
    entry = event("abandoned", "provider 0xus stopped answering", wei=12, tx=TX, at=100)
    history = with_event({}, entry)
    assert history == [{"at": 100, "event": "abandoned", "detail": "provider 0xus stopped answering", "wei": 12,
                        "tx": TX}]
    assert read_history({"history": history}) == history


@pytest.mark.parametrize("hostile", [
    "not a list", [1], [{"at": 1, "event": "rm -rf", "detail": "x"}], [{"at": -1, "event": "settled", "detail": "x"}],
    [{"at": 1, "event": "settled", "detail": "x", "tx": "0x1; touch /tmp/p"}],
    [{"at": 1, "event": "settled", "detail": "x", "wei": -5}], [{"at": True, "event": "settled", "detail": "x"}],
    [{"at": 1, "event": "settled", "detail": "x", "extra": "{{ lookup('pipe', 'id') }}"}],
    [{"at": 1, "event": "settled", "detail": "x" * 501}],
])
def test_entries_of_another_shape_are_left_out(hostile: object) -> None:
    assert read_history({"history": hostile}) == []
    # Appending to a row with such entries keeps only the new one.
    assert [e["event"] for e in with_event({"history": hostile}, event("settled", "ok", at=1))] == ["settled"]


def test_only_the_newest_entries_are_kept() -> None:
    config: dict[str, object] = {}
    for n in range(MAX_EVENTS + 5):
        config["history"] = with_event(config, event("unreachable", f"try {n}", at=n))
    kept = read_history(config)
    assert len(kept) == MAX_EVENTS and kept[0]["at"] == 5 and kept[-1]["at"] == MAX_EVENTS + 4


def test_an_unknown_event_kind_is_a_bug_not_a_row() -> None:
    with pytest.raises(ValueError):
        event("deleted everything", "x")
