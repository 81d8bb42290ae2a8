"""How long an entry, and the rest of a selection, will take: estimated from what the plan knows.

Three sources, best first: the same entry's time in an earlier round (``history``, kept by
``reset``), a straight line of entry seconds against trading days through every entry the
plan has timed, and the running entry's own pace (see :func:`run_left`). Estimates are whole
entries, claim to result (``entry_seconds``), so start-up, preload passes and saving the
profile are in them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from common.progress import Progress
from common.windows import LineFit, fit_line, window_days
from supervisor.plan import Plan, Run, run_dates

MIN_FRACTION = 0.05
"""Below 5 % of the window the running entry's own pace is too young to extrapolate from."""


def entry_seconds(result: Any) -> float | None:
    """Claim-to-result seconds of a finished entry; older results only have the worker's time."""
    if not isinstance(result, dict) or result.get("status", "done") != "done":
        return None
    for key in ("entry_seconds", "worker_process_seconds"):
        value = result.get(key)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def _days(run: Run) -> int | None:
    try:
        return window_days(*run_dates(run))
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class Estimator:
    """Per-entry estimates from one reading of the plan."""

    previous: dict[str, float] = field(default_factory=dict)
    fit: LineFit | None = None
    per_day: float | None = None

    @classmethod
    def from_plan(cls, plan: Plan) -> Estimator:
        previous: dict[str, float] = {}
        for archived in plan.get("history") or []:
            seconds = entry_seconds(archived.get("result")) if isinstance(archived, dict) else None
            if seconds is not None:
                previous[str(archived.get("id"))] = seconds  # later entries are newer rounds
        points: dict[str, tuple[float, float]] = {}
        for run in plan["runs"]:
            seconds = entry_seconds(plan["results"].get(run["id"])) if run["status"] == "done" else None
            seconds = seconds if seconds is not None else previous.get(run["id"])
            days = _days(run)
            if seconds is not None and days:
                points[run["id"]] = (float(days), seconds)
        xs, ys = [p[0] for p in points.values()], [p[1] for p in points.values()]
        fit = fit_line(xs, ys)
        per_day = sum(ys) / sum(xs) if xs else None
        return cls(previous, fit if fit is not None and fit.slope > 0 else None, per_day)

    def entry(self, run: Run) -> float | None:
        """Seconds this entry should take, or None when nothing is known yet."""
        if run["id"] in self.previous:
            return self.previous[run["id"]]
        days = _days(run)
        if days is None:
            return None
        if self.fit is not None:
            return max(self.fit.at(days), 0.0)
        return self.per_day * days if self.per_day is not None else None

    def total(self, runs: Iterable[Run]) -> tuple[float, int]:
        """Summed estimate of ``runs`` and how many of them have no estimate at all."""
        seconds, unknown = 0.0, 0
        for run in runs:
            guess = self.entry(run)
            if guess is None:
                unknown += 1
            else:
                seconds += guess
        return seconds, unknown


def run_left(progress: Progress | None, fraction: float | None, estimate: float | None, elapsed: float) -> float | None:
    """Seconds the running entry still needs.

    Its own pace once it has covered enough of its window (backtest seconds so far scaled to
    the rest of the window), else the estimate minus the time already spent.
    """
    if progress is not None and fraction is not None and fraction >= MIN_FRACTION and progress.elapsed_seconds > 0:
        return progress.elapsed_seconds * (1.0 - fraction) / fraction
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
