# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module documents the ``failure`` dict its failures return, in the same words, and the documentation
keeps up with the code: every key GolemError.failure() can set and every error kind the collection raises.

ansible-core applies doc fragments to DOCUMENTATION only, so the block is in each module's RETURN itself.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.golem.vm.plugins import module_utils
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError

MODULES = sorted(p.stem for p in (Path(__file__).parents[4] / "plugins" / "modules").glob("golem_*.py"))


def failure_doc(name: str) -> dict[str, Any]:
    module = importlib.import_module(f"ansible_collections.golem.vm.plugins.modules.{name}")
    return yaml.safe_load(module.RETURN)["failure"]


def every_error_class() -> set[type]:
    for info in pkgutil.iter_modules(module_utils.__path__):
        importlib.import_module(f"{module_utils.__name__}.{info.name}")
    found, todo = set(), [GolemError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_there_are_modules_to_check() -> None:
    assert len(MODULES) >= 6, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_each_module_documents_failure_as_golem_vm_does(name: str) -> None:
    assert failure_doc(name) == failure_doc("golem_vm")


def test_the_documented_keys_are_the_ones_failure_sets() -> None:
    doc = failure_doc("golem_vm")
    assert doc["type"] == "dict" and doc["returned"] == "failure"
    every = GolemError("m", url="u", method="GET", status=400, response="r", field="f", value=0).failure()
    assert set(doc["contains"]) == set(every)


def test_every_error_kind_the_collection_raises_is_documented() -> None:
    described = " ".join(failure_doc("golem_vm")["contains"]["kind"]["description"])
    documented = set(re.findall(r"V\(([a-z_]+)\)", described))
    kinds = {cls.kind for cls in every_error_class()}
    assert kinds == documented, f"undocumented: {kinds - documented}, documented but never raised: {documented - kinds}"
