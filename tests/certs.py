"""Certificates made by the tests: a CA, server certificates good and bad, client certificates.

trustme issues them; ``cryptography`` (trustme's own dependency) re-encodes the client key as
PKCS#8 and traditional PEM, with and without a password.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

KEY_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Certs:
    folder: Path
    ca: trustme.CA
    ca_pem: Path
    other_ca_pem: Path
    server: trustme.LeafCert  # 127.0.0.1 and localhost
    expired: trustme.LeafCert
    wrong_host: trustme.LeafCert  # only for "other.example"
    client_cert: Path
    client_keys: dict[str, Path]  # "pkcs8", "traditional", "pkcs8-encrypted", "traditional-encrypted"

    def server_files(
        self, folder: Path, key_password: bytes | None = None, leaf: trustme.LeafCert | None = None
    ) -> tuple[str, str]:
        """A server certificate chain (``leaf``, default the good one) and its key as PEM files
        (for ``serverCert``)."""
        leaf = leaf or self.server
        cert, key = folder / "server.pem", folder / "server.key"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        private = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(key_password)
            if key_password
            else serialization.NoEncryption()
        )
        key.write_bytes(
            private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        )
        return str(cert), str(key)

    def server_context(
        self,
        leaf: trustme.LeafCert | None = None,
        require_client_cert: bool = False,
        maximum: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        (leaf or self.server).configure_cert(context)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(context)
        if maximum is not None:
            context.maximum_version = maximum
        return context


def make_certs(folder: Path) -> Certs:
    ca = trustme.CA()
    other_ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost", "::1")
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    expired = ca.issue_cert(
        "127.0.0.1", "localhost", not_before=past, not_after=past + datetime.timedelta(days=1)
    )
    wrong_host = ca.issue_cert("other.example")
    client = ca.issue_cert("client@example.test")

    ca_pem = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    other_ca_pem = folder / "other-ca.pem"
    other_ca.cert_pem.write_to_path(str(other_ca_pem))
    client_cert = folder / "client.crt"
    client_cert.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    encrypted = serialization.BestAvailableEncryption(KEY_PASSWORD.encode())
    formats = {
        "pkcs8": (serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "traditional": (serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()),
        "pkcs8-encrypted": (serialization.PrivateFormat.PKCS8, encrypted),
        "traditional-encrypted": (serialization.PrivateFormat.TraditionalOpenSSL, encrypted),
    }
    keys: dict[str, Path] = {}
    for name, (fmt, encryption) in formats.items():
        path = folder / f"client-{name}.key"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, encryption))
        keys[name] = path
    return Certs(folder, ca, ca_pem, other_ca_pem, server, expired, wrong_host, client_cert, keys)
