# -*- test-case-name: tests.edges.test_tlsserver -*-
"""
TLS termination for C{ssl:} and C{tls:} LISTEN endpoints.

C{ssl:} endpoints are Twisted's; C{--tls-min-version} and C{--tls-ciphers} tighten the one
OpenSSL context the endpoint made, before it accepts anyone.

C{tls:DIR} endpoints are penbal's own (Twisted's C{tls:} parser ties its name lookup to the
certificates it loaded at start-up, so a certificate added or renewed later is never served):
every handshake starts on one context whose SNI callback looks the client's name up in
L{CertificateDirectory} and switches the connection to that name's context.  The directory is
looked at again on every handshake, but a file is only read again when its size, modification
time or inode changed, so a renewed certificate is served from the next handshake on and a new
name as soon as its file is there.  Every per-name context, like the starting one, gets
C{--tls-min-version} and C{--tls-ciphers}: OpenSSL takes the protocol version from the context
a connection starts with but the TLS 1.2 cipher list from the one it was switched to.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from OpenSSL import SSL
from OpenSSL.crypto import X509, PKey
from twisted.internet.endpoints import TCP6ServerEndpoint, _parse, serverFromString, wrapServerTLS
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IStreamServerEndpoint
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from zope.interface import implementer

from penbal.edges import tlsclose
from penbal.edges.tlssettings import ListenTLSSettings, TLSConfigError, is_tls_endpoint

__all__ = [
    "CertificateDirectory",
    "ListenTLSSettings",
    "SNIDirectoryCreator",
    "is_tls_endpoint",
    "listen_endpoint",
    "tighten",
]

log = Logger()

_OPENSSL_VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}
_PEM_KEY = re.compile(
    rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----\r?\n.+?\r?\n-----END \1PRIVATE KEY-----", re.DOTALL
)
#: How many issuer links are followed to build a chain (a loop of certificates stops there).
_MAX_CHAIN = 10

#: What identifies one version of a file: inode, size, modification time in nanoseconds.
Stamp = tuple[int, int, int]


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


# -- a directory of certificates, read again when it changes ---------------------------------


@dataclass
class _File:
    """What one PEM file held when it was last read successfully."""

    stamp: Stamp
    certificates: list[x509.Certificate] = field(default_factory=list)
    keys: list[PrivateKeyTypes] = field(default_factory=list)


def read_pem_file(path: str) -> tuple[list[x509.Certificate], list[PrivateKeyTypes]]:
    """Every certificate and private key in one PEM file; L{ValueError} saying what is wrong."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"cannot read {path!r}: {e.strerror}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data) if b"CERTIFICATE-----" in data else []
        keys = [
            serialization.load_pem_private_key(block.group(0), password=None)
            for block in _PEM_KEY.finditer(data)
        ]
    except (ValueError, TypeError) as e:
        raise ValueError(f"invalid PEM data in {path!r}: {e}") from None
    return certificates, keys


def _public_der(public: Any) -> bytes:
    der: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _dns_names(certificate: x509.Certificate) -> list[str]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in sans.value.get_values_for_type(x509.DNSName)]


def _preference(certificate: x509.Certificate, now: datetime.datetime) -> tuple[bool, Any]:
    """Sort key among certificates for one name: valid now first, then the latest expiry."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return (start <= now <= end, end)


class CertificateDirectory:
    """
    The certificates of a C{tls:DIR} directory, by DNS name, each with its own OpenSSL context.

    L{context_for} looks at the directory first (one C{stat} per C{.pem} file) and reads again
    only the files that changed; a name is then served the certificate of its file as it is
    now.  Certificates and keys are matched by public key across files (Twisted's C{tls:}
    layout: both in one file, or in two), certificates without a key become the chain of those
    they issued.  A file that cannot be read or parsed at run time is logged once and its last
    good contents kept (a certificate being rewritten in place); at start-up it is an error.
    """

    def __init__(
        self,
        path: str,
        settings: ListenTLSSettings,
        *,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.path = path
        self.settings = settings
        self._now = now
        self._files: dict[str, _File] = {}
        self._stamps: dict[str, Stamp] | None = None
        self._names: dict[str, SSL.Context] = {}
        self._default: SSL.Context | None = None
        tighten(SSL.Context(SSL.TLS_METHOD), settings)  # a bad cipher list, said as such
        if not os.path.isdir(path):
            raise TLSConfigError(f"tls: certificate directory {path!r} is not a directory")
        self.refresh(strict=True)

    def _scan(self) -> dict[str, Stamp]:
        stamps: dict[str, Stamp] = {}
        for top, dirs, files in os.walk(self.path):
            dirs.sort()
            for name in files:
                if not name.endswith(".pem"):
                    continue
                full = os.path.join(top, name)
                try:
                    info = os.stat(full)
                except OSError:
                    continue  # removed meanwhile
                if stat.S_ISREG(info.st_mode):
                    stamps[full] = (info.st_ino, info.st_size, info.st_mtime_ns)
        return stamps

    def refresh(self, strict: bool = False) -> None:
        """Read the files that changed since the last look; rebuild the names if any did."""
        stamps = self._scan()
        if stamps == self._stamps:
            return
        files: dict[str, _File] = {}
        for path, stamp in sorted(stamps.items()):
            known = self._files.get(path)
            if known is not None and known.stamp == stamp:
                files[path] = known
                continue
            try:
                certificates, keys = read_pem_file(path)
            except ValueError as e:
                if strict:
                    raise TLSConfigError(f"tls: certificate directory: {e}") from None
                log.warn("tls: certificate directory: {why}; keeping what it held before",
                         why=str(e))
                if known is not None:
                    files[path] = _File(stamp, known.certificates, known.keys)
                else:
                    files[path] = _File(stamp)
                continue
            files[path] = _File(stamp, certificates, keys)
        self._files = files
        self._stamps = stamps
        self._rebuild(files.values(), strict)

    def _rebuild(self, files: Iterable[_File], strict: bool) -> None:
        """Pair keys with certificates, build chains, and make one context per certificate."""
        certificates: list[x509.Certificate] = []
        keys: dict[bytes, PrivateKeyTypes] = {}
        for loaded in files:
            certificates.extend(loaded.certificates)
            for key in loaded.keys:
                keys[_public_der(key.public_key())] = key
        leaves: list[tuple[x509.Certificate, PrivateKeyTypes]] = []
        issuers: dict[bytes, x509.Certificate] = {}
        for certificate in certificates:
            paired = keys.get(_public_der(certificate.public_key()))
            if paired is None:
                issuers.setdefault(certificate.subject.public_bytes(), certificate)
            else:
                leaves.append((certificate, paired))
        now = self._now()
        best: dict[str, tuple[x509.Certificate, SSL.Context]] = {}
        default: SSL.Context | None = None
        for certificate, key in leaves:
            try:
                context = self._context(certificate, key, self._chain(certificate, issuers))
            except (ValueError, TypeError, SSL.Error) as e:
                why = f"unusable certificate {certificate.subject.rfc4514_string()!r}: {e}"
                if strict:
                    raise TLSConfigError(f"tls: certificate directory {self.path!r}: {why}"
                                         ) from None
                log.warn("tls: certificate directory {path}: {why}; not served",
                         path=self.path, why=why)
                continue
            if default is None:
                default = context
            for name in _dns_names(certificate):
                held = best.get(name)
                if held is None or _preference(certificate, now) > _preference(held[0], now):
                    best[name] = (certificate, context)
        self._names = {name: context for name, (_, context) in best.items()}
        self._default = default

    @staticmethod
    def _chain(
        certificate: x509.Certificate, issuers: dict[bytes, x509.Certificate]
    ) -> list[x509.Certificate]:
        chain: list[x509.Certificate] = []
        current = certificate
        while len(chain) < _MAX_CHAIN and current.issuer != current.subject:
            issuer = issuers.get(current.issuer.public_bytes())
            if issuer is None or issuer in chain:
                break
            chain.append(issuer)
            current = issuer
        return chain

    def _context(
        self, certificate: x509.Certificate, key: PrivateKeyTypes, chain: list[x509.Certificate]
    ) -> SSL.Context:
        """One name's context: Twisted's server defaults, then the --tls-* settings."""
        options = CertificateOptions(
            privateKey=PKey.from_cryptography_key(key),  # type: ignore[arg-type]
            certificate=X509.from_cryptography(certificate),
            extraCertChain=[X509.from_cryptography(c) for c in chain],
        )
        context: SSL.Context = options.getContext()
        tighten(context, self.settings)
        return context

    def context_for(self, name: bytes | None) -> SSL.Context | None:
        """
        The context for the name a client sent (or the first certificate's, for a client that
        sent none or a name no certificate carries; its own check of the name then fails).
        """
        self.refresh()
        if name:
            text = name.decode("ascii", "replace").lower().rstrip(".")
            found = self._names.get(text)
            if found is None and "." in text:
                found = self._names.get("*." + text.split(".", 1)[1])
            if found is not None:
                return found
        return self._default

    @property
    def names(self) -> list[str]:
        """The names served now (as of the last look at the directory)."""
        return sorted(self._names)


@implementer(IOpenSSLServerConnectionCreator)
class SNIDirectoryCreator:
    """
    Server connections that start on one context and switch, in its SNI callback, to the
    context of the name the client asked for, looked up in a L{CertificateDirectory}.
    """

    def __init__(self, directory: CertificateDirectory, settings: ListenTLSSettings) -> None:
        self.directory = directory
        context: SSL.Context = CertificateOptions().getContext()
        tighten(context, settings)  # the protocol version comes from the starting context
        context.set_tlsext_servername_callback(self._servername)
        self.defaultContext = context

    def _servername(self, connection: SSL.Connection) -> None:
        try:
            context = self.directory.context_for(connection.get_servername())
        except Exception:  # an exception here would be lost in OpenSSL's callback
            log.failure("tls: certificate lookup failed")
            context = None
        if context is not None:
            connection.set_context(context)
        # Without a context the connection keeps the starting one, which has no certificate:
        # the handshake fails.

    def serverConnectionForTLS(self, protocol: Any) -> SSL.Connection:
        """A new server connection on the starting context."""
        return SSL.Connection(self.defaultContext, None)


def tls_directory_endpoint(
    reactor: Any, description: str, settings: ListenTLSSettings
) -> IStreamServerEndpoint:
    """
    The endpoint for C{tls:DIR[:port=P][:interface=I][:backlog=B]} (Twisted's syntax and
    defaults: port 443 on C{::}), with certificates looked up per handshake.
    """
    args, kwargs = _parse(description)
    if len(args) != 2 or args[0] != "tls":
        raise TLSConfigError(f"invalid tls: endpoint {description!r}: expected tls:DIR:port=N")
    unknown = set(kwargs) - {"port", "backlog", "interface"}
    if unknown:
        raise TLSConfigError(
            f"invalid tls: endpoint {description!r}: unknown {', '.join(sorted(unknown))}"
        )
    try:
        port, backlog = int(kwargs.get("port", "443")), int(kwargs.get("backlog", "50"))
    except ValueError:
        raise TLSConfigError(f"invalid tls: endpoint {description!r}: bad number") from None
    creator = SNIDirectoryCreator(CertificateDirectory(args[1], settings), settings)
    tcp = TCP6ServerEndpoint(reactor, port, backlog, kwargs.get("interface", "::"))
    return wrapServerTLS(creator, tcp)


def listen_endpoint(
    reactor: Any, description: str, settings: ListenTLSSettings
) -> IStreamServerEndpoint:
    """
    The endpoint for a LISTEN description: penbal's own for C{tls:DIR}, Twisted's otherwise,
    with the TLS settings applied when it is a TLS endpoint (an error if settings are given
    for a plain one).
    """
    if is_tls_endpoint(description):
        tlsclose.install()  # Twisted builds these connections: fix them process-wide
    if description.startswith("tls:"):
        return tls_directory_endpoint(reactor, description, settings)
    endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    if settings.tightens:
        if not is_tls_endpoint(description):
            raise TLSConfigError(
                "--tls-min-version and --tls-ciphers need an ssl: or tls: LISTEN endpoint,"
                f" not {description!r}"
            )
        tighten(endpoint_context(endpoint), settings)
    return endpoint
