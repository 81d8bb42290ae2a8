"""Accounting tokens: how a request is attributed to a run.

A run gets one token. The worker's DataBento API key and its proxy user name are both derived
from it, so the API server and the proxy can attribute every request and every refusal to the
run without sharing any state with the supervisor. Stdlib only: the supervisor imports this
through :mod:`gateway.control`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

ANONYMOUS = "anonymous"
"""Token used when a request carries no usable credentials."""

KEY_PREFIX = "db-"
"""Prefix that makes a derived key look like a DataBento key (the client only needs it
non-empty and not the ``YOUR_API_KEY`` placeholder, but a realistic shape costs nothing)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_LEN = 80


def sanitize(token: str) -> str:
    """Return ``token`` reduced to ``[A-Za-z0-9._-]``, safe as a file name and in a URL.

    Why: the token becomes ``<state_dir>/usage/<token>.jsonl`` and the user name of a proxy URL;
    anything else could escape the folder or break URL parsing.
    """
    cleaned = _UNSAFE.sub("_", token).lstrip(".")[:_MAX_LEN]
    return cleaned or ANONYMOUS


def make_token(run_id: str) -> str:
    """Return a new token for ``run_id``: the sanitised id plus a short random suffix.

    Why the suffix: two attempts of the same run must not share a usage file.
    """
    base = sanitize(run_id)[: _MAX_LEN - 9]
    return f"{base}-{secrets.token_hex(4)}"


def key_for_token(token: str) -> str:
    """Return the DataBento API key a worker with ``token`` should use."""
    return KEY_PREFIX + sanitize(token)


def token_for_key(key: str) -> str:
    """Return the token an API key was derived from (any other key is its own token)."""
    if key.startswith(KEY_PREFIX) and len(key) > len(KEY_PREFIX):
        key = key[len(KEY_PREFIX) :]
    return sanitize(key) if key.strip() else ANONYMOUS


def basic_user(header: str | None) -> str | None:
    """The user name of an HTTP Basic ``Authorization``/``Proxy-Authorization`` value, or
    ``None`` if the header is absent, malformed or has an empty user name."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user = decoded.partition(":")[0]
    return user if user.strip() else None
