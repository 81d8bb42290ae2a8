"""Throw-away TLS material: a private CA and a server certificate for the gateway.

The databento client insists on ``https://hist.databento.com``; the proxy tunnels that name to
the local server, so the server's certificate must be valid for it (and for ``localhost`` and
``127.0.0.1``, for direct health checks). Workers trust the CA through ``REQUESTS_CA_BUNDLE``.
A new CA per gateway start means no key ever outlives the gateway; the server key stays in
memory (trustme loads it into the context and deletes its temporary file).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import trustme

from gateway import UPSTREAM_HOST

CERT_NAMES = ("localhost", "127.0.0.1", UPSTREAM_HOST)


def make_server_context(state_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """Create a CA and a leaf certificate; return the server context and the CA PEM path
    (written atomically to ``<state_dir>/ca.pem`` so a reader never sees half a file)."""
    ca = trustme.CA()
    leaf = ca.issue_cert(*CERT_NAMES)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    ca_path = Path(state_dir) / "ca.pem"
    tmp = ca_path.with_name(f".ca.pem.{os.getpid()}.tmp")
    tmp.write_bytes(ca.cert_pem.bytes())
    os.replace(tmp, ca_path)
    return context, ca_path
