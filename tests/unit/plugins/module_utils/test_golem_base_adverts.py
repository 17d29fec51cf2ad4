# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Golem Base entities that are not valid adverts: each skipped with a warning naming its key and
what is wrong, never a traceback; the valid ones beside them are still listed."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base_entity import Entity, advertisement
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError


def _strings(meta: dict[str, Any]) -> list[dict[str, Any]]:
    return meta["stringAnnotations"]


def _set(kind: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        items = [a for a in meta[kind] if a["key"] != key]
        meta[kind] = items + ([{"key": key, "value": value}] if value is not None else [])
    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        for kind in ("stringAnnotations", "numericAnnotations"):
            meta[kind] = [a for a in meta[kind] if a["key"] != key]
    return change


def _move_cpu_to_strings(meta: dict[str, Any]) -> None:
    _drop("golem_cpu")(meta)
    _strings(meta).append({"key": "golem_cpu", "value": "lots"})


def _top(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        meta[key] = value
    return change


# case -> (what it does to the recorded SE advert, what the message must hold)
CASES: dict[str, tuple[Callable[[dict[str, Any]], None], tuple[str, ...]]] = {
    "no-cpu": (_drop("golem_cpu"), ("numeric annotation golem_cpu is missing",)),
    "cpu-as-string": (_move_cpu_to_strings, ("annotation golem_cpu is the string 'lots', not a number",)),
    "memory-not-int": (_set("numericAnnotations", "golem_memory", "8"),
                       ("numericAnnotations holds golem_memory='8', not a whole number",)),
    "no-provider-id": (_drop("golem_provider_id"), ("string annotation golem_provider_id is missing",)),
    "no-ip": (_drop("golem_ip_address"), ("string annotation golem_ip_address is missing",)),
    "ip-not-an-address": (_set("stringAnnotations", "golem_ip_address", "999.1.1.1"),
                          ("annotation golem_ip_address is '999.1.1.1': is not an IP address (IPv4 or IPv6)",)),
    "price-word": (_set("stringAnnotations", "golem_price_usd_core_month", "cheap"),
                   ("price annotation golem_price_usd_core_month is 'cheap', not a price",)),
    "price-nan": (_set("stringAnnotations", "golem_price_glm_ram_gb_month", "nan"),
                  ("price annotation golem_price_glm_ram_gb_month is 'nan'",)),
    "price-negative": (_set("stringAnnotations", "golem_price_usd_storage_gb_month", "-0.1"),
                       ("golem_price_usd_storage_gb_month is '-0.1', not a price (a number of at least 0)",)),
    "price-underscore": (_set("stringAnnotations", "golem_price_glm_core_month", "2_0"),
                         ("golem_price_glm_core_month is '2_0'",)),
    "price-a-number": (lambda meta: (_drop("golem_price_usd_core_month")(meta),
                                     _set("numericAnnotations", "golem_price_usd_core_month", 5)(meta)),
                       ("annotation golem_price_usd_core_month is the number 5, not a string",)),
    "signed-by-someone-else": (_top("owner", "0x" + "99" * 20),
                               (f"owner 0x{'99' * 20} is not the provider",)),
    "no-expiry": (_top("expiresAtBlock", None), ("expiresAtBlock is None, not a block number",)),
    "annotations-not-a-list": (_top("stringAnnotations", {"golem_type": "provider"}),
                               ("stringAnnotations is dict, not a list",)),
    "annotation-not-a-pair": (_top("numericAnnotations", [["golem_cpu", 4]]),
                              ("numericAnnotations holds ['golem_cpu', 4], not a {key, value} pair",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_entity_is_skipped_with_a_warning_naming_its_key(golem_base_node: Any, case: str) -> None:
    node = golem_base_node
    change, says = CASES[case]
    bad = node.recorded_advert("SE")
    change(bad)
    bad_key = node.add("bad", bad)
    node.add("good", node.recorded_advert("US"))
    warnings: list[tuple[Any, ValidationError]] = []
    ads = node.discovery().list_advertisements(on_invalid=lambda pid, exc: warnings.append((pid, exc)))
    assert [ad.country for ad in ads] == ["US"]
    [(_pid, exc)] = warnings
    assert exc.msg.startswith(f"Golem Base {node.url} sent entity {bad_key}, whose "), exc.msg
    for text in says:
        assert text in exc.msg, exc.msg
    # Without on_invalid (get_advertisement, pinned providers) the same problem is raised.
    with pytest.raises(ValidationError):
        node.discovery().list_advertisements()


def test_metadata_that_is_not_an_object_is_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError) as err:
        Entity("0xabc", ["x"], where="Golem Base http://h/rpc")
    assert err.value.msg == "Golem Base http://h/rpc sent entity 0xabc, whose metadata is list, not an object"


def test_the_provider_id_named_with_a_skipped_entity_is_the_one_it_claims(golem_base_node: Any) -> None:
    node = golem_base_node
    bad = node.recorded_advert("SE")
    _drop("golem_memory")(bad)
    node.add("bad", bad)
    seen: list[Any] = []
    node.discovery().list_advertisements(on_invalid=lambda pid, exc: seen.append(pid))
    assert seen == [next(a["value"] for a in _strings(bad) if a["key"] == "golem_provider_id")]


def test_an_advert_without_prices_reads_as_central_mvp_adverts_read(golem_base_node: Any) -> None:
    meta = golem_base_node.recorded_advert("SE")
    for key in [a["key"] for a in _strings(meta) if a["key"].startswith("golem_price_usd") or
                a["key"].startswith("golem_price_glm")]:
        _drop(key)(meta)
    _set("stringAnnotations", "golem_platform", "")(meta)  # upstream's "architecture unknown"
    ad = advertisement(Entity("0xabc", meta, where="Golem Base http://h/rpc"))
    assert ad.pricing is None and ad.platform is None and ad.resources.cpu > 0


def test_a_provider_id_in_another_case_still_matches_its_signer(golem_base_node: Any) -> None:
    meta = golem_base_node.recorded_advert("US")
    meta["owner"] = meta["owner"].upper().replace("0X", "0x")
    assert advertisement(Entity("0xabc", meta, where="Golem Base http://h/rpc")).country == "US"
