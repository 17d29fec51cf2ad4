# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import (
    ALLOWED_CPU,
    ALLOWED_MEMORY,
    SIZES,
    ResourceSpec,
    estimate_price,
    resolve_resources,
)

# Prices of the first advertisement in tests/unit/fixtures/discovery_list.json.
PRICING = {
    "usd_per_core_month": 5.0,
    "usd_per_gb_ram_month": 2.0,
    "usd_per_gb_storage_month": 0.1,
    "glm_per_core_month": 20.0,
    "glm_per_gb_ram_month": 8.0,
    "glm_per_gb_storage_month": 0.4,
}


def test_sizes_are_the_providers_sizes() -> None:
    assert SIZES == {
        "small": (1, 1, 10),
        "medium": (2, 4, 20),
        "large": (4, 8, 40),
        "xlarge": (8, 16, 80),
    }


def test_size_resolves_to_its_triple() -> None:
    assert resolve_resources("large") == ResourceSpec(cpu=4, memory=8, storage=40)


def test_size_and_cpu_together_are_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as err:
        resolve_resources("small", cpu=2)
    assert err.value.field == "size"
    assert "size and cpu are mutually exclusive" in err.value.msg


def test_unknown_size_lists_the_choices() -> None:
    with pytest.raises(ValidationError) as err:
        resolve_resources("huge")
    assert err.value.msg == "size 'huge' is not known; choose one of small, medium, large, xlarge"
    assert (err.value.field, err.value.value) == ("size", "huge")


def test_missing_values_come_from_small() -> None:
    assert resolve_resources(cpu=4) == ResourceSpec(4, 1, 10)
    assert resolve_resources() == SIZES["small"]


def test_without_a_default_every_value_is_required() -> None:
    with pytest.raises(ValidationError) as err:
        resolve_resources(cpu=2, memory=4, default_size=None)
    assert err.value.field == "storage"
    assert err.value.msg == "storage is required when size is not given"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("cpu", 3, "cpu is 3: CPU cores must be one of 1, 2, 4, 8, 16"),
        ("cpu", 32, "cpu is 32: CPU cores must be one of 1, 2, 4, 8, 16"),
        ("memory", 3, "memory is 3: memory must be one of 1, 2, 4, 8, 16, 32, 64 (GB)"),
        ("memory", 128, "memory is 128: memory must be one of 1, 2, 4, 8, 16, 32, 64 (GB)"),
        ("storage", 9, "storage is 9: storage must be a whole number of at least 10 (GB)"),
        ("cpu", True, "cpu is True: CPU cores must be one of 1, 2, 4, 8, 16"),
    ],
)
def test_create_rules_name_field_and_value(field: str, value: object, expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        resolve_resources(**{field: value})
    assert err.value.msg == expected
    assert (err.value.field, err.value.value) == (field, value)


def test_storage_of_exactly_ten_is_accepted() -> None:
    assert resolve_resources(storage=10).storage == 10


def test_minimums_accept_values_a_vm_could_not_have() -> None:
    # As a filter, "at least 3 cores" is meaningful even though no VM has 3.
    assert resolve_resources(cpu=3, storage=1, for_create=False) == ResourceSpec(3, 1, 1)


@pytest.mark.parametrize("value", [0, -1])
def test_minimums_below_one_are_refused_before_discovery_answers_400(value: int) -> None:
    with pytest.raises(ValidationError) as err:
        resolve_resources(memory=value, for_create=False)
    assert err.value.msg == f"memory is {value}: a minimum must be a whole number of at least 1"


@given(st.sampled_from(ALLOWED_CPU), st.sampled_from(ALLOWED_MEMORY), st.integers(10, 10_000))
def test_every_allowed_triple_resolves_unchanged(cpu: int, memory: int, storage: int) -> None:
    assert resolve_resources(cpu=cpu, memory=memory, storage=storage) == (cpu, memory, storage)


@given(st.integers(-100, 100).filter(lambda v: v not in ALLOWED_CPU))
def test_every_other_cpu_count_is_refused(cpu: int) -> None:
    with pytest.raises(ValidationError) as err:
        resolve_resources(cpu=cpu)
    assert err.value.field == "cpu"


def test_estimate_for_medium_matches_the_cli_formula() -> None:
    # 2 cores * 5 + 4 GB * 2 + 20 GB * 0.1 = 20 USD; GLM: 2*20 + 4*8 + 20*0.4 = 80.
    assert estimate_price(PRICING, SIZES["medium"]) == {
        "usd_per_month": 20.0,
        "usd_per_hour": 0.027397,  # 20 / 730, rounded to 6 decimals
        "glm_per_month": 80.0,
    }


def test_estimate_rounds_like_the_cli() -> None:
    pricing = {"usd_per_core_month": 1.123456789, "usd_per_gb_ram_month": 0, "usd_per_gb_storage_month": 0}
    est = estimate_price(pricing, ResourceSpec(1, 1, 10))
    assert est == {"usd_per_month": 1.1235, "usd_per_hour": 0.001539, "glm_per_month": None}


def test_no_pricing_means_no_estimate() -> None:
    assert estimate_price(None, SIZES["small"]) is None
    assert estimate_price({}, SIZES["small"]) is None


def test_partial_usd_pricing_gives_no_estimate_rather_than_a_too_low_one() -> None:
    pricing = dict(PRICING, usd_per_gb_storage_month=None)
    assert estimate_price(pricing, SIZES["small"]) is None


def test_missing_glm_pricing_keeps_the_usd_estimate() -> None:
    pricing = {k: v for k, v in PRICING.items() if k.startswith("usd")}
    est = estimate_price(pricing, SIZES["small"])
    assert est is not None
    assert est["usd_per_month"] == 8.0
    assert est["glm_per_month"] is None


def test_free_provider_costs_zero_not_nothing() -> None:
    pricing = dict.fromkeys(PRICING, 0.0)
    assert estimate_price(pricing, SIZES["xlarge"]) == {"usd_per_month": 0.0, "usd_per_hour": 0.0, "glm_per_month": 0.0}
