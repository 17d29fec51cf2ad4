# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the modules find providers: one small interface, one driver per discovery backend.

Drivers: ``central`` (a golem-vm-discovery server over HTTP, central.py) and
``golem_base`` (adverts on chain, golem_base.py). Both give the same Advertisement
for the same advert, so placement, fleets and golem_provider_info do not know which one
answered. A later backend (Arkiv, upstream's WebSocket discovery service) is one more class
with these members and one more line in ``open_discovery``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Protocol

from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base import GolemBaseDiscovery
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement

# Optional, not "str | None": this alias is evaluated at run time, where pylint reads "|" on types as an error.
OnInvalid = Callable[[Optional[str], ValidationError], None]


class Discovery(Protocol):
    """What the modules ask of a discovery backend."""

    # The discovery_backend value it serves: "central", "golem_base".
    backend: str
    # Names the backend and its address in messages: "discovery http://h:9001", "Golem Base https://h/rpc".
    source: str
    # The URL a failure's ``failure.url`` names.
    url: str
    # Added to "provider X is not known to <source>": where else such a provider may advertise.
    not_found_hint: str

    def set_deadline(self, deadline: Any) -> None:
        """No request made after this outlives ``deadline`` (the task's time budget)."""

    def list_advertisements(self, *, cpu: int | None = None, memory: int | None = None,
                            storage: int | None = None, country: str | None = None, platform: str | None = None,
                            on_invalid: OnInvalid | None = None) -> list[Advertisement]:
        """Live adverts with at least these free resources, in this country and on this platform; the
        backend filters. With ``on_invalid`` a malformed advert is reported there and skipped."""

    def get_advertisement(self, provider_id: str) -> Advertisement | None:
        """One provider's advert, or None when the backend has none."""

    def close(self) -> None:
        """Frees the connections."""


def open_discovery(params: dict[str, Any], **http_options: Any) -> Discovery:
    """The driver ``params["discovery_backend"]`` names, configured from the modules' options."""
    if params["discovery_backend"] == "central":
        return DiscoveryClient(params["discovery_url"], **http_options)
    return GolemBaseDiscovery(
        params["golem_base_rpc_url"], network=params["network"],
        payments_network=None if params["all_payments_networks"] else params["payments_network"], **http_options)
