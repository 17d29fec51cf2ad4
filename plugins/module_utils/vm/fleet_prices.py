# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each fleet member costs a month at its provider's advertised GLM prices, and the fleet's total.

A member created by golem.vm 0.3 or later has its price on its row, as its provider's advert priced it when it
was placed (its stream's rate was fixed at that price). Others are priced at their provider's advert as a stream
to it is (chain/terms.py), so a planned member's figure is its check-mode bill's; those prices come from the
listing the run already made when it placed members, else from one more listing for the whole fleet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import glm_per_month
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import VMStatus
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement


# Stopping a VM, a failed create and abandoning a member terminate the stream; a VM being created is paid.
_PAYING = (VMStatus.CREATING.value, VMStatus.RUNNING.value)


class AdvertPrices:
    """Each provider's advertised prices by id, from placements already listed, else from one discovery call."""

    def __init__(self, discovery: Callable[[], Any], warn: Callable[[str], None]) -> None:
        self._discovery = discovery
        self._warn = warn
        self._known: dict[str, dict[str, Any] | None] = {}
        self._listed = False

    def learn(self, placements: Iterable[Placement]) -> None:
        for placement in placements:
            if placement.provider_id:
                self._known[placement.provider_id] = placement.pricing

    def pricing(self, provider_id: str | None) -> dict[str, Any] | None:
        """The provider's advertised prices; None when it advertises none, or no longer advertises."""
        if not provider_id:
            return None
        if provider_id not in self._known and not self._listed:
            self._listed = True
            try:
                ads = self._discovery().list_advertisements(on_invalid=lambda _pid, _exc: None)
            except GolemError as exc:
                self._warn(f"the fleet's members are shown without their GLM price a month, which discovery could "
                           f"not tell: {exc.msg}")
                return None
            for ad in ads:
                self._known.setdefault(ad.provider_id, ad.pricing.model_dump() if ad.pricing is not None else None)
        return self._known.get(provider_id)


def member_spec(record: VMRecord, fallback: ResourceSpec | None) -> ResourceSpec | None:
    """The member's recorded resources (members keep theirs when the fleet's size changes); the fleet's
    when the row lacks one or holds one no VM can have."""
    cpu, memory, storage = record.cpu, record.memory, record.storage
    if cpu is not None and memory is not None and storage is not None and min(cpu, memory, storage) > 0:
        return ResourceSpec(cpu, memory, storage)
    return fallback


def member_prices(records: Iterable[VMRecord], prices: Callable[[str | None], dict[str, Any] | None],
                  spec: ResourceSpec | None) -> tuple[dict[str, float | None], float]:
    """Each member's GLM a month (None without GLM prices) and what the members that pay add up to.

    Only running members and members being created (or planned in check mode) are added: the others' streams
    were terminated.
    """
    each: dict[str, float | None] = {}
    total = 0.0
    for record in records:
        recorded, monthly = record.recorded_price
        if not recorded:
            resources = member_spec(record, spec)
            monthly = glm_per_month(prices(record.provider_id), resources) if resources is not None else None
        each[record.name] = monthly
        if monthly is not None and record.status in _PAYING:
            total += monthly
    return each, round(total, 8)
