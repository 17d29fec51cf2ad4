# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a VM is created: a provider's address, port, id, country and prices, as placer.py chooses them
(kept apart from placer.py, so a run on an existing VM never imports discovery's listing)."""

from __future__ import annotations

from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.http import DEFAULT_PROVIDER_PORT
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord

STRATEGIES = ("cheapest", "first", "most_free")


class Placement(NamedTuple):
    ip: str | None  # None until a pinned provider_id is looked up in discovery
    port: int
    provider_id: str | None = None
    country: str | None = None
    # The advertised prices (payments need the GLM ones); None when not known yet, or advertised without.
    pricing: dict[str, Any] | None = None
    # Read from the provider's advert: ``pricing`` None then means it advertises no prices.
    advertised: bool = False

    def describe(self) -> str:
        if self.provider_id and self.ip:
            return f"{self.provider_id} ({self.ip})"
        return self.provider_id or self.ip or "?"


def recorded_placement(record: VMRecord) -> Placement:
    """Where a recorded VM runs, as its row says (rows written before ports were recorded: the default port)."""
    return Placement(record.provider_ip, record.provider_port or DEFAULT_PROVIDER_PORT, record.provider_id,
                     record.country)
