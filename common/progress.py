"""The progress side channel between a worker and anyone watching it: one small JSON file.

A worker's stdout carries exactly one JSON document (its answer), so progress cannot go
there. Instead the worker replaces ``<work dir>/progress.json`` atomically, at most about
once a second; the supervisor's display and ``python -m supervisor status`` read it without
any lock. A reader sees the last complete snapshot or nothing, never half a file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

PROGRESS_FILE = "progress.json"

PHASES = ("starting", "backtest", "finishing")
"""``starting``: the worker imports LumiBot and the strategy; ``backtest``: LumiBot's
``run_backtest`` runs (``simulated`` is set once the strategy has iterated); ``finishing``:
the backtest returned and the profile is being saved."""


@dataclass(frozen=True)
class Progress:
    """One snapshot: where the simulated clock is, how much work is done, and since when."""

    phase: str
    simulated: str | None
    """ISO datetime the strategy last iterated at (LumiBot's simulated clock), None before."""
    iterations: int
    """Calls of the strategy's ``on_trading_iteration`` that have returned so far."""
    elapsed_seconds: float
    """Wall seconds since the backtest call started (0 during ``setup``)."""
    written: float
    """Unix time of this snapshot, so a reader can tell a stalled worker from a slow one."""

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    def fraction(self, start: str, end: str) -> float | None:
        """Share of the plan window ``start`` -> ``end`` the simulated clock has covered.

        LumiBot stops at the midnight that starts ``end``, so that is 100 %.
        """
        if self.simulated is None:
            return None
        try:
            t0 = datetime.combine(date.fromisoformat(start), datetime.min.time())
            t1 = datetime.combine(date.fromisoformat(end), datetime.min.time())
            now = datetime.fromisoformat(self.simulated).replace(tzinfo=None)
        except ValueError:
            return None
        span = (t1 - t0).total_seconds()
        if span <= 0:
            return None
        return min(1.0, max(0.0, (now - t0).total_seconds() / span))


def read_progress(work_dir: Path) -> Progress | None:
    """The latest snapshot in ``work_dir``, or None if there is none (yet) or it is unreadable."""
    try:
        raw: Any = orjson.loads((work_dir / PROGRESS_FILE).read_bytes())
        return Progress(
            phase=str(raw["phase"]),
            simulated=None if raw.get("simulated") is None else str(raw["simulated"]),
            iterations=int(raw["iterations"]),
            elapsed_seconds=float(raw["elapsed_seconds"]),
            written=float(raw["written"]),
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
