# -*- test-case-name: tests.edges.test_tlsserver -*-
"""
TLS termination settings for C{ssl:} and C{tls:} LISTEN endpoints: C{--tls-min-version} and
C{--tls-ciphers} tighten the OpenSSL context the endpoint made, before it accepts anyone.

Twisted's endpoint strings have no such options, so the context each endpoint builds is
adjusted in place.  The protocol version and the TLS 1.2 cipher list of a connection come from
the context it starts with, also when SNI (C{tls:DIR}) later switches the certificate.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint

from penbal.edges.tlssettings import ListenTLSSettings, TLSConfigError, is_tls_endpoint

__all__ = ["ListenTLSSettings", "is_tls_endpoint", "listen_endpoint", "tighten"]

_OPENSSL_VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}


def endpoint_context(endpoint: Any) -> SSL.Context:
    """The OpenSSL context new connections of a C{ssl:} or C{tls:} endpoint start with."""
    # ssl: an SSL4ServerEndpoint holding its CertificateOptions.
    options = getattr(endpoint, "_sslContextFactory", None)
    if options is not None:
        return options.getContext()  # type: ignore[no-any-return]
    # tls: a TLS wrapper around TCP, whose SNI creator starts from a default context.
    creator = getattr(endpoint, "connectionCreator", None)
    default = getattr(creator, "defaultContext", None)
    if isinstance(default, SSL.Context):
        return default
    raise TLSConfigError(
        "--tls-min-version and --tls-ciphers need an ssl: or tls: LISTEN endpoint"
    )


def tighten(context: SSL.Context, settings: ListenTLSSettings) -> None:
    """Raise the minimum protocol version and restrict the TLS 1.2 ciphers of C{context}."""
    if settings.min_version is not None:
        context.set_min_proto_version(_OPENSSL_VERSIONS[settings.min_version])
    if settings.ciphers is not None:
        try:
            context.set_cipher_list(settings.ciphers.encode("ascii"))
        except (SSL.Error, UnicodeEncodeError):
            raise TLSConfigError(
                f"invalid --tls-ciphers {settings.ciphers!r}: expected an OpenSSL cipher list"
                " that names at least one available cipher"
            ) from None


def listen_endpoint(
    reactor: Any, description: str, settings: ListenTLSSettings
) -> IStreamServerEndpoint:
    """
    The endpoint for a LISTEN description, with the TLS settings applied when it is a TLS
    endpoint (an error if settings are given for a plain one).
    """
    endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    if settings.active:
        if not is_tls_endpoint(description):
            raise TLSConfigError(
                "--tls-min-version and --tls-ciphers need an ssl: or tls: LISTEN endpoint,"
                f" not {description!r}"
            )
        tighten(endpoint_context(endpoint), settings)
    return endpoint
