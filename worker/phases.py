"""Where a run's wall time went, in the phases a LumiBot developer recognises.

The split comes from the profile's own entry points (cumulative wall seconds of LumiBot
functions, found by their code location, so a subclass or a decorator cannot hide them):

* ``setup``: everything before the trading loop: the data source, the broker and the strategy
  built in ``run_backtest``, then ``initialize`` and the market calendars in the strategy thread
  (``StrategyExecutor.run`` minus the loop and ``on_strategy_end``).
* ``trading_loop``: ``StrategyExecutor._run_trading_session`` (every iteration, order fills,
  data look-ups) plus ``_advance_to_next_trading_day`` between sessions.
* ``analysis_and_output``: ``on_strategy_end`` (with LumiBot's stats dump), ``backtest_analysis``
  (trades plot, indicators, tearsheet and its metrics, settings) and the data-provenance files
  ``run_backtest`` writes after it.
* ``other``: the run's wall minus the three: thread start and join, LumiBot's bookkeeping in
  ``Trader.run_all``, and the profiler's own start and stop.

The phases are checked against ``wall_seconds_total`` (the worker's own clock around the call):
none may be negative beyond a small tolerance, and ``run_backtest``'s cumulative time must
match the wall. A partial profile (the run was stopped) lacks ``run_backtest``: its split is
``null`` with that reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

#: Relative and absolute slack of the consistency check (yappi's own start/stop, rounding).
TOLERANCE_SECONDS = 0.25
TOLERANCE_SHARE = 0.03

Location = tuple[str, int]


def location(function: Callable[..., Any]) -> Location:
    """(file, first line) of a function as yappi records it, seen through decorators."""
    code = inspect.unwrap(function).__code__
    return code.co_filename, code.co_firstlineno


def _entry_points() -> dict[str, list[Location]]:
    from lumibot.backtesting import data_provenance, market_input_evidence
    from lumibot.strategies._strategy import _Strategy
    from lumibot.strategies.strategy_executor import StrategyExecutor
    from lumibot.traders.trader import Trader

    executor = StrategyExecutor
    return {
        "run_backtest": [location(_Strategy.run_backtest)],
        "run_all": [location(Trader.run_all)],
        "executor_run": [location(executor.run)],
        "trading_sessions": [location(executor._run_trading_session), location(executor._advance_to_next_trading_day)],
        "on_strategy_end": [location(executor._on_strategy_end)],
        "backtest_analysis": [location(_Strategy.backtest_analysis)],
        "provenance_files": [
            location(data_provenance.write_backtest_data_provenance),
            location(market_input_evidence.write_market_input_evidence),
        ],
    }


def cumulative_by_location(stats: Iterable[Any]) -> dict[Location, float]:
    """Cumulative wall seconds per (file, line) over yappi's merged function stats."""
    found: dict[Location, float] = {}
    for stat in stats:
        key = (stat.module, int(stat.lineno))
        found[key] = found.get(key, 0.0) + float(stat.ttot)
    return found


def split(stats: Iterable[Any], wall_seconds: float | None, partial: bool) -> dict[str, Any]:
    """The phase split of one run, with its components and the check against the wall."""
    by_location = cumulative_by_location(stats)
    components: dict[str, float | None] = {}
    for name, places in _entry_points().items():
        seen = [by_location[p] for p in places if p in by_location]
        components[name] = round(sum(seen), 6) if seen else None
    result: dict[str, Any] = {
        "setup": None,
        "trading_loop": None,
        "analysis_and_output": None,
        "other": None,
        "wall_seconds_total": wall_seconds,
        "components": components,
        "consistent": None,
        "reason": None,
    }
    needed = ("run_backtest", "run_all", "executor_run", "trading_sessions")
    missing = [n for n in needed if components[n] is None]
    if partial or wall_seconds is None or missing:
        why = "the run was stopped before run_backtest returned, so its time is not in the profile" if partial \
            else f"the profile lacks {', '.join(missing) or 'the wall time'}"
        result["reason"] = f"phase split not available: {why}"
        return result
    c = {k: v or 0.0 for k, v in components.items()}
    setup = (c["run_backtest"] - c["run_all"] - c["provenance_files"]) + (
        c["executor_run"] - c["trading_sessions"] - c["on_strategy_end"]
    )
    analysis = c["on_strategy_end"] + c["backtest_analysis"] + c["provenance_files"]
    loop = c["trading_sessions"]
    other = wall_seconds - setup - loop - analysis
    slack = max(TOLERANCE_SECONDS, TOLERANCE_SHARE * wall_seconds)
    problems = [f"{name} {value:.3f} s < 0" for name, value in
                (("setup", setup), ("trading_loop", loop), ("analysis_and_output", analysis), ("other", other))
                if value < -slack]
    if abs(c["run_backtest"] - wall_seconds) > slack:
        problems.append(f"run_backtest {c['run_backtest']:.3f} s vs wall {wall_seconds:.3f} s")
    result.update(
        setup=round(setup, 6),
        trading_loop=round(loop, 6),
        analysis_and_output=round(analysis, 6),
        other=round(other, 6),
        consistent=not problems,
        reason="; ".join(problems) or None,
    )
    return result
