"""Per-token usage log: one JSON line per API request or refusal.

Why a file per token, appended: a run's usage must be readable by the supervisor after the
run (even after the gateway is gone) without any RPC, and a line-oriented append is safe to read
while the gateway is still writing. Stdlib + orjson only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.tokens import sanitize


def usage_path(state_dir: Path, token: str) -> Path:
    """Where the lines of ``token`` go."""
    return Path(state_dir) / "usage" / f"{sanitize(token)}.jsonl"


@dataclass
class UsageEntry:
    """What one line records. ``kind`` is ``"api"`` (a request to the API) or ``"refused"``
    (an outbound connection the proxy would not make)."""

    token: str
    kind: str
    path: str
    status: int
    bytes_sent: int = 0
    seconds: float = 0.0
    schema: str | None = None
    symbols: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    host: str | None = None
    records: int | None = None
    detail: str | None = None


class UsageLog:
    """Thread-safe appender: the HTTPS server and the proxy share one instance."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = Path(state_dir)
        self._lock = threading.Lock()

    def record(self, entry: UsageEntry) -> None:
        """Append ``entry`` as one line (written whole under a lock, flushed at once)."""
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "kind": entry.kind,
            "path": entry.path,
            "schema": entry.schema,
            "symbols": entry.symbols,
            "start": entry.start,
            "end": entry.end,
            "status": entry.status,
            "bytes": entry.bytes_sent,
            "seconds": round(entry.seconds, 6),
        }
        if entry.host is not None:
            line["host"] = entry.host
        if entry.records is not None:
            line["records"] = entry.records
        if entry.detail is not None:
            line["detail"] = entry.detail
        data = orjson.dumps(line) + b"\n"
        target = usage_path(self._state_dir, entry.token)
        with self._lock:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "ab") as handle:
                handle.write(data)
