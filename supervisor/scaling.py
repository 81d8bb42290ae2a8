"""How cost grows with window length: trading days, straight-line fits and growth exponents.

Pure Python on purpose: a handful of points per fit, and the supervisor must start without
numpy. Windows are counted in trading days (Mon–Fri) because a weekend adds calendar days
but no bars, so calendar days would make every week look cheaper per day than a month.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

SUPERLINEAR_EXPONENT = 1.15
"""Above this, a function's time grows clearly faster than the window (10 % over linear
would still be within run-to-run noise on a handful of short windows)."""


def trading_days(start: date, end: date) -> int:
    """Monday–Friday dates from ``start`` to ``end``, both included; holidays are not removed."""
    if end < start:
        return 0
    whole_weeks, rest = divmod((end - start).days + 1, 7)
    extra = sum(1 for offset in range(rest) if (start + timedelta(days=offset)).weekday() < 5)
    return whole_weeks * 5 + extra


@dataclass(frozen=True)
class LineFit:
    """``y = intercept + slope·x`` by least squares, with the share of variance it explains."""

    intercept: float
    slope: float
    r_squared: float
    points: int

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LineFit | None:
    """Ordinary least squares; None when fewer than two distinct x values make the slope undefined."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        return None
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    r_squared = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return LineFit(intercept, slope, r_squared, n)


def growth_exponent(points: Sequence[tuple[float, float]]) -> LineFit | None:
    """Fit ``log y = c + k·log x``; the slope ``k`` is the exponent (1 = linear, 2 = quadratic).

    Points with a non-positive x or y carry no information on a log scale and are dropped.
    """
    usable = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    return fit_line([x for x, _ in usable], [y for _, y in usable])


@dataclass(frozen=True)
class Marginal:
    """What each extra trading day cost between two window lengths (mean wall time per length)."""

    from_days: int
    to_days: int
    seconds_per_day: float


def marginal_costs(points: Iterable[tuple[int, float]]) -> list[Marginal]:
    """Cost per extra trading day between consecutive distinct window lengths.

    Unlike one straight-line fit this shows *where* cost per day rises: a fixed start-up cost
    makes short windows dear per day, growing state makes long ones dear.
    """
    by_days: dict[int, list[float]] = {}
    for days, seconds in points:
        by_days.setdefault(days, []).append(seconds)
    means = [(days, sum(values) / len(values)) for days, values in sorted(by_days.items())]
    return [
        Marginal(d0, d1, (s1 - s0) / (d1 - d0))
        for (d0, s0), (d1, s1) in zip(means, means[1:], strict=False)
    ]


@dataclass(frozen=True)
class Growth:
    """One function whose time grows with the window: its exponent and its largest observation."""

    key: str
    exponent: float
    r_squared: float
    runs: int
    longest_days: int
    longest_seconds: float

    def projected(self, days: int) -> float:
        """Seconds at ``days`` trading days if the power law holds beyond the longest run."""
        return self.longest_seconds * (days / self.longest_days) ** self.exponent


def superlinear(
    samples: Mapping[str, Sequence[tuple[int, float]]],
    *,
    min_runs: int = 3,
    threshold: float = SUPERLINEAR_EXPONENT,
) -> list[Growth]:
    """Functions whose time grows faster than the window, heaviest in the longest run first.

    ``samples`` maps a function to ``(trading days, seconds)`` per run it appears in. A
    function needs ``min_runs`` runs over at least two window lengths, or one fit per
    function would be drawn through two points and call noise a trend.
    """
    found: list[Growth] = []
    for key, points in samples.items():
        if len(points) < min_runs:
            continue
        fit = growth_exponent(points)
        if fit is None or fit.slope <= threshold:
            continue
        longest_days = max(days for days, _ in points)
        longest_seconds = max(seconds for days, seconds in points if days == longest_days)
        found.append(Growth(key, fit.slope, fit.r_squared, len(points), longest_days, longest_seconds))
    return sorted(found, key=lambda g: g.longest_seconds, reverse=True)
