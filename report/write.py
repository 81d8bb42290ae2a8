"""``python -m supervisor report``: REPORT.md and its charts, or COMPARE.md for two result sets.

This module only orchestrates: the numbers come from :mod:`report.analysis`, the text
from the renderers in :mod:`report.sections` (one module per subject), the PNGs from :mod:`report.charts`
(which alone imports matplotlib, and only when it draws).
"""

from __future__ import annotations

from pathlib import Path

from common.atomicio import atomic_write_bytes
from report import sections
from report.analysis import Analysis
from report.charts import Bar, Chart, TopOffendersChart, WallPerRunChart, WallVsDaysChart
from report.compare import Comparison
from report.resultset import load
from supervisor.plan import PlanStore

REPORT_NAME = "REPORT.md"
COMPARE_NAME = "COMPARE.md"
CHART_NAMES = {
    "wall_per_run": "report-wall-per-run.png",
    "wall_vs_days": "report-wall-vs-days.png",
    "top_offenders": "report-top-offenders.png",
}


def _charts(analysis: Analysis, folder: Path) -> dict[str, str]:
    """Draw every chart that has data; the result maps chart name -> file name beside the report."""
    done = analysis.results.done
    odd = {o.run.id for o in analysis.outliers}
    charts: dict[str, Chart] = {
        "wall_per_run": WallPerRunChart([Bar(r.id, r.wall or 0.0, "outlier" if r.id in odd else r.phase) for r in done]),
        "wall_vs_days": WallVsDaysChart(
            [(r.days, r.wall or 0.0, r.id) for r in analysis.results.phase1_done],
            analysis.fit,
            sorted(odd),
        ),
        "top_offenders": TopOffendersChart(
            [(a.short, a.cumulative) for a in analysis.heaviest("cumulative", 10)],
            f"Top ten by cumulative wall time, summed over {len(done)} done runs",
        ),
    }
    drawn: dict[str, str] = {}
    for name, chart in charts.items():
        path = folder / CHART_NAMES[name]
        if chart.render(path):
            drawn[name] = path.name
        else:
            path.unlink(missing_ok=True)  # a stale chart from an earlier report would contradict this one
    return drawn


def render_report(analysis: Analysis) -> str:
    plan_name = analysis.results.store.path.name
    strategy = analysis.results.plan["meta"].get("strategy", "?")
    head = f"# Where the wall time goes: yappi profile of `{strategy}`\n\n_From `{plan_name}`; wall-clock timing (yappi WALL)._"
    body = [head, sections.Summary().render(analysis), *(section().render(analysis) for section in sections.SECTIONS)]
    return "\n\n".join(body) + "\n"


LIVE_SECTIONS = (sections.FindingsSection, sections.OwnersSection, sections.MemorySection, sections.RunsTable,
                 sections.MissingRuns)
"""What the rewrite after each run renders: the sections whose cost does not grow with the plan's profiles."""


def render_live(analysis: Analysis) -> str:
    """The report while the plan runs: findings, owners, runs; the rest when the plan ends."""
    plan_name = analysis.results.store.path.name
    strategy = analysis.results.plan["meta"].get("strategy", "?")
    records = analysis.results.records
    head = (
        f"# Where the wall time goes: yappi profile of `{strategy}`\n\n_From `{plan_name}`; wall-clock timing (yappi WALL)._"
        f"\n\n**Rewritten after each finished run** ({len(analysis.results.done)} of {len(records)} runs profiled so far): "
        "the findings, whose time it is and the runs. `lumiprof report` (or `make report`) adds the summary, offender "
        "tables, scaling, the cross-check's tables and the charts, at any time; `make profile` does it when the plan ends."
    )
    return "\n\n".join([head, *(section().render(analysis) for section in LIVE_SECTIONS)]) + "\n"


def write_report(store: PlanStore) -> str:
    """Write ``<output_dir>/REPORT.md`` and its PNG charts; return a one-line message with the path."""
    path, analysis = write(store)
    results = analysis.results
    return f"report: {path} ({len(results.done)} of {len(results.records)} runs profiled, {len(analysis.charts)} charts)"


def write(store: PlanStore, *, live: bool = False) -> tuple[Path, Analysis]:
    """Write REPORT.md and its PNG charts, or (``live``, after each run) only the sections that stay cheap
    as the plan grows, leaving the charts as they are; return its path and the analysis it was built from."""
    results = load(store)
    folder = results.output_dir
    folder.mkdir(parents=True, exist_ok=True)
    analysis = Analysis(results, charts_deferred=live)
    if not live:
        analysis.charts = _charts(analysis, folder)
    path = folder / REPORT_NAME
    atomic_write_bytes(path, (render_live(analysis) if live else render_report(analysis)).encode())
    return path, analysis


def write_comparison(store: PlanStore, other: PlanStore) -> str:
    """Write ``<output_dir>/COMPARE.md`` of ``store``: before = ``other``, after = ``store``."""
    after = load(store)
    comparison = Comparison(load(other), after)
    folder = after.output_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / COMPARE_NAME
    atomic_write_bytes(path, comparison.render().encode())
    return f"comparison: {path} ({len(comparison.common)} runs in both; before = {other.path}, after = {store.path})"
