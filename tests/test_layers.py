"""
The direction of penbal's dependencies, read from the source (every import, those under
C{TYPE_CHECKING} included): a lower layer never imports a higher one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import penbal

SOURCE = Path(penbal.__file__).parent


def modules() -> dict[str, set[str]]:
    """Each module of penbal with the penbal modules (or names in them) it imports."""
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imports: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imports.add(node.module)
                imports.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
        found[name] = {each for each in imports if each.startswith("penbal")}
    return found


def imports_of(package: str, graph: dict[str, set[str]]) -> Iterator[tuple[str, str]]:
    for module, imported in graph.items():
        if module == package or module.startswith(package + "."):
            for each in imported:
                yield module, each


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    edges = {m: {i for i in imported if i in graph and i != m} for m, imported in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                other = stack.pop()
                group.append(other)
                if other == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


class LayerTests(SynchronousTestCase):
    """What may import what."""

    def setUp(self) -> None:
        self.graph = modules()

    def test_relay_imports_no_edges(self) -> None:
        """The relay calls the edges through the hooks it declares (penbal.relay.hooks)."""
        wrong = [(m, i) for m, i in imports_of("penbal.relay", self.graph)
                 if i.startswith("penbal.edges")]
        self.assertEqual(wrong, [])

    def test_config_and_status_import_no_control(self) -> None:
        """The application model (penbal.runtime) and Pen's command language (penbal.penctl)
        are below the control port: config and status need nothing of it."""
        wrong = [(m, i) for package in ("penbal.config", "penbal.status")
                 for m, i in imports_of(package, self.graph) if i.startswith("penbal.control")]
        self.assertEqual(wrong, [])

    def test_no_cycles(self) -> None:
        """No two modules import each other, directly or around a loop, the relay's included
        (its lower modules declare what they call: the legs the L{Relay} and L{Readiness}
        interfaces, the dial its L{DialSite}, the connectors their L{Attempt})."""
        self.assertEqual(cycles(self.graph), [])

    def test_relay_imports_nothing_under_type_checking(self) -> None:
        """No module of the relay hides an import under C{TYPE_CHECKING} (a cycle in all but
        name)."""
        hidden = []
        for path in (SOURCE / "relay").rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    hidden.append(path.name)
        self.assertEqual(hidden, [])

    def test_cycle_finder_finds_cycles(self) -> None:
        """The finder sees a loop of three and ignores a chain."""
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
        self.assertEqual(cycles(graph), [["a", "b", "c"]])
