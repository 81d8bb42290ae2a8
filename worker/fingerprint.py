"""What the backtest did, in a few numbers a timing comparison can be checked against.

Two passes of the same window are only comparable if the backtest did the same thing:
LumiBot's maintainers compare timings only between runs with identical results. The
fingerprint is the final portfolio value, the number of orders and fills, the iteration
count and a sha256 of LumiBot's trade-events file (``logs/*_trade_events.csv``). That file's
times are backtest times, not wall-clock times, and its order ids (``bt_1``, ...) are
counters, so identical backtests give identical bytes. ``common/fingerprints.py`` compares them.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any


def trade_events_file(work_dir: Path) -> Path | None:
    found = sorted((work_dir / "logs").glob("*_trade_events.csv"))
    return found[0] if found else None


def fingerprint(strategy: Any, work_dir: Path, iterations: int | None) -> dict[str, Any]:
    """The run's fingerprint; a part that could not be read is ``None`` and ``missing`` says why."""
    missing: list[str] = []
    value: float | None = None
    try:
        value = round(float(strategy.portfolio_value), 6)
    except (AttributeError, TypeError, ValueError) as exc:
        missing.append(f"portfolio value unreadable ({type(exc).__name__})")
    events = trade_events_file(work_dir)
    orders = fills = None
    digest = None
    if events is None:
        missing.append("LumiBot wrote no logs/*_trade_events.csv")
    else:
        raw = events.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        rows = list(csv.DictReader(raw.decode("utf-8", "replace").splitlines()))
        orders = len({r.get("identifier") for r in rows if r.get("event_kind", "trade") == "trade" and r.get("identifier")})
        fills = sum(1 for r in rows if r.get("status") in ("fill", "partial_fill"))
    if iterations is None:
        missing.append("iteration count unknown")
    return {
        "portfolio_value": value,
        "orders": orders,
        "fills": fills,
        "iterations": iterations,
        "trade_events_sha256": digest,
        "missing": missing,
    }
