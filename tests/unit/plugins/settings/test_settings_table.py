# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/settings.md against the code: every setting's name, variable, default and readers as every module's
argument spec and documentation and the inventory's options have them; the action group's shared options."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from readers import GROUP, INVENTORY, MODULES, ROOT, Reader, readers

from ansible_collections.golem.vm.plugins.module_utils import arguments
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings

TABLE = ROOT / "docs" / "settings.md"
INVENTORY_ONLY = " (inventory only)"
NONE = "—"


@dataclass(frozen=True)
class Row:
    option: str
    variables: tuple[str, ...]
    inventory_only: frozenset[str]
    default: Any  # the literal, or NONE, or computed prose (a str in `Row.prose`)
    prose: bool
    readers: frozenset[str]
    group: bool

    def variables_of(self, reader: str) -> set[str]:
        return {v for v in self.variables if reader == INVENTORY or v not in self.inventory_only}


def table() -> dict[str, Row]:
    rows: dict[str, Row] = {}
    lines = [line for line in TABLE.read_text().splitlines() if line.startswith("| ")]
    assert lines[0].split("|")[1:6] == [" Setting ", " Variable ", " Default ", " Read by ", " Group "], lines[0]
    for line in lines[2:]:
        option, variable, default, read_by, group = (cell.strip() for cell in line.split("|")[1:6])
        variables, inventory_only = [], set()
        for name in ([] if variable == NONE else variable.split(", ")):
            if name.endswith(INVENTORY_ONLY):
                name = name[:-len(INVENTORY_ONLY)]
                inventory_only.add(name)
            variables.append(name)
        literal = re.fullmatch(r"`(.*)`", default)
        assert option not in rows, f"{option} is in the table twice"
        rows[option] = Row(option, tuple(variables), frozenset(inventory_only),
                           yaml.safe_load(literal.group(1)) if literal else default, not literal and default != NONE,
                           frozenset(read_by.split(", ")), group == "group")
    return rows


@pytest.fixture(scope="module")
def every_reader() -> dict[str, Reader]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return readers(monkeypatch)


GROUP_OPTIONS = sorted({**arguments.CONNECTION_ARGUMENTS, **arguments.GROUP_ARGUMENTS})


def _has_variable(reader: Reader, option: str) -> bool:
    env = {v for v in reader.documented_env(option) if v.startswith("GOLEM_")}
    return bool(env or settings.fallback_names(reader.spec.get(option, {})))


def test_the_table_lists_every_setting_and_only_settings(every_reader: dict[str, Reader]) -> None:
    """A setting: an option with an environment variable, an option of the action group, or one the inventory
    and a module both read."""
    expected = set(GROUP_OPTIONS)
    for reader in every_reader.values():
        for option in reader.doc:
            if reader.uses(option) and _has_variable(reader, option):
                expected.add(option)
    inventory = every_reader[INVENTORY]
    for option in inventory.doc:
        if inventory.uses(option) and any(r.uses(option) for n, r in every_reader.items() if n != INVENTORY):
            expected.add(option)
    expected -= {"plugin"}
    assert sorted(table()) == sorted(expected)


@pytest.mark.parametrize("option", sorted(table()))
def test_each_row_agrees_with_every_reader(every_reader: dict[str, Reader], option: str) -> None:
    row = table()[option]
    readers_found = {name for name, reader in every_reader.items() if reader.uses(option)}
    assert readers_found == set(row.readers), f"{option}: read by {sorted(readers_found)}"
    for name in sorted(row.readers):
        reader = every_reader[name]
        entry, spec = reader.doc[option], reader.spec.get(option, {})
        wanted = row.variables_of(name)
        if name == INVENTORY:
            documented = {v for v in reader.documented_env(option) if v.startswith("GOLEM_")}
            assert documented == wanted, f"{option}: the inventory reads {sorted(documented)}"
        else:
            assert set(settings.fallback_names(spec)) <= wanted, f"{name}.{option} falls back to other variables"
            missing = wanted - reader.documented_env(option)
            assert not missing, f"{name}.{option}'s documentation does not name {sorted(missing)}"
            assert option in reader.spec, f"{name} does not take {option}"
        _check_default(name, option, row, entry, spec)


def _check_default(name: str, option: str, row: Row, entry: dict[str, Any], spec: dict[str, Any]) -> None:
    doc_default, spec_default = entry.get("default"), spec.get("default")
    if row.default == NONE or row.prose:
        assert doc_default is None and spec_default is None, f"{name}.{option} has a default ({doc_default!r})"
        return
    if doc_default is None and spec_default is None:
        # A default applied by module_utils.settings (the state file): the documentation must say it.
        assert f"C({row.default})" in " ".join(entry["description"]), f"{name}.{option} does not say its default"
        return
    assert doc_default == row.default, f"{name}.{option} documents the default {doc_default!r}"
    if name != INVENTORY:
        assert spec_default == row.default, f"{name}.{option} defaults to {spec_default!r}"


def test_the_group_column_is_the_action_groups_shared_options() -> None:
    assert sorted(o for o, row in table().items() if row.group) == GROUP_OPTIONS


@pytest.mark.parametrize("member", GROUP)
def test_every_group_member_takes_every_shared_option(every_reader: dict[str, Reader], member: str) -> None:
    """So one module_defaults block for group/golem.vm.golem serves every member: none says "Unsupported
    parameters", and each documents what it does with each."""
    reader = every_reader[member]
    assert not set(GROUP_OPTIONS) - set(reader.spec), f"{member} refuses group options"
    assert not set(GROUP_OPTIONS) - set(reader.doc), f"{member} does not document group options"
    for option in GROUP_OPTIONS:
        if not reader.uses(option):
            entry = reader.spec[option]
            assert "default" not in entry and "fallback" not in entry, f"{member} reads {option} it does not use"


def test_the_table_names_every_module() -> None:
    named = set().union(*(row.readers for row in table().values()))
    assert named == {*MODULES, INVENTORY}
