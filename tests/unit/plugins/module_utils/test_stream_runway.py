# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_stream's arithmetic: when a stream is topped up, by how much to the wei, and what a termination gives back.

The streams are ChainStream values as stream_chain reads them; the contract's rules they mirror are in
devnet/contracts/StreamPayment.sol (topUp moves stopTime by amount // rate; terminate refunds what has not vested).
"""

from __future__ import annotations

import pytest
from eth_abi import encode

from ansible_collections.golem.vm.plugins.module_utils.chain.runway import ChainStream
from ansible_collections.golem.vm.plugins.module_utils.chain.runway import (
    RUNWAY_SLACK_SECONDS,
    diff_view,
    ended_reason,
    ending,
    plan_top_up,
    refund_at,
    remaining_seconds,
    threshold_seconds,
)
from ansible_collections.golem.vm.plugins.module_utils.chain.runway_reads import decode
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError

ZERO = "0x" + "0" * 40
ME, PROVIDER = "0x" + "ab" * 20, "0x" + "cd" * 20
RATE = 12_176_560_121_765  # SE's rate for a small VM on the local network, wei a second
START = 1_800_000_000
STREAM_TYPES = ["address", "address", "address", "uint128", "uint128", "uint128", "uint256", "uint256", "bool"]


def stream(*, left: int, rate: int = RATE, deposit: int | None = None, recipient: str = PROVIDER,
           halted: bool = False, sender: str = ME, withdrawn: int = 0, elapsed: int = 600) -> ChainStream:
    """A stream started ``elapsed`` seconds ago with ``left`` seconds of runway at the block read."""
    now = START + elapsed
    stop = now + left
    return ChainStream(7, ZERO, sender, recipient, START, stop, rate,
                       (stop - START) * rate if deposit is None else deposit, withdrawn, halted, now)


def test_a_stream_below_the_threshold_is_topped_up_to_exactly_the_runway() -> None:
    s = stream(left=1800)
    plan = plan_top_up(s, 2, threshold_seconds(2, None))
    assert plan is not None
    assert plan.seconds_added == 2 * 3600 - 1800
    assert plan.amount_wei == RATE * 5400 == 65_753_424_657_531_000
    assert plan.stop_time_after == s.stop_time + 5400 == s.now + 7200, "exactly 2 h after the block it was read at"
    assert plan.deposit_wei_after - plan.deposit_wei_before == plan.amount_wei
    assert (plan.remaining_seconds_before, plan.remaining_seconds_after) == (1800, 7200)
    # What the contract does with it: stopTime moves by amount // rate, to the second.
    assert plan.amount_wei // RATE == plan.seconds_added


def test_a_stream_with_enough_runway_is_left_alone() -> None:
    below = threshold_seconds(2, None)
    assert below == 7200 - RUNWAY_SLACK_SECONDS
    assert plan_top_up(stream(left=7200), 2, below) is None
    assert plan_top_up(stream(left=below), 2, below) is None, "at the threshold is not below it"
    assert plan_top_up(stream(left=below - 1), 2, below) is not None


def test_a_run_right_after_a_top_up_changes_nothing() -> None:
    topped = plan_top_up(stream(left=100), 1, threshold_seconds(1, None))
    assert topped is not None
    # The next run reads the stream a few blocks later: a few seconds less than the runway asked for.
    later = stream(left=topped.remaining_seconds_after - 5, elapsed=605)
    assert plan_top_up(later, 1, threshold_seconds(1, None)) is None


def test_top_up_below_hours_sets_the_threshold() -> None:
    below = threshold_seconds(24, 6)
    assert below == 6 * 3600
    assert plan_top_up(stream(left=7 * 3600), 24, below) is None
    plan = plan_top_up(stream(left=5 * 3600), 24, below)
    assert plan is not None and plan.seconds_added == 19 * 3600 and plan.amount_wei == 19 * 3600 * RATE
    assert threshold_seconds(1, 0.5) == 1800


@pytest.mark.parametrize("below", [0, -1, 2.5, 0.0001, float("nan"), float("inf")])
def test_a_threshold_above_the_runway_or_not_positive_is_refused(below: float) -> None:
    with pytest.raises(ValidationError) as caught:
        threshold_seconds(2, below)
    assert caught.value.field == "top_up_below_hours" and repr(caught.value.value) == repr(below)  # NaN != NaN
    assert f"top_up_below_hours {below:g} must be more than 0 and at most runway_hours (2)" in caught.value.msg


def test_an_odd_rate_still_pays_whole_seconds_to_the_wei() -> None:
    plan = plan_top_up(stream(left=1, rate=3), 1, threshold_seconds(1, None))
    assert plan is not None and plan.amount_wei == 3 * 3599 and plan.stop_time_after - plan.stop_time_before == 3599


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"left": 0}, "ran out at chain time"),
    ({"left": -50}, "ran out at chain time"),
    ({"left": 100, "recipient": ZERO}, "was terminated"),
    ({"left": 0, "halted": True}, "was halted"),
    ({"left": 100, "sender": ZERO, "recipient": ZERO}, "does not exist"),
])
def test_ended_streams_say_why(kwargs: dict, reason: str) -> None:
    s = stream(**kwargs)
    assert reason in (ended_reason(s) or "")
    assert remaining_seconds(s) == 0


def test_a_running_stream_has_not_ended() -> None:
    s = stream(left=42)
    assert ended_reason(s) is None and remaining_seconds(s) == 42


@pytest.mark.parametrize("kwargs", [{"left": 0}, {"left": 100, "recipient": ZERO}, {"left": 0, "halted": True},
                                    {"left": 100, "sender": ZERO, "recipient": ZERO}, {"left": 42}])
def test_the_chain_s_view_and_the_refresh_judge_a_stream_alike(kwargs: dict) -> None:
    s = stream(**kwargs)
    words = "0x" + encode(STREAM_TYPES, [ZERO, s.sender, s.recipient, s.start_time, s.stop_time, s.rate, s.deposit,
                                         s.withdrawn, s.halted]).hex()
    read = decode(words, s.now, s.stream_id)
    assert read.remaining_seconds == remaining_seconds(s) == s.remaining_seconds == s.view()["remaining_seconds"]
    assert (read.ended is None) is (ended_reason(s) is None)
    if not s.halted:
        assert read.ended == ended_reason(s)


def test_a_halt_is_worded_briefly_for_the_refresh_and_in_full_for_golem_stream() -> None:
    s = stream(left=0, halted=True)
    assert ended_reason(s) == f"was halted (vesting stopped at chain time {s.stop_time})"
    assert ending(found=True, is_terminated=False, halted=True, stop_time=s.stop_time, now=s.now,
                  brief=True) == (0, f"was halted at chain time {s.stop_time}")


def test_the_refund_is_the_deposit_that_has_not_vested() -> None:
    s = stream(left=3000, elapsed=600)  # deposit covers 3600 s; 600 vested
    assert refund_at(s, s.now) == 3000 * RATE
    assert refund_at(s, s.now + 1) == 2999 * RATE, "mined a block later, a second more has vested"
    assert refund_at(s, s.stop_time + 10) == 0
    # What the provider withdrew already is part of what vested: it does not change the refund.
    withdrawn = stream(left=3000, elapsed=600, withdrawn=300 * RATE)
    assert refund_at(withdrawn, withdrawn.now) == 3000 * RATE


def test_diff_view_shows_before_and_the_predicted_after() -> None:
    s = stream(left=1800)
    assert diff_view(s) == {"stream_id": 7, "stop_time": s.stop_time, "deposit_wei": s.deposit,
                            "remaining_seconds": 1800, "ended": False}
    after = diff_view(s, stop_time=s.stop_time + 5400, deposit=s.deposit + 5400 * RATE)
    assert after["remaining_seconds"] == 7200 and after["deposit_wei"] == s.deposit + 5400 * RATE
    assert diff_view(s, ended=True)["remaining_seconds"] == 0 and diff_view(None) == {}
