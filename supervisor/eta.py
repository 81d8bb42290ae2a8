"""How long an entry, and the rest of a selection, will take: estimated from what the plan knows.

Three sources, best first: the same entry's time in an earlier round (``history``, kept by
``reset``), a straight line of entry seconds against trading days through every entry the
plan has timed, and the running pass's own pace (see :func:`run_left`). Estimates are per
profiled pass, claim to result (``entry_seconds``), so start-up, preload passes and saving the
profile are in them. The cross-check's unprofiled pass runs once per entry and at another
speed, so it is estimated apart: from the ratio the plan's earlier checks measured
(:meth:`Estimator.check`) and, once the profiled pass is done, from that pass itself
(:func:`check_after`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from common.progress import Progress
from common.windows import LineFit, fit_line, window_days
from supervisor.plan import Plan, Run, run_dates

MIN_FRACTION = 0.05
"""Below 5 % of the window the running entry's own pace is too young to extrapolate from."""


DEFAULT_MEMORY_COST = 2.0
"""The memory pass's wall over the unprofiled wall when the plan has measured none yet (median
1.86x on a week and on a month of synthetic minute bars: ``bench/memory_cost.py``, docs/memory.md)."""

DEFAULT_OVERHEAD = 2.0
"""yappi's wall-clock slowdown of a backtest when the plan has measured none yet: 2.09x on
pandas data, 2.02x on local DataBento (``bench/profiler_overhead.py``, README Performance)."""


def entry_seconds(result: Any) -> float | None:
    """Claim-to-result seconds of a finished entry; older results only have the worker's time."""
    if not isinstance(result, dict) or result.get("status", "done") != "done":
        return None
    for key in ("entry_seconds", "worker_process_seconds"):
        value = result.get(key)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _side_pass_seconds(result: Any, key: str, after: str) -> float | None:
    """Seconds of a pass recorded under ``result[key]``: its worker plus ``after`` (the work done
    with its output once the worker ended)."""
    side = result.get(key) if isinstance(result, dict) else None
    if not isinstance(side, dict):
        return None
    worker = _number(side.get("worker_process_seconds"))
    return None if worker is None else worker + (_number(side.get(after)) or 0.0)


def check_seconds(result: Any) -> float | None:
    """Seconds of the cross-check's unprofiled pass in a result (its worker plus the comparison)."""
    return _side_pass_seconds(result, "sampled_pass", "compare_seconds")


def memory_seconds(result: Any) -> float | None:
    """Seconds of the memory pass in a result (its worker plus reading its capture)."""
    return _side_pass_seconds(result, "memory", "read_seconds")


def profiled_seconds(result: Any) -> float | None:
    """Seconds of the profiled pass alone: ``entry_seconds`` also holds the memory pass, and pass 1's the cross-check."""
    seconds = entry_seconds(result)
    if seconds is None:
        return None
    seconds -= min(memory_seconds(result) or 0.0, seconds / 2)
    check = check_seconds(result)
    median_pass = ((result.get("repeats") or {}).get("median_pass", 1)) if isinstance(result, dict) else 1
    if check is None or median_pass != 1 or check >= seconds:
        return seconds
    return seconds - check


def _days(run: Run) -> int | None:
    try:
        return window_days(*run_dates(run))
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class Estimator:
    """Per-pass estimates from one reading of the plan."""

    previous: dict[str, float] = field(default_factory=dict)
    fit: LineFit | None = None
    per_day: float | None = None
    check_ratio: float | None = None
    """Median of (unprofiled check seconds / profiled pass seconds) over the plan's checked entries."""
    overhead: float = DEFAULT_OVERHEAD
    """Median ``profiler_overhead_ratio`` (yappi / plain backtest wall) the plan's checks measured."""
    memory_cost: float = DEFAULT_MEMORY_COST
    """Median memory-pass cost (its wall / the unprofiled wall) the plan's memory passes measured."""
    tail_per_day: float | None = None
    """Median seconds per window day a profiled pass spent after the window's last iteration
    (``phases``: LumiBot's analysis and output, which grows with the trades, so with the window),
    which the pass's own pace cannot see coming."""

    @classmethod
    def from_plan(cls, plan: Plan) -> Estimator:
        previous: dict[str, float] = {}
        older: dict[str, Any] = {}
        for archived in plan.get("history") or []:
            seconds = profiled_seconds(archived.get("result")) if isinstance(archived, dict) else None
            if seconds is not None:
                previous[str(archived.get("id"))] = seconds  # later entries are newer rounds
                older[str(archived.get("id"))] = archived.get("result")
        points: dict[str, tuple[float, float]] = {}
        checked: dict[str, Any] = dict(older)
        for run in plan["runs"]:
            result = plan["results"].get(run["id"]) if run["status"] == "done" else None
            seconds = profiled_seconds(result)
            if seconds is not None:
                checked[run["id"]] = result
            seconds = seconds if seconds is not None else previous.get(run["id"])
            days = _days(run)
            if seconds is not None and days:
                points[run["id"]] = (float(days), seconds)
        xs, ys = [p[0] for p in points.values()], [p[1] for p in points.values()]
        fit = fit_line(xs, ys)
        per_day = sum(ys) / sum(xs) if xs else None
        ratios, overheads, tails, costs = [], [], [], []
        days_of = {run["id"]: _days(run) for run in plan["runs"]}
        for run_id, result in checked.items():  # every one has a profiled time (that is how it got here)
            profiled = profiled_seconds(result) or 1.0
            analysis = _number((result.get("phases") or {}).get("analysis_and_output"))
            days = days_of.get(run_id)
            if analysis is not None and days:
                tails.append(analysis / days)
            check = check_seconds(result)
            if check is not None and profiled != entry_seconds(result):  # pass 1: its check was split off
                ratios.append(check / profiled)
            overhead = _number(result.get("profiler_overhead_ratio"))
            if overhead is not None:
                overheads.append(overhead)
            cost = _number((result.get("memory") or {}).get("cost_ratio"))
            if cost is not None:
                costs.append(cost)
        return cls(previous, fit if fit is not None and fit.slope > 0 else None, per_day,
                   statistics.median(ratios) if ratios else None,
                   statistics.median(overheads) if overheads else DEFAULT_OVERHEAD,
                   statistics.median(costs) if costs else DEFAULT_MEMORY_COST,
                   statistics.median(tails) if tails else None)

    def entry(self, run: Run) -> float | None:
        """Seconds one profiled pass of this entry should take, or None when nothing is known yet."""
        if run["id"] in self.previous:
            return self.previous[run["id"]]
        days = _days(run)
        if days is None:
            return None
        if self.fit is not None:
            return max(self.fit.at(days), 0.0)
        return self.per_day * days if self.per_day is not None else None

    def check(self, run: Run) -> float | None:
        """Seconds the entry's unprofiled check should take: the measured check/profiled ratio
        times the profiled estimate, else the profiled estimate over yappi's overhead."""
        profiled = self.entry(run)
        if profiled is None:
            return None
        return profiled * self.check_ratio if self.check_ratio is not None else profiled / self.overhead

    def memory(self, run: Run) -> float | None:
        """Seconds the entry's memory pass should take: the unprofiled estimate times the memory cost."""
        profiled = self.entry(run)
        return None if profiled is None else profiled / self.overhead * self.memory_cost

    def tail(self, run: Run) -> float | None:
        """Seconds a profiled pass of ``run`` should spend after its last iteration (None if unknown)."""
        days = _days(run)
        return None if days is None or self.tail_per_day is None else days * self.tail_per_day

    def step(self, run: Run, checked: bool, memory: bool = False) -> float | None:
        """One pass of ``run``, with its unprofiled check when ``checked`` (pass 1 under a cross-check)
        and its memory pass when ``memory``."""
        profiled = self.entry(run)
        if profiled is None:
            return None
        check = self.check(run) if checked else 0.0
        held = self.memory(run) if memory else 0.0
        return None if check is None or held is None else profiled + check + held

    def total(self, runs: Iterable[Run | tuple[Run, bool] | tuple[Run, bool, bool]]) -> tuple[float, int]:
        """Summed estimate of passes (a run, or a run and whether its check and its memory pass run
        after it) and how many of them have no estimate at all."""
        seconds, unknown = 0.0, 0
        for item in runs:
            run, checked, memory = (*item, False)[:3] if isinstance(item, tuple) else (item, False, False)
            guess = self.step(run, checked, memory)
            if guess is None:
                unknown += 1
            else:
                seconds += guess
        return seconds, unknown


def check_after(answer: dict[str, Any], worker_seconds: float, overhead: float) -> float | None:
    """The unprofiled check of a profiled pass that just finished: the same worker without yappi,
    i.e. its time outside the backtest as measured plus its backtest divided by yappi's overhead."""
    wall = _number(answer.get("wall_seconds_total"))
    if wall is None or worker_seconds <= 0:
        return None
    return max(worker_seconds - wall, 0.0) + wall / overhead


def run_left(
    progress: Progress | None, fraction: float | None, estimate: float | None, elapsed: float,
    tail: float | None = None, now: float | None = None,
) -> float | None:
    """Seconds the running pass still needs.

    Its own pace once it has covered enough of its window (backtest seconds so far scaled to
    the rest of the window), plus ``tail``, the seconds expected after the last iteration
    (LumiBot's analysis, saving the profile), less the time since the snapshot when ``now``
    (Unix time) is given: the worker writes no snapshot after its last iteration. Before
    that, the estimate minus the time already spent.
    """
    if progress is not None and fraction is not None and fraction >= MIN_FRACTION and progress.elapsed_seconds > 0:
        since = max(now - progress.written, 0.0) if now is not None else 0.0
        return max(progress.elapsed_seconds * (1.0 - fraction) / fraction + (tail or 0.0) - since, 0.0)
    if estimate is not None:
        return max(estimate - elapsed, 0.0)
    return None


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 10 s``, ``1 h 05 min``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
