"""
Tests for the health-check options of C{twist penbal}.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from penbal.options import Options


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions([*args, "127.0.0.1:3306", "127.0.0.1:3361"])
    return options


class HealthOptionTests(SynchronousTestCase):
    """--check and its companions."""

    def test_defaults(self) -> None:
        """No active check by default; interval 1, timeout 1, rise 2, fall 2, donor avoid."""
        options = parse()
        self.assertIsNone(options["check"])
        self.assertEqual(
            (options["check-interval"], options["check-timeout"], options["rise"],
             options["fall"], options["donor"], options["on-unfit"]),
            (1.0, 1.0, 2, 2, "avoid", "keep"))

    def test_tcp(self) -> None:
        """--check tcp needs no credentials."""
        options = parse("--check", "tcp", "--check-interval", "0.5", "--fall", "3")
        self.assertEqual((options["check"], options["check-interval"], options["fall"]),
                         ("tcp", 0.5, 3))

    def test_galera_credentials_file(self) -> None:
        """--check galera reads the credentials file at start-up."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[client]\nuser=penbal_check\npassword=x\n")
        os.chmod(path, 0o600)
        options = parse("--check", "galera", "--check-credentials", path)
        self.assertEqual(options["check-credentials-found"].user, "penbal_check")

    def assertRefused(self, *args: str, words: str) -> None:
        e = self.assertRaises(SystemExit, parse, *args)
        self.assertTrue(str(e).startswith("penbal: error: "), str(e))
        self.assertIn(words, str(e))
        self.assertNotIn("\n", str(e))

    def test_galera_without_credentials(self) -> None:
        """--check galera without a file or environment is one line at start-up."""
        saved = {k: os.environ.pop(k) for k in ("PENBAL_CHECK_USER",) if k in os.environ}
        self.addCleanup(os.environ.update, saved)
        self.assertRefused("--check", "galera", words="PENBAL_CHECK_USER")

    def test_bad_values(self) -> None:
        """Unknown choices and out-of-range numbers are refused, naming the option."""
        self.assertRefused("--check", "http", words="tcp|galera")
        self.assertRefused("--donor", "maybe", words="avoid|never|use")
        self.assertRefused("--on-unfit", "drop", words="keep|close")
        self.assertRefused("--rise", "0", words="--rise")
        self.assertRefused("--check-timeout", "x", words="--check-timeout")

    def test_discover_needs_galera(self) -> None:
        """--discover without --check galera is refused."""
        self.assertRefused("--discover", "--check", "tcp", words="--discover needs --check galera")

    def test_not_with_udp(self) -> None:
        """--check is refused in UDP mode, pointing to --udp-check."""
        self.assertRefused("--udp", "--check", "tcp", words="--udp-check")
