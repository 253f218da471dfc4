# -*- test-case-name: tests.edges.test_tls -*-
"""
What the TLS options ask for, as plain data, checked at start-up without loading OpenSSL.

The code that acts on them (L{penbal.edges.tls}, L{penbal.edges.tlsserver}) needs pyOpenSSL;
keeping the settings apart lets a balancer with no TLS configured run without it (about
12 MiB less memory, see L{penbal.launcher}).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Protocol versions accepted as a minimum; nothing older than TLS 1.2.
TLS_VERSION_NAMES = ("1.2", "1.3")


class TLSConfigError(ValueError):
    """A TLS setting is unusable; the message names the file or value and what is wrong."""


def parse_tls_version(text: str) -> str:
    """C{1.2} or C{1.3} (also written C{TLSv1.3}); nothing older is accepted."""
    value = text.strip().lower().removeprefix("tlsv").removeprefix("tls")
    if value not in TLS_VERSION_NAMES:
        raise TLSConfigError(f"invalid TLS version {text!r}: expected 1.2 or 1.3")
    return value


def is_tls_endpoint(description: str) -> bool:
    """True for an endpoint that terminates TLS (C{ssl:} or C{tls:})."""
    return description.startswith(("ssl:", "tls:"))


@dataclass(frozen=True)
class BackendTLSSettings:
    """What C{--backend-tls*} and C{--tls-*} say about connections to backends."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    default_name: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    min_version: str | None = None
    ciphers: str | None = None


@dataclass(frozen=True)
class ListenTLSSettings:
    """
    What C{--tls-min-version} and C{--tls-ciphers} ask of the listening side, and whether the
    LISTEN endpoint terminates TLS (C{ssl:}, or C{tls:DIR}, served by penbal's own SNI lookup,
    which reads certificates added or renewed after start-up; Twisted's own C{tls:} does not).
    """

    min_version: str | None = None
    ciphers: str | None = None
    #: The LISTEN endpoint terminates TLS: penbal builds it (L{penbal.edges.tlsserver}), to
    #: read C{tls:} directories itself and end half-closed connections cleanly
    #: (L{penbal.edges.tlsclose}).
    terminates: bool = False

    @property
    def tightens(self) -> bool:
        """True if the protocol version or the ciphers are to be restricted."""
        return self.min_version is not None or self.ciphers is not None

    @property
    def active(self) -> bool:
        """True if penbal builds the LISTEN endpoint itself (L{penbal.edges.tlsserver})."""
        return self.tightens or self.terminates
