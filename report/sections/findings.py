"""``## Findings`` (what to fix first) and ``## Whose time is it`` (owner classes per window)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.owners import BOUND_SHARE, Owner
from common.profiles import module_tail
from report import markdown as md
from report.analysis import Analysis
from report.findings import Finding, Step, findings

FINDINGS_ANCHOR = "#findings"
OWNERS_ANCHOR = "#whose-time-is-it-per-window"
_OWNER_COLUMNS = (Owner.STRATEGY, Owner.LUMIBOT, Owner.DATA, Owner.IO, Owner.OUTPUT, Owner.PROFILER, Owner.OTHER)


def _amount(finding: Finding) -> str:
    if finding.unit == "s":
        return f"{finding.amount:.2f} s"
    return f"{finding.amount / 1024 / 1024:,.1f} MB"


def _step(step: Step) -> str:
    where = f"{Path(step.file).name}:{step.line if step.line is not None else step.first_line}"
    if step.calls is None and step.per_iteration is None and step.line is not None:
        return f"`{step.function}` ({where})"  # a memory path: memray counts no calls
    calls = "–" if step.calls is None else f"{step.calls:,}"
    per = "" if step.per_iteration is None else f", {md.rate(step.per_iteration)}/iteration"
    return f"`{step.function}` ({where}; {calls} calls{per})"


def _path(finding: Finding) -> str:
    if not finding.path:
        return "no call path recorded"
    steps = finding.path
    shown = steps if len(steps) <= 8 else [*steps[:2], None, *steps[-5:]]
    text = " → ".join("…" if s is None else _step(s) for s in shown)
    start = "from the strategy's `on_trading_iteration`" if finding.anchor == "on_trading_iteration" else f"from {finding.anchor}"
    return f"{start}: {text}"


def _owner_phrase(finding: Finding) -> str:
    whose = {str(Owner.STRATEGY): "the user's strategy", str(Owner.LUMIBOT): "LumiBot",
             str(Owner.OUTPUT): "LumiBot's logging and output"}.get(finding.owner, finding.owner)
    if not finding.spent_in:
        return f"{whose} (owner class `{finding.owner}`)"
    spent = ", ".join(f"{o} {100 * s:.0f} %" for o, s in finding.spent_in.items() if s >= 0.01)
    where = "its time is spent in" if finding.unit == "s" else "its bytes were allocated by"
    return f"{whose} (owner class `{finding.owner}`); {where}: {spent}"


def _where(finding: Finding, what: str) -> str:
    hot = ", ".join(f"line {h.line} ({100 * h.share:.1f} %, {_figure(finding, h.amount)})" for h in finding.hot_lines)
    where = f"{module_tail(finding.file or '')}:{finding.first_line}"
    return f"- **Where**: `{where}`; {what}: {hot or 'not measured (needs the cross-check)'}"


def _figure(finding: Finding, amount: float) -> str:
    return f"{amount:.2f} s" if finding.unit == "s" else f"{amount / 1024 / 1024:,.1f} MB"


def render_finding(number: int, finding: Finding) -> str:
    beside = ""
    if finding.kind == "time" and finding.measured == "sampled":
        yappi = "–" if finding.profiled_amount is None else f"{finding.profiled_amount:.2f} s"
        beside = f", yappi {yappi}"
    if finding.kind == "memory":
        retained = "–" if finding.retained is None else f"{finding.retained / 1024 / 1024:,.1f} MB"
        leak = ", **leak-shaped**" if finding.leak_shaped else ""
        head = (f"### {number}. `{finding.subject}`: {_amount(finding)} at the peak heap ({finding.measured}), "
                f"{retained} retained{leak}")
    else:
        share = "" if finding.share is None else f" ({100 * finding.share:.1f} % of the wall)"
        measured = {"sampled": "unprofiled", "profiled": "profiled, yappi"}.get(finding.measured, finding.measured)
        head = f"### {number}. `{finding.subject}`: {_amount(finding)} {measured}{share}{beside}"
    lines = [head, "", _where(finding, "hottest lines" if finding.unit == "s" else "heaviest lines at the peak")]
    lines.append(f"- **Reached** {_path(finding)}")
    lines.append(f"- **Whose code**: {_owner_phrase(finding)}")
    if finding.kind == "memory":
        lines.append("- **Per window** (bytes at the peak): "
                     + ", ".join(f"{w.run_id} {w.amount / 1024 / 1024:,.1f} MB" for w in finding.windows))
    lines.append(f"- **Why it is a finding**: {'; '.join(finding.evidence_for) or '–'}")
    lines.append(f"- **Against it**: {'; '.join(finding.evidence_against) or 'nothing found'}")
    if finding.look_next:
        lines.append(f"- **Look next**: {'; '.join(finding.look_next)}")
    return "\n".join(lines)


class FindingsSection:
    """At most five findings, heaviest first, each with where, how reached, whose, why and what next."""

    def render(self, analysis: Analysis) -> str:
        head = "## Findings"
        found, how = findings(analysis)
        if not found:
            return f"{head}\n\nNo finding yet: no run is done with a profile."
        if how == "sampled":
            intro = (
                "Ranked by the seconds each costs in the **unprofiled** runs: the site's share of the cross-check's py-spy "
                "samples × the window's unprofiled wall, summed over the windows; yappi's figure for the same site "
                "beside it. A *site* is the innermost frame of the strategy's or LumiBot's code: the pandas, logging or "
                "I/O work under it is what it asked for. Line shares are of the unprofiled wall."
            )
        else:
            intro = (
                "No run has a cross-check, so these come from **yappi alone** (seconds are profiled seconds: a site's "
                "self time plus the library code it calls directly, from the pstat); there are no hot lines."
            )
        if any(f.kind == "memory" for f in found):
            intro += (
                " Memory findings follow the time findings: the sites holding most bytes at the memory pass's peak heap "
                "(memray; the same site rule), heaviest first; see "
                "[Where the memory goes](#where-the-memory-goes-per-window) and docs/memory.md."
            )
        return "\n\n".join([head, intro, *(render_finding(i, f) for i, f in enumerate(found, 1))])


def owner_cells(table: dict[str, Any] | None) -> list[str]:
    if not isinstance(table, dict):
        return ["–"] * len(_OWNER_COLUMNS)
    seconds, shares = table.get("seconds") or {}, table.get("shares") or {}
    cells = []
    for owner in _OWNER_COLUMNS:
        s, share = seconds.get(str(owner)), shares.get(str(owner))
        cells.append("–" if s is None else f"{s:.2f} ({100 * (share or 0):.0f} %)")
    return cells


class OwnersSection:
    """Per window: seconds and share of the wall by owner class, the verdict, and peak RSS of both passes."""

    def render(self, analysis: Analysis) -> str:
        head = "## Whose time is it, per window"
        rows = []
        for r in analysis.results.records:
            table = r.value("time_by_owner")
            if not isinstance(table, dict) and r.value("peak_rss_mb") is None:
                continue
            sampled_rss = (r.value("sampled_pass") or {}).get("peak_rss_mb")
            waiting = (table or {}).get("waiting_share")
            rows.append([
                r.id, md.plain((table or {}).get("source")), *owner_cells(table),
                "–" if waiting is None else md.percent(waiting, 1.0),
                f"**{table.get('verdict')}**" if isinstance(table, dict) else "–",
                md.plain(r.value("peak_rss_mb")), md.plain(sampled_rss),
            ])  # fmt: skip
        if not rows:
            return f"{head}\n\nNo run has finished yet."
        intro = (
            "Seconds (share of the wall) per owner class: **strategy** (the user's own files), **lumibot** (LumiBot's "
            "engine), **data layer** (pandas, polars, numpy, pyarrow, calendars), **I/O and network** (sockets, HTTP, "
            "the DataBento client, files), **logging and output** (logging, LumiBot's stats, tearsheet, plots), "
            "**profiler** (this tool's own frames), **other** (generic code nobody claimed). A sample goes to the "
            "innermost frame that has an owner; generic code (stdlib, unlisted packages) is its caller's. "
            "`sampled`: py-spy samples of the unprofiled pass, counting the strategy thread and the main thread inside "
            "the backtest while neither waits in `threading`/`queue` (other threads are left out), seconds = share × "
            "unprofiled wall; `profiled`: yappi self time, all threads, thread waits left out (no cross-check). "
            f"Verdict: the largest class when it holds at least {100 * BOUND_SHARE:.0f} % (profiler and other never "
            "decide), else `mixed`. Peak RSS: the worker's `ru_maxrss` (its own process) in the profiled and in the "
            "unprofiled (sampled) pass."
        )
        headers = ["run", "source", *[str(o) for o in _OWNER_COLUMNS], "waiting", "verdict", "peak RSS MB profiled",
                   "peak RSS MB sampled"]
        return "\n\n".join([head, intro, md.table(headers, rows, [*range(2, 10), 11, 12])])
