"""
Tests for L{penbal.edges.tlsclose}: Twisted's TLS protocol made safe to end half-closed.
"""

from __future__ import annotations

from typing import Any

from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.tlsclose import QuietFlush, guarded, install


class TLSCloseTests(SynchronousTestCase):
    """The guarded flush and its installation."""

    def test_flush_after_connection_lost_is_quiet(self) -> None:
        """Once the TLS connection is gone, a flush does nothing instead of raising."""
        cls: Any = guarded(TLSMemoryBIOFactory.protocol)
        protocol: Any = cls.__new__(cls)
        protocol._tlsConnection = None
        protocol._flushSendBIO()  # Twisted's own raises AttributeError here
        plain: Any = TLSMemoryBIOProtocol.__new__(TLSMemoryBIOProtocol)
        plain._tlsConnection = None
        self.assertRaises(AttributeError, plain._flushSendBIO)

    def test_guarded_keeps_the_base(self) -> None:
        """The guarded class is the base with the mix-in, built once."""
        cls = guarded(TLSMemoryBIOProtocol)
        self.assertTrue(issubclass(cls, TLSMemoryBIOProtocol))
        self.assertTrue(issubclass(cls, QuietFlush))
        self.assertIs(guarded(TLSMemoryBIOProtocol), cls)
        self.assertIs(guarded(cls), cls)

    def test_install(self) -> None:
        """install() makes Twisted's TLS factories build the guarded protocol, once."""
        base = TLSMemoryBIOFactory.protocol
        self.patch(TLSMemoryBIOFactory, "protocol", base)
        self.assertTrue(install())
        self.assertIs(TLSMemoryBIOFactory.protocol, guarded(base))
        self.assertTrue(install())
        self.assertIs(TLSMemoryBIOFactory.protocol, guarded(base))

    def test_unexpected_twisted_left_alone(self) -> None:
        """A factory protocol that is not Twisted's TLS protocol is not touched."""
        self.patch(TLSMemoryBIOFactory, "protocol", object)
        self.assertFalse(install())
        self.assertIs(TLSMemoryBIOFactory.protocol, object)
