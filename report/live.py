"""The report rewritten after every finished run, so the first findings are on disk long before the plan ends.

The supervisor never imports the report (``tests/test_layout.py``): the CLI hands this function
to the session as a callback. It must stay cheap (``make bench``: ``bench/report_rewrite.py``),
so it renders only the findings, the owner table and the runs (the summary, offender tables,
scaling and cross-check tables pool every profile of the plan: seconds per rewrite on a long plan),
leaves the charts for the end, reuses the per-run files it already parsed
(:mod:`report.filecache`) and never raises: a report that cannot be written costs the run nothing
but a console line. ``make profile`` writes the full report when the plan ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from supervisor.plan import PlanStore


def rewrite(store: PlanStore) -> str:
    """Rewrite REPORT.md without charts; one console line saying where, how long it took and what it found."""
    t0 = time.perf_counter()
    try:
        from report.findings import findings
        from report.write import write

        path, analysis = write(store, live=True)
        found, _ = findings(analysis)
    except Exception as exc:  # the report is a by-product: it must never stop the queue
        return f"report     not rewritten: {type(exc).__name__}: {exc}".splitlines()[0]
    first = f"; first: {found[0].subject}" if found else ""
    return (f"report     {path} rewritten in {time.perf_counter() - t0:.2f} s "
            f"({len(analysis.results.done)} runs, {len(found)} findings{first})")


def rewriter(store: PlanStore) -> Callable[[], str]:
    return lambda: rewrite(store)
