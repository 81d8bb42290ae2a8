"""The statistics Phase 0 and ``report --compare`` use to tell a change from noise.

One place, so the supervisor's decision and the report's verdict use the same words and
thresholds. Wall times of a profiled LumiBot backtest on a shared 2-core machine move by
tens of percent from one sitting to the next (see docs/phase0.md), so:

* a spread of repeats is the noise estimate: ``band`` is the largest max - min among the
  repeats of one thing (cold passes, warm passes, one window's passes);
* with repeats on both sides, a difference is a change only if Welch's two-sample t-test
  rejects "same mean" at 95 % (pyperf's ``compare_to`` uses Student's t-test at 95 %; Welch's
  does not assume both sittings are equally noisy) **and** the medians differ by a factor of
  at least 1.1 (asv's default ``--factor``). asv's Mann-Whitney U test is not used: with the
  default three repeats its smallest possible two-sided p is 0.1, so it could never call
  anything, while the t-test can when the spread is small;
* with single runs there is no spread to test, so the noise band measured by Phase 0's
  repeats stands in for it, and the verdict says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: Welch's t-test must reject "same mean" at this level (pyperf: 95 %).
ALPHA = 0.05
#: Smallest ratio of medians called a change (asv's default ``--factor 1.1``).
MIN_FACTOR = 1.1

FASTER, SLOWER, WITHIN_NOISE, NOT_JUDGED = "faster", "slower", "within noise", "not judged"


@dataclass(frozen=True)
class Spread:
    """Median, min and max of one thing's repeats (wall seconds, or one function's seconds)."""

    n: int
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(len(values), statistics.median(values), min(values), max(values))

    @property
    def width(self) -> float:
        return self.high - self.low

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "median": round(self.median, 4), "min": round(self.low, 4), "max": round(self.high, 4)}


def band(*groups: Sequence[float]) -> float | None:
    """The noise band: the widest max - min among groups of repeats; None when no group has two."""
    widths = [max(g) - min(g) for g in groups if len(g) >= 2]
    return max(widths) if widths else None


def welch_p(before: Sequence[float], after: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test; 1.0 when both sides are constant and equal."""
    from scipy import stats as sps  # scipy is heavy; only a comparison needs it

    if statistics.pvariance(before) == 0 and statistics.pvariance(after) == 0:
        return 1.0 if statistics.fmean(before) == statistics.fmean(after) else 0.0
    p = float(sps.ttest_ind(after, before, equal_var=False).pvalue)
    return 1.0 if math.isnan(p) else p


@dataclass(frozen=True)
class Verdict:
    """``faster``, ``slower``, ``within noise`` or ``not judged``, with how it was decided."""

    word: str
    ratio: float | None
    test: str

    @property
    def is_change(self) -> bool:
        return self.word in (FASTER, SLOWER)


def _direction(ratio: float) -> str:
    return SLOWER if ratio > 1 else FASTER


def judge_repeats(before: Sequence[float], after: Sequence[float], tests: int = 1) -> Verdict:
    """Both sides have repeats: Welch's t-test at 95 % and a factor of at least 1.1.

    ``tests`` is how many such verdicts are drawn at once (a table of functions): the level is
    divided by it (Bonferroni), or one table of 15 pure-noise rows would call about one a change.
    """
    b, a = statistics.median(before), statistics.median(after)
    if b <= 0:
        return Verdict(NOT_JUDGED, None, "before median is 0 s")
    ratio = a / b
    p = welch_p(before, after)
    alpha = ALPHA / tests
    big = ratio >= MIN_FACTOR or ratio <= 1 / MIN_FACTOR
    word = _direction(ratio) if p < alpha and big else WITHIN_NOISE
    test = f"Welch t-test p={p:.3g} (change needs p<{alpha:.3g} and factor>={MIN_FACTOR:g}; n={len(before)} vs {len(after)})"
    return Verdict(word, ratio, test)


def judge_single(before: float, after: float, noise_fraction: float | None, source: str) -> Verdict:
    """Single runs: the change must exceed both the factor 1.1 and the Phase 0 noise band.

    ``noise_fraction`` is the band as a fraction of the probe's median (e.g. 0.12 for 12 %).
    """
    if before <= 0:
        return Verdict(NOT_JUDGED, None, "before is 0 s")
    ratio = after / before
    if noise_fraction is None:
        if 1 / MIN_FACTOR < ratio < MIN_FACTOR:  # below the smallest change ever called: noise whatever the band
            return Verdict(WITHIN_NOISE, ratio, f"single runs, no Phase 0 noise band: below the factor {MIN_FACTOR:g}")
        return Verdict(NOT_JUDGED, ratio, "single runs and no Phase 0 noise band to judge them by")
    threshold = max(MIN_FACTOR, 1 + noise_fraction)
    big = ratio >= threshold or ratio <= 1 / threshold
    test = f"single runs: Phase 0 noise band {100 * noise_fraction:.1f} % ({source}), change needs factor>={threshold:.2f}"
    return Verdict(_direction(ratio) if big else WITHIN_NOISE, ratio, test)
