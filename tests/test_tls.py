"""SPEC section 7, TLS: every certificate option against real TLS servers on loopback."""

from __future__ import annotations

import logging
import queue
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.server import ServerConnection

from ohws import TlsProtocol, WebSocket, webSocket

from .certs import KEY_PASSWORD, Certs
from .recorder import refused, round_trip
from .servers import TIMEOUT, echo, websockets_server

# Every TLS case both ways a direct connection can open (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("direct_path")


def test_ca_path_file_verifies_the_server(certs: Certs) -> None:
    """caPath pointing at the CA's PEM file lets wss:// verify the server."""
    with websockets_server(echo, ssl=certs.server_context()) as url:
        round_trip(url, {"caPath": str(certs.ca_pem)})


def test_default_store_is_certifi_and_rejects_a_private_ca(certs: Certs) -> None:
    """Without caPath the certifi store is used: a private CA is an unknown issuer (error 200)."""
    with websockets_server(echo, ssl=certs.server_context()) as url:
        error, event = refused(url, {})
    assert (error.code, event.code, event.data) == (200, 200, "0")
    assert "certificate verification failed" in error.message
    assert "issuer" in error.message


def test_ca_path_replaces_the_default_store(certs: Certs) -> None:
    """caPath naming another CA replaces the store: the server's CA is no longer trusted."""
    with websockets_server(echo, ssl=certs.server_context()) as url:
        error, _ = refused(url, {"caPath": str(certs.other_ca_pem)})
    assert "certificate verification failed" in error.message


def test_ca_path_directory(certs: Certs, tmp_path: Path) -> None:
    """caPath may be a directory of hashed CA files (openssl rehash layout)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to name the hashed file")
    subject_hash = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(certs.ca_pem)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copy(certs.ca_pem, tmp_path / f"{subject_hash}.0")
    with websockets_server(echo, ssl=certs.server_context()) as url:
        round_trip(url, {"caPath": str(tmp_path)})


def test_expired_certificate_is_named(certs: Certs) -> None:
    """An expired server certificate fails the connect with a message saying so."""
    with websockets_server(echo, ssl=certs.server_context(certs.expired)) as url:
        error, _ = refused(url, {"caPath": str(certs.ca_pem)})
    assert "expired" in error.message


def test_hostname_mismatch_is_named(certs: Certs) -> None:
    """A certificate for another host name fails: hostname verification is on by default."""
    with websockets_server(echo, ssl=certs.server_context(certs.wrong_host)) as url:
        error, _ = refused(url, {"caPath": str(certs.ca_pem)})
    assert "mismatch" in error.message.lower()


@pytest.mark.parametrize("leaf", ["expired", "wrong_host", "server"])
def test_skip_server_cert_verification_skips_everything(certs: Certs, leaf: str) -> None:
    """skipServerCertVerification: expired, wrong host and unknown CA all connect."""
    with websockets_server(echo, ssl=certs.server_context(getattr(certs, leaf))) as url:
        round_trip(url, {"skipServerCertVerification": True})


@pytest.mark.parametrize("key", ["pkcs8", "traditional", "pkcs8-encrypted", "traditional-encrypted"])
def test_client_certificate_in_every_key_encoding(certs: Certs, key: str) -> None:
    """Mutual TLS works with PKCS#8 and traditional keys, encrypted (keyPassword) or not."""
    client_cert: dict[str, Any] = {"certPath": str(certs.client_cert), "keyPath": str(certs.client_keys[key])}
    if key.endswith("encrypted"):
        client_cert["keyPassword"] = KEY_PASSWORD
    with websockets_server(echo, ssl=certs.server_context(require_client_cert=True)) as url:
        round_trip(url, {"caPath": str(certs.ca_pem), "clientCert": client_cert})


def test_server_requiring_a_client_certificate_refuses_without_one(certs: Certs) -> None:
    """No clientCert against a server that requires one: error 200."""
    with websockets_server(echo, ssl=certs.server_context(require_client_cert=True)) as url:
        error, event = refused(url, {"caPath": str(certs.ca_pem)})
    assert error.code == 200 and event.code == 200


def test_wrong_key_password_is_2302999_without_the_password(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong keyPassword is 2302999 with the TLS library's reason, and the password is never shown."""
    secret = "wrong-" + KEY_PASSWORD
    with caplog.at_level(logging.DEBUG):
        error, _ = refused(
            "wss://127.0.0.1:1",
            {
                "clientCert": {
                    "certPath": str(certs.client_cert),
                    "keyPath": str(certs.client_keys["pkcs8-encrypted"]),
                    "keyPassword": secret,
                }
            },
        )
    assert error.code == 2302999
    assert "clientCert is not usable" in error.message
    assert secret not in error.message and secret not in repr(error) and secret not in caplog.text


def test_key_not_matching_certificate_is_2302999(certs: Certs, tmp_path: Path) -> None:
    """A key that does not belong to the certificate is 2302999 before any I/O."""
    other = certs.ca.issue_cert("someone-else.test")
    key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(key))
    error, _ = refused(
        "wss://127.0.0.1:1", {"clientCert": {"certPath": str(certs.client_cert), "keyPath": str(key)}}
    )
    assert error.code == 2302999


def test_min_tls_version(certs: Certs) -> None:
    """minSupportTlsProtocol: TLS 1.3 against a TLS 1.2-only server fails; TLS 1.2 works."""
    context = certs.server_context(maximum=ssl.TLSVersion.TLSv1_2)
    with websockets_server(echo, ssl=context) as url:
        round_trip(url, {"caPath": str(certs.ca_pem), "minSupportTlsProtocol": TlsProtocol.TLS_V_1_2})
        error, _ = refused(url, {"caPath": str(certs.ca_pem), "minSupportTlsProtocol": TlsProtocol.TLS_V_1_3})
    assert error.code == 200
    assert "TLS" in error.message


def test_sni_carries_the_host_name(certs: Certs) -> None:
    """The client sends SNI with the URL's host name."""
    names: queue.Queue[str | None] = queue.Queue()
    context = certs.server_context()
    context.sni_callback = lambda sock, name, ctx: names.put(name)
    with websockets_server(echo, ssl=context) as url:
        round_trip(url.replace("127.0.0.1", "localhost"), {"caPath": str(certs.ca_pem)})
    assert names.get(timeout=TIMEOUT) == "localhost"


def test_origin_port_over_wss(certs: Certs) -> None:
    """supportOriginPort: Origin is https://host:port over wss."""
    origins: queue.Queue[str | None] = queue.Queue()

    def record(connection: ServerConnection) -> None:
        origins.put(connection.request.headers.get("Origin"))
        echo(connection)

    with websockets_server(record, ssl=certs.server_context()) as url:
        round_trip(url, {"caPath": str(certs.ca_pem), "supportOriginPort": True})
        port = url.rsplit(":", 1)[1]
    assert origins.get(timeout=TIMEOUT) == f"https://127.0.0.1:{port}"


def test_plain_ws_ignores_tls_options(certs: Certs, echo_url: str) -> None:
    """TLS options on a ws:// URL are checked for existence but not used."""
    ws: WebSocket = webSocket.createWebSocket()
    promise = ws.connect(
        echo_url, {"caPath": str(certs.ca_pem), "minSupportTlsProtocol": TlsProtocol.TLS_V_1_3}
    )
    assert promise is not None and promise.result(TIMEOUT) is True
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]
