"""Runs whose numbers need care: taken on a busy machine, iterating far above their sleeptime, or stopped early."""

from __future__ import annotations

from report import markdown as md
from report.analysis import Analysis
from report.resultset import RunRecord

CAUTIONS_ANCHOR = "#runs-to-read-with-care"


def cautions(record: RunRecord) -> list[str]:
    """One sentence per reason this run's numbers are not what they seem."""
    found: list[str] = []
    machine = record.value("machine") or {}
    if machine.get("busy"):
        load = f"load {md.plain(machine.get('load_before'))} before, {md.plain(machine.get('load_after'))} after"
        found.append(
            f"machine busy: other processes used {md.percent(machine.get('other_cpu_share') or 0.0, 1.0)} of its "
            f"{machine.get('cpu_count')} CPUs during the run ({load}); wall times taken under load are inflated "
            "(about 2x measured on a 2-core machine at load 3-4)"
        )
    expected, iterations = record.value("iterations_expected_at_most"), record.value("iterations")
    if isinstance(expected, int) and isinstance(iterations, int) and "far above the at most" in str(record.value("notes")):
        found.append(
            f"{iterations} iterations where sleeptime {record.value('sleeptime')!r} allows at most {expected}: LumiBot "
            "iterates on every bar when the data is finer than the sleeptime (give the data source daily bars)"
        )
    if record.value("partial"):
        found.append(
            "partial profile: yappi was stopped mid-run, so what was still running then (`run_backtest`, a thread's "
            "loop, the call that hung) shows 0 s or is absent"
        )
    return found


class Cautions:
    """Per run, every reason to distrust a number before reading the tables below."""

    def render(self, analysis: Analysis) -> str:
        head = "## Runs to read with care"
        items = [(r, cautions(r)) for r in analysis.results.records]
        items = [(r, found) for r, found in items if found]
        if not items:
            return (f"{head}\n\nNone: no run was taken on a busy machine, iterated far more often than its sleeptime "
                    "allows, or was stopped before the end.")
        lines = [f"- **{r.id}**: {'; '.join(found)}." for r, found in items]
        return "\n\n".join([head, "\n".join(lines)])
