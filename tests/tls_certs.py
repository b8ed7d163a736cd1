"""A self-signed certificate made at test time, for a host name that is not loopback."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST_NAME = "booth.cloudseat.test"  # .test is reserved (RFC 6761): never a real host


@dataclass(frozen=True)
class CertPair:
    certfile: Path
    keyfile: Path
    spki_sha256_b64: str  # for Chromium's --ignore-certificate-errors-spki-list

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this certificate."""
        context = ssl.create_default_context(cafile=str(self.certfile))
        return context


def make_cert_pair(directory: Path, host_name: str = HOST_NAME) -> CertPair:
    """Write cert.pem and key.pem (P-256, one day, SAN: the host name and 127.0.0.1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return CertPair(certfile, keyfile, base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii"))
