# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What golem_stream decides about one stream, as plain arithmetic on the chain's view of it.

No chain access here (the caller reads ``streams(id)`` and the block time), so every decision
- is it over, how much a top-up pays, what a termination gives back - is a pure function of the
numbers the contract stores, and the unit tests check it to the wei.

The contract moves stopTime by ``amount // ratePerSecond`` on a top-up, so paying
``rate * seconds`` adds exactly ``seconds`` of runway: a stream topped up to N hours stops
exactly N hours after the block time it was read at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError

# With no top_up_below_hours, a stream is topped up once it has less than runway_hours minus this:
# a run right after a top-up (the chain's clock has moved on a few seconds) changes nothing.
RUNWAY_SLACK_SECONDS = 60


@dataclass(frozen=True)
class ChainStream:
    """streams(id) as the contract stores it, and what follows from it at block time ``now``."""

    stream_id: int
    token: str
    sender: str
    recipient: str
    start_time: int
    stop_time: int
    rate: int
    deposit: int
    withdrawn: int
    halted: bool
    now: int

    @property
    def remaining_seconds(self) -> int:
        """Runway left at ``now``; 0 once the stream has ended (runway.ending decides, for every reader)."""
        return remaining_seconds(self)

    def vested_at(self, when: int) -> int:
        end = min(max(when, self.start_time), self.stop_time)
        return max(self.withdrawn, min(self.deposit, (end - self.start_time) * self.rate))

    def view(self) -> dict[str, Any]:
        """The chain's view, JSON-safe (wei as int; they fit Python ints, and YAML/JSON carry them)."""
        return {"stream_id": self.stream_id, "token": self.token, "sender": self.sender,
                "recipient": self.recipient, "start_time": self.start_time, "stop_time": self.stop_time,
                "rate_wei_per_second": self.rate, "deposit_wei": self.deposit, "withdrawn_wei": self.withdrawn,
                "halted": self.halted, "chain_time": self.now, "remaining_seconds": self.remaining_seconds}


@dataclass(frozen=True)
class TopUp:
    """A top-up to ``seconds_after`` of runway, as of block time ``now``."""

    amount_wei: int
    seconds_added: int
    stop_time_before: int
    stop_time_after: int
    deposit_wei_before: int
    deposit_wei_after: int
    remaining_seconds_before: int
    remaining_seconds_after: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _zero(address: str) -> bool:
    """The zero address, however it is written: the contract's mark of an account never set or cleared."""
    return not address.lower().removeprefix("0x").strip("0")


def exists(stream: ChainStream) -> bool:
    """Unknown ids read as all zeros; a terminated stream keeps its sender."""
    return not _zero(stream.sender)


def terminated(stream: ChainStream) -> bool:
    """terminate() zeroes the recipient (upstream's contract and ours alike)."""
    return _zero(stream.recipient)


def ending(*, found: bool, is_terminated: bool, halted: bool, stop_time: int, now: int,
           brief: bool = False) -> tuple[int, str | None]:
    """Whether a stream has ended, decided once for every reader of ``streams(id)``: its runway at block time
    ``now`` and, once it pays nothing any more, why (else None).

    ``brief`` words a halt as a refresh reports it, in a line the inventory quotes; golem_stream's refusal
    to top up says what the halt stopped.
    """
    if not found:
        return 0, "does not exist on the chain"
    if is_terminated:
        return 0, "was terminated"
    if halted:
        return 0, (f"was halted at chain time {stop_time}" if brief
                   else f"was halted (vesting stopped at chain time {stop_time})")
    if stop_time <= now:
        return 0, f"ran out at chain time {stop_time}"
    return stop_time - now, None


def _ending(stream: ChainStream) -> tuple[int, str | None]:
    return ending(found=exists(stream), is_terminated=terminated(stream), halted=stream.halted,
                  stop_time=stream.stop_time, now=stream.now)


def ended_reason(stream: ChainStream) -> str | None:
    """Why the stream pays nothing any more (terminated, halted, ran out), or None while it runs."""
    return _ending(stream)[1]


def remaining_seconds(stream: ChainStream) -> int:
    """Seconds of runway left at the stream's block time; 0 once it has ended."""
    return _ending(stream)[0]


def threshold_seconds(runway_hours: int, top_up_below_hours: float | None) -> int:
    """The runway below which a stream is topped up; checked against ``runway_hours``."""
    target = runway_hours * 3600
    if top_up_below_hours is None:
        return target - RUNWAY_SLACK_SECONDS
    # Compared before rounding, so NaN and infinity are refused too; then at least a second must be left.
    below = round(top_up_below_hours * 3600) if 0 < top_up_below_hours <= runway_hours else 0
    if not 0 < below <= target:
        raise ValidationError(
            f"top_up_below_hours {top_up_below_hours:g} must be more than 0 and at most runway_hours "
            f"({runway_hours}): a stream is topped up to runway_hours once its runway falls below it",
            field="top_up_below_hours", value=top_up_below_hours)
    return below


def plan_top_up(stream: ChainStream, runway_hours: int, below_seconds: int) -> TopUp | None:
    """The top-up that brings a running stream to exactly ``runway_hours``; None when it has enough.

    The caller has checked that the stream runs (``ended_reason`` is None): an ended stream
    cannot be topped up.
    """
    remaining = stream.stop_time - stream.now
    if remaining >= below_seconds:
        return None
    seconds = runway_hours * 3600 - remaining
    amount = stream.rate * seconds
    return TopUp(amount_wei=amount, seconds_added=seconds, stop_time_before=stream.stop_time,
                 stop_time_after=stream.stop_time + seconds, deposit_wei_before=stream.deposit,
                 deposit_wei_after=stream.deposit + amount, remaining_seconds_before=remaining,
                 remaining_seconds_after=remaining + seconds)


def refund_at(stream: ChainStream, when: int) -> int:
    """What terminating at block time ``when`` gives back to the sender: the deposit not vested by then."""
    return stream.deposit - stream.vested_at(when)


def diff_view(stream: ChainStream | None, *, stop_time: int | None = None, deposit: int | None = None,
              ended: bool | None = None) -> dict[str, Any]:
    """What diff mode compares; the keyword arguments give the state after a change not made yet."""
    if stream is None:
        return {}
    stop = stream.stop_time if stop_time is None else stop_time
    is_ended = ended_reason(stream) is not None if ended is None else ended
    return {
        "stream_id": stream.stream_id,
        "stop_time": stop,
        "deposit_wei": stream.deposit if deposit is None else deposit,
        "remaining_seconds": 0 if is_ended else max(0, stop - stream.now),
        "ended": is_ended,
    }
