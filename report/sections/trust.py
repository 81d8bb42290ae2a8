"""How far to trust these numbers: yappi's profile against an unprofiled run sampled by py-spy."""

from __future__ import annotations

from common import crosscheck as cc
from report import markdown as md
from report.analysis import Analysis
from report.trust import Pooled, RunTrust

TRUST_ANCHOR = "#how-far-to-trust-these-numbers"


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f} %"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _agreement(trust: RunTrust, by: str) -> str:
    found = (trust.record.value("rank_agreement") or {}).get(by) or {}
    parts = []
    for n in ("top10", "top20"):
        item = found.get(n) or {}
        rho = item.get("spearman")
        parts.append(f"{item.get('overlap', '–')}/{item.get('of', '–')} (ρ {'–' if rho is None else f'{rho:.2f}'})")
    return ", ".join(parts)


def _named(rows: list[cc.CrossRow] | list[Pooled]) -> str:
    items = []
    for r in rows:
        ratio = r.inclusive_ratio if isinstance(r, cc.CrossRow) else r.ratio
        yappi = r.yappi_inclusive if isinstance(r, cc.CrossRow) else r.yappi
        sampled = r.sampled_inclusive if isinstance(r, cc.CrossRow) else r.sampled
        items.append(f"{md.code(r.short)} ({_pct(yappi)} vs {_pct(sampled)}, {_ratio(ratio)})")
    return md.listing(items) or "none beyond the noise"


class TrustSection:
    """Per run and overall: the profiler's slowdown, rank agreement, and what yappi gets wrong."""

    def render(self, analysis: Analysis) -> str:
        head = "## How far to trust these numbers"
        trust = analysis.trust
        intro = (
            "yappi traces every Python call, which slows the backtest and not evenly: bytecode-heavy code and many "
            "small calls are inflated, time spent inside C (json encoding, numpy) is not. So every run is cross-checked: "
            "the same window runs again in a fresh worker with no profiler, same data source and cache state, sampled "
            "from outside by py-spy (wall clock, idle time included, every thread). **The unprofiled wall time is the "
            "best answer to how long the window really takes.** A share is a function's time (inclusive: with what it "
            "calls; self: as the innermost Python frame) summed over threads, as a fraction of the backtest's wall time, "
            f"under each measure. A function is *over-* or *under-stated by yappi* when the two shares differ by more "
            f"than {cc.NOISE_FLOOR_PP:g} percentage points and {cc.NOISE_SIGMAS:g} binomial standard errors of the sampled "
            f"share, and by a factor of at least {cc.RATIO_LIMIT:g}; otherwise they agree within the noise. "
            "Rank agreement is the overlap of the top 10 / top 20 by each measure and Spearman's ρ over their union, "
            "entry points and thread waits left out. Believe the sampled share where the two disagree."
        )
        checked = trust.checked
        if not checked:
            reasons = sorted({t.problem or "not cross-checked" for t in trust.runs})
            why = md.listing([md.code(r) for r in reasons]) or "no run is done yet"
            return f"{head}\n\n{intro}\n\nNo run has a cross-check: {why}."
        ratios = [t.ratio for t in checked if t.ratio]
        overall = (
            f"Over {md.plural(len(checked), 'cross-checked run')}, yappi made the backtest "
            f"{min(ratios):.2f}× to {max(ratios):.2f}× slower than unprofiled "
            f"(median {trust.median_ratio:.2f}×). Pooled over those runs, yappi over-states most "
            f"{_named(self._pooled(analysis, cc.OVER))}; it under-states most {_named(self._pooled(analysis, cc.UNDER))} "
            "(yappi share vs sampled share, ratio)."
        )
        table = md.table(
            ["run", "yappi wall s", "unprofiled wall s", "yappi / unprofiled", "samples", "inclusive top 10, top 20",
             "self top 10, top 20", "same backtest", "flame graph"],
            [self._row(t) for t in trust.runs],
            [1, 2, 3, 4],
        )
        both = self._both_measures(analysis)
        per_run = "\n".join(
            f"- {t.record.id}: over-stated {_named(t.misstated(cc.OVER))}; under-stated {_named(t.misstated(cc.UNDER))}."
            for t in checked
        )
        return "\n\n".join([head, intro, overall, table, both, "Most misstated per run (yappi vs sampled share):", per_run])

    @staticmethod
    def _pooled(analysis: Analysis, direction: str, n: int = 3) -> list[Pooled]:
        picked = [p for p in analysis.trust.pooled("inclusive") if p.verdict == direction and not p.wrapper]
        return sorted(picked, key=lambda p: abs(p.yappi - p.sampled), reverse=True)[:n]

    @staticmethod
    def _row(t: RunTrust) -> list[str]:
        if not t.checked:
            return [t.record.id, md.wall(t.record.wall), "–", "–", "–", md.plain(t.problem), "–", "–", "–"]
        svg = t.record.value("sampled_svg")
        same = t.record.value("sampled_outcome_matches")
        return [
            t.record.id,
            md.wall(t.record.wall),
            md.wall(t.plain_wall),
            _ratio(t.ratio),
            md.plain(t.record.value("sampled_samples")),
            _agreement(t, "inclusive"),
            _agreement(t, "self"),
            "yes" if same else ("**no**: see notes" if same is False else "–"),
            f"[svg]({svg.split('/')[-1]})" if isinstance(svg, str) else "–",
        ]

    @staticmethod
    def _both_measures(analysis: Analysis) -> str:
        pooled = [p for p in analysis.trust.pooled("inclusive") if not p.wrapper and p.verdict != cc.UNTIMED]
        yappi_rank = {p.key: i for i, p in enumerate(sorted(pooled, key=lambda p: p.yappi, reverse=True), 1)}
        rows = [
            [str(i), md.code(p.short), _pct(p.sampled), _pct(p.yappi), str(yappi_rank[p.key]), _ratio(p.ratio), p.verdict]
            for i, p in enumerate(pooled[:15], 1)
        ]
        return "Heaviest functions by sampled inclusive share, pooled over the cross-checked runs:\n\n" + md.table(
            ["sampled rank", "function", "sampled %", "yappi %", "yappi rank", "yappi / sampled", "verdict"],
            rows,
            [0, 2, 3, 4, 5],
        )
