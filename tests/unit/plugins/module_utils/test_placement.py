# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where golem_vm creates a VM when discovery is down."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base import GolemBaseDiscovery
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES
from ansible_collections.golem.vm.plugins.module_utils.vm.placer import Placer
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement

DOWN = DiscoveryError("discovery request GET http://127.0.0.1:9001/api/v1/advertisements failed: connection refused")


class DownDiscovery:
    def __init__(self) -> None:
        self.asked = 0

    def list_advertisements(self, **filters: Any) -> list:
        self.asked += 1
        raise DOWN

    def get_advertisement(self, provider_id: str) -> None:
        self.asked += 1
        raise DOWN


def placer(discovery: DownDiscovery, pinned: Placement | None, warnings: list[str]) -> Placer:
    return Placer(lambda: discovery, spec=SIZES["small"], provider_port=7466, pinned=pinned, country=None,
                  platform=None, strategy="cheapest", warn=warnings.append)


def test_a_pinned_address_is_used_while_discovery_is_down_with_a_warning() -> None:
    discovery, warnings = DownDiscovery(), []
    pinned = Placement("127.0.0.2", 7466)
    assert placer(discovery, pinned, warnings).candidates() == [pinned]
    assert discovery.asked == 1
    assert len(warnings) == 1 and "without the provider's id and country" in warnings[0]
    assert "connection refused" in warnings[0]


@pytest.mark.parametrize("pinned", [None, Placement(None, 7466, "0xse")], ids=["auto", "provider_id"])
def test_without_an_address_discovery_down_fails_the_placement(pinned: Placement | None) -> None:
    # Auto-selection and a provider_id need discovery's answer: no guess.
    with pytest.raises(DiscoveryError) as err:
        placer(DownDiscovery(), pinned, []).candidates()
    assert err.value is DOWN


@pytest.mark.parametrize("driver, hinted", [(DiscoveryClient, False), (GolemBaseDiscovery, True)])
def test_an_unknown_provider_id_names_where_else_it_may_advertise(driver: type, hinted: bool) -> None:
    class Empty(driver):  # the real driver's messages, with no adverts behind them
        def __init__(self) -> None:  # pylint: disable=super-init-not-called
            self.source = "discovery"

        def get_advertisement(self, provider_id: str) -> None:
            return None

    with pytest.raises(ValidationError) as caught:
        Placer(Empty, spec=SIZES["small"], provider_port=7466, pinned=Placement(None, 7466, "0xabc", None),
               country=None, platform=None, strategy="cheapest", warn=print).candidates()
    assert caught.value.field == "provider_id" and "provider_id 0xabc is not known to discovery" in caught.value.msg
    assert ("set discovery_backend=central" in caught.value.msg) is hinted
