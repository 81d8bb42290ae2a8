"""Where the time goes: offenders over all runs, per run, and the list of what the tables leave out."""

from __future__ import annotations

from common.offenders import WRAPPERS, offenders
from report import markdown as md
from report.analysis import Analysis
from report.resultset import RunRecord
from report.sections.parts import WRAPPERS_ANCHOR, chart_link
from report.sections.trust import TRUST_ANCHOR

_MEASURE = {"cumulative": "inclusive", "self_time": "self"}
SAMPLED_NOTE = (
    f"“sampled %” is the same share measured on an unprofiled run sampled by py-spy ([how far to trust]({TRUST_ANCHOR})); "
    "– where the run was not cross-checked."
)


def sampled_pct(analysis: Analysis, run_id: str | None, key: str, by: str) -> str:
    share = analysis.trust.sampled_share(run_id, key, _MEASURE[by])
    return "–" if share is None else f"{100 * share:.1f} %"


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
            "column does not add up to 100 %; self time does not overlap. " + SAMPLED_NOTE
        )
        tables = []
        for by, title in (("cumulative", "By cumulative time"), ("self_time", "By self time")):
            rows = [
                [
                    str(i),
                    md.code(a.short),
                    md.func_seconds(getattr(a, by)),
                    md.percent(getattr(a, by), whole),
                    sampled_pct(analysis, None, a.key, by),
                    str(a.ncall),
                    f"{a.runs}/{len(done)}",
                ]
                for i, a in enumerate(analysis.heaviest(by), 1)
            ]
            headers = ["#", "function", "seconds", "% of wall", "sampled %", "calls", "runs"]
            tables.append(f"### {title}\n\n" + md.table(headers, rows, [0, 2, 3, 4, 5]))
        chart = chart_link(analysis, "top_offenders", "top ten offenders by cumulative time", "no profiled run")
        return "\n\n".join([head, intro, *tables, chart])



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
            "out; % is of that run's wall time. " + SAMPLED_NOTE
        )
        return "\n\n".join([head, intro, *(self._run(analysis, r) for r in runs)])

    @staticmethod
    def _run(analysis: Analysis, run: RunRecord) -> str:
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
        svg = run.value("sampled_svg")
        if isinstance(svg, str):
            name = svg.split("/")[-1]
            title += f" Flame graph of its unprofiled pass: [{name}]({name})."
        tables = []
        for by, name in (("cumulative", "cumulative s"), ("self_time", "self s")):
            rows = [
                [str(i), md.code(f.short), md.func_seconds(getattr(f, by)), md.percent(getattr(f, by), wall),
                 sampled_pct(analysis, run.id, f.key, by), str(f.ncall)]
                for i, f in enumerate(offenders(run.funcs or [], by, 10), 1)
            ]
            tables.append(md.table(["#", "function", name, "% of wall", "sampled %", "calls"], rows, [0, 2, 3, 4, 5]))
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
