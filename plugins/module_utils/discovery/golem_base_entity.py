# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Golem Base entity's metadata made into the same Advertisement central discovery gives.

Upstream's provider advertiser writes one entity per provider, signed with the provider's own key:
string annotations for its identity, address and prices (floats as strings),
numeric ones for its free CPU, memory and storage. Anyone can write entities, so each is judged
on its own: an entity that is not such an advert, or that its provider did not sign, is refused
with a message naming its key and the annotation at fault; the caller skips it with a warning.
"""

from __future__ import annotations

import math
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement, parse_wire

# Pricing field -> the annotation upstream's GolemBaseAdvertiser writes it to.
PRICE_ANNOTATIONS = {
    "usd_per_core_month": "golem_price_usd_core_month",
    "usd_per_gb_ram_month": "golem_price_usd_ram_gb_month",
    "usd_per_gb_storage_month": "golem_price_usd_storage_gb_month",
    "glm_per_core_month": "golem_price_glm_core_month",
    "glm_per_gb_ram_month": "golem_price_glm_ram_gb_month",
    "glm_per_gb_storage_month": "golem_price_glm_storage_gb_month",
}
RESOURCE_ANNOTATIONS = {"cpu": "golem_cpu", "memory": "golem_memory", "storage": "golem_storage"}
# A model field -> the annotation it came from, so a model error names what the entity holds.
_FIELD_ANNOTATIONS = {
    "provider_id": "golem_provider_id", "ip_address": "golem_ip_address", "country": "golem_country",
    "platform": "golem_platform", **{f"resources.{k}": v for k, v in RESOURCE_ANNOTATIONS.items()},
    **{f"pricing.{k}": v for k, v in PRICE_ANNOTATIONS.items()},
}


_KIND_NAMES = {str: "string", int: "whole number"}


class Entity:
    """One entity's metadata (golembase_getEntityMetaData), checked for shape; ``where`` names it in messages."""

    def __init__(self, key: str, meta: Any, *, where: str) -> None:
        self.key = key
        self.where = where
        if not isinstance(meta, dict):
            raise self.problem(f"metadata is {type(meta).__name__}, not an object")
        self.strings = self._annotations(meta, "stringAnnotations", str)
        self.numbers = self._annotations(meta, "numericAnnotations", int)
        expires = meta.get("expiresAtBlock")
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise self.problem(f"expiresAtBlock is {expires!r}, not a block number")
        self.expires_at_block: int = expires
        owner = meta.get("owner")
        self.owner = owner if isinstance(owner, str) else None

    def problem(self, what: str, *, annotation: str | None = None, value: Any = None) -> ValidationError:
        return ValidationError(f"{self.where} sent entity {self.key}, whose {what}",
                               field=annotation, value=value)

    def _annotations(self, meta: dict[str, Any], name: str, kind: type) -> dict[str, Any]:
        items = meta.get(name) or []
        if not isinstance(items, list):
            raise self.problem(f"{name} is {type(items).__name__}, not a list")
        found: dict[str, Any] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise self.problem(f"{name} holds {item!r}, not a {{key, value}} pair")
            value = item.get("value")
            if not isinstance(value, kind) or isinstance(value, bool):
                raise self.problem(f"{name} holds {item['key']}={value!r}, not a {_KIND_NAMES[kind]}",
                                   annotation=item["key"], value=value)
            found[item["key"]] = value
        return found

    def string(self, annotation: str, *, required: bool = False) -> str | None:
        value = self.strings.get(annotation)
        if value is None and annotation in self.numbers:
            raise self.problem(f"annotation {annotation} is the number {self.numbers[annotation]}, not a string",
                               annotation=annotation, value=self.numbers[annotation])
        if required and not value:
            raise self.problem(f"string annotation {annotation} is missing", annotation=annotation)
        return value

    def number(self, annotation: str) -> int:
        if annotation in self.numbers:
            return int(self.numbers[annotation])
        if annotation in self.strings:
            # The query's golem_cpu>=N compares numeric annotations only: a string one is not an amount.
            raise self.problem(f"annotation {annotation} is the string {self.strings[annotation]!r}, not a number",
                               annotation=annotation, value=self.strings[annotation])
        raise self.problem(f"numeric annotation {annotation} is missing", annotation=annotation)

    def price(self, annotation: str) -> float | None:
        text = self.string(annotation)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or "_" in text:
            raise self.problem(f"price annotation {annotation} is {text!r}, not a price (a number of at least 0)",
                               annotation=annotation, value=text)
        return value


def advertisement(entity: Entity) -> Advertisement:
    """The entity as an Advertisement; ValidationError (naming the entity's key) when it is not a valid one."""
    provider_id = entity.string("golem_provider_id", required=True) or ""
    # Upstream's provider signs its advert with the key its id is the address of; an entity
    # signed by anyone else may point the provider's id at another address.
    if (entity.owner or "").lower() != provider_id.lower():
        raise entity.problem(f"owner {entity.owner} is not the provider {provider_id} it advertises",
                             annotation="golem_provider_id", value=provider_id)
    prices = {field: entity.price(annotation) for field, annotation in PRICE_ANNOTATIONS.items()}
    wire = {
        "provider_id": provider_id,
        "ip_address": entity.string("golem_ip_address", required=True),
        "country": entity.string("golem_country") or None,
        # Upstream writes "" when it cannot tell the architecture; the CLI reads that as none.
        "platform": entity.string("golem_platform") or None,
        "resources": {field: entity.number(annotation) for field, annotation in RESOURCE_ANNOTATIONS.items()},
        # No price at all reads as central's MVP-era adverts read: no pricing.
        "pricing": prices if any(v is not None for v in prices.values()) else None,
    }
    try:
        return parse_wire(Advertisement, wire, source=entity.where, what=f"entity {entity.key}")
    except ValidationError as exc:
        annotation = _FIELD_ANNOTATIONS.get(exc.field or "", exc.field)
        # "... whose field 'ip_address' is '999.1.1.1': reason" -> "'999.1.1.1': reason", named by annotation.
        said = exc.msg.split(f"field '{exc.field}' is ", 1)[-1]
        raise entity.problem(f"annotation {annotation} is {said}", annotation=annotation, value=exc.value) from None
