"""How cost grows with window length: growth exponents and the cost of each extra trading day.

Pure Python on purpose: a handful of points per fit. Trading days and the straight-line fits
live in :mod:`common.windows`, since the supervisor's ETA uses them too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from common.windows import LineFit, fit_line

SUPERLINEAR_EXPONENT = 1.15
"""Above this, a function's time grows clearly faster than the window (10 % over linear
would still be within run-to-run noise on a handful of short windows)."""


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


def marginal_costs(points: Iterable[tuple[int, float]], merge_ratio: float = 1.5) -> list[Marginal]:
    """Cost per extra trading day between successive groups of window lengths.

    Unlike one straight-line fit this shows *where* cost per day rises: a fixed start-up cost
    makes short windows dear per day, growing state makes long ones dear. Lengths within
    ``merge_ratio`` of a group's shortest (a 20- and a 22-day month) form one group, since a
    slope over two days would be all noise.
    """
    groups: list[list[tuple[int, float]]] = []
    for days, seconds in sorted(points):
        if groups and days <= groups[-1][0][0] * merge_ratio:
            groups[-1].append((days, seconds))
        else:
            groups.append([(days, seconds)])
    means = [
        (round(sum(d for d, _ in g) / len(g)), sum(d for d, _ in g) / len(g), sum(s for _, s in g) / len(g)) for g in groups
    ]
    return [Marginal(d0, d1, (s1 - s0) / (x1 - x0)) for (d0, x0, s0), (d1, x1, s1) in pairwise(means)]


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

    def linear(self, days: int) -> float:
        """Seconds at ``days`` trading days had it grown in step with the window."""
        return self.longest_seconds * days / self.longest_days


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
