"""The numbers behind the report, computed once from a result set and shared by every section."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from supervisor.offenders import Aggregate, aggregate, heaviest, is_wrapper
from supervisor.resultset import ResultSet, RunRecord
from supervisor.scaling import Growth, LineFit, Marginal, fit_line, marginal_costs, superlinear

MIN_SHARE_FOR_GROWTH = 0.01
"""A function must take at least 1 % of the longest run's wall time to be listed as
super-linear: the exponent of a function worth milliseconds is mostly timer noise."""


def majority(values: Iterable[Hashable]) -> Any:
    """The most common value (first seen wins a tie), or None when there are none."""
    counts = Counter(values)
    return counts.most_common(1)[0][0] if counts else None


@dataclass
class Analysis:
    """Totals, fits and reference values over a result set's done runs."""

    results: ResultSet
    charts: dict[str, str] = field(default_factory=dict)

    @cached_property
    def totals(self) -> list[Aggregate]:
        return aggregate(r.funcs or [] for r in self.results.done)

    def heaviest(self, by: str, n: int = 10) -> list[Aggregate]:
        return heaviest(self.totals, by, n)

    @cached_property
    def total_wall(self) -> float:
        return sum(r.wall or 0.0 for r in self.results.done)

    @cached_property
    def scaling_runs(self) -> list[RunRecord]:
        """Done Phase 1 runs: the probes are left out since one of them pays for downloads on purpose."""
        return self.results.phase1_done

    @cached_property
    def fit(self) -> LineFit | None:
        runs = self.scaling_runs
        return fit_line([float(r.days) for r in runs], [r.wall or 0.0 for r in runs])

    @cached_property
    def marginals(self) -> list[Marginal]:
        return marginal_costs((r.days, r.wall or 0.0) for r in self.scaling_runs)

    @cached_property
    def longest_run(self) -> RunRecord | None:
        return max(self.scaling_runs, key=lambda r: (r.days, r.wall or 0.0), default=None)

    @cached_property
    def growth(self) -> list[Growth]:
        """Super-linear functions across done Phase 1 runs, wrappers and trivia left out."""
        samples: dict[str, list[tuple[int, float]]] = {}
        for run in self.scaling_runs:
            for row in run.funcs or []:
                if not is_wrapper(row):
                    samples.setdefault(row.key, []).append((run.days, row.cumulative))
        longest = self.longest_run
        floor = MIN_SHARE_FOR_GROWTH * (longest.wall or 0.0) if longest else 0.0
        return [g for g in superlinear(samples) if g.longest_seconds >= floor]

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
    return value  # type: ignore[no-any-return]
