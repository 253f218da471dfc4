# -*- test-case-name: tests.udp.test_resolve -*-
"""
Tests of L{penbal.udp.resolve}: backend names to addresses, without blocking, with a cache.
"""

from __future__ import annotations

from twisted.internet.error import DNSLookupError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.udp.resolve import HostResolver
from tests.udp.fixtures import FakeNameResolver


class ResolverTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.names = FakeNameResolver()
        self.resolver = HostResolver(self.names, self.clock, ttl=30)

    def test_literal_known_at_once(self) -> None:
        """An IP literal needs no lookup, and is normalised."""
        self.assertEqual(self.resolver.known("127.0.0.1"), "127.0.0.1")
        self.assertEqual(self.resolver.known("0:0::1"), "::1")
        self.assertEqual(self.successResultOf(self.resolver.resolve("::1")), "::1")
        self.assertEqual(self.names.pending, [])

    def test_name_resolved_and_cached(self) -> None:
        """A name is looked up once, then known until the cache time runs out."""
        d = self.resolver.resolve("db.example")
        self.assertIsNone(self.resolver.known("db.example"))
        self.names.answer("127.10.0.1")
        self.assertEqual(self.successResultOf(d), "127.10.0.1")
        self.assertEqual(self.resolver.known("db.example"), "127.10.0.1")
        self.clock.advance(31)
        self.assertIsNone(self.resolver.known("db.example"))

    def test_concurrent_lookups_share_one(self) -> None:
        """Two sessions asking at once cause one lookup."""
        first = self.resolver.resolve("db.example")
        second = self.resolver.resolve("db.example")
        self.assertEqual(len(self.names.pending), 1)
        self.names.answer("127.10.0.1")
        self.assertEqual(self.successResultOf(first), self.successResultOf(second))

    def test_ipv4_first(self) -> None:
        """IPv4 is preferred when a name has both."""
        d = self.resolver.resolve("db.example")
        self.names.answer("::2", "127.10.0.1")
        self.assertEqual(self.successResultOf(d), "127.10.0.1")

    def test_no_address_fails(self) -> None:
        """A name without addresses fails with DNSLookupError, and is not cached."""
        d = self.resolver.resolve("gone.example")
        self.names.answer()
        self.failureResultOf(d, DNSLookupError)
        self.resolver.resolve("gone.example")
        self.assertEqual(len(self.names.pending), 1)
