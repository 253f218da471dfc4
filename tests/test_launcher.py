# -*- test-case-name: tests.test_launcher -*-
"""
Tests of what penbal settles with twist or twistd: the default reactor and pyOpenSSL.
"""

from __future__ import annotations

from typing import Any

from twisted.application.app import ServerOptions
from twisted.application.twist._options import TwistOptions
from twisted.trial.unittest import SynchronousTestCase

from penbal.launcher import keep_tls_out, prefer_lean_reactor


class DefaultChoiceTests(SynchronousTestCase):
    """twist penbal and twistd penbal run on the lean reactor unless one is named."""

    def test_twist_default(self) -> None:
        """Under twist with no --reactor, the reactor twist installs becomes penbal-epoll."""
        launcher = TwistOptions()
        self.assertTrue(prefer_lean_reactor(launcher, modules={}))
        self.assertEqual(launcher["reactorName"], "penbal-epoll")

    def test_twist_named_reactor_kept(self) -> None:
        """twist --reactor NAME wins."""
        launcher = TwistOptions()
        launcher["reactor"], launcher["reactorName"] = object(), "epoll"
        self.assertFalse(prefer_lean_reactor(launcher, modules={}))
        self.assertEqual(launcher["reactorName"], "epoll")

    def test_installed_reactor_kept(self) -> None:
        """With a reactor installed already (twistd --reactor, trial) nothing changes."""
        launcher = TwistOptions()
        before = launcher["reactorName"]
        self.assertFalse(prefer_lean_reactor(launcher, modules={"twisted.internet.reactor": 1}))
        self.assertEqual(launcher["reactorName"], before)

    def test_twistd_installs_now(self) -> None:
        """Under twistd, where the reactor is imported later, it is installed at once."""
        installed: list[bool] = []
        chosen = prefer_lean_reactor(ServerOptions(), modules={},
                                     install_now=lambda: installed.append(True))
        self.assertTrue(chosen)
        self.assertEqual(installed, [True])

    def test_other_launchers_untouched(self) -> None:
        """Options parsed outside twist/twistd (tests, tools) choose nothing."""
        self.assertFalse(prefer_lean_reactor(None, modules={}))


class KeepTLSOutTests(SynchronousTestCase):
    """pyOpenSSL stays unloaded under twist/twistd when nothing needs TLS."""

    def test_plain_config_blocks_openssl(self) -> None:
        """No TLS endpoint, no backend TLS: OpenSSL is made unimportable."""
        modules: dict[str, Any] = {}
        self.assertTrue(keep_tls_out(TwistOptions(), ["tcp:3306"], False, modules))
        self.assertIn("OpenSSL", modules)
        self.assertIsNone(modules["OpenSSL"])

    def test_tls_needed(self) -> None:
        """A TLS listen, control or status endpoint, or TLS to backends: nothing changes."""
        for endpoints, backend_tls in (
            (["ssl:3306:privateKey=k.pem"], False),
            (["tls:3306:/etc/penbal/certs"], False),
            (["haproxy:ssl:3306:privateKey=k.pem"], False),
            (["tcp:3306", "ssl:8443:privateKey=k.pem"], False),
            (["tcp:3306"], True),
        ):
            modules: dict[str, Any] = {}
            self.assertFalse(keep_tls_out(TwistOptions(), endpoints, backend_tls, modules))
            self.assertEqual(modules, {}, endpoints)

    def test_too_late(self) -> None:
        """Once OpenSSL or Twisted's TCP module is loaded, nothing changes."""
        for loaded in ("OpenSSL", "twisted.internet.tcp"):
            modules: dict[str, Any] = {loaded: object()}
            self.assertFalse(keep_tls_out(ServerOptions(), ["tcp:3306"], False, modules))
            self.assertNotIn(None, modules.values())

    def test_not_under_a_launcher(self) -> None:
        """Options parsed in tests or tools leave the process alone."""
        modules: dict[str, Any] = {}
        self.assertFalse(keep_tls_out(None, ["tcp:3306"], False, modules))
        self.assertEqual(modules, {})
