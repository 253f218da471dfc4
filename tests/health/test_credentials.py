"""
Tests for L{penbal.health.credentials}: a my.cnf-style file or the environment.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from penbal.health.credentials import (
    CredentialsError,
    credentials_from_environment,
    find_credentials,
    read_credentials_file,
)


class FileTests(SynchronousTestCase):
    """C{--check-credentials FILE}."""

    def write(self, text: str, mode: int = 0o600) -> str:
        path: str = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_client_section(self) -> None:
        """user= and password= of [client] are read; other sections and keys are ignored."""
        path = self.write("[mysqld]\nuser=mysql\n\n[client]\n# comment\nuser = penbal_check\n"
                          "password=\"s3cr#t\"\nssl\n!includedir /etc/mysql/conf.d/\n")
        found = read_credentials_file(path)
        self.assertEqual((found.user, found.password), ("penbal_check", "s3cr#t"))
        self.assertEqual(found.warning, "")

    def test_no_password(self) -> None:
        """A missing password is empty."""
        self.assertEqual(read_credentials_file(self.write("[client]\nuser=u\n")).password, "")

    def test_password_hidden(self) -> None:
        """The password is not in the repr (it may be logged)."""
        found = read_credentials_file(self.write("[client]\nuser=u\npassword=hush\n"))
        self.assertNotIn("hush", repr(found))

    def test_readable_by_others(self) -> None:
        """A file others can read comes with a warning."""
        found = read_credentials_file(self.write("[client]\nuser=u\n", 0o644))
        self.assertIn("chmod 600", found.warning)

    def test_missing_file(self) -> None:
        """A missing file is one line naming it."""
        e = self.assertRaises(CredentialsError, read_credentials_file, "/nonexistent/my.cnf")
        self.assertIn("/nonexistent/my.cnf", str(e))
        self.assertNotIn("\n", str(e))

    def test_no_client_section(self) -> None:
        """A file without [client] says what is expected."""
        e = self.assertRaises(CredentialsError, read_credentials_file, self.write("[mysqld]\n"))
        self.assertIn("no [client] section", str(e))

    def test_no_user(self) -> None:
        """A [client] without user= is refused."""
        e = self.assertRaises(CredentialsError, read_credentials_file,
                              self.write("[client]\npassword=x\n"))
        self.assertIn("no user=", str(e))

    def test_not_ini(self) -> None:
        """Text before any section is refused in one line."""
        e = self.assertRaises(CredentialsError, read_credentials_file, self.write("user=x\n"))
        self.assertIn("expected a my.cnf-style file", str(e))
        self.assertNotIn("\n", str(e))


class EnvironmentTests(SynchronousTestCase):
    """PENBAL_CHECK_USER / PENBAL_CHECK_PASSWORD."""

    def test_environment(self) -> None:
        """The user and password come from the environment."""
        found = credentials_from_environment(
            {"PENBAL_CHECK_USER": "u", "PENBAL_CHECK_PASSWORD": "p"})
        assert found is not None
        self.assertEqual((found.user, found.password, found.source), ("u", "p", "environment"))

    def test_file_first(self) -> None:
        """A file given wins over the environment."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[client]\nuser=fromfile\n")
        found = find_credentials(path, {"PENBAL_CHECK_USER": "fromenv"})
        self.assertEqual(found.user, "fromfile")

    def test_neither(self) -> None:
        """Neither a file nor the environment: the error names both ways."""
        e = self.assertRaises(CredentialsError, find_credentials, None, {})
        self.assertIn("--check-credentials", str(e))
        self.assertIn("PENBAL_CHECK_USER", str(e))


class TLSFileTests(SynchronousTestCase):
    """ssl-ca= in the credentials file."""

    def test_ssl_ca(self) -> None:
        """ssl-ca names the CA file the check verifies nodes against."""
        path = self.mktemp()
        ca = os.path.abspath(self.mktemp())
        with open(ca, "w") as f:
            f.write("x")
        with open(path, "w") as f:
            f.write(f"[client]\nuser=u\nssl-ca={ca}\n")
        self.assertEqual(read_credentials_file(path).ssl_ca, ca)

    def test_missing_ssl_ca(self) -> None:
        """An ssl-ca that is not a file is refused at start-up."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[client]\nuser=u\nssl-ca=/nonexistent/ca.pem\n")
        e = self.assertRaises(CredentialsError, read_credentials_file, path)
        self.assertIn("ssl-ca=/nonexistent/ca.pem", str(e))
