# -*- test-case-name: tests.health.test_credentials -*-
"""
The Galera check's login: a my.cnf-style file (C{[client]} with C{user=}, C{password=} and
optionally C{ssl-ca=} for TLS) given with C{--check-credentials}, or the environment variables
C{PENBAL_CHECK_USER} and C{PENBAL_CHECK_PASSWORD}.  Never the command line, where every local
user can read it.
"""

from __future__ import annotations

import configparser
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

USER_VARIABLE = "PENBAL_CHECK_USER"
PASSWORD_VARIABLE = "PENBAL_CHECK_PASSWORD"
FILE_FORM = "a my.cnf-style file with a [client] section holding user= and password="


class CredentialsError(ValueError):
    """The credentials cannot be found or read; the message is one line for the user."""


@dataclass(frozen=True)
class Credentials:
    """A MySQL user and password for the health check (a user with USAGE only is enough)."""

    user: str
    password: str = field(default="", repr=False)
    source: str = ""
    warning: str = ""
    ssl_ca: str = ""


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def read_credentials_file(path: str) -> Credentials:
    """Read C{user} and C{password} from the C{[client]} section of C{path}."""
    parser = configparser.ConfigParser(
        interpolation=None, strict=False, allow_no_value=True, comment_prefixes=("#", ";")
    )
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f, source=path)
        mode = os.stat(path).st_mode
    except OSError as e:
        raise CredentialsError(f"cannot read --check-credentials {path!r}: {e.strerror}") from None
    except (configparser.Error, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0]
        raise CredentialsError(
            f"cannot parse --check-credentials {path!r} ({first}): expected {FILE_FORM}"
        ) from None
    if not parser.has_section("client"):
        raise CredentialsError(f"no [client] section in {path!r}: expected {FILE_FORM}")
    user = _unquote(parser.get("client", "user", fallback="") or "")
    if not user:
        raise CredentialsError(
            f"no user= in the [client] section of {path!r}: expected {FILE_FORM}"
        )
    password = _unquote(parser.get("client", "password", fallback="") or "")
    ssl_ca = _unquote(parser.get("client", "ssl-ca", fallback="") or "")
    if ssl_ca and not os.path.isfile(ssl_ca):
        raise CredentialsError(f"ssl-ca={ssl_ca} in {path!r} is not a readable file")
    warning = ""
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warning = f"{path} is readable by other users: chmod 600 it"
    return Credentials(user, password, f"file {path}", warning, ssl_ca)


def credentials_from_environment(environ: Mapping[str, str]) -> Credentials | None:
    """The credentials in C{PENBAL_CHECK_USER} / C{PENBAL_CHECK_PASSWORD}, if the user is set."""
    user = environ.get(USER_VARIABLE, "")
    if not user:
        return None
    return Credentials(user, environ.get(PASSWORD_VARIABLE, ""), "environment")


def find_credentials(path: str | None, environ: Mapping[str, str]) -> Credentials:
    """The file if one is given, else the environment; an error naming both if neither."""
    if path:
        return read_credentials_file(path)
    found = credentials_from_environment(environ)
    if found is None:
        raise CredentialsError(
            f"--check galera needs a login: --check-credentials FILE ({FILE_FORM}),"
            f" or {USER_VARIABLE} and {PASSWORD_VARIABLE} in the environment"
        )
    return found
