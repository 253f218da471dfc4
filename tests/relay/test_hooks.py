"""
Tests for L{penbal.relay.hooks}: the relay depends on the interfaces it declares, never on the
edge features' modules, and the edges implement them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

import penbal.relay
from penbal.edges.forwarded import ForwardedRewriter
from penbal.edges.gate import Edges
from penbal.relay.hooks import EdgeHooks, RequestRewriter


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at any level (TYPE_CHECKING blocks included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


class DirectionTests(SynchronousTestCase):
    """Dependencies point one way: the edges know the relay, not the reverse."""

    def test_relay_imports_no_edges(self) -> None:
        """No module of penbal.relay imports penbal.edges, not even for typing."""
        package = Path(penbal.relay.__file__).parent
        offenders = {
            path.name: sorted(m for m in imported_modules(path) if m.startswith("penbal.edges"))
            for path in sorted(package.glob("*.py"))
        }
        self.assertEqual({name: mods for name, mods in offenders.items() if mods}, {})

    def test_edges_implement_the_hooks(self) -> None:
        """The edges and the HTTP rewriter are what the relay's hooks describe (mypy checks
        these assignments; here they also run)."""
        clock = MemoryReactorClock()
        hooks: EdgeHooks = Edges(clock, clock)
        rewriter: RequestRewriter = ForwardedRewriter("127.0.0.2", "http", lambda why: None,
                                                      send=lambda data: None)
        self.assertTrue(hooks.plain_fronts)
        self.assertEqual(rewriter.feed(b"GET / HTTP/1.1\r\n\r\n")[:16], b"GET / HTTP/1.1\r\n")
        self.assertFalse(rewriter.tunnel)
