"""What a backtest did, counted without a profiler, so two passes of one window can be compared.

The cross-check runs the same window twice, once under yappi and once unprofiled under py-spy,
and only trusts the comparison if both backtests did the same thing. An unprofiled pass has no
yappi call counts, so every pass wraps the strategy's ``on_trading_iteration`` in a counter
(one extra Python call per iteration, microseconds next to an iteration's milliseconds; the
offender tables leave the wrapper out) and both passes are counted the same way. Orders and
fills are read from the trade log LumiBot writes anyway (``logs/*_trades.csv``).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class IterationCounter:
    """Calls of the strategy's ``on_trading_iteration``."""

    count: int = 0


def counted(strategy_class: type[Any], counter: IterationCounter) -> type[Any]:
    """A subclass of ``strategy_class`` whose ``on_trading_iteration`` counts its calls.

    It keeps the class name and module (LumiBot names its log files after the class), and
    ``functools.wraps`` gives the wrapper the method's ``__name__``, which LumiBot's executor
    checks. Profilers read the code object's own name, ``count_iteration``, so the wrapper never
    passes for the strategy's method in a profile or in a count of its calls.
    """
    base_call = strategy_class.on_trading_iteration

    @functools.wraps(base_call)
    def count_iteration(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter.count += 1
        return base_call(self, *args, **kwargs)

    subclass = type(strategy_class.__name__, (strategy_class,), {"on_trading_iteration": count_iteration})
    subclass.__module__ = strategy_class.__module__
    subclass.__qualname__ = strategy_class.__qualname__
    return subclass


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
