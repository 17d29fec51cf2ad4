# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which providers a VM is created on: a pinned provider, or candidates chosen from discovery (one VM or a fleet)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import over_cap
from ansible_collections.golem.vm.plugins.module_utils.discovery.listing import matches, price_key, represent_provider
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError, PaymentError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement


def _prices(ad: Any) -> dict[str, Any] | None:
    return ad.pricing.model_dump() if ad.pricing is not None else None


def _order(providers: list[dict[str, Any]], strategy: str, spec: ResourceSpec) -> list[dict[str, Any]]:
    if strategy == "first":
        return providers
    if strategy == "most_free":
        return sorted(providers, key=lambda p: (-p["resources"]["cpu"], -p["resources"]["memory"],
                                                -p["resources"]["storage"], p["provider_id"]))
    # cheapest, by what is paid (providers.price_key); sorted() keeps discovery's order among equals
    return sorted(providers, key=lambda p: price_key(p, spec))


def fitting_providers(discovery: Any, spec: ResourceSpec, *, provider_port: int, countries: list[str] | None,
                      platform: str | None, warn: Callable[[str], None], required: bool = True,
                      max_glm_per_month: float | None = None) -> list[dict[str, Any]]:
    """Every advertised provider with room for ``spec`` in one of ``countries``, from one discovery call.

    A malformed advertisement is skipped with a warning, and so is one whose GLM prices put ``spec``
    over ``max_glm_per_month`` (it is never contacted); when nothing fits, the error says how many
    were skipped, so "no provider" is not mistaken for an empty network. Without ``required`` an
    empty list is returned instead.
    """
    skipped: list[str] = []

    def skip(provider_id: str | None, exc: Exception) -> None:
        skipped.append(f"provider {provider_id or '(no id)'}: {exc}")
        warn(f"skipped the advertisement of provider {provider_id or '(no id)'}: {exc}")

    only = countries[0] if countries and len(countries) == 1 else None
    ads = discovery.list_advertisements(cpu=spec.cpu, memory=spec.memory, storage=spec.storage, country=only,
                                        platform=platform, on_invalid=skip)
    room = [represent_provider(ad, provider_port=provider_port, spec=spec) for ad in ads
            if matches(ad, cpu=spec.cpu, memory=spec.memory, storage=spec.storage, platform=platform)
            and (not countries or ad.country in countries)]
    fitting, dear = [], []
    for provider in room:
        why = over_cap(provider["pricing"], spec, max_glm_per_month)
        if why is None:
            fitting.append(provider)
        else:
            dear.append(f"provider {provider['provider_id']}: {why}")
            warn(f"skipped provider {provider['provider_id']} ({provider['ip_address']}): {why}")
    if not fitting and required:
        where = f" in {', '.join(countries)}" if countries else ""
        raise DiscoveryError(
            f"no provider in {discovery.source} has room for {spec.cpu} CPU, {spec.memory} GB RAM "
            f"and {spec.storage} GB disk{where}" + (f" on platform {platform}" if platform else "")
            + (f" within max_glm_per_month {max_glm_per_month:g}; {len(dear)} provider(s) with room ask more, "
               f"the first {dear[0]}" if dear else "")
            + (f"; {len(skipped)} malformed advertisement(s) were skipped, the first from {skipped[0]}"
               if skipped else ""),
            url=discovery.url)
    return fitting


def as_placement(provider: dict[str, Any], port: int) -> Placement:
    return Placement(provider["ip_address"], port, provider["provider_id"], provider["country"], provider["pricing"],
                     advertised=True)


def spread(providers: list[dict[str, Any]], countries: list[str] | None, port: int,
           spec: ResourceSpec) -> list[Placement]:
    """Providers interleaved by country (cheapest for ``spec`` first in each), so consecutive VMs land apart."""
    order = list(countries) if countries else sorted({p["country"] or "" for p in providers})
    groups = [sorted((p for p in providers if (p["country"] or "") == country),
                     key=lambda p: (*price_key(p, spec), p["provider_id"])) for country in order]
    return [as_placement(group[turn], port)
            for turn in range(max((len(g) for g in groups), default=0)) for group in groups if turn < len(group)]


def room_for(resources: Mapping[str, Any], spec: ResourceSpec) -> int:
    """How many VMs of ``spec`` an advert's free resources hold: the fewest of cpu, memory and storage.

    Adverts are checked where they are read; this only keeps the count a whole number of at least 0.
    """
    fits = []
    for key, need in (("cpu", spec.cpu), ("memory", spec.memory), ("storage", spec.storage)):
        have = resources.get(key)
        usable = have if isinstance(have, int) and not isinstance(have, bool) else 0
        fits.append(max(usable, 0) // max(need, 1))
    return min(fits)


@dataclass(frozen=True)
class Fill:
    """A fleet's providers by country, each country's in the order of a strategy, with the VMs each has room for.

    Members fill a provider up to its room before the next is used, so ``cheapest`` pays least; members still
    take the countries in turn by their index, as the round-robin spread does.
    """

    groups: tuple[tuple[tuple[Placement, int], ...], ...]  # per country: (placement, room), in strategy order

    def placements(self) -> list[Placement]:
        return [placement for group in self.groups for placement, _room in group]

    def _assign(self, placing: Sequence[int]) -> dict[int, tuple[int, int]]:
        """Where each member created in this run goes: (country, provider) positions in ``groups``.

        A member starts in its country by index; when that country's room is taken, in the next with room.
        Room is what adverts say is free, so members already running (the provider counted them) take none
        of it. When every advertised room is taken the member is tried on its country's first provider.
        """
        used = [[0] * len(group) for group in self.groups]
        count = len(self.groups)
        chosen: dict[int, tuple[int, int]] = {}
        for index in sorted(set(placing)):
            home = (index - 1) % count
            spot = next(((country, position) for country in ((home + step) % count for step in range(count))
                         for position, (_placement, room) in enumerate(self.groups[country])
                         if used[country][position] < room), (home, 0))
            used[spot[0]][spot[1]] += 1
            chosen[index] = spot
        return chosen

    def candidates(self, index: int, placing: Sequence[int]) -> list[Placement]:
        """Member ``index``'s provider first, then its country's others and the next countries', in order."""
        if not self.groups:
            return []
        count = len(self.groups)
        country, position = self._assign(placing).get(index, ((index - 1) % count, 0))
        ordered = [self.groups[country][position][0]] + [
            placement for step in range(count) for placement, _room in self.groups[(country + step) % count]]
        found: list[Placement] = []
        for placement in ordered:
            if all(placement.ip != other.ip for other in found):
                found.append(placement)
        return found


def fill(providers: list[dict[str, Any]], countries: list[str] | None, port: int, spec: ResourceSpec,
         strategy: str) -> Fill:
    """The fleet's ``provider_selection``: providers grouped by country (the order of ``countries``, else by
    name), each group in ``strategy``'s order (as golem_vm picks one provider), each with its room for ``spec``."""
    order = list(countries) if countries else sorted({p["country"] or "" for p in providers})
    groups = [_order([p for p in providers if (p["country"] or "") == country], strategy, spec) for country in order]
    return Fill(tuple(tuple((as_placement(p, port), room_for(p["resources"], spec)) for p in group)
                      for group in groups if group))


def candidates_for(placements: list[Placement] | Fill, index: int, placing: Sequence[int] = ()) -> list[Placement]:
    """Fleet member ``index``'s providers, the first to try first; ``placing``: the indices created in this run.

    A round-robin list starts at the member's turn and the others follow, for fail-over; a Fill places the
    members it is given in index order within each provider's room.
    """
    if isinstance(placements, Fill):
        return placements.candidates(index, placing)
    start = (index - 1) % len(placements)
    return placements[start:] + placements[:start]


class Placer:
    """golem_vm's placements: the pinned provider, or discovery's providers in the chosen order."""

    def __init__(
        self,
        discovery: Callable[[], Any],
        *,
        spec: ResourceSpec,
        provider_port: int,
        pinned: Placement | None,
        country: str | None,
        platform: str | None,
        strategy: str,
        warn: Callable[[str], None],
        max_glm_per_month: float | None = None,
    ) -> None:
        """``max_glm_per_month``: providers whose advert prices ``spec`` over it are never contacted (None: no cap;
        give it only for a create, so a VM already on a dear provider can still be found and deleted)."""
        self._discovery = discovery
        self.spec = spec
        self.provider_port = provider_port
        self.pinned = pinned
        self.country = country
        self.platform = platform
        self.strategy = strategy
        self.warn = warn
        self.max_glm_per_month = max_glm_per_month

    @property
    def discovery(self) -> Any:
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
                    return Placement(pinned.ip, pinned.port, ad.provider_id, ad.country, _prices(ad), advertised=True)
            return pinned
        ad = self.discovery.get_advertisement(pinned.provider_id or "")
        if ad is None:
            raise ValidationError(
                f"provider_id {pinned.provider_id} is not known to {self.discovery.source}"
                f"{self.discovery.not_found_hint}",
                field="provider_id",
                value=pinned.provider_id,
            )
        return Placement(ad.ip_address, pinned.port, ad.provider_id, ad.country, _prices(ad), advertised=True)

    def candidates(self, preferred: Placement | None = None) -> list[Placement]:
        """Placements to try in order; the first that creates the VM wins."""
        if self.pinned is not None:
            return [self._within_cap(self.resolve_pinned())]
        fitting = fitting_providers(self.discovery, self.spec, provider_port=self.provider_port,
                                    countries=[self.country] if self.country else None, platform=self.platform,
                                    warn=self.warn, required=preferred is None,
                                    max_glm_per_month=self.max_glm_per_month)
        placements = [preferred] if preferred is not None else []
        for prov in _order(fitting, self.strategy, self.spec):
            if all(p.ip != prov["ip_address"] for p in placements):
                placements.append(as_placement(prov, self.provider_port))
        return placements

    def _within_cap(self, placement: Placement) -> Placement:
        """A pinned provider whose advert prices the VM over the cap is refused before anything is sent to it."""
        why = over_cap(placement.pricing, self.spec, self.max_glm_per_month)
        if why is not None:
            raise PaymentError(f"provider {placement.describe()} was not asked to create the VM: {why}; raise "
                               "max_glm_per_month to rent it at that price", field="max_glm_per_month",
                               value=self.max_glm_per_month)
        return placement
