# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layers of plugins/module_utils hold: no import reaches up a layer, and no import cycle exists.

Read from the source (every import, those inside functions too), so a lazy import cannot hide a
dependency. The order is the architecture docs/developing.md draws.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[4] / "plugins"
PREFIX = "ansible_collections.golem.vm.plugins."
# Lowest first: a module may import its own layer and those before it, never one after it.
LAYERS = ("module_utils.foundation", "module_utils.state", "module_utils.chain", "module_utils.provider",
          "module_utils.discovery", "module_utils.vm", "module_utils", "plugin_utils", "modules", "inventory")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PLUGINS).with_suffix("").parts)


def layer(module: str) -> int:
    """The rank of the longest layer name ``module`` is under: module_utils.vm.x is in vm, module_utils.x
    (the modules' glue) in module_utils."""
    ranks = [rank for rank, name in enumerate(LAYERS) if module.startswith(name + ".")]
    assert ranks, f"{module} is in no layer: add its package to LAYERS"
    return max(ranks, key=lambda rank: len(LAYERS[rank]))


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            base = node.module[len(PREFIX):]
            for alias in node.names:  # `from package import module` imports the module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if (PLUGINS / (candidate.replace(".", "/") + ".py")).is_file() else base)
        elif isinstance(node, ast.Import):
            found.update(a.name[len(PREFIX):] for a in node.names if a.name.startswith(PREFIX))
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PLUGINS.rglob("*.py")) if p.name != "__init__.py"}


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{src} ({LAYERS[layer(src)]}) imports {dst} ({LAYERS[layer(dst)]})"
                  for src, targets in edges.items() for dst in targets if layer(dst) > layer(src))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_no_module_imports_a_higher_layer() -> None:
    edges = graph()
    assert len(edges) > 60 and sum(map(len, edges.values())) > 250, "the whole tree was read"
    assert upward(edges) == []


def test_there_is_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_every_import_names_a_module_that_exists() -> None:
    edges = graph()
    missing = sorted(f"{src} imports {dst}" for src, targets in edges.items() for dst in targets
                     if dst not in edges and not (PLUGINS / dst.replace(".", "/")).is_dir())
    assert missing == []


@pytest.mark.parametrize("edges, expected", [
    ({"module_utils.foundation.a": {"module_utils.vm.b"}, "module_utils.vm.b": set()},
     ["module_utils.foundation.a (module_utils.foundation) imports module_utils.vm.b (module_utils.vm)"]),
    ({"module_utils.vm.b": {"module_utils.foundation.a"}, "module_utils.foundation.a": set()}, []),
    ({"module_utils.state.a": {"module_utils.x"}, "module_utils.x": set()},
     ["module_utils.state.a (module_utils.state) imports module_utils.x (module_utils)"]),
])
def test_the_check_sees_an_upward_import(edges: dict[str, set[str]], expected: list[str]) -> None:
    assert upward(edges) == expected


def test_the_check_sees_a_cycle() -> None:
    assert cycles({"module_utils.vm.a": {"module_utils.vm.b"}, "module_utils.vm.b": {"module_utils.vm.a"}})
    assert not cycles({"module_utils.vm.a": {"module_utils.vm.b"}, "module_utils.vm.b": set()})
