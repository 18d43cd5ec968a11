"""A real SMTP relay with TLS and AUTH on 127.0.0.1, as an operator's relay is.

:class:`TlsSmtpSink` is aiosmtpd with a certificate signed by a CA the test
makes (:func:`make_ca`), either requiring STARTTLS (port-587 style) or
speaking TLS from the first byte (465 style), and requiring a login (AUTH
PLAIN and LOGIN) with one user and password.  It keeps what it takes in the
same way as :class:`tests.support.mailinglist.SmtpSink`, which it reuses.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.machine.ports import free_port
from tests.support.mailinglist import SmtpSink, _Keeper


@dataclass(frozen=True)
class Ca:
    """A CA made for one test, and the relay's certificate it signed (for 127.0.0.1)."""

    ca_pem: Path  # what --smtp-ca is given
    cert_pem: Path
    key_pem: Path


def make_ca(directory: Path, name: str = "kharness test CA") -> Ca:
    """A fresh CA and a server certificate for IP 127.0.0.1 and localhost, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    found = Ca(directory / "ca.pem", directory / "relay.pem", directory / "relay.key")
    found.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


class _Login:
    """aiosmtpd authenticator: one user and password; remembers the mechanisms used."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.mechanisms: list[str] = []
        self.failures = 0

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        good = (
            isinstance(data, LoginPassword)
            and data.login == self.user.encode()
            and data.password == self.password.encode()
        )
        if not good:
            self.failures += 1
        return AuthResult(success=good, handled=False)


class TlsSmtpSink(SmtpSink):
    """aiosmtpd on 127.0.0.1 with TLS (``starttls`` required, or ``tls`` from the start)
    and a required login; ``mechanisms`` limits the AUTH mechanisms offered."""

    def __init__(
        self,
        ca: Ca,
        mode: str,
        user: str,
        password: str,
        mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
    ) -> None:
        self.keeper = _Keeper()
        self.port = free_port()
        self.login = _Login(user, password)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(ca.cert_pem, ca.key_pem)
        offered = {"PLAIN", "LOGIN"}
        options: dict[str, object] = {
            "authenticator": self.login,
            "auth_required": True,
            "auth_require_tls": True,
            "auth_exclude_mechanism": sorted(offered - set(mechanisms)),
        }
        if mode == "starttls":
            options |= {"tls_context": context, "require_starttls": True}
        elif mode == "tls":
            # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; here the socket
            # is TLS from its first byte, so no login can come before the handshake
            options |= {"ssl_context": context, "auth_require_tls": False}
        else:
            raise ValueError(f"mode {mode!r}: starttls or tls")
        self.controller = Controller(self.keeper, hostname="127.0.0.1", port=self.port, **options)
