# -*- test-case-name: tests.edges.test_tls -*-
"""
Throwaway certificate authorities and certificates made in the test, with C{cryptography}.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = datetime.datetime.now(datetime.UTC)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Issued:
    """A certificate and its key, as PEM, and where they were written."""

    cert_pem: bytes
    key_pem: bytes
    cert_file: str = ""
    key_file: str = ""

    def write(self, directory: Path, stem: str) -> Issued:
        """Write C{stem}.crt and C{stem}.key under C{directory}."""
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem)
        self.cert_file, self.key_file = str(cert_path), str(key_path)
        return self


class Authority:
    """A certificate authority that issues server and client certificates."""

    def __init__(self, common: str = "penbal test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(common)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(days=1))
            .not_valid_after(_NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path, stem: str = "ca") -> str:
        """Write the CA certificate; return its path."""
        path = directory / f"{stem}.crt"
        path.write_bytes(self.cert_pem)
        return str(path)

    def issue(
        self,
        names: list[str],
        *,
        expired: bool = False,
        client: bool = False,
    ) -> Issued:
        """A leaf certificate for DNS names and IP addresses in C{names}."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        if expired:
            start, end = _NOW - datetime.timedelta(days=30), _NOW - datetime.timedelta(days=1)
        else:
            start, end = _NOW - datetime.timedelta(days=1), _NOW + datetime.timedelta(days=30)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def certificate_directory(base: Path) -> tuple[Path, Authority, Issued]:
    """A C{tls:} certificate directory under C{base} holding one PEM (certificate and key)
    for front.test, its CA, and that certificate."""
    certs = base / "certs"
    certs.mkdir(parents=True)
    ca = Authority()
    issued = ca.issue(["front.test"])
    (certs / "front.pem").write_bytes(issued.cert_pem + issued.key_pem)
    return certs, ca, issued
