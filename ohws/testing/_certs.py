"""A throw-away CA and a certificate for 127.0.0.1, localhost and ::1, written as PEM files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["LoopbackCertificate", "make_loopback_certificate"]


@dataclass(frozen=True)
class LoopbackCertificate:
    ca_path: str  # give this to clients as caPath
    cert_path: str  # the server's chain
    key_path: str


def make_loopback_certificate(folder: str | Path) -> LoopbackCertificate:
    """Issue the files into ``folder``. Needs trustme (``pip install ohws[testing]``): raises
    ImportError naming it otherwise."""
    try:
        import trustme
    except ImportError:
        raise ImportError("a generated certificate needs trustme: pip install ohws[testing]") from None
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")
    folder = Path(folder)
    paths = LoopbackCertificate(*(str(folder / f"{name}.pem") for name in ("ca", "cert", "key")))
    ca.cert_pem.write_to_path(paths.ca_path)
    Path(paths.cert_path).write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(paths.key_path)
    return paths
