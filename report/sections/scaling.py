"""How cost grows with window length: the fit, the runs above the trend, the functions that grow faster."""

from __future__ import annotations

from report import markdown as md
from report.analysis import CALL_JUMP, OUTLIER_FACTOR, Analysis, Outlier
from report.scaling import SUPERLINEAR_EXPONENT, Growth
from report.sections.parts import chart_link, growth_verdict, marginal_phrase, per


class Scaling:
    """Cost per trading day and per iteration, the straight-line fit, and what grows faster."""

    def render(self, analysis: Analysis) -> str:
        head = "## Scaling with window length"
        runs = analysis.scaling_runs
        if not runs:
            return f"{head}\n\nNo Phase 1 run has finished yet, so there is nothing to scale."
        odd = {o.run.id for o in analysis.outliers}
        baseline = analysis.baseline
        rows = [
            [
                r.id + (" **(outlier)**" if r.id in odd else ""),
                str(r.days),
                md.wall(r.wall),
                md.seconds((r.wall or 0.0) / r.days if r.days else None, 3),
                md.plain(r.value("iterations")),
                md.seconds(per(1000.0 * (r.wall or 0.0), r.value("iterations")), 2),
                f"{(r.wall or 0.0) / baseline.at(r.days):.2f}×" if baseline and baseline.at(r.days) > 0 else "–",
            ]
            for r in sorted(analysis.results.phase1_done, key=lambda r: (r.days, r.id))
        ]
        headers = ["run", "trading days", "wall s", "s per trading day", "iterations", "ms per iteration", "vs trend"]
        parts = [
            head,
            "Done Phase 1 runs only (the Phase 0 probes cover a different month and one of them downloads on purpose). "
            "“vs trend” is wall time over a robust (Theil–Sen) line through all of them: one expensive window cannot "
            f"bend that line, so a run above {OUTLIER_FACTOR}× is an outlier and stays out of the fits below.",
            md.table(headers, rows, [1, 2, 3, 4, 5, 6]),
            self._machines(analysis),
            self._fit(analysis),
            chart_link(analysis, "wall_vs_days", "wall seconds against trading days", "needs done Phase 1 runs"),
            Outliers().render(analysis),
            self._growth(analysis),
        ]
        return "\n\n".join(p for p in parts if p)

    @staticmethod
    def _machines(analysis: Analysis) -> str:
        """Runs grouped by the machine that ran them; a warning when the fits below mix machines.

        Wall time is a property of the machine as much as of the code: a fit through runs of two
        machines would read a faster CPU as a shorter window. Results before issue 14 name no host.
        """
        groups: dict[tuple[str, str], list[str]] = {}
        for r in analysis.results.phase1_done:
            key = (str(r.value("host") or "unknown host"), str(r.value("cpu_model") or "unknown CPU"))
            groups.setdefault(key, []).append(r.id)
        if len(groups) < 2:
            return "".join(f"All of them ran on {host} ({cpu})." for host, cpu in groups)
        rows = [[host, cpu, str(len(ids)), ", ".join(ids)] for (host, cpu), ids in sorted(groups.items())]
        return "\n\n".join([
            f"**Warning: these runs come from {len(groups)} machines**, so the fits below mix them and a faster "
            "machine reads as a cheaper window. Compare wall times within one host, or rerun on one "
            "(`--executor ray` records the host and CPU of every run).",
            md.table(["host", "CPU", "runs", "ids"], rows, [2]),
        ])

    @staticmethod
    def _fit(analysis: Analysis) -> str:
        fit, marginals = analysis.fit, analysis.marginals
        if fit is None:
            return "A fit needs done Phase 1 runs of at least two different lengths; all done runs so far have the same length."
        text = (
            f"Least squares over {md.plural(fit.points, 'run')}: **wall ≈ {fit.intercept:.2f} s + {fit.slope:.3f} s × "
            f"trading days** (R² = {fit.r_squared:.3f}). The intercept is the fixed cost of a backtest of any length "
            "(start-up, first data load, tearsheet and CSV output)."
        )
        every = analysis.fit_all
        if analysis.outliers and every is not None:
            text += (
                f" With the outliers kept the line would be {every.intercept:.2f} s + {every.slope:.3f} s × days "
                f"(R² = {every.r_squared:.3f})."
            )
        if marginals:
            text += " Cost of each extra trading day between window lengths: " + "; ".join(
                marginal_phrase(m) for m in marginals
            )
            text += f", so cost grows {growth_verdict(marginals)}." if len(marginals) >= 2 else "."
        return text

    def _growth(self, analysis: Analysis) -> str:
        head = "### Functions that grow faster than the window"
        method = (
            "For each function seen in at least three done Phase 1 runs (outliers excluded) over at least two window lengths, "
            "log(cumulative seconds) is fitted against log(trading days); the slope is the growth exponent "
            f"(1: linear, 2: quadratic). Listed: exponent above {SUPERLINEAR_EXPONENT}, and at least 1 % of the "
            "longest run's wall time."
        )
        runs = analysis.scaling_runs
        if len({r.days for r in runs}) < 2 or len(runs) < 3:
            return f"{head}\n\n{method} There are not enough done Phase 1 runs for that yet."
        growth = analysis.growth
        if not growth:
            return f"{head}\n\n{method} None qualifies: no function's time grows clearly faster than the window."
        longest = analysis.longest_run
        target = analysis.results.longest_planned_days
        if longest is not None and longest.days >= target:
            target = 2 * longest.days  # the longest window has run: project to twice its length
        rows = [
            [
                md.code(analysis.short_names.get(g.key, g.key)),
                f"{g.exponent:.2f}",
                f"{g.r_squared:.2f}",
                str(g.runs),
                md.func_seconds(g.longest_seconds),
                md.func_seconds(g.projected(target)),
                md.func_seconds(g.linear(target)),
            ]
            for g in growth[:15]
        ]
        headers = [
            "function",
            "exponent",
            "R²",
            "runs",
            f"s in longest run ({longest.days if longest else '?'} days)",
            f"projected s at {target} days",
            "if linear",
        ]
        return "\n\n".join([head, method, md.table(headers, rows, [1, 2, 3, 4, 5, 6]), self._meaning(analysis, growth)])

    @staticmethod
    def _meaning(analysis: Analysis, growth: list[Growth]) -> str:
        longest = analysis.longest_run
        target = analysis.results.longest_planned_days
        target_run = max(analysis.results.records, key=lambda r: r.days)
        span = f"{target} trading days ({target_run.id}, the plan's longest window)"
        worst = growth[0]
        name = md.code(analysis.short_names.get(worst.key, worst.key))
        if longest is not None and longest.days >= target:
            return (
                f"The plan's longest window, {span}, has already run: there {name} took {worst.longest_seconds:.1f} s of "
                f"{md.wall(longest.wall)} s. Growing as days^{worst.exponent:.2f}, it costs more per day the longer the "
                f"backtest: doubling the window would multiply its time by {2 ** worst.exponent:.1f}, not 2."
            )
        projected, linear = worst.projected(target), worst.linear(target)
        fit = analysis.fit
        whole = f"the straight-line fit puts the whole backtest at about {fit.at(target):.0f} s; " if fit else ""
        return (
            f"For a backtest of {span}: {whole}the power law projects {name} to {projected:.1f} s there, against "
            f"{linear:.1f} s if it grew in step with the window ({projected / linear if linear else 0:.1f}× the linear "
            "estimate), and the other functions above add their own excess (they nest, so do not sum the column). "
            "These are extrapolations beyond the longest done run; the full-range run will confirm or refute them."
        )



class Outliers:
    """Runs far above the trend, with the functions that carry the extra time."""

    def render(self, analysis: Analysis) -> str:
        head = "### Runs that cost more than their length predicts"
        if not analysis.outliers:
            return f"{head}\n\nNone: every done Phase 1 run is within {OUTLIER_FACTOR}× of the trend."
        parts = [
            head,
            "Extra seconds are this run's cumulative time minus the reference run's, scaled by iterations (the work "
            "done; a run stopped by its timeout is compared for the part it ran). "
            "A whole call chain carries the same extra time; the likeliest cause (◀) is the heaviest function called "
            f"at least {CALL_JUMP:g}× as often per iteration as in the reference, where the code path changed.",
        ]
        for o in analysis.outliers:
            parts.append(self._one(o))
        return "\n\n".join(parts)

    @staticmethod
    def _one(o: Outlier) -> str:
        if o.stopped:
            title = (
                f"**{o.run.id}** was stopped ({md.plain(o.run.value('notes'))}) after {md.wall(o.run.wall)} s and "
                f"{md.plain(o.run.value('iterations'))} iterations: at the ordinary runs' pace that is about {o.reached_days} "
                f"of its {o.run.days} trading days, which the trend does in {o.expected:.2f} s ({o.factor:.0f}× faster)."
            )
        else:
            title = (
                f"**{o.run.id}**: {md.wall(o.run.wall)} s for {o.run.days} trading days, "
                f"{o.factor:.1f}× the trend's {o.expected:.2f} s."
            )
        if o.reference is None:
            return f"{title} There is no ordinary Phase 1 run to compare it with."
        rows = [
            [md.code(e.short), md.func_seconds(e.seconds), str(e.calls), str(e.reference_calls), "◀" if e == o.culprit else ""]
            for e in o.excess
        ]
        culprit = (
            f" Likeliest cause: {md.code(o.culprit.short)}, {o.culprit.calls} calls here against "
            f"{o.culprit.reference_calls} in {o.reference.id}."
            if o.culprit
            else ""
        )
        return "\n\n".join(
            [
                f"{title} Reference: {o.reference.id} ({o.reference.days} trading days, {md.wall(o.reference.wall)} s).{culprit}",
                md.table(["function", "extra s", "calls", f"calls in {o.reference.id}", "cause"], rows, [1, 2, 3]),
            ]
        )
