"""The opening paragraph of REPORT.md: what a reader needs before any table."""

from __future__ import annotations

from typing import Any

from common.crosscheck import AGREES, COMPARED
from report import markdown as md
from report.analysis import Analysis
from report.sections.cautions import CAUTIONS_ANCHOR, cautions
from report.sections.parts import OUTLIERS_ANCHOR, WRAPPERS_ANCHOR, growth_verdict, marginal_phrase, probes, signed
from report.sections.trust import TRUST_ANCHOR


class Summary:
    """The opening paragraph: what a reader needs before any table."""

    def render(self, analysis: Analysis) -> str:
        paragraphs = [
            f"{self._counts(analysis)} {self._phase0(analysis)}",
            self._where(analysis),
            self._trust(analysis),
            self._outliers(analysis),
            self._scaling(analysis),
        ]
        return "\n\n".join(p for p in paragraphs if p)

    @staticmethod
    def _counts(analysis: Analysis) -> str:
        results = analysis.results
        counts: dict[str, int] = {}
        for record in results.records:
            counts[record.status] = counts.get(record.status, 0) + 1
        parts = [f"{counts[s]} {s}" for s in ("done", "error", "running", "pending") if counts.get(s)]
        if counts.get("done") == len(results.records):
            many = len(results.records) > 1
            text = f"All {len(results.records)} planned runs are done." if many else "The one planned run is done."
        else:
            text = f"The plan has {md.plural(len(results.records), 'run')}: {md.listing(parts) or 'none yet'}."
        unusable = [r.id for r in results.records if r.status == "done" and not r.done]
        if unusable:
            verb = "is" if len(unusable) == 1 else "are"
            text += f" {md.listing(unusable)} finished without a usable profile and {verb} left out."
        if results.done:
            text += (
                f" The {md.plural(len(results.done), 'profiled run')} took {analysis.total_wall:.1f} s of wall time together."
            )
        careful = [r.id for r in results.records if cautions(r)]
        if careful:
            which = ("every run" if len(careful) == len(results.records) > 1
                     else md.listing(careful) if len(careful) <= 4 else md.plural(len(careful), "run"))
            text += (f" Read {which} with care (busy machine, iterations far above the sleeptime, or "
                     f"stopped early: [why]({CAUTIONS_ANCHOR})).")
        return text

    @staticmethod
    def _phase0(analysis: Analysis) -> str:
        summary = analysis.results.plan.get("phase0")
        if isinstance(summary, dict) and summary.get("cold_wall_seconds") is not None:
            band = summary.get("noise_band_seconds")
            noise = f"noise band {md.wall(band)} s" if band is not None else "noise not measured"
            return (
                f"In Phase 0 the cold-cache probe took {md.wall(summary.get('cold_wall_seconds'))} s and the warm one "
                f"{md.wall(summary.get('warm_wall_seconds'))} s (medians of {summary.get('repeats', 1)} interleaved rounds; "
                f"warm − cold = {signed(summary.get('delta_wall_seconds'))} s, {signed(summary.get('delta_percent'), 1)} %, "
                f"{noise}): the cache effect is {summary.get('verdict', '?')}, so Phase 1 runs '{summary.get('decision', '?')}'."
            )
        cold, warm = probes(analysis)
        if cold and warm and cold.wall is not None and warm.wall is not None:
            delta = warm.wall - cold.wall
            return (
                f"In Phase 0 the cold-cache probe took {md.wall(cold.wall)} s and the warm one {md.wall(warm.wall)} s "
                f"(warm − cold = {delta:+.2f} s, {100 * delta / cold.wall:+.1f} %); the supervisor has not recorded a decision."
            )
        return "Phase 0 (the cache probe) has not run yet."

    @staticmethod
    def _where(analysis: Analysis) -> str:
        if not analysis.results.done:
            return ""
        whole = analysis.total_wall

        def named(items: list[Any], attribute: str) -> str:
            return md.listing(
                [f"{md.code(a.short)} ({getattr(a, attribute):.2f} s, {md.percent(getattr(a, attribute), whole)})" for a in items]
            )

        by_cumulative = named(analysis.heaviest("cumulative", 3), "cumulative")
        by_self = named(analysis.heaviest("self_time", 3), "self_time")
        return (
            f"Summed over those runs and leaving out [entry points and thread waits]({WRAPPERS_ANCHOR}), the heaviest "
            f"functions by cumulative time (including what they call) are {by_cumulative}; "
            f"by self time (their own code only) they are {by_self}. "
            "Percentages are of the runs' summed wall time."
        )

    @staticmethod
    def _trust(analysis: Analysis) -> str:
        """The cross-check in two sentences; the sampled ranking named when it disagrees with yappi's."""
        trust = analysis.trust
        if not trust.checked or trust.median_ratio is None:
            return ""
        plain = sum(t.plain_wall or 0.0 for t in trust.checked)
        text = (
            f"Unprofiled, the {md.plural(len(trust.checked), 'cross-checked run')} took {plain:.1f} s: yappi slowed them "
            f"a median {trust.median_ratio:.2f}× ([how far to trust these numbers]({TRUST_ANCHOR}))."
        )
        pooled = [p for p in trust.pooled("inclusive") if not p.wrapper and p.verdict in COMPARED]
        by_sampled = pooled[:3]
        by_yappi = sorted(pooled, key=lambda p: p.yappi, reverse=True)[:3]
        if [p.key for p in by_sampled] != [p.key for p in by_yappi] or any(p.verdict != AGREES for p in by_sampled):
            named = md.listing(
                [f"{md.code(p.short)} ({100 * p.sampled:.1f} % sampled, {100 * p.yappi:.1f} % under yappi)" for p in by_sampled]
            )
            text += f" The two measures disagree; by the sampled share the heaviest functions are {named}."
        return text

    @staticmethod
    def _outliers(analysis: Analysis) -> str:
        outliers = analysis.outliers
        if not outliers:
            return ""
        items = []
        for o in outliers:
            if o.stopped:
                item = (
                    f"{o.run.id} was stopped ({md.plain(o.run.value('notes'))}) after reaching about {o.reached_days} of its "
                    f"{o.run.days} trading days, {o.factor:.0f}× slower than the trend"
                )
            else:
                item = f"{o.run.id} took {md.wall(o.run.wall)} s, {o.factor:.1f}× what its {o.run.days} trading days predict"
            if o.culprit and o.reference:
                item += (
                    f"; likeliest cause {md.code(o.culprit.short)}: {o.culprit.seconds:.1f} s extra, called "
                    f"{o.culprit.calls} times against {o.culprit.reference_calls} in {o.reference.id}"
                )
            items.append(f"- {item}.")
        one = len(outliers) == 1
        return (
            f"**{md.plural(len(outliers), 'run')} cost far more than {'its' if one else 'their'} length predicts** and "
            f"{'is' if one else 'are'} kept out of the scaling fits ([details]({OUTLIERS_ANCHOR})):\n\n" + "\n".join(items)
        )

    @staticmethod
    def _scaling(analysis: Analysis) -> str:
        fit, marginals = analysis.fit, analysis.marginals
        if fit is None:
            return "Window-length scaling needs done Phase 1 runs of at least two different lengths; there are none yet."
        text = (
            f"Phase 1 wall time fits {fit.intercept:.2f} s + {fit.slope:.3f} s per trading day (R² = {fit.r_squared:.3f}, "
            f"{md.plural(fit.points, 'run')}{', outliers excluded' if analysis.outliers else ''})"
        )
        if len(marginals) >= 2:
            text += (
                f"; each extra trading day cost {marginal_phrase(marginals[0])} and {marginal_phrase(marginals[-1])}, "
                f"so cost grows {growth_verdict(marginals)}."
            )
        else:
            text += "."
        growth = analysis.growth
        if growth:
            worst = growth[0]
            target = analysis.results.longest_planned_days
            text += (
                f" {md.plural(len(growth), 'function')} {'grows' if len(growth) == 1 else 'grow'} faster than the window; "
                f"the one that matters most at the plan's longest window ({target} trading days) is "
                f"{md.code(analysis.short_names.get(worst.key, worst.key))}: time ∝ days^{worst.exponent:.2f}, "
                f"{worst.longest_seconds:.2f} s in the {worst.longest_days}-day run"
            )
            if worst.longest_days < target:
                projected, linear = worst.projected(target), worst.linear(target)
                text += f", projected {projected:.1f} s at {target} days against {linear:.1f} s if linear"
            text += "."
        return text
