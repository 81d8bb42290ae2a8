"""Each run's wall time split into the phases of a LumiBot backtest, as the worker measured them."""

from __future__ import annotations

from typing import Any

from report import markdown as md
from report.analysis import Analysis

PHASES = (
    ("setup", "set-up s"),
    ("trading_loop", "trading loop s"),
    ("analysis_and_output", "analysis and output s"),
    ("other", "other s"),
)


class PhaseSplit:
    """Set-up, trading loop, end-of-backtest analysis and output, and the rest, per run."""

    def render(self, analysis: Analysis) -> str:
        head = "## Where each run's time goes: phases"
        records = [r for r in analysis.results.records if r.result is not None]
        if not records:
            return f"{head}\n\nNo run has a result yet."
        rows: list[list[str]] = []
        unavailable: list[str] = []
        for record in records:
            phases: dict[str, Any] = record.value("phases") or {}
            if phases.get("setup") is None:
                reason = phases.get("reason") or "no phase split recorded (a result from an older version)"
                unavailable.append(f"- {record.id}: {reason}.")
                continue
            wall = record.wall
            cells = [f"{md.wall(phases[key])} ({md.percent(phases[key], wall)})" for key, _ in PHASES]
            check = "yes" if phases.get("consistent") else f"no: {phases.get('reason')}"
            rows.append([record.id, md.wall(wall), *cells, check])
        parts = [
            head,
            "Each run's wall time (`run_backtest`, timed in the worker) split at LumiBot's own entry points, using "
            "cumulative wall seconds from the run's profile: **set-up** is the data source, broker and strategy built "
            "in `run_backtest`, then `initialize` and the market calendars in the strategy thread; the **trading loop** "
            "is `StrategyExecutor._run_trading_session` (every iteration, order fills, data look-ups) with "
            "`_advance_to_next_trading_day`; **analysis and output** is `on_strategy_end`, `backtest_analysis` (trades "
            "plot, indicators, tearsheet and its metrics, settings: what a plain LumiBot run writes) and the "
            "data-provenance files; **other** is the wall minus the three (thread start and join, LumiBot's "
            "bookkeeping). Seconds are under yappi, which slows Python-heavy code about 2x. *Adds up* says whether "
            "every phase is non-negative and `run_backtest`'s own cumulative time matches the wall, within "
            "max(0.25 s, 3 %).",
        ]
        if rows:
            headers = ["run", "wall s", *(title for _, title in PHASES), "adds up"]
            parts.append(md.table(headers, rows, right=[1, 2, 3, 4, 5]))
        if unavailable:
            parts.append("No split for:\n\n" + "\n".join(unavailable))
        return "\n\n".join(parts)
