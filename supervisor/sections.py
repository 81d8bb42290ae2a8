"""The sections of REPORT.md, one small renderer class each with one ``render(analysis)``.

Every sentence that states a finding is built from the numbers, and every section says in
one sentence when it has nothing to show, so a half-finished plan still reads cleanly.
"""

from __future__ import annotations

from typing import Any

from supervisor import markdown as md
from supervisor.analysis import CALL_JUMP, OUTLIER_FACTOR, Analysis, Outlier
from supervisor.offenders import WRAPPERS, offenders
from supervisor.profiles import ThreadRow, module_tail
from supervisor.resultset import RunRecord
from supervisor.scaling import SUPERLINEAR_EXPONENT, Growth, Marginal

THREAD_FOLD_SHARE = 0.01
"""Threads under 1 % of the run's wall time (pyarrow's short-lived converters) are folded
into one line: a dozen 5 ms rows would bury the three threads that matter."""

WRAPPERS_ANCHOR = "#left-out-of-the-offender-tables"
OUTLIERS_ANCHOR = "#runs-that-cost-more-than-their-length-predicts"


def _chart(analysis: Analysis, name: str, alt: str, missing: str) -> str:
    filename = analysis.charts.get(name)
    return f"![{alt}]({filename})" if filename else f"_No chart: {missing}._"


def _growth_verdict(marginals: list[Marginal]) -> str:
    first, last = marginals[0].seconds_per_day, marginals[-1].seconds_per_day
    if first > 0 and last > SUPERLINEAR_EXPONENT * first:
        return "faster than linearly"
    if first > 0 and last * SUPERLINEAR_EXPONENT < first:
        return "slower than linearly (a fixed start-up cost weighs on the short windows)"
    return "about linearly"


def _marginal_phrase(m: Marginal) -> str:
    return f"{m.seconds_per_day:.3f} s between {m.from_days} and {m.to_days} trading days"


class Summary:
    """The opening paragraph: what a reader needs before any table."""

    def render(self, analysis: Analysis) -> str:
        paragraphs = [
            f"{self._counts(analysis)} {self._phase0(analysis)}",
            self._where(analysis),
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
            text = f"All {md.plural(len(results.records), 'planned run')} are done."
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
        return text

    @staticmethod
    def _phase0(analysis: Analysis) -> str:
        summary = analysis.results.plan.get("phase0")
        if isinstance(summary, dict) and summary.get("cold_wall_seconds") is not None:
            return (
                f"In Phase 0 the cold-cache probe took {md.wall(summary.get('cold_wall_seconds'))} s and the warm one "
                f"{md.wall(summary.get('warm_wall_seconds'))} s (warm − cold = {_signed(summary.get('delta_wall_seconds'))} s, "
                f"{_signed(summary.get('delta_percent'), 1)} %), so Phase 1 runs '{summary.get('decision', '?')}'."
            )
        cold, warm = _probes(analysis)
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
                f"; each extra trading day cost {_marginal_phrase(marginals[0])} and {_marginal_phrase(marginals[-1])}, "
                f"so cost grows {_growth_verdict(marginals)}."
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


def _signed(value: Any, places: int = 2) -> str:
    return f"{value:+.{places}f}" if isinstance(value, int | float) else "–"


def _probes(analysis: Analysis) -> tuple[RunRecord | None, RunRecord | None]:
    found = {r.label: r for r in analysis.results.records if r.phase == "phase0"}
    return found.get("cache_probe_cold"), found.get("cache_probe_warm")


class RunsTable:
    """Every run in plan order with its size, cost and how it was run."""

    def render(self, analysis: Analysis) -> str:
        rows = []
        for r in analysis.results.records:
            rows.append(
                [
                    r.id,
                    r.label,
                    r.run["start"],
                    r.run["end"],
                    str(r.days),
                    md.plain(r.value("iterations")),
                    md.wall(r.wall),
                    md.wall(r.value("cpu_seconds")),
                    r.status + (" (partial)" if r.value("partial") else ""),
                    md.plain(r.value("cache_state")),
                    r.mode,
                ]
            )
        headers = ["id", "label", "start", "end", "trading days", "iterations", "wall s", "cpu s", "status", "cache", "mode"]
        return "\n\n".join(
            [
                "## Runs",
                "Trading days count the Monday–Friday dates the backtest covers: from start up to the day before end, "
                "since LumiBot stops at the midnight that starts the end date (exchange holidays are not removed). "
                "Wall and CPU seconds cover the backtest call only, as timed inside the worker; cache is what the data "
                "gateway saw (cold: everything downloaded, warm: nothing downloaded); mode is how Phase 1 ran "
                "the window (single, preload or two_pass).",
                md.table(headers, rows, right=[4, 5, 6, 7]),
                _chart(analysis, "wall_per_run", "wall time per run", "no run has finished yet"),
            ]
        )


class MissingRuns:
    """Runs that are not in the totals, and why, so a reader does not mistake a hole for a result."""

    def render(self, analysis: Analysis) -> str:
        missing = analysis.results.not_done
        if not missing:
            return "## Missing or failed runs\n\nNone: every planned run finished and was profiled."
        rows = [[r.id, r.label, r.status, self._why(r)] for r in missing]
        return "\n\n".join(
            [
                "## Missing or failed runs",
                f"{md.plural(len(missing), 'run')} {'is' if len(missing) == 1 else 'are'} not in the totals, fits or charts:",
                md.table(["id", "label", "status", "notes"], rows),
            ]
        )

    @staticmethod
    def _why(record: RunRecord) -> str:
        reasons = [str(record.value("notes") or ""), *record.problems]
        if record.value("partial"):
            reasons.append("stopped before the end; what did run is profiled under Top offenders per run")
        if record.status == "pending":
            reasons.append(str(record.run.get("note") or "not run yet"))
        elif record.status == "running":
            reasons.append(f"running since {record.run.get('started_utc', '?')}")
        elif record.result is None:
            reasons.append("no result recorded")
        return "; ".join(r for r in reasons if r) or "–"


class Phase0Section:
    """The cache probe: cold against warm, and what the supervisor decided for Phase 1."""

    def render(self, analysis: Analysis) -> str:
        summary = analysis.results.plan.get("phase0")
        head = "## Phase 0: cache probe"
        if not isinstance(summary, dict):
            cold, warm = _probes(analysis)
            if cold and warm and cold.wall is not None and warm.wall is not None:
                return (
                    f"{head}\n\nBoth probes ran (cold {md.wall(cold.wall)} s, warm {md.wall(warm.wall)} s, "
                    f"warm − cold {warm.wall - cold.wall:+.2f} s) but the supervisor has not written its Phase 0 summary, "
                    "so there is no decision on record."
                )
            return f"{head}\n\nPhase 0 has not run: there is no cold/warm comparison and no Phase 1 decision yet."
        numbers = md.table(
            ["", "run", "wall s"],
            [
                ["cold", md.plain(summary.get("cold_id")), md.wall(summary.get("cold_wall_seconds"))],
                ["warm", md.plain(summary.get("warm_id")), md.wall(summary.get("warm_wall_seconds"))],
                [
                    "warm − cold",
                    "",
                    f"{_signed(summary.get('delta_wall_seconds'))} ({_signed(summary.get('delta_percent'), 1)} %)",
                ],
            ],
            right=[2],
        )
        parts = [
            head,
            numbers,
            f"**Decision: {summary.get('decision', '?')}.** {str(summary.get('reason') or '').rstrip('.')}.",
        ]
        diffs = summary.get("function_diff") or []
        if diffs:
            parts.append("Functions whose cumulative time changed most from cold to warm (negative: the warm cache saved it):")
            parts.append(
                md.table(
                    ["function", "cold s", "warm s", "warm − cold s"],
                    [
                        [
                            md.code(str(d.get("function"))),
                            md.func_seconds(d.get("cold_seconds")),
                            md.func_seconds(d.get("warm_seconds")),
                            _signed(d.get("delta_seconds"), 3),
                        ]
                        for d in diffs[:10]
                    ],
                    right=[1, 2, 3],
                )
            )
        return "\n\n".join(parts)


class AcrossRuns:
    """Offenders summed over every done run: the functions that cost the most overall."""

    def render(self, analysis: Analysis) -> str:
        head = "## Where the time goes, all done runs together"
        done = analysis.results.done
        if not done:
            return f"{head}\n\nNo run has finished with a profile yet."
        whole = analysis.total_wall
        intro = (
            f"Seconds are summed over the {md.plural(len(done), 'done run')} ({whole:.1f} s of wall time); "
            f"“runs” is how many of them called the function. [Entry points and thread waits]({WRAPPERS_ANCHOR}) are "
            "left out. Cumulative time includes everything a function called, so nested functions overlap and the "
            "column does not add up to 100 %; self time does not overlap."
        )
        tables = []
        for by, title in (("cumulative", "By cumulative time"), ("self_time", "By self time")):
            rows = [
                [
                    str(i),
                    md.code(a.short),
                    md.func_seconds(getattr(a, by)),
                    md.percent(getattr(a, by), whole),
                    str(a.ncall),
                    f"{a.runs}/{len(done)}",
                ]
                for i, a in enumerate(analysis.heaviest(by), 1)
            ]
            headers = ["#", "function", "seconds", "% of wall", "calls", "runs"]
            tables.append(f"### {title}\n\n" + md.table(headers, rows, [0, 2, 3, 4]))
        chart = _chart(analysis, "top_offenders", "top ten offenders by cumulative time", "no profiled run")
        return "\n\n".join([head, intro, *tables, chart])


class Threads:
    """Wall time per thread per run, with the warning that the threads overlap in time."""

    def render(self, analysis: Analysis) -> str:
        head = "## Wall time per thread"
        runs = [r for r in analysis.results.done if r.threads]
        if not runs:
            return f"{head}\n\nNo done run has a thread profile."
        rows: list[list[str]] = []
        for run in runs:
            rows.extend(self._rows(run))
        return "\n\n".join(
            [
                head,
                "Thread times overlap and must not be summed: the main thread sits in `Thread.join` for as long as the "
                "StrategyExecutor thread works, and LumiBot's helper threads live (mostly waiting) for the whole "
                "backtest, so each of them shows close to the run's full wall time. The StrategyExecutor line is the "
                "backtest loop itself; the main thread's own work is before the join and after it (tearsheet and "
                f"CSV output). Threads under {THREAD_FOLD_SHARE:.0%} of the run's wall time are folded into one line.",
                md.table(["run", "thread", "wall s", "% of run wall", "top function by self time", "self s"], rows, [2, 3, 5]),
            ]
        )

    @staticmethod
    def _rows(run: RunRecord) -> list[list[str]]:
        wall = run.wall or 0.0
        threads = sorted(run.threads or [], key=lambda t: t.wall, reverse=True)
        big = [t for t in threads if t.wall >= THREAD_FOLD_SHARE * wall]
        small = [t for t in threads if t.wall < THREAD_FOLD_SHARE * wall]
        rows = [
            [
                run.id,
                f"{t.name} (#{t.ident})",
                md.wall(t.wall),
                md.percent(t.wall, wall),
                _thread_top(t),
                md.func_seconds(t.top_self_seconds),
            ]
            for t in big
        ]
        if small:
            total = sum(t.wall for t in small)
            rows.append([run.id, f"{len(small)} short-lived threads", md.wall(total), md.percent(total, wall), "", ""])
        return rows


def _thread_top(thread: ThreadRow) -> str:
    """``/path/mod.py:315:Class.fn`` as written by the worker -> ``mod.py:315 Class.fn``."""
    if not thread.top_self_function:
        return "–"
    module, _, rest = thread.top_self_function.rpartition(":")
    module, _, line = module.rpartition(":")
    return md.code(f"{module_tail(module).rsplit('/', 1)[-1]}:{line} {rest}") if module else md.code(thread.top_self_function)


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
                md.seconds(_per(1000.0 * (r.wall or 0.0), r.value("iterations")), 2),
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
            self._fit(analysis),
            _chart(analysis, "wall_vs_days", "wall seconds against trading days", "needs done Phase 1 runs"),
            Outliers().render(analysis),
            self._growth(analysis),
        ]
        return "\n\n".join(p for p in parts if p)

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
                _marginal_phrase(m) for m in marginals
            )
            text += f", so cost grows {_growth_verdict(marginals)}." if len(marginals) >= 2 else "."
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


def _per(total: float | None, count: Any) -> float | None:
    if total is None or not isinstance(count, int) or count <= 0:
        return None
    return total / count


class Invariants:
    """Runs that were not run like the others: invariants, parameters, code or library versions."""

    def render(self, analysis: Analysis) -> str:
        head = "## Invariants and reproducibility"
        records = [r for r in analysis.results.records if r.result is not None]
        if not records:
            return f"{head}\n\nNo run has a result yet, so there is nothing to check."
        asked = analysis.results.plan["invariants"]
        rev = analysis.reference("git_rev")
        dirty = analysis.reference("git_dirty")
        params = analysis.reference("parameters_hash")
        versions = dict(analysis.reference("versions") or ())
        revision = (md.code(str(rev)[:12]) if rev else "–") + (" (uncommitted changes)" if dirty else "")
        reference = (
            f"The plan's invariants are {', '.join(f'{k} = {_json(v)}' for k, v in asked.items())}. The reference "
            f"values (the most common across runs) are git revision {revision}, "
            f"parameters hash {md.code(str(params)) if params else '–'} and "
            f"{', '.join(f'{k} {v}' for k, v in versions.items()) or 'no recorded versions'}."
        )
        rows = []
        for record in records:
            flags = self._flags(record, asked, rev, dirty, params, versions)
            if flags:
                rows.append([record.id, record.status, "; ".join(flags)])
        if not rows:
            return f"{head}\n\n{reference} Every run with a result matches: invariants held, nothing differs from the majority."
        return "\n\n".join(
            [head, reference, f"{md.plural(len(rows), 'run')} differ:", md.table(["run", "status", "what differs"], rows)]
        )

    @staticmethod
    def _flags(
        record: RunRecord,
        asked: dict[str, Any],
        rev: Any,
        dirty: Any,
        params: Any,
        versions: dict[str, Any],
    ) -> list[str]:
        flags: list[str] = []
        in_effect = record.value("invariants_in_effect") or {}
        off = [f"{k} = {_json(in_effect.get(k))} (plan: {_json(v)})" for k, v in asked.items() if in_effect.get(k) != v]
        # A worker that died before the backtest finished observed nothing; it is listed as failed already.
        observed = bool(in_effect) or record.status == "done"
        if observed and (record.value("invariants_hold") is False or off):
            flags.append("invariants not in effect: " + (", ".join(off) if off else "not observed"))
        if record.value("parameters_hash") not in (None, params):
            flags.append(f"parameters hash {record.value('parameters_hash')}")
        run_rev, run_dirty = record.value("git_rev"), record.value("git_dirty")
        if (run_rev is not None and run_rev != rev) or (run_dirty is not None and run_dirty != dirty):
            flags.append(f"git {str(run_rev)[:12]}{' dirty' if run_dirty else ''}")
        own = record.value("versions") or {}
        changed = [f"{k} {own.get(k, '–')}" for k in sorted(set(versions) | set(own)) if own and own.get(k) != versions.get(k)]
        if changed:
            flags.append("versions: " + ", ".join(changed))
        return flags


def _json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


class PerRun:
    """Each profiled run's own heaviest functions, so one odd window is not hidden by the totals.

    Runs stopped by a timeout are included: where a run spent its time until it was stopped
    is often the most useful profile of all.
    """

    def render(self, analysis: Analysis) -> str:
        head = "## Top offenders per run"
        stopped = {r.id for r in analysis.stopped_runs}
        runs = [r for r in analysis.results.records if r.done or r.id in stopped]
        if not runs:
            return f"{head}\n\nNo run has finished with a profile yet."
        intro = (
            f"Top ten per run by cumulative and by self time, [entry points and thread waits]({WRAPPERS_ANCHOR}) left "
            "out; % is of that run's wall time."
        )
        return "\n\n".join([head, intro, *(self._run(r) for r in runs)])

    @staticmethod
    def _run(run: RunRecord) -> str:
        wall = run.wall or 0.0
        title = (
            f"### {run.id}\n\n{run.label}, {run.run['start']} → {run.run['end']}, {run.days} trading days, "
            f"{md.wall(run.wall)} s wall, {md.plain(run.value('iterations'))} iterations."
        )
        if not run.done:
            title += (
                f" **Stopped before the end** ({md.plain(run.value('notes'))}): this profile covers the part that ran, "
                "and the run is left out of totals and fits."
            )
        tables = []
        for by, name in (("cumulative", "cumulative s"), ("self_time", "self s")):
            rows = [
                [str(i), md.code(f.short), md.func_seconds(getattr(f, by)), md.percent(getattr(f, by), wall), str(f.ncall)]
                for i, f in enumerate(offenders(run.funcs or [], by, 10), 1)
            ]
            tables.append(md.table(["#", "function", name, "% of wall", "calls"], rows, [0, 2, 3, 4]))
        return "\n\n".join([title, "By cumulative time:", tables[0], "By self time:", tables[1]])


class LeftOut:
    """The exclusion list itself, so every omission in the offender tables can be checked."""

    def render(self, analysis: Analysis) -> str:
        rows = [[md.code(w.module), ", ".join(md.code(n) for n in w.names), w.why] for w in WRAPPERS]
        return "\n\n".join(
            [
                "## Left out of the offender tables",
                "These functions contain the whole backtest or only wait for another thread. They top every "
                "cumulative ranking at close to 100 % of the run and say nothing about where the time goes, so the "
                "offender tables, totals, chart and growth fits leave them out. They stay in the CSVs.",
                md.table(["module", "functions", "why"], rows),
            ]
        )
