# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet's members by name (``<prefix>-NN``), the options checked before any call, and the plan of a run:
which members to keep, which indices to create and which members to destroy.

An index held by an abandoned row (healing.py) is not free: its stand-in takes the lowest free index,
over ``count`` if need be, and is labelled so that later runs keep it as a member.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.provider.models import name_problem
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.fields import country_code

FLEET_LABEL = "golem.vm/fleet"
# A member created because an abandoned row holds its index: a member although its index is over count.
REPLACES_LABEL = "golem.vm/replaces"


def width_for(count: int) -> int:
    """Digits of the index: two, more once the fleet passes 99."""
    return max(2, len(str(count)))


def member_name(prefix: str, index: int, count: int) -> str:
    return f"{prefix}-{index:0{width_for(count)}d}"


def member_index(prefix: str, name: str) -> int | None:
    """The index of a fleet member's name, whatever its padding; None for other names."""
    found = re.fullmatch(re.escape(prefix) + r"-(\d+)", name)
    return int(found.group(1)) if found else None


def check_fleet(prefix: str, count: int, countries: list[str] | None, parallelism: int) -> list[str] | None:
    """Every bad value named before any call is made; the countries as discovery stores them (upper case)."""
    if count < 0:
        raise ValidationError(f"count {count} must not be negative", field="count", value=count)
    if parallelism < 1:
        raise ValidationError(f"parallelism {parallelism} must be at least 1", field="parallelism", value=parallelism)
    # The longest member name is the one a provider could refuse.
    longest = member_name(prefix, max(count, 1), count)
    problem = name_problem(longest)
    if problem:
        raise ValidationError(
            f"name {prefix!r} makes member names like {longest!r} that are not valid VM names: {problem}",
            field="name", value=prefix)
    codes = [country_code(country, field="countries") for country in countries or ()]
    return [code for code in codes if code] or None


@dataclass
class Plan:
    """Members by slot: the index a member stands at (a stand-in stands at the index of the member it replaces)."""

    prefix: str  # the fleet's name: members are <prefix>-NN
    keep: dict[int, VMRecord]
    create: list[int]  # new members' indices (their names), ascending
    destroy: list[VMRecord]  # highest slot first
    # Members the state file has but their provider no longer does, or whose create did not finish: each run
    # through golem_vm's path (adopted if its provider has it, else created again, old placement first).
    repair: dict[int, VMRecord] = field(default_factory=dict)
    # Indices held by abandoned rows, and the names of those rows: a stand-in over count replaces one.
    reserved: dict[int, str] = field(default_factory=dict)
    # Members given up on this run (healing.py), each with why.
    abandon: list[tuple[VMRecord, str]] = field(default_factory=list)

    def rebuilt(self) -> list[tuple[int, VMRecord | None]]:
        """Every index to create, ascending, with the record of a member being repaired."""
        return sorted([(i, None) for i in self.create] + list(self.repair.items()), key=lambda item: item[0])

    # A new member whose slot's index is held by another row: its name's index -> the slot it stands at.
    stands_at: dict[int, int] = field(default_factory=dict)

    def taken(self) -> set[int]:
        """Indices no new member may be named with: every row's, every slot's, and those already planned."""
        rows = [*self.keep.values(), *self.repair.values(), *self.destroy]
        named = {i for i in (member_index(self.prefix, r.name) for r in rows) if i is not None}
        return named | set(self.keep) | set(self.repair) | set(self.reserved) | set(self.create)

    def add_creates(self, count: int) -> None:
        """Fill every free slot up to ``count``: a new member takes its slot's index as its name, or, when a row
        holds that index (an abandoned one, or one being destroyed), the lowest free index over ``count``."""
        used = set(self.keep) | set(self.repair) | {self.stands_at.get(i, i) for i in self.create}
        taken = self.taken()
        over = max([count, *taken])
        for slot in range(1, count + 1):
            if slot in used:
                continue
            if slot not in taken:
                self.create.append(slot)
            else:
                over += 1
                self.create.append(over)
                self.stands_at[over] = slot
            taken.add(self.create[-1])
        self.create.sort()


def plan(prefix: str, count: int, records: list[VMRecord], abandoned: list[VMRecord] | None = None) -> Plan:
    """Which indices to create and which members to destroy; the rest is left alone.

    ``abandoned`` rows hold their indices but are not members. A stand-in (labelled REPLACES_LABEL with the
    name of the member it replaced) stands at that member's index, so replacing never changes which members
    a later run keeps or destroys.
    """
    members: dict[int, VMRecord] = {}
    extra: list[tuple[int, VMRecord]] = []
    for record in sorted(records, key=lambda r: (member_index(prefix, r.name) or 0, r.name)):
        index = member_index(prefix, record.name)
        if index is None:
            continue
        replaced = member_index(prefix, record.labels.get(REPLACES_LABEL, "")) if index > count else None
        slot = replaced or index
        # Two rows for one index ("web-01" and "web-001"): the second is surplus.
        if 1 <= slot <= count and slot not in members:
            members[slot] = record
        else:
            extra.append((slot, record))
    reserved = {i: r.name for r in abandoned or () if (i := member_index(prefix, r.name)) is not None}
    destroy = [r for _i, r in sorted(extra, key=lambda item: (item[0], item[1].name), reverse=True)]
    todo = Plan(prefix, members, [], destroy, reserved=reserved)
    todo.add_creates(count)
    return todo
