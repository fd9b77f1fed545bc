"""Imports follow the data's path: no module imports itself back through others.

The graph is read with ``ast`` from every module under ``src/emberwatch``, counting
imports at module level and inside functions alike (an import in a function body is
still a dependency; it only hides the cycle until the function runs). Imports under
``if TYPE_CHECKING:`` are left out: they never run. Run this file as a script to print
the graph's longest path.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "emberwatch"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    tree: ast.AST, module: str, is_package: bool, modules: frozenset[str] = frozenset()
) -> set[str]:
    """What one module imports. ``from pkg import sub`` depends on ``pkg.sub`` when that is
    a module (``modules``), and on ``pkg`` (its ``__init__``) only for other names."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                sub = f"{prefix}.{alias.name}"
                found.add(sub if sub in modules else prefix)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Each module of the package, and the package's modules it imports."""
    files = {_module_name(p): p for p in (SRC / PACKAGE).rglob("*.py")}
    graph: dict[str, frozenset[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = _imports(tree, module, path.name == "__init__.py", frozenset(files))
        graph[module] = frozenset(n for n in names if n in files and n != module)
    return graph


def find_cycle(graph: dict[str, frozenset[str]]) -> list[str] | None:
    """One cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for start in sorted(graph):
        if start not in state and (found := walk(start)):
            return found
    return None


def longest_path(graph: dict[str, frozenset[str]]) -> list[str]:
    """The longest chain of imports (the graph has no cycle)."""

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    @cache
    def longest_from(node: str) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for nxt in graph[node]:
            chain = longest_from(nxt)
            if len(chain) > len(best) or (len(chain) == len(best) and chain < best):
                best = chain
        return (node, *best)

    return list(max((longest_from(n) for n in sorted(graph)), key=len))


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def package_edges(graph: dict[str, frozenset[str]]) -> set[tuple[str, str]]:
    """(importer, imported) between the package's first-level packages and modules."""
    return {
        (_package_of(a), _package_of(b))
        for a, targets in graph.items()
        for b in targets
        if _package_of(a) != _package_of(b)
    }


def test_the_import_graph_has_no_cycle():
    assert find_cycle(import_graph()) is None


def test_alerts_and_channels_do_not_import_each_other():
    edges = package_edges(import_graph())
    both = ("emberwatch.alerts", "emberwatch.channels")
    assert not (both in edges and both[::-1] in edges)
    assert ("emberwatch.alerts", "emberwatch.channels") not in edges  # the policy only queues


def test_channels_depend_on_nothing_that_delivers_or_produces():
    edges = package_edges(import_graph())
    for below in ("emberwatch.outbox", "emberwatch.delivery", "emberwatch.digest"):
        assert ("emberwatch.channels", below) not in edges


def test_the_graph_sees_imports_inside_functions(tmp_path):
    tree = ast.parse("def f():\n    from emberwatch import outbox\n")
    modules = frozenset({"emberwatch.outbox"})
    assert "emberwatch.outbox" in _imports(tree, "emberwatch.x", False, modules)


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"})}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


if __name__ == "__main__":
    chain = longest_path(import_graph())
    print(f"longest import path ({len(chain)} modules):")
    print("  " + "\n  -> ".join(chain))
    print("cycle:", find_cycle(import_graph()))
