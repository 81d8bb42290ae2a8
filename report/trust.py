"""The cross-check's numbers as the report reads them: per-run sampled shares, pooled over runs.

Each cross-checked run has ``<id>.crosscheck.csv`` (see :mod:`common.crosscheck`). Its yappi
rows are keyed the way the offender tables key functions (:func:`common.profiles.portable`),
so every offender row can show its sampled share beside yappi's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cached_property
from statistics import median

from common import crosscheck as cc
from common.profiles import FuncRow, portable
from report.filecache import cached
from report.resultset import ResultSet, RunRecord


@dataclass
class RunTrust:
    """One done run's cross-check: its rows by portable key, or why there are none."""

    record: RunRecord
    rows: dict[str, cc.CrossRow] = field(default_factory=dict)
    problem: str | None = None

    @property
    def checked(self) -> bool:
        return bool(self.rows)

    @property
    def plain_wall(self) -> float | None:
        value = self.record.value("unprofiled_wall_seconds")
        return float(value) if isinstance(value, int | float) else None

    @property
    def ratio(self) -> float | None:
        value = self.record.value("profiler_overhead_ratio")
        return float(value) if isinstance(value, int | float) else None

    def misstated(self, direction: str, n: int = 3) -> list[cc.CrossRow]:
        return cc.misstated(list(self.rows.values()), direction, n)


def _keyed(rows: list[cc.CrossRow]) -> dict[str, cc.CrossRow]:
    """The yappi rows under the offender tables' portable keys (sampled-only rows have no yappi row to sit beside)."""
    yappi_rows = [r for r in rows if r.yappi_inclusive is not None]
    probes = [FuncRow("", r.function, r.module, r.lineno, r.ncall or 0, 0.0, 0.0) for r in yappi_rows]
    return {p.key: r for p, r in zip(portable(probes), yappi_rows, strict=True)}


def load_run(results: ResultSet, record: RunRecord) -> RunTrust:
    relative = record.value("crosscheck_csv")
    if not relative:
        return RunTrust(record, problem=str(record.value("cross_check") or "not cross-checked"))
    try:
        return RunTrust(record, cached("crosscheck", results.store.resolve(relative), lambda p: _keyed(cc.read_csv(p))))
    except (OSError, ValueError, KeyError, csv.Error) as exc:
        return RunTrust(record, problem=f"{relative} is unreadable ({type(exc).__name__}: {exc})")


@dataclass(frozen=True)
class Pooled:
    """One function over every cross-checked run: shares weighted by each run's wall time."""

    key: str
    short: str
    yappi: float
    sampled: float
    verdict: str
    wrapper: bool

    @property
    def ratio(self) -> float | None:
        return cc.ratio(self.yappi, self.sampled)


@dataclass
class Trust:
    """Every done run's cross-check and the pooled view the report's tables and summary use."""

    results: ResultSet

    @cached_property
    def runs(self) -> list[RunTrust]:
        return [load_run(self.results, r) for r in self.results.done]

    @property
    def checked(self) -> list[RunTrust]:
        return [t for t in self.runs if t.checked and t.plain_wall and t.record.wall]

    def of(self, run_id: str) -> RunTrust | None:
        return next((t for t in self.runs if t.record.id == run_id), None)

    @property
    def median_ratio(self) -> float | None:
        ratios = [t.ratio for t in self.checked if t.ratio]
        return median(ratios) if ratios else None

    def pooled(self, by: str = "inclusive") -> list[Pooled]:
        """Shares pooled over runs (yappi's weighted by yappi wall, sampled by unprofiled wall),
        with a verdict on the pooled ticks; heaviest sampled share first. ``by``: inclusive or self."""
        return self._pooled[by]

    @cached_property
    def _pooled(self) -> dict[str, list[Pooled]]:
        return {by: self._pool(by) for by in ("inclusive", "self")}

    @cached_property
    def _index(self) -> dict[str, dict[str, float]]:
        return {by: {p.key: p.sampled for p in rows} for by, rows in self._pooled.items()}

    def _pool(self, by: str) -> list[Pooled]:
        checked = self.checked
        yappi_wall = sum(t.record.wall or 0.0 for t in checked)
        plain_wall = sum(t.plain_wall or 0.0 for t in checked)
        ticks = sum(int(t.record.value("sampled_samples") or 0) for t in checked)
        sums: dict[str, list[float]] = {}
        first: dict[str, cc.CrossRow] = {}
        for t in checked:
            for key, row in t.rows.items():
                acc = sums.setdefault(key, [0.0, 0.0])
                acc[0] += (getattr(row, f"yappi_{by}") or 0.0) * (t.record.wall or 0.0)
                acc[1] += getattr(row, f"sampled_{by}") * (t.plain_wall or 0.0)
                first.setdefault(key, row)
        pooled = []
        for key, (y, s) in sums.items():
            row = first[key]
            y_share, s_share = y / yappi_wall, s / plain_wall
            untimed = all(t.rows[key].verdict == cc.UNTIMED for t in checked if key in t.rows)
            verdict = cc.UNTIMED if untimed else cc.verdict(y_share, s_share, ticks)
            pooled.append(Pooled(key, row.short, y_share, s_share, verdict, row.wrapper))
        return sorted(pooled, key=lambda p: p.sampled, reverse=True)

    def sampled_share(self, run_id: str | None, key: str, by: str) -> float | None:
        """A function's sampled share in one run, or pooled over runs when ``run_id`` is None."""
        if run_id is not None:
            trust = self.of(run_id)
            row = trust.rows.get(key) if trust else None
            return None if row is None else float(getattr(row, f"sampled_{by}"))
        return self._index[by].get(key)
