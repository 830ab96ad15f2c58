"""Central's import graph (grimp, import-linter's graph library) has no cycles.

Which packages central may import is an import-linter contract in
pyproject.toml; import-linter has no contract against cycles inside a package,
so this test finds them itself."""

from __future__ import annotations

import grimp
import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("central", cache_dir=None)


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.find_modules_directly_imported_by(module) & modules:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def _central_modules(graph: grimp.ImportGraph) -> set[str]:
    return {m for m in graph.modules if m == "central" or m.startswith("central.")}


def test_central_imports_have_no_cycles(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph, _central_modules(graph)) == []


def test_cycle_finder_reports_a_cycle() -> None:
    toy = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z"):
        toy.add_module(name)
    toy.add_import(importer="a.x", imported="a.y")
    toy.add_import(importer="a.y", imported="a.x")
    toy.add_import(importer="a.z", imported="a.x")
    assert _cycles(toy, {"a.x", "a.y", "a.z"}) == [["a.x", "a.y"]]
