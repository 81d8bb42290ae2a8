"""Where the memory goes: the memory passes' results per window, their growth, and memory findings.

Input: ``results[id].memory`` of every done window the memory pass covered, and its sites file
(``<stem>.memory.sites.json``, written by :mod:`supervisor.memory`): per site (the innermost
frame of the strategy's or LumiBot's code, the rule the time findings use) the bytes it held at
the window's peak, the bytes it still held when ``run_backtest`` returned, its lines and its call
paths.

**Growth with the window.** Per site, log(bytes at the peak) is fitted against log(trading days)
over the covered windows it appears in (the time scaling's exponent; memory is near-deterministic,
so two window lengths suffice). A site is **leak-shaped** when that exponent is above 1.15 (it
grows faster than the window), or when what it still holds at the end grows with the window
(exponent of the retained bytes at least :data:`RETAINED_GROWTH`, and at least
:data:`LEAK_MIN_BYTES` held in the longest window): memory nobody frees. The projected figure is
the power law at twice the longest covered window, as the time scaling section projects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.owners import Owner, owner_of_frame
from common.windows import LineFit
from report.analysis import Analysis
from report.filecache import cached
from report.findings import MEMORY_LIMIT, Finding, HotLine, Step, WindowCost
from report.resultset import RunRecord
from report.scaling import SUPERLINEAR_EXPONENT, growth_exponent

RETAINED_GROWTH = 0.8
"""Retained bytes growing at least this fast with the window (1: in step with it) keep growing: a leak."""
MB = 1024 * 1024
LEAK_MIN_BYTES = MB
"""Below this, a site's growth is not called a leak: a few allocations more or less swing its exponent."""
FINDING_MIN_BYTES = MB
MIN_LINE_SHARE = 0.01
"""A line inside a site is shown when it holds at least this share of the site's bytes at the peak."""


@dataclass(frozen=True)
class MemoryWindow:
    """One window's memory pass: its record, its ``memory`` result and its sites."""

    record: RunRecord
    memory: dict[str, Any]
    sites: list[dict[str, Any]]

    @property
    def peak(self) -> int:
        return int(self.memory["peak_heap_bytes"])


def windows(analysis: Analysis) -> list[MemoryWindow]:
    """The done windows with a done memory pass, shortest first; read once per analysis."""
    found: list[MemoryWindow] | None = analysis.__dict__.get("_memory_windows")
    if found is None:
        found = []
        for record in analysis.results.done:
            held = record.value("memory")
            if not isinstance(held, dict) or held.get("status") != "done" or not isinstance(held.get("peak_heap_bytes"), int):
                continue
            found.append(MemoryWindow(record, held, _sites(analysis, held.get("sites"))))
        found.sort(key=lambda w: (w.record.days, w.record.id))
        analysis.__dict__["_memory_windows"] = found
    return found


def _sites(analysis: Analysis, relative: Any) -> list[dict[str, Any]]:
    if not isinstance(relative, str):
        return []
    try:
        doc = cached("memory-sites", analysis.results.store.resolve(relative), lambda p: json.loads(p.read_bytes()))
    except (OSError, ValueError):
        return []
    return list(doc.get("sites") or [])


def fit(points: Sequence[tuple[int, float]]) -> LineFit | None:
    """The growth exponent over two or more window lengths (None with fewer)."""
    if len({d for d, _ in points}) < 2:
        return None
    return growth_exponent([(float(d), float(v)) for d, v in points])


def projected(growth: LineFit, days: int) -> float:
    """The fitted power law's bytes at ``days`` trading days (beyond the longest window: an extrapolation)."""
    return math.exp(growth.at(math.log(days)))


def heap_growth(analysis: Analysis) -> LineFit | None:
    """Peak heap against trading days over the covered windows."""
    return fit([(w.record.days, float(w.peak)) for w in windows(analysis)])


@dataclass
class _Pooled:
    peaks: dict[str, int]
    retained: dict[str, int]
    site: dict[str, Any]
    """The site's entry in the window where it held most at the peak."""
    window: MemoryWindow


def memory_findings(analysis: Analysis, limit: int = MEMORY_LIMIT) -> list[Finding]:
    """The sites holding most bytes at a window's peak (at least :data:`FINDING_MIN_BYTES`), heaviest first."""
    covered = windows(analysis)
    if not covered:
        return []
    pooled: dict[tuple[str, int, str], _Pooled] = {}
    for window in covered:
        for site in window.sites:
            key = (site["file"], int(site["first_line"]), site["function"])
            item = pooled.setdefault(key, _Pooled({}, {}, site, window))
            item.peaks[window.record.id] = int(site["peak_bytes"])
            item.retained[window.record.id] = int(site["retained_bytes"])
            if site["peak_bytes"] > item.site["peak_bytes"]:
                item.site, item.window = site, window
    longest = max(w.record.days for w in covered)
    days = {w.record.id: w.record.days for w in covered}
    heaviest = sorted(pooled.items(), key=lambda kv: kv[1].site["peak_bytes"], reverse=True)
    return [_finding(key, item, covered, days, longest) for key, item in heaviest[:limit]
            if item.site["peak_bytes"] >= FINDING_MIN_BYTES]


def _finding(key: tuple[str, int, str], item: _Pooled, covered: list[MemoryWindow], days: dict[str, int],
             longest: int) -> Finding:
    site, window = item.site, item.window
    file, first, name = key
    peak = window.peak
    path = site["paths"][0] if site["paths"] else {"anchor": None, "steps": []}
    amount = float(site["peak_bytes"])
    spent = site.get("spent_in") or {}
    finding = Finding(
        kind="memory", subject=name, amount=amount, unit="B", measured=str(window.memory.get("tool")),
        owner=str(owner_of_frame(file, name) or Owner.OTHER), file=file, first_line=first,
        share=amount / peak if peak else None,
        spent_in={o: b / amount for o, b in sorted(spent.items(), key=lambda kv: -kv[1])} if amount else {},
        hot_lines=[HotLine(int(line), float(b), b / peak if peak else 0.0)  # a line with ~0 bytes is no answer
                   for line, b in site["lines"][:3] if b >= MIN_LINE_SHARE * amount],
        anchor=path["anchor"], path=[Step(s[0], s[1], int(s[2]), int(s[3]), None, None) for s in path["steps"]],
        windows=[WindowCost(w.record.id, float(item.peaks.get(w.record.id, 0)),
                            item.peaks.get(w.record.id, 0) / w.peak if w.peak else None, None, None) for w in covered],
        retained=float(site["retained_bytes"]),
    )  # fmt: skip
    finding.evidence_for.append(f"{amount / MB:,.1f} MB of the {peak / MB:,.1f} MB peak heap of {window.record.id} "
                                f"({100 * (finding.share or 0):.1f} %)")
    growth = fit([(days[r], float(b)) for r, b in item.peaks.items() if b > 0])
    kept = fit([(days[r], float(b)) for r, b in item.retained.items() if b > 0])
    longest_retained = max((b for r, b in item.retained.items() if days[r] == longest), default=0)
    if growth is not None:
        finding.growth_exponent = growth.slope
        finding.projected = projected(growth, 2 * longest)
        finding.projected_days = 2 * longest
    big = max(item.peaks.get(w.record.id, 0) for w in covered if w.record.days == longest) >= LEAK_MIN_BYTES
    faster = big and growth is not None and growth.slope > SUPERLINEAR_EXPONENT
    keeps_growing = kept is not None and kept.slope >= RETAINED_GROWTH and longest_retained >= LEAK_MIN_BYTES
    finding.leak_shaped = faster or keeps_growing
    _evidence(finding, item, covered, growth, kept, longest)
    return finding


def _evidence(finding: Finding, item: _Pooled, covered: list[MemoryWindow], growth: LineFit | None,
              kept: LineFit | None, longest: int) -> None:
    retained = finding.retained or 0.0
    if retained >= LEAK_MIN_BYTES:
        per_window = ", ".join(f"{r} {b / MB:,.1f} MB" for r, b in item.retained.items())
        finding.evidence_for.append(f"still held when the backtest ended ({per_window})")
    if growth is not None and finding.projected is not None:
        finding.evidence_for.append(
            f"its bytes at the peak go as days^{growth.slope:.2f} over {growth.points} windows (R² {growth.r_squared:.2f}): "
            f"about {finding.projected / MB:,.0f} MB at {2 * longest} trading days on that fit")
    if finding.leak_shaped:
        why = ("it grows faster than the window" if growth is not None and growth.slope > SUPERLINEAR_EXPONENT
               else f"what it still holds at the end grows with the window (days^{kept.slope:.2f})" if kept else "")
        finding.evidence_for.append(f"**leak-shaped**: {why}")
    if retained < LEAK_MIN_BYTES:
        finding.evidence_against.append(f"not retained: {retained / MB:,.1f} MB of it was still held when the backtest "
                                        "ended (a transient peak, freed after use)")
    if len({w.record.days for w in covered}) < 2:
        finding.evidence_against.append("one window length only: its growth with the window is not measured")
    elif growth is not None and growth.slope < 0.2 and not finding.leak_shaped:
        finding.evidence_against.append(f"does not grow with the window (days^{growth.slope:.2f}): a fixed cost")
    flame = item.window.memory.get("flamegraph")
    if isinstance(flame, str):
        finding.look_next.append(f"memray's flame graph `{flame}` (search for `{finding.subject.rsplit('.', 1)[-1]}`)")
    if finding.hot_lines and finding.file:
        finding.look_next.append(f"the source: `{finding.file}:{finding.hot_lines[0].line}`")
