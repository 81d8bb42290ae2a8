"""Phrases and small helpers that several sections of REPORT.md share."""

from __future__ import annotations

from typing import Any

from report.analysis import Analysis
from report.resultset import RunRecord
from report.scaling import SUPERLINEAR_EXPONENT, Marginal

WRAPPERS_ANCHOR = "#left-out-of-the-offender-tables"


OUTLIERS_ANCHOR = "#runs-that-cost-more-than-their-length-predicts"



def chart_link(analysis: Analysis, name: str, alt: str, missing: str) -> str:
    filename = analysis.charts.get(name)
    if not filename and analysis.charts_deferred:
        return "_Charts are drawn when the plan ends (`make report` draws them any time)._"
    return f"![{alt}]({filename})" if filename else f"_No chart: {missing}._"



def growth_verdict(marginals: list[Marginal]) -> str:
    first, last = marginals[0].seconds_per_day, marginals[-1].seconds_per_day
    if first > 0 and last > SUPERLINEAR_EXPONENT * first:
        return "faster than linearly"
    if first > 0 and last * SUPERLINEAR_EXPONENT < first:
        return "slower than linearly (a fixed start-up cost weighs on the short windows)"
    return "about linearly"



def marginal_phrase(m: Marginal) -> str:
    return f"{m.seconds_per_day:.3f} s between {m.from_days} and {m.to_days} trading days"



def signed(value: Any, places: int = 2) -> str:
    return f"{value:+.{places}f}" if isinstance(value, int | float) else "–"



def probes(analysis: Analysis) -> tuple[RunRecord | None, RunRecord | None]:
    found = {r.label: r for r in analysis.results.records if r.phase == "phase0"}
    return found.get("cache_probe_cold"), found.get("cache_probe_warm")



def per(total: float | None, count: Any) -> float | None:
    if total is None or not isinstance(count, int) or count <= 0:
        return None
    return total / count
