"""TLS settings for ``wss://`` (SPEC section 7): one ``ssl.SSLContext`` per connect.

Secure by default: certifi's CA bundle, certificate and hostname verification, SNI.
"""

from __future__ import annotations

import os
import ssl

import certifi

from ._errors import BusinessError, ErrorCode, unknown_error
from ._options import ConnectOptions
from ._types import TlsProtocol

__all__ = ["check_cert_files", "make_server_ssl_context", "make_ssl_context"]

_TLS_VERSIONS = {
    TlsProtocol.TLS_V_1_0: ssl.TLSVersion.TLSv1,
    TlsProtocol.TLS_V_1_1: ssl.TLSVersion.TLSv1_1,
    TlsProtocol.TLS_V_1_2: ssl.TLSVersion.TLSv1_2,
    TlsProtocol.TLS_V_1_3: ssl.TLSVersion.TLSv1_3,
}


def _require_files(paths: list[tuple[str, str | None]]) -> None:
    """Raise 2302002 naming the first (option key, path) whose file does not exist."""
    for key, path in paths:
        if path is not None and not os.path.exists(path):
            raise BusinessError.of(ErrorCode.CERT_FILE_NOT_EXIST, f"{key} {path!r} does not exist")


def _load_chain(context: ssl.SSLContext, what: str, cert: str, key: str, password: str = "") -> None:
    """Load a certificate chain and key; raise 2302999 with OpenSSL's reason."""
    try:
        context.load_cert_chain(cert, key, password)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise unknown_error(f"{what} is not usable: {exc}") from None


def check_cert_files(options: ConnectOptions) -> None:
    """Raise 2302002 naming the first configured certificate file that does not exist."""
    paths = [("caPath", options.ca_path)]
    if options.client_cert is not None:
        paths += [
            ("clientCert.certPath", options.client_cert.cert_path),
            ("clientCert.keyPath", options.client_cert.key_path),
        ]
    _require_files(paths)


def make_server_ssl_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    """The server context for ``serverCert``: 2302002 for a missing file, 2302999 if unusable."""
    _require_files([("serverCert.certPath", cert_path), ("serverCert.keyPath", key_path)])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(context, "serverCert", cert_path, key_path)
    return context


def make_ssl_context(options: ConnectOptions) -> ssl.SSLContext:
    """The client context for ``options``; raise 2302999 when a certificate or key is unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if options.min_tls is not None:
        # Only raises or lowers the floor; OpenSSL's security level may still refuse TLS < 1.2.
        context.minimum_version = _TLS_VERSIONS[options.min_tls]
    try:
        if options.ca_path is None:
            context.load_verify_locations(cafile=certifi.where())
        elif os.path.isdir(options.ca_path):
            context.load_verify_locations(capath=options.ca_path)
        else:
            context.load_verify_locations(cafile=options.ca_path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise unknown_error(f"caPath is not a usable PEM CA file: {exc}") from None
    cert = options.client_cert
    if cert is not None:
        _load_chain(context, "clientCert", cert.cert_path, cert.key_path, cert.key_password or "")
    if options.skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
