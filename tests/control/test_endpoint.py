# -*- test-case-name: tests.control.test_endpoint -*-
"""
Tests of the control/HTTP endpoint syntax.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.address import SpecError
from penbal.control.endpoint import parse_endpoint, unix_path


class EndpointTests(SynchronousTestCase):
    """[HOST:]PORT, unix:/path and Twisted endpoint strings."""

    def test_port_alone_is_loopback(self) -> None:
        """A bare port listens on 127.0.0.1, never on every interface."""
        self.assertEqual(parse_endpoint("8888", "--control"), "tcp:8888:interface=127.0.0.1")

    def test_host_and_port(self) -> None:
        """HOST:PORT and [V6]:PORT listen where asked."""
        self.assertEqual(parse_endpoint("0.0.0.0:8888", "x"), "tcp:8888:interface=0.0.0.0")
        self.assertEqual(parse_endpoint("[::1]:8888", "x"), "tcp6:8888:interface=\\:\\:1")

    def test_unix_mode(self) -> None:
        """A unix socket is mode 600 unless a mode is given."""
        self.assertEqual(parse_endpoint("unix:/run/p.sock", "x"), "unix:/run/p.sock:mode=600")
        self.assertEqual(parse_endpoint("/run/p.sock", "x"), "unix:/run/p.sock:mode=600")
        self.assertEqual(parse_endpoint("unix:/run/p.sock:mode=660", "x"),
                         "unix:/run/p.sock:mode=660")
        self.assertEqual(unix_path("unix:/run/a\\:b:mode=600"), "/run/a:b")
        self.assertIsNone(unix_path("tcp:1"))

    def test_explicit_endpoint(self) -> None:
        """A Twisted endpoint string is taken as written."""
        self.assertEqual(parse_endpoint("tcp:8888", "x"), "tcp:8888")

    def test_errors(self) -> None:
        """Bad values name the option and the expected form."""
        for text in ("", "x", "99999", "a:b:c", "unix:"):
            with self.assertRaises(SpecError) as caught:
                parse_endpoint(text, "--control")
            self.assertIn("--control", str(caught.exception))
