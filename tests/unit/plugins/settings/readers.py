# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every reader of the settings takes: each module's argument spec (as main() builds it) and
documented options (as ansible-doc renders them, fragments merged), and the inventory's options."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

ROOT = Path(__file__).resolve().parents[4]
MODULES = ("golem_fleet", "golem_provider_info", "golem_state_copy", "golem_stream", "golem_vm", "golem_vm_info")
INVENTORY = "inventory"
GROUP = tuple(yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]["golem"])
# How the golem.vm.group fragment marks an option a member accepts and does not use.
NOT_USED = "Not used by this module"
ENV_MENTION = re.compile(r"E\((GOLEM_[A-Z0-9_]+)\)")


class _Captured(Exception):
    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__("captured")
        self.spec = spec


class _Recorder:
    def __init__(self, argument_spec: dict[str, Any], **_kwargs: Any) -> None:
        raise _Captured(argument_spec)


@dataclass(frozen=True)
class Reader:
    name: str
    spec: dict[str, dict[str, Any]]  # empty for the inventory
    doc: dict[str, dict[str, Any]]

    def uses(self, option: str) -> bool:
        """Whether the reader takes the option and acts on it (not merely accepts it for module_defaults)."""
        entry = self.doc.get(option)
        return entry is not None and not _text(entry).startswith(NOT_USED)

    def documented_env(self, option: str) -> set[str]:
        entry = self.doc[option]
        if self.name == INVENTORY:
            return {e["name"] for e in entry.get("env") or ()}
        return set(ENV_MENTION.findall(_text(entry)))


def _text(entry: dict[str, Any]) -> str:
    description = entry.get("description") or []
    return " ".join(description) if isinstance(description, list) else str(description)


def module_spec(name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The argument spec the module's main() hands AnsibleModule, without running the module."""
    from ansible_collections.golem.vm.plugins.module_utils import _base

    module = importlib.import_module(f"ansible_collections.golem.vm.plugins.modules.{name}")
    monkeypatch.setattr(_base, "_TaskModule", _Recorder)
    if hasattr(module, "AnsibleModule"):
        monkeypatch.setattr(module, "AnsibleModule", _Recorder)
    try:
        module.main()
    except _Captured as captured:
        return captured.spec
    raise AssertionError(f"{name}.main() built no AnsibleModule")


def documented(path: str, is_module: bool) -> dict[str, dict[str, Any]]:
    doc = get_docstring(path, fragment_loader, collection_name="golem.vm", is_module=is_module)[0]
    return doc["options"]


def readers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Reader]:
    found = {}
    for name in MODULES:
        module = importlib.import_module(f"ansible_collections.golem.vm.plugins.modules.{name}")
        found[name] = Reader(name, module_spec(name, monkeypatch), documented(module.__file__, True))
    inventory = importlib.import_module("ansible_collections.golem.vm.plugins.inventory.golem")
    found[INVENTORY] = Reader(INVENTORY, {}, documented(inventory.__file__, False))
    return found
