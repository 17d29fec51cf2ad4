# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VM sizes, the resource values providers accept, and the price estimate.

Pure Python on purpose: modules, the inventory plugin and the pydantic models all share
these rules, and none of them should need a third-party library just to check a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError

# Providers reject anything else (provider/vm/models.py VMResources validators).
ALLOWED_CPU: tuple[int, ...] = (1, 2, 4, 8, 16)
ALLOWED_MEMORY: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
MIN_STORAGE = 10

# The upstream CLI converts monthly prices with this many hours per month.
HOURS_PER_MONTH = 730.0


class ResourceSpec(NamedTuple):
    """CPU cores, memory in GB and storage in GB."""

    cpu: int
    memory: int
    storage: int

    def as_dict(self) -> dict[str, int]:
        return {"cpu": self.cpu, "memory": self.memory, "storage": self.storage}


SIZES: dict[str, ResourceSpec] = {
    "small": ResourceSpec(1, 1, 10),
    "medium": ResourceSpec(2, 4, 20),
    "large": ResourceSpec(4, 8, 40),
    "xlarge": ResourceSpec(8, 16, 80),
}

DEFAULT_ESTIMATE_SIZE = "small"


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but "cpu: true" is a typo, not one core.
    return isinstance(value, int) and not isinstance(value, bool)


def _choices(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in values)


def cpu_problem(value: Any) -> str | None:
    """Why a provider would refuse this CPU count, or None if it is fine."""
    if not _is_int(value) or value not in ALLOWED_CPU:
        return f"CPU cores must be one of {_choices(ALLOWED_CPU)}"
    return None


def memory_problem(value: Any) -> str | None:
    if not _is_int(value) or value not in ALLOWED_MEMORY:
        return f"memory must be one of {_choices(ALLOWED_MEMORY)} (GB)"
    return None


def storage_problem(value: Any) -> str | None:
    if not _is_int(value) or value < MIN_STORAGE:
        return f"storage must be a whole number of at least {MIN_STORAGE} (GB)"
    return None


_CREATE_RULES = {"cpu": cpu_problem, "memory": memory_problem, "storage": storage_problem}


def _minimum_problem(value: Any) -> str | None:
    # Discovery answers 400 ADV_002 for anything below 1; say so before asking it.
    if not _is_int(value) or value < 1:
        return "a minimum must be a whole number of at least 1"
    return None


def resolve_resources(
    size: str | None = None,
    cpu: int | None = None,
    memory: int | None = None,
    storage: int | None = None,
    *,
    default_size: str | None = DEFAULT_ESTIMATE_SIZE,
    for_create: bool = True,
) -> ResourceSpec:
    """Turn ``size`` or ``cpu``/``memory``/``storage`` into one triple.

    Values left out come from ``default_size``; with ``default_size=None`` they are required.
    ``for_create`` applies the provider's rules (allowed CPU and memory values, storage >= 10);
    without it each value only has to be a minimum of at least 1, as discovery filters demand.
    """
    given = {"cpu": cpu, "memory": memory, "storage": storage}
    if size is not None:
        clash = [k for k, v in given.items() if v is not None]
        if clash:
            raise ValidationError(
                f"size and {clash[0]} are mutually exclusive: give either size={size!r} or cpu/memory/storage",
                field="size",
                value=size,
            )
        if size not in SIZES:
            raise ValidationError(
                f"size {size!r} is not known; choose one of {', '.join(SIZES)}", field="size", value=size
            )
        return SIZES[size]

    defaults = SIZES[default_size] if default_size is not None else None
    values: dict[str, int] = {}
    for key, value in given.items():
        if value is None:
            if defaults is None:
                raise ValidationError(f"{key} is required when size is not given", field=key, value=None)
            value = getattr(defaults, key)
        problem = _CREATE_RULES[key](value) if for_create else _minimum_problem(value)
        if problem:
            raise ValidationError(f"{key} is {value!r}: {problem}", field=key, value=value)
        values[key] = value
    return ResourceSpec(**values)


def _price(pricing: Mapping[str, Any], keys: tuple[str, str, str], spec: ResourceSpec) -> float | None:
    rates = [pricing.get(k) for k in keys]
    if any(r is None for r in rates):
        return None
    return float(rates[0]) * spec.cpu + float(rates[1]) * spec.memory + float(rates[2]) * spec.storage


USD_KEYS = ("usd_per_core_month", "usd_per_gb_ram_month", "usd_per_gb_storage_month")
GLM_KEYS = ("glm_per_core_month", "glm_per_gb_ram_month", "glm_per_gb_storage_month")


def estimate_price(pricing: Mapping[str, Any] | None, spec: ResourceSpec) -> dict[str, float | None] | None:
    """The monthly and hourly cost of ``spec`` at an advertisement's prices, as the upstream CLI computes it.

    None when the advertisement carries no USD prices (MVP providers advertise none), because
    a partial figure would look cheaper than the VM really is. GLM is None when only GLM rates
    are missing.
    """
    if not pricing:
        return None
    usd = _price(pricing, USD_KEYS, spec)
    if usd is None:
        return None
    glm = _price(pricing, GLM_KEYS, spec)
    # Rounding matches the CLI, so figures agree with what `golem vm providers --json` prints.
    return {
        "usd_per_month": round(usd, 4),
        "usd_per_hour": round(usd / HOURS_PER_MONTH, 6),
        "glm_per_month": round(glm, 8) if glm is not None else None,
    }
