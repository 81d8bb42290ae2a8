"""Offenders summed over several runs, for the report's across-runs tables and the comparison."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.offenders import is_wrapper
from common.profiles import FuncRow


@dataclass
class Aggregate:
    """One function summed over several runs (rows must carry portable keys to match across runs)."""

    key: str
    short: str
    cumulative: float = 0.0
    self_time: float = 0.0
    ncall: int = 0
    runs: int = 0


def aggregate(runs: Iterable[list[FuncRow]]) -> list[Aggregate]:
    """Sum each non-wrapper function's seconds and calls over runs; ``runs`` counts where it appears."""
    totals: dict[str, Aggregate] = {}
    for rows in runs:
        for row in rows:
            if is_wrapper(row):
                continue
            total = totals.setdefault(row.key, Aggregate(row.key, row.short))
            total.cumulative += row.cumulative
            total.self_time += row.self_time
            total.ncall += row.ncall
            total.runs += 1
    return list(totals.values())


def heaviest(totals: list[Aggregate], by: str = "cumulative", n: int = 10) -> list[Aggregate]:
    return sorted(totals, key=lambda a: getattr(a, by), reverse=True)[:n]
