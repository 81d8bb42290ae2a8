"""The numbers behind the report, computed once from a result set and shared by every section."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from statistics import median
from typing import Any

from common.offenders import is_wrapper
from common.windows import LineFit, fit_line, robust_line
from report.resultset import ResultSet, RunRecord
from report.scaling import Growth, Marginal, marginal_costs, superlinear
from report.totals import Aggregate, aggregate, heaviest
from report.trust import Trust

OUTLIER_FACTOR = 1.5
"""A Phase 1 run is an outlier when it takes over 1.5× what its length predicts: windows of
equal length vary by a few percent, so this only catches a different code path (a data
reload, a contract roll), which would otherwise pass for a trend in window length."""

CALL_JUMP = 10.0
"""Calls per unit of work ten times the reference's: a changed code path, not noise."""

MIN_SHARE_FOR_GROWTH = 0.01
"""A function must take at least 1 % of the longest run's wall time to be listed as
super-linear: the exponent of a function worth milliseconds is mostly timer noise."""


def majority(values: Iterable[Hashable]) -> Any:
    """The most common value (first seen wins a tie), or None when there are none."""
    counts = Counter(values)
    return counts.most_common(1)[0][0] if counts else None


@dataclass(frozen=True)
class Excess:
    """A function's seconds beyond what the reference run would predict at this window length."""

    short: str
    seconds: float
    calls: int
    reference_calls: int


@dataclass(frozen=True)
class Outlier:
    """A run far above the robust line, explained against the nearest ordinary run.

    ``reached_days`` is the window's length for a finished run; for one stopped by its timeout
    it is how far the backtest got, estimated from its iterations at the ordinary runs' pace.
    """

    run: RunRecord
    reached_days: int
    expected: float
    reference: RunRecord | None
    excess: list[Excess]
    culprit: Excess | None

    @property
    def factor(self) -> float:
        return (self.run.wall or 0.0) / self.expected

    @property
    def stopped(self) -> bool:
        return bool(self.run.value("partial"))


def _iterations(run: RunRecord) -> int | None:
    value = run.value("iterations")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def explain(run: RunRecord, reference: RunRecord, n: int = 10) -> tuple[list[Excess], Excess | None]:
    """The functions behind a run's extra time, and the likeliest cause among them.

    The reference's time is scaled by the work done (iterations, else trading days), which
    also makes a run stopped part-way comparable. The whole call chain above the cause carries
    the same excess, so the cause is the heaviest function called at least ``CALL_JUMP`` times
    as often per unit of work: where the calls jump is where the code path changed (a cache that
    misses on every bar shows up as a load routine called a thousand times instead of once).
    """
    mine, theirs = _iterations(run), _iterations(reference)
    scale = mine / theirs if mine and theirs else (run.days / reference.days if reference.days else 1.0)
    ref = {r.key: r for r in reference.funcs or []}
    rows = []
    for row in run.funcs or []:
        if is_wrapper(row):
            continue
        base = ref.get(row.key)
        extra = row.cumulative - (base.cumulative * scale if base else 0.0)
        rows.append(Excess(row.short, extra, row.ncall, base.ncall if base else 0))
    rows.sort(key=lambda e: e.seconds, reverse=True)
    top_rows = rows[:n]
    if not top_rows or top_rows[0].seconds <= 0:
        return top_rows, None
    heavy = [e for e in rows if e.seconds >= 0.25 * top_rows[0].seconds]

    def call_growth(e: Excess) -> float:
        return e.calls / (e.reference_calls * scale) if e.reference_calls else float("inf")

    jumped = [e for e in heavy if call_growth(e) >= CALL_JUMP]
    if jumped:
        return top_rows, max(jumped, key=lambda e: e.seconds)
    return top_rows, max(heavy, key=lambda e: (call_growth(e), e.seconds))


@dataclass
class Analysis:
    """Totals, fits and reference values over a result set's done runs."""

    results: ResultSet
    charts: dict[str, str] = field(default_factory=dict)
    charts_deferred: bool = False
    """The live rewrite after each run leaves the charts for the end (drawing them costs seconds)."""

    @cached_property
    def trust(self) -> Trust:
        """The cross-check against unprofiled runs sampled by py-spy."""
        return Trust(self.results)

    @cached_property
    def totals(self) -> list[Aggregate]:
        return aggregate(r.funcs or [] for r in self.results.done)

    def heaviest(self, by: str, n: int = 10) -> list[Aggregate]:
        return heaviest(self.totals, by, n)

    @cached_property
    def total_wall(self) -> float:
        return sum(r.wall or 0.0 for r in self.results.done)

    @cached_property
    def baseline(self) -> LineFit | None:
        """A robust wall-vs-days line over every done Phase 1 run, used only to spot outliers."""
        runs = self.results.phase1_done
        return robust_line([float(r.days) for r in runs], [r.wall or 0.0 for r in runs])

    @cached_property
    def outliers(self) -> list[Outlier]:
        """Done Phase 1 runs far above the robust line, then runs stopped by a timeout whose
        profile shows they were already far behind the ordinary runs' pace."""
        line = self.baseline
        if line is None:
            return []
        found = [r for r in self.results.phase1_done if 0 < line.at(r.days) * OUTLIER_FACTOR < (r.wall or 0.0)]
        odd = {r.id for r in found}
        ordinary = [r for r in self.results.phase1_done if r.id not in odd]
        reached = {r.id: r.days for r in found}
        pace = self.iterations_per_day(ordinary)
        for run in self.stopped_runs:
            done_iterations = _iterations(run)
            if pace and done_iterations:
                days = max(1, round(done_iterations / pace))
                if 0 < line.at(days) * OUTLIER_FACTOR < (run.wall or 0.0):
                    found.append(run)
                    reached[run.id] = days
        return [self._outlier(run, reached[run.id], line, ordinary) for run in found]

    @staticmethod
    def _outlier(run: RunRecord, days: int, line: LineFit, ordinary: list[RunRecord]) -> Outlier:
        reference = min(ordinary, key=lambda r: (abs(r.days - days), r.label != run.label), default=None)
        excess, culprit = explain(run, reference) if reference else ([], None)
        return Outlier(run, days, line.at(days), reference, excess, culprit)

    @cached_property
    def stopped_runs(self) -> list[RunRecord]:
        """Phase 1 runs stopped part-way (timeout) that still left a profile of what did run."""
        return [
            r
            for r in self.results.records
            if r.phase == "phase1" and r.value("partial") and r.funcs is not None and r.wall is not None
        ]

    @staticmethod
    def iterations_per_day(runs: list[RunRecord]) -> float | None:
        paces = [n / r.days for r in runs if (n := _iterations(r)) and r.days]
        return median(paces) if paces else None

    @cached_property
    def scaling_runs(self) -> list[RunRecord]:
        """Done Phase 1 runs that follow the trend: the probes are left out since one of them pays
        for downloads on purpose, and outliers since they measure a different code path."""
        odd = {o.run.id for o in self.outliers}
        return [r for r in self.results.phase1_done if r.id not in odd]

    @cached_property
    def fit(self) -> LineFit | None:
        runs = self.scaling_runs
        return fit_line([float(r.days) for r in runs], [r.wall or 0.0 for r in runs])

    @cached_property
    def fit_all(self) -> LineFit | None:
        """The same fit with the outliers kept, to show how much they move it."""
        runs = self.results.phase1_done
        return fit_line([float(r.days) for r in runs], [r.wall or 0.0 for r in runs])

    @cached_property
    def marginals(self) -> list[Marginal]:
        return marginal_costs((r.days, r.wall or 0.0) for r in self.scaling_runs)

    @cached_property
    def longest_run(self) -> RunRecord | None:
        return max(self.scaling_runs, key=lambda r: (r.days, r.wall or 0.0), default=None)

    @cached_property
    def growth(self) -> list[Growth]:
        """Super-linear functions across ordinary done Phase 1 runs, wrappers and trivia left out.

        Ordered by what they would add, beyond linear growth, to the plan's longest window:
        that weighs a steep exponent against a small share of time.
        """
        samples: dict[str, list[tuple[int, float]]] = {}
        for run in self.scaling_runs:
            for row in run.funcs or []:
                if not is_wrapper(row):
                    samples.setdefault(row.key, []).append((run.days, row.cumulative))
        longest = self.longest_run
        floor = MIN_SHARE_FOR_GROWTH * (longest.wall or 0.0) if longest else 0.0
        target = self.results.longest_planned_days
        found = [g for g in superlinear(samples) if g.longest_seconds >= floor]
        return sorted(found, key=lambda g: g.projected(target) - g.linear(target), reverse=True)

    @cached_property
    def short_names(self) -> dict[str, str]:
        """Portable key -> ``file.py:line name`` as last seen, for growth rows that only carry keys."""
        return {row.key: row.short for run in self.results.done for row in run.funcs or []}

    def reference(self, name: str) -> Any:
        """The majority value of a result field over runs that recorded it."""
        values = [_hashable(r.value(name)) for r in self.results.records if r.value(name) is not None]
        return majority(values)


def _hashable(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value
