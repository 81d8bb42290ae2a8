"""What a backtest did, read the same way with and without a profiler, so two passes can be compared.

The cross-check runs the same window twice, once under yappi and once unprofiled under py-spy,
and only trusts the comparison if both backtests did the same thing: the same iterations
(counted by the worker's progress wrapper around ``on_trading_iteration``, in both passes),
orders and fills (from the trade log LumiBot writes anyway, ``logs/*_trades.csv``) and final
portfolio value.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def trade_counts(work_dir: Path) -> dict[str, int | None]:
    """Orders submitted (``new`` events) and fills in LumiBot's trade log; ``None`` without a log."""
    logs = sorted((work_dir / "logs").glob("*_trades.csv"))
    if not logs:
        return {"orders": None, "fills": None}
    statuses: dict[str, int] = {}
    with logs[-1].open(newline="") as fh:
        for row in csv.DictReader(fh):
            status = row.get("status") or ""
            statuses[status] = statuses.get(status, 0) + 1
    return {"orders": statuses.get("new", 0), "fills": statuses.get("fill", 0)}


def portfolio_value(strategy: Any) -> float | None:
    """The strategy's final portfolio value, to the cent: deterministic data gives the same value twice."""
    value = getattr(strategy, "portfolio_value", None)
    return round(float(value), 2) if isinstance(value, int | float) else None
