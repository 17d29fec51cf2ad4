# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters golem_vm_info and the inventory share: what each keeps, and how bad values are named."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.filters import VMFilter

SE_ID = "0x41C54B3b0909a1E542D578321cD10063e1B6940f"
US_ID = "0x88A3b8f73f7Ab2C8CE82CFcce69FbA604aB6B033"


def row(name: str, *, ip: str = "192.0.2.2", provider_id: str | None = SE_ID, country: str | None = "SE",
        labels: dict[str, str] | None = None, status: str = "running") -> VMRecord:
    config: dict[str, Any] = {"ssh_port": 20001}
    if provider_id:
        config["provider_id"] = provider_id
    if country:
        config["country"] = country
    if labels is not None:
        config["labels"] = labels
    return VMRecord(name, ip, name, status, config)


ROWS = [
    row("web-1", labels={"role": "web", "tier": "1"}),
    row("web-2", ip="192.0.2.3", provider_id=US_ID, country="US", labels={"role": "web", "tier": "2"}),
    row("db-1", labels={"role": "db"}, status="stopped"),
    row("cli-1", provider_id=None, country=None),  # a row the upstream CLI wrote: no id, no country, no labels
]


def kept(vm_filter: VMFilter) -> list[str]:
    return [r.name for r in ROWS if vm_filter.selects(r) and vm_filter.status_ok(r.status)]


@pytest.mark.parametrize(("options", "expected"), [
    ({}, ["web-1", "web-2", "db-1", "cli-1"]),
    ({"names": ["web-*"]}, ["web-1", "web-2"]),
    ({"names": ["db-1", "*-2"]}, ["web-2", "db-1"]),
    ({"names": ["web-[2-9]"]}, ["web-2"]),
    ({"providers": [US_ID.lower()]}, ["web-2"]),  # ids in any case
    ({"providers": ["192.0.2.2"]}, ["web-1", "db-1", "cli-1"]),
    ({"countries": ["se"]}, ["web-1", "db-1"]),  # a row without a country matches no country
    ({"countries": "US"}, ["web-2"]),
    ({"statuses": ["STOPPED"]}, ["db-1"]),
    ({"labels": {"role": "web"}}, ["web-1", "web-2"]),
    ({"labels": {"role": "web", "tier": 2}}, ["web-2"]),  # every label must match; numbers as their text
    ({"labels": {"role": "cache"}}, []),
    ({"labels": {"role": "web"}, "countries": ["SE"], "statuses": ["running"]}, ["web-1"]),
])
def test_a_vm_is_kept_only_when_every_filter_matches(options: dict[str, Any], expected: list[str]) -> None:
    assert kept(VMFilter.parse(**options)) == expected


@pytest.mark.parametrize(("options", "field", "value", "text"), [
    ({"names": [{"web": 1}]}, "names", {"web": 1}, "names[0] must be a VM name or a shell-style pattern"),
    ({"names": ["web-*", 7]}, "names", 7, "names[1] must be a VM name or a shell-style pattern such as web-*, not 7"),
    ({"names": [""]}, "names", "", "names[0] must be"),
    ({"names": {"web-1": True}}, "names", {"web-1": True}, "names must be a list of"),
    ({"statuses": ["runing"]}, "statuses", "runing", "unknown status runing in statuses; known: abandoned, creating,"),
    ({"countries": ["Sweden"]}, "countries", "Sweden", "countries 'Sweden' must be a two-letter country code"),
    ({"providers": [None]}, "providers", None, "providers[0] must be a provider id or IP address, not None"),
    ({"labels": "role=web"}, "labels", "role=web", "labels must be a dictionary of names to text"),
    ({"labels": {"role": ["web"]}}, "labels", ["web"], "labels['role'] must be text"),
    ({"labels": {"-x": "1"}}, "labels", "-x", "labels has the key '-x'"),
])
def test_bad_values_are_named_with_their_field(options: dict[str, Any], field: str, value: Any, text: str) -> None:
    with pytest.raises(ValidationError) as err:
        VMFilter.parse(**options)
    assert err.value.field == field and err.value.value == value
    assert text in err.value.msg


def test_a_filters_mapping_replaces_only_the_keys_it_gives() -> None:
    base = VMFilter.parse(names=["web-*", "db-*"], statuses=["running"])
    merged = VMFilter.from_mapping({"labels": {"role": "web"}, "statuses": []}, base)
    assert kept(merged) == ["web-1", "web-2"], "names from the base, labels and 'every status' from the mapping"
    assert VMFilter.from_mapping(None, base) == base


@pytest.mark.parametrize(("filters", "field", "text"), [
    ({"country": ["SE"]}, "filters", "filters has the unknown key country; known: labels, countries, providers"),
    (["SE"], "filters", "filters must be a dictionary"),
    ({"countries": ["SE", "Sweden"]}, "filters.countries", "filters.countries 'Sweden' must be a two-letter"),
    ({"statuses": ["gone"]}, "filters.statuses", "unknown status gone in filters.statuses"),
    ({"labels": ["role=web"]}, "filters.labels", "filters.labels must be a dictionary"),
])
def test_a_bad_filters_mapping_names_the_key(filters: Any, field: str, text: str) -> None:
    with pytest.raises(ValidationError) as err:
        VMFilter.from_mapping(filters)
    assert err.value.field == field and text in err.value.msg


def test_the_state_query_narrows_only_what_it_can() -> None:
    exact = VMFilter.parse(names=["web-1", "db-1"], statuses=["running"], countries=["SE"])
    assert exact.store_query(with_statuses=True) == {"statuses": ["running"], "names": ["db-1", "web-1"]}
    # After a refresh the live status decides, so the state is read for every status.
    assert exact.store_query(with_statuses=False) == {"statuses": None, "names": ["db-1", "web-1"]}
    assert VMFilter.parse(names=["web-*"]).store_query(with_statuses=True) == {"statuses": None, "names": None}


def test_fingerprints_differ_whenever_the_filters_do() -> None:
    prints = [VMFilter.parse(**o).fingerprint() for o in (
        {}, {"labels": {"role": "web"}}, {"labels": {"role": "db"}}, {"countries": ["SE"]}, {"providers": ["x"]},
        {"statuses": ["running"]}, {"names": ["web-*"]})]
    assert len({repr(p) for p in prints}) == len(prints)
    assert VMFilter.parse(countries=["se"]).fingerprint() == VMFilter.parse(countries=["SE"]).fingerprint()


@pytest.mark.parametrize(("options", "expected"), [
    ({}, ["web-1", "db-1", "old-1"]),
    ({"statuses": ["abandoned"]}, ["old-1"]),
    ({"exclude_statuses": ["abandoned"]}, ["web-1", "db-1"]),
    ({"exclude_statuses": "stopped"}, ["web-1", "old-1"]),
    ({"statuses": ["running", "abandoned"], "exclude_statuses": ["stopped"]}, ["web-1", "old-1"]),
])
def test_abandoned_members_are_kept_or_left_out_by_status(options: dict[str, Any], expected: list[str]) -> None:
    rows = [row("web-1"), row("db-1", status="stopped"), row("old-1", status="abandoned")]
    vm_filter = VMFilter.parse(**options)
    assert [r.name for r in rows if vm_filter.selects(r) and vm_filter.status_ok(r.status)] == expected


def test_an_abandoned_row_the_status_filters_leave_out_is_not_even_selected() -> None:
    # Its status is its row's whatever its provider says, so a refresh need not ask about it.
    old = row("old-1", status="abandoned")
    assert not VMFilter.parse(statuses=["running"]).selects(old)
    assert not VMFilter.parse(exclude_statuses=["abandoned"]).selects(old)
    assert VMFilter.parse(statuses=["abandoned"]).selects(old) and VMFilter.parse().selects(old)
    assert VMFilter.parse(statuses=["running"]).selects(row("web-1", status="stopped")), "a live status may differ"


def test_a_status_both_wanted_and_excluded_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        VMFilter.parse(statuses=["running", "abandoned"], exclude_statuses=["ABANDONED"])
    assert (err.value.field, err.value.value) == ("exclude_statuses", "abandoned")
    assert "status abandoned is in both statuses and exclude_statuses" in err.value.msg
    base = VMFilter.parse(exclude_statuses=["abandoned"])
    with pytest.raises(ValidationError, match="in both filters.statuses and exclude_statuses"):
        VMFilter.from_mapping({"statuses": ["abandoned"]}, base)
    assert VMFilter.parse(exclude_statuses=["abandoned"]).fingerprint() != VMFilter.parse().fingerprint()
