# -*- test-case-name: tests.edges.test_tls -*-
"""
TLS towards backends (C{--backend-tls}): every backend's certificate is checked against the
configured CA and, with service-identity, against the name expected for that backend.

There is no way to turn verification off.  A connection whose handshake fails, or whose
certificate is expired, from an unknown CA or for another name, is a failed connect: the
backend is blacklisted with the reason and the client fails over, before any of its bytes
reach the backend.  L{TLSConnector} is the relay's connector then (chosen at assembly): the
dial treats a connection as ready once its handshake has completed.
"""

from __future__ import annotations

import re
from typing import Any

from OpenSSL import SSL
from OpenSSL.crypto import X509
from service_identity import VerificationError
from service_identity.hazmat import DNS_ID, IPAddress_ID, ServiceID, verify_service_identity
from service_identity.pyopenssl import extract_patterns
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IProtocol, IReactorTime
from twisted.internet.protocol import ClientFactory
from twisted.internet.ssl import (
    AcceptableCiphers,
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    TLSVersion,
    platformTrust,
    trustRootFromCertificates,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.backend import Backend
from penbal.edges.tlsclose import guarded
from penbal.edges.tlssettings import BackendTLSSettings, TLSConfigError, parse_tls_version
from penbal.relay.attempt import Attempt, Connecting
from penbal.relay.connect import Connector, Handshake

__all__ = ["BackendTLS", "BackendTLSSettings", "TLSConfigError", "TLSConnector",
           "parse_tls_version"]

TLS_VERSIONS = {"1.2": TLSVersion.TLSv1_2, "1.3": TLSVersion.TLSv1_3}
_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)
# The X.509 verification errors a misconfigured backend gives, in OpenSSL's words.
_X509_ERRORS = {
    2: "unable to get the issuer certificate",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in the chain",
    20: "not signed by a trusted CA (unable to get local issuer certificate)",
    21: "unable to verify the first certificate",
    24: "invalid CA certificate",
    26: "unsupported certificate purpose",
}


def read_certificates(path: str) -> list[Certificate]:
    """Every PEM certificate in C{path} (a CA bundle may hold several)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TLSConfigError(f"cannot read certificate file {path!r}: {e.strerror}") from None
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise TLSConfigError(f"no PEM certificate in {path!r}")
    try:
        return [Certificate.loadPEM(block) for block in blocks]
    except Exception as e:
        raise TLSConfigError(f"invalid certificate in {path!r}: {e}") from None


def load_client_certificate(cert_file: str, key_file: str | None) -> PrivateCertificate:
    """The balancer's own certificate and key (the key may be in the certificate file)."""
    paths = [cert_file] if key_file is None else [cert_file, key_file]
    pem = b""
    for path in paths:
        try:
            with open(path, "rb") as f:
                pem += f.read() + b"\n"
        except OSError as e:
            raise TLSConfigError(f"cannot read {path!r}: {e.strerror}") from None
    try:
        own: PrivateCertificate = PrivateCertificate.loadPEM(pem)
        return own
    except Exception as e:
        raise TLSConfigError(
            f"invalid client certificate or key in {', '.join(map(repr, paths))}: {e}"
        ) from None


def certificate_options(settings: BackendTLSSettings) -> CertificateOptions:
    """Verifying client options: the CA (or the platform's trust), minimum version, ciphers."""
    if settings.ca_file is not None:
        trust: Any = trustRootFromCertificates(read_certificates(settings.ca_file))
    else:
        trust = platformTrust()
    extra: dict[str, Any] = {}
    if settings.cert_file is not None:
        own = load_client_certificate(settings.cert_file, settings.key_file)
        extra.update(privateKey=own.privateKey.original, certificate=own.original)
    if settings.min_version is not None:
        extra["raiseMinimumTo"] = TLS_VERSIONS[settings.min_version]
    if settings.ciphers is not None:
        extra["acceptableCiphers"] = AcceptableCiphers.fromOpenSSLCipherString(settings.ciphers)
    try:
        options = CertificateOptions(trustRoot=trust, **extra)
        options.getContext()
    except (ValueError, SSL.Error) as e:
        raise TLSConfigError(f"unusable backend TLS settings: {e}") from None
    return options


def service_id(name: str) -> ServiceID:
    """What to check the certificate against: an IP address or a DNS name."""
    if isIPAddress(name) or isIPv6Address(name):
        return IPAddress_ID(name)
    return DNS_ID(name)


def explain_x509(error: int, depth: int) -> str:
    """One OpenSSL verification error in words."""
    text = _X509_ERRORS.get(error, f"X.509 verification error {error}")
    return text if depth == 0 else f"{text} (at chain depth {depth})"


@implementer(IOpenSSLClientConnectionCreator)
class VerifyingCreator:
    """Client TLS connections that verify the chain and the backend's name, noting why not."""

    def __init__(self, context: SSL.Context, name: str) -> None:
        self._context = context
        self.name = name
        self._id = service_id(name)
        self._sni = name.encode("idna") if isinstance(self._id, DNS_ID) else None

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        if self._sni is not None:
            connection.set_tlsext_host_name(self._sni)
        identity, name = self._id, self.name

        def verify(conn: SSL.Connection, cert: X509, error: int, depth: int, ok: int) -> bool:
            why = None
            if not ok:
                why = explain_x509(error, depth)
            elif depth == 0:
                try:
                    verify_service_identity(extract_patterns(cert), [identity], [])
                except VerificationError as e:
                    why = f"certificate does not match {name!r}: {e}"
            if why is None:
                return True
            if getattr(tlsProtocol, "penbal_rejected", None) is None:
                tlsProtocol.penbal_rejected = why  # the words for the failed handshake
            return False

        connection.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
        return connection


class BackendTLS:
    """The backends' TLS settings, loaded: one connection creator per server name."""

    def __init__(self, settings: BackendTLSSettings, clock: IReactorTime) -> None:
        self.settings = settings
        self.clock = clock
        self._context = certificate_options(settings).getContext()
        self._creators: dict[str, VerifyingCreator] = {}

    def server_name(self, backend: Backend) -> str:
        """The name the backend's certificate must carry."""
        settings = self.settings
        named = settings.names.get(backend.spec.address)
        if named is not None:
            return named
        return settings.default_name or backend.spec.host

    def creator(self, name: str) -> VerifyingCreator:
        """The (cached) connection creator for one expected name."""
        found = self._creators.get(name)
        if found is None:
            found = self._creators[name] = VerifyingCreator(self._context, name)
        return found



class TLSConnector:
    """TLS around another connector's connections: the relay's connector with
    C{--backend-tls}.  A connection is ready once its handshake has completed and the
    certificate was checked; one that closes before is a failed attempt, in these words."""

    def __init__(self, inner: Connector, tls: BackendTLS) -> None:
        self._inner = inner
        self._tls = tls
        self.handshake: Handshake | None = self

    def connect(self, backend: Backend, attempt: Attempt, timeout: float) -> Connecting:
        tls = self._tls
        wrapping: Any = TLSMemoryBIOFactory(
            tls.creator(tls.server_name(backend)), True, _Made(attempt), tls.clock
        )
        wrapping.protocol = guarded(wrapping.protocol)  # see penbal.edges.tlsclose
        return self._inner.connect(backend, _TLSAttempt(attempt, wrapping), timeout)

    def failed(self, transport: Any, reason: Failure) -> str:
        rejected = getattr(transport, "penbal_rejected", None)
        return "TLS handshake failed: " + (rejected or _handshake_error(reason))

    def too_slow(self, seconds: float) -> str:
        return f"TLS handshake failed: no TLS handshake within {seconds:g}s"


class _Made(ClientFactory):
    """The TLS wrapper's inner factory: the dial's protocol for the connection."""

    noisy = False

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt

    def buildProtocol(self, addr: object) -> Any:
        return self.attempt.made()


class _TLSAttempt:
    """One TLS connection attempt, as the inner connector sees it: once connected, the
    dial's protocol runs inside TLS."""

    def __init__(self, attempt: Attempt, wrapping: TLSMemoryBIOFactory) -> None:
        self._attempt = attempt
        self._wrapping = wrapping

    def made(self) -> IProtocol:
        protocol: IProtocol = self._wrapping.buildProtocol(None)
        return protocol

    def failed(self, why: str) -> None:
        self._attempt.failed(why)


def _handshake_error(reason: Failure) -> str:
    """Words for a handshake that ended without a verification verdict of ours."""
    error = reason.value
    if isinstance(error, SSL.Error) and error.args and isinstance(error.args[0], list):
        parts = [str(item[-1]) for item in error.args[0] if isinstance(item, tuple)]
        if parts:
            return ", ".join(parts)
    return f"connection closed during the handshake ({reason.getErrorMessage()})"
