"""
Tests for L{penbal.relay.hooks}: the relay depends on the interfaces it declares, never on the
edge features' modules, and the edges implement them.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.forwarded import ForwardedRewriter
from penbal.edges.gate import Edges
from penbal.relay.hooks import EdgeHooks, RequestRewriter


class HookTests(SynchronousTestCase):
    """The edges implement what the relay asks of them (tests.test_layers checks that the
    relay imports nothing of the edges)."""

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
