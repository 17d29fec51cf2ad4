# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where golem_vm creates a VM: a pinned provider, or candidates chosen from discovery."""

from __future__ import annotations

from typing import Any, Callable

from ansible_collections.golem.vm.plugins.module_utils.errors import DiscoveryError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.http import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.providers import matches, represent_provider
from ansible_collections.golem.vm.plugins.module_utils.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.vm_lifecycle import Placement

STRATEGIES = ("cheapest", "first", "most_free")


def skipped_note(skipped: list[str]) -> str:
    """What a "no provider" message adds when discovery sent advertisements that were unusable."""
    if not skipped:
        return ""
    return f"; {len(skipped)} malformed advertisement(s) were skipped, the first from {skipped[0]}"


def _order(providers: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
    if strategy == "first":
        return providers
    if strategy == "most_free":
        return sorted(providers, key=lambda p: (-p["resources"]["cpu"], -p["resources"]["memory"],
                                                -p["resources"]["storage"], p["provider_id"]))
    # cheapest: providers that advertise no price go last, in discovery's order.
    return sorted(providers, key=lambda p: (p["estimate"] is None,
                                            p["estimate"]["usd_per_month"] if p["estimate"] else 0.0))


class Placer:
    def __init__(
        self,
        discovery: Callable[[], DiscoveryClient],
        *,
        spec: ResourceSpec,
        provider_port: int,
        pinned: Placement | None,
        country: str | None,
        platform: str | None,
        strategy: str,
        warn: Callable[[str], None],
    ) -> None:
        self._discovery = discovery
        self.spec = spec
        self.provider_port = provider_port
        self.pinned = pinned
        self.country = country
        self.platform = platform
        self.strategy = strategy
        self.warn = warn

    @property
    def discovery(self) -> DiscoveryClient:
        return self._discovery()

    def resolve_pinned(self) -> Placement:
        pinned = self.pinned
        if pinned is None:
            raise ValueError("resolve_pinned() needs a pinned provider")
        if pinned.ip is not None:
            # Only the address was given: discovery knows its id and country, if it advertises.
            # They only label the record, so a discovery that is down must not stop the create.
            try:
                ads = self.discovery.list_advertisements(on_invalid=lambda _pid, _exc: None)
            except DiscoveryError as exc:
                self.warn(f"the VM is recorded without the provider's id and country, which discovery could not "
                          f"tell: {exc.msg}")
                return pinned
            for ad in ads:
                if ad.ip_address == pinned.ip:
                    return Placement(pinned.ip, pinned.port, ad.provider_id, ad.country)
            return pinned
        ad = self.discovery.get_advertisement(pinned.provider_id or "")
        if ad is None:
            raise ValidationError(
                f"provider_id {pinned.provider_id} is not known to discovery {self.discovery.http.base_url}",
                field="provider_id",
                value=pinned.provider_id,
            )
        return Placement(ad.ip_address, pinned.port, ad.provider_id, ad.country)

    def candidates(self, preferred: Placement | None = None) -> list[Placement]:
        """Placements to try in order; the first that creates the VM wins."""
        if self.pinned is not None:
            return [self.resolve_pinned()]
        spec = self.spec

        skipped: list[str] = []

        def skip(provider_id: str | None, exc: Exception) -> None:
            skipped.append(f"provider {provider_id or '(no id)'}: {exc}")
            self.warn(f"skipped the advertisement of provider {provider_id or '(no id)'}: {exc}")

        ads = self.discovery.list_advertisements(
            cpu=spec.cpu, memory=spec.memory, storage=spec.storage, country=self.country,
            platform=self.platform, on_invalid=skip)
        fitting = [
            represent_provider(ad, provider_port=self.provider_port, spec=spec)
            for ad in ads
            if matches(ad, cpu=spec.cpu, memory=spec.memory, storage=spec.storage,
                       country=self.country, platform=self.platform)
        ]
        placements = [preferred] if preferred is not None else []
        for prov in _order(fitting, self.strategy):
            if all(p.ip != prov["ip_address"] for p in placements):
                placements.append(Placement(prov["ip_address"], self.provider_port, prov["provider_id"],
                                            prov["country"]))
        if not placements:
            where = f" in country {self.country}" if self.country else ""
            raise DiscoveryError(
                f"no provider in discovery {self.discovery.http.base_url} has room for "
                f"{spec.cpu} CPU, {spec.memory} GB RAM and {spec.storage} GB disk{where}"
                + (f" on platform {self.platform}" if self.platform else "") + skipped_note(skipped),
                url=self.discovery.http.url("/api/v1/advertisements"),
                method="GET",
            )
        return placements
