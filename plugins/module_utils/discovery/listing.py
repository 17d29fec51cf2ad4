# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turning advertisements into the provider dicts modules return, and choosing among them.

Kept apart from the module so golem_vm and the inventory plugin can return the same shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import glm_per_month
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import provider_url
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec, estimate_price
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement

SORT_KEYS = ("price", "cpu", "memory", "storage", "country", "updated")


def represent_provider(ad: Advertisement, *, provider_port: int, spec: ResourceSpec) -> dict[str, Any]:
    """A flat, JSON-safe dict; ``estimate`` is the price of ``spec`` on this provider."""
    pricing = ad.pricing.model_dump() if ad.pricing is not None else None
    return {
        "provider_id": ad.provider_id,
        "ip_address": ad.ip_address,
        "provider_url": provider_url(ad.ip_address, provider_port),
        "country": ad.country,
        "platform": ad.platform,
        "resources": {"cpu": ad.resources.cpu, "memory": ad.resources.memory, "storage": ad.resources.storage},
        "pricing": pricing,
        "estimate": estimate_price(pricing, spec),
        "updated_at": ad.updated_at.isoformat() if ad.updated_at is not None else None,
    }


def matches(
    ad: Advertisement,
    *,
    cpu: int | None = None,
    memory: int | None = None,
    storage: int | None = None,
    country: str | None = None,
    platform: str | None = None,
) -> bool:
    """Discovery filters already; checking again guards against servers that ignore a parameter.

    An ad without a platform does not match a platform filter: released discovery servers
    (0.1.25) drop the platform, and an unknown architecture is not the one that was asked for.
    """
    res = ad.resources
    for want, have in ((cpu, res.cpu), (memory, res.memory), (storage, res.storage)):
        if want is not None and have < want:
            return False
    if country is not None and ad.country != country:
        return False
    if platform is not None and ad.platform != platform:
        return False
    return True


def price_key(provider: dict[str, Any], spec: ResourceSpec) -> tuple[int, float]:
    """Where a provider goes in "cheapest first": by what renting ``spec`` there is paid a month.

    A provider that takes payment is paid its GLM price (1:1 in native ETH on the 0.1.x network), whatever
    its USD figure says, so an advert with GLM prices is ranked by them; GLM and USD amounts are not
    comparable, so adverts with USD prices only come after those, by USD; adverts without prices come last.
    """
    glm = glm_per_month(provider["pricing"], spec)
    if glm is not None:
        return (0, glm)
    if provider["estimate"] is not None:
        return (1, provider["estimate"]["usd_per_month"])
    return (2, 0.0)


def _sort_key(sort: str, spec: ResourceSpec) -> Any:
    # Missing values sort last in every order; provider_id breaks ties so output is stable.
    def key(p: dict[str, Any]) -> tuple[Any, ...]:
        if sort == "price":
            return (*price_key(p, spec), p["provider_id"])
        if sort in ("cpu", "memory", "storage"):
            return (-p["resources"][sort], p["provider_id"])
        if sort == "country":
            return (p["country"] is None, p["country"] or "", p["provider_id"])
        # updated: newest first.
        stamp = p["updated_at"]
        age = -datetime.fromisoformat(stamp).timestamp() if stamp else 0.0
        return (stamp is None, age, p["provider_id"])

    return key


def check_selection(*, sort: str, limit: int | None, max_price_usd_month: float | None) -> None:
    """Refuse selection options that make no sense, naming the option and its value."""
    if sort not in SORT_KEYS:
        raise ValidationError(f"sort is {sort!r}: choose one of {', '.join(SORT_KEYS)}", field="sort", value=sort)
    if limit is not None and limit < 1:
        raise ValidationError(f"limit is {limit}: it must be at least 1", field="limit", value=limit)
    if max_price_usd_month is not None and max_price_usd_month < 0:
        raise ValidationError(
            f"max_price_usd_month is {max_price_usd_month:g}: it cannot be negative",
            field="max_price_usd_month",
            value=max_price_usd_month,
        )


def select_providers(
    providers: list[dict[str, Any]],
    *,
    spec: ResourceSpec,
    sort: str = "price",
    limit: int | None = None,
    max_price_usd_month: float | None = None,
) -> list[dict[str, Any]]:
    """Apply the price cap, sort (prices of ``spec``, see price_key) and cut to ``limit``.

    With a price cap, providers without USD prices are left out: nothing shows they fit it.
    """
    check_selection(sort=sort, limit=limit, max_price_usd_month=max_price_usd_month)
    chosen = providers
    if max_price_usd_month is not None:
        chosen = [
            p for p in chosen if p["estimate"] is not None and p["estimate"]["usd_per_month"] <= max_price_usd_month
        ]
    chosen = sorted(chosen, key=_sort_key(sort, spec))
    return chosen if limit is None else chosen[:limit]
