"""Findings: what to fix first, where it is, how it is reached, whose code it is, and why.

A :class:`Finding` is one cost worth a reader's time, of any kind: ``time`` (seconds of the
unprofiled run) or ``memory`` (bytes). Both kinds share the model, so the memory pass can rank
its findings beside the time findings with :func:`rank`.

**Time findings** come from the cross-check's unprofiled pass (``<id>.sampled.sites.json``, see
:mod:`common.attribution`): every sample of the strategy thread (and of the main thread while it
works) goes to its *site*, the innermost frame of the strategy's or LumiBot's code, since what
pandas, logging or the DataBento client do there is what that code asked for. A site's seconds
are its samples / ticks x the window's unprofiled wall, summed over the windows; the heaviest five
are findings, with yappi's figure for the same site beside (its self time plus the time of the
library code it calls directly, from the pstat). Without a cross-check the ranking, the seconds
and the call path come from yappi alone (labelled ``profiled``) and there are no hot lines.

**Memory findings** (:mod:`report.memory`): the sites holding most bytes at the memory pass's
peak, with what they still held at the end and how that grows with the window.
"""

from __future__ import annotations

import json
import marshal
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import crosscheck as cc
from common.attribution import ITERATION, PStat, pstat_index, step_calls, yappi_attributed
from common.owners import Owner, owner_of_frame
from common.profiles import FuncRow
from report import markdown as md
from report.analysis import CALL_JUMP, Analysis
from report.filecache import cached
from report.resultset import RunRecord
from report.scaling import Growth, superlinear
from report.trust import load_run

LIMIT = 5
MEMORY_LIMIT = 3
MANY_CALLS_PER_ITERATION = 10.0
"""A function called at least this often per iteration: a loop someone may not know they wrote."""
FEW_SAMPLES = 30
"""Fewer samples than this: the share's binomial error is a fifth of the share or more."""


@dataclass(frozen=True)
class HotLine:
    line: int
    amount: float
    share: float
    """Of the pooled unprofiled wall of the windows the finding covers."""


@dataclass(frozen=True)
class Step:
    """One frame of the call path: the function, where it starts, the line it called from, its calls."""

    function: str
    file: str
    first_line: int
    line: int | None
    calls: int | None
    per_iteration: float | None


@dataclass(frozen=True)
class WindowCost:
    run_id: str
    amount: float
    share: float | None
    calls: int | None
    per_iteration: float | None


@dataclass
class Finding:
    """One cost worth reading about; ``amount`` is seconds (``unit`` ``s``) or bytes (``B``)."""

    kind: str
    subject: str
    amount: float
    unit: str
    measured: str
    owner: str
    file: str | None = None
    first_line: int | None = None
    profiled_amount: float | None = None
    share: float | None = None
    spent_in: dict[str, float] = field(default_factory=dict)
    hot_lines: list[HotLine] = field(default_factory=list)
    anchor: str | None = None
    path: list[Step] = field(default_factory=list)
    windows: list[WindowCost] = field(default_factory=list)
    evidence_for: list[str] = field(default_factory=list)
    evidence_against: list[str] = field(default_factory=list)
    look_next: list[str] = field(default_factory=list)
    retained: float | None = None
    """Memory: bytes the site still held when the backtest ended (in the window of its largest peak)."""
    growth_exponent: float | None = None
    """Memory: the exponent of its bytes at the peak against trading days over the covered windows."""
    projected: float | None = None
    projected_days: int | None = None
    """Memory: its bytes at the peak at twice the longest covered window, if the power law holds."""
    leak_shaped: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.first_line}" if self.file else "–"


def rank(findings: Iterable[Finding], limit: int = LIMIT, memory_limit: int = MEMORY_LIMIT) -> list[Finding]:
    """Up to ``limit`` time findings by seconds, then up to ``memory_limit`` memory findings in the
    order given (:mod:`report.memory` ranks them by bytes at the peak): seconds and bytes do not
    compare, so neither kind pushes the other out."""
    items = list(findings)
    time = sorted((f for f in items if f.unit == "s"), key=lambda f: f.amount, reverse=True)
    return time[:limit] + [f for f in items if f.unit != "s"][:memory_limit]


# -- reading the per-run files, cached across rewrites of one supervisor session ------------
def _cached(kind: str, path: Path, reader: Any) -> Any:
    try:
        return cached(kind, path, reader)
    except (OSError, ValueError, EOFError, TypeError):
        return None


def _sites(analysis: Analysis, record: RunRecord) -> dict[str, Any] | None:
    relative = record.value("sampled_sites")
    if not relative:
        return None
    return _cached("sites", analysis.results.store.resolve(relative), lambda p: json.loads(p.read_bytes()))


def _pstat(analysis: Analysis, record: RunRecord) -> PStat | None:
    relative = record.value("pstat")
    if not relative:
        return None
    return _cached("pstat", analysis.results.store.resolve(relative), lambda p: marshal.loads(p.read_bytes()))


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _iterations(record: RunRecord) -> int | None:
    value = record.value("iterations")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


_ROWS: dict[int, tuple[list[FuncRow], dict[tuple[str, int, str], FuncRow]]] = {}


def _func_row(record: RunRecord, file: str, first_line: int, name: str) -> FuncRow | None:
    """The run's yappi row of this function (file, first line, last part of the name); indexed once per parsed profile."""
    rows = record.funcs or []
    hit = _ROWS.get(id(rows))
    if hit is None or hit[0] is not rows:
        if len(_ROWS) > 64:
            _ROWS.clear()
        hit = _ROWS[id(rows)] = (rows, {(r.module, r.lineno, _short(r.name)): r for r in rows})
    return hit[1].get((file, first_line, _short(name)))


def _per(calls: int | None, iterations: int | None) -> float | None:
    return calls / iterations if calls is not None and iterations else None


# -- time findings --------------------------------------------------------------------------
@dataclass
class _Pooled:
    seconds: float = 0.0
    samples: int = 0
    by_run: dict[str, float] = field(default_factory=dict)
    lines: Counter[int] = field(default_factory=Counter)
    spent_in: Counter[str] = field(default_factory=Counter)
    owner: str = ""


def time_findings(analysis: Analysis, limit: int = LIMIT) -> tuple[list[Finding], str]:
    """The heaviest sites as findings, and one sentence on how they were measured."""
    checked = [(r, s) for r in analysis.results.done if (s := _sites(analysis, r)) and s.get("ticks")]
    if checked:
        return _sampled_findings(analysis, checked, limit), "sampled"
    return _profiled_findings(analysis, limit), "profiled"


def _sampled_findings(analysis: Analysis, checked: list[tuple[RunRecord, dict[str, Any]]], limit: int) -> list[Finding]:
    pooled: dict[tuple[str, int, str], _Pooled] = {}
    line_seconds: dict[tuple[str, int, str], Counter[int]] = {}
    walls = {r.id: float(s.get("unprofiled_wall_seconds") or r.value("unprofiled_wall_seconds") or 0.0) for r, s in checked}
    total_wall = sum(walls.values())
    for record, sites in checked:
        per_tick = walls[record.id] / sites["ticks"]
        for site in sites["sites"]:
            key = (site["file"], int(site["first_line"]), site["function"])
            item = pooled.setdefault(key, _Pooled(owner=site["owner"]))
            seconds = site["samples"] * per_tick
            item.seconds += seconds
            item.samples += site["samples"]
            item.by_run[record.id] = item.by_run.get(record.id, 0.0) + seconds
            for owner, n in site["spent_in"].items():
                item.spent_in[owner] += n
            lines = line_seconds.setdefault(key, Counter())
            for line, n in site["lines"]:
                lines[int(line)] += n * per_tick
    chosen = sorted(pooled.items(), key=lambda kv: kv[1].seconds, reverse=True)[:limit]
    by_id = {r.id: (r, s) for r, s in checked}
    findings = []
    for key, item in chosen:
        heaviest = max(item.by_run, key=lambda rid: item.by_run[rid])
        record, sites = by_id[heaviest]
        site = next(s for s in sites["sites"] if (s["file"], int(s["first_line"]), s["function"]) == key)
        path = site["paths"][0] if site["paths"] else {"anchor": None, "steps": []}
        finding = Finding(
            kind="time", subject=key[2], amount=item.seconds, unit="s", measured="sampled", owner=item.owner,
            file=key[0], first_line=key[1], share=item.seconds / total_wall if total_wall else None,
            spent_in={o: n / item.samples for o, n in item.spent_in.most_common()} if item.samples else {},
            hot_lines=[HotLine(line, s, s / total_wall if total_wall else 0.0)
                       for line, s in line_seconds[key].most_common(3)],
            anchor=path["anchor"],
            path=_steps(record, [(st[0], st[1], int(st[2]), st[3], st[4] if len(st) > 4 else None) for st in path["steps"]]),
        )  # fmt: skip
        finding.profiled_amount = _yappi_seconds(checked, key)
        finding.windows = _windows(analysis, [r for r, _ in checked], key, item.by_run, walls)
        _evidence(analysis, finding, item.samples, record, site.get("crosscheck"))
        finding.look_next = _look_next(analysis, record, finding)
        findings.append(finding)
    return findings


def _steps(record: RunRecord, steps: Sequence[tuple[str, str, int, int | None, int | None]]) -> list[Step]:
    iterations = _iterations(record)
    return [Step(name, file, first, line, calls, _per(calls, iterations)) for name, file, first, line, calls in steps]


def _yappi_seconds(checked: Sequence[tuple[RunRecord, dict[str, Any]]], key: tuple[str, int, str]) -> float | None:
    """yappi's figure for the site (added to the sites file by the supervisor), summed over the windows."""
    values = [s.get("yappi_seconds") for _, sites in checked for s in sites["sites"]
              if (s["file"], int(s["first_line"]), s["function"]) == key]
    known = [float(v) for v in values if isinstance(v, int | float)]
    return sum(known) if known else None


_ATTRIBUTED: dict[int, tuple[PStat, dict[tuple[str, int, str], float]]] = {}


def _attributed(stats: PStat) -> dict[tuple[str, int, str], float]:
    hit = _ATTRIBUTED.get(id(stats))
    if hit is None or hit[0] is not stats:
        if len(_ATTRIBUTED) > 64:
            _ATTRIBUTED.clear()
        hit = _ATTRIBUTED[id(stats)] = (stats, yappi_attributed(stats))
    return hit[1]


def _windows(analysis: Analysis, records: Sequence[RunRecord], key: tuple[str, int, str], seconds: dict[str, float],
             walls: dict[str, float]) -> list[WindowCost]:
    found = []
    for record in records:
        row = _func_row(record, *key)
        calls = row.ncall if row else None
        wall = walls.get(record.id)
        amount = seconds.get(record.id, 0.0)
        found.append(WindowCost(record.id, amount, amount / wall if wall else None, calls, _per(calls, _iterations(record))))
    return found


def _profiled_findings(analysis: Analysis, limit: int) -> list[Finding]:
    """Without a cross-check: yappi's attributed seconds, its heaviest caller chain, no lines."""
    records = [r for r in analysis.results.done if _pstat(analysis, r)]
    pooled: dict[tuple[str, int, str], dict[str, float]] = {}
    for record in records:
        stats = _pstat(analysis, record)
        assert stats is not None
        for key, seconds in _attributed(stats).items():
            pooled.setdefault(key, {})[record.id] = seconds
    total_wall = sum(r.wall or 0.0 for r in records)
    chosen = sorted(pooled.items(), key=lambda kv: sum(kv[1].values()), reverse=True)[:limit]
    by_id = {r.id: r for r in records}
    findings = []
    for key, by_run in chosen:
        seconds = sum(by_run.values())
        heaviest = by_id[max(by_run, key=lambda rid: by_run[rid])]
        stats = _pstat(analysis, heaviest)
        assert stats is not None
        chain = _heaviest_callers(stats, key)
        anchor = ITERATION if chain and _short(chain[0][2]) == "on_trading_iteration" else "LumiBot"
        owner = owner_of_frame(key[0], key[2])
        finding = Finding(
            kind="time", subject=key[2], amount=seconds, unit="s", measured="profiled", owner=str(owner or Owner.OTHER),
            file=key[0], first_line=key[1], share=seconds / total_wall if total_wall else None, anchor=anchor,
            path=_steps(heaviest, [(k[2], k[0], k[1], None, c) for k, c in
                                   zip(chain, step_calls(stats, pstat_index(stats), [(k[2], k[0], k[1]) for k in chain]),
                                       strict=True)]),
            profiled_amount=seconds,
        )  # fmt: skip
        walls = {r.id: r.wall or 0.0 for r in records}
        finding.windows = _windows(analysis, records, key, by_run, walls)
        _evidence(analysis, finding, None, heaviest)
        finding.look_next = _look_next(analysis, heaviest, finding)
        findings.append(finding)
    return findings


def _heaviest_callers(stats: PStat, key: tuple[str, int, str], depth: int = 14) -> list[tuple[str, int, str]]:
    """The chain of heaviest callers (by the edge's cumulative time) up to the strategy's
    ``on_trading_iteration`` or LumiBot's entry, outermost first."""
    chain = [key]
    current = key
    for _ in range(depth):
        callers = stats.get(current, (0, 0, 0, 0, {}))[4] or {}
        if _short(current[2]) == "on_trading_iteration" and owner_of_frame(current[0], current[2]) is Owner.STRATEGY:
            break
        candidates = [(c, e) for c, e in callers.items() if c not in chain and owner_of_frame(c[0], c[2]) is not Owner.PROFILER]
        if not candidates:
            break
        current = max(candidates, key=lambda ce: float(ce[1][3]))[0]
        if _short(current[2]) in ("run_backtest", "run", "_run_trading_session"):
            break
        chain.append(current)
    return list(reversed(chain))


# -- evidence -------------------------------------------------------------------------------
def _evidence(analysis: Analysis, finding: Finding, samples: int | None, heaviest: RunRecord,
              crosscheck: dict[str, Any] | None = None) -> None:
    measure = "unprofiled" if finding.measured == "sampled" else "profiled (yappi)"
    if finding.share is not None:
        spread = ", ".join(f"{w.run_id} {100 * w.share:.1f} %" for w in finding.windows if w.share is not None)
        finding.evidence_for.append(f"{100 * finding.share:.1f} % of the {measure} wall of its windows ({spread})")
    growth = _growth(analysis, finding)
    if growth is not None:
        finding.evidence_for.append(f"its time grows faster than the window: ∝ days^{growth.exponent:.2f} over "
                                    f"{growth.runs} Phase 1 runs (R² {growth.r_squared:.2f}; yappi's cumulative seconds)")
    _call_jumps(analysis, finding)
    site = finding.windows
    per_iteration = [w.per_iteration for w in site if w.per_iteration is not None]
    if per_iteration and max(per_iteration) >= MANY_CALLS_PER_ITERATION:
        finding.evidence_for.append(f"called {max(per_iteration):,.0f} times per iteration (yappi's call count / iterations)")
    _cold_warm(analysis, finding)
    _against(analysis, finding, samples, heaviest, crosscheck)


def _growth(analysis: Analysis, finding: Finding) -> Growth | None:
    """The scaling section's super-linear rule, for this one function (the whole table pools every profile)."""
    points = []
    for record in analysis.scaling_runs:
        row = _func_row(record, finding.file or "", finding.first_line or 0, finding.subject)
        if row is not None:
            points.append((record.days, row.cumulative))
    found = superlinear({finding.subject: points})
    return found[0] if found else None


Rate = tuple[float, int, str]
"""Calls per iteration, calls, run id: one window's figures for one step of a path."""


def call_jump(per_run: list[Rate]) -> tuple[float, Rate, Rate] | None:
    """The jump, low and high windows when calls per iteration differ by ``CALL_JUMP`` or more.

    The window with the higher rate must also have made more calls: a step that runs once per
    backtest (set-up, LumiBot's analysis) has a higher rate in a short window only because it
    has fewer iterations, which is no change of code path.
    """
    if len(per_run) < 2:
        return None
    low, high = min(per_run), max(per_run)
    if low[0] > 0 and high[0] / low[0] >= CALL_JUMP and high[1] > low[1]:
        return high[0] / low[0], low, high
    return None


def _call_jumps(analysis: Analysis, finding: Finding) -> None:
    """A step of the path (or the site) whose calls per iteration differ by CALL_JUMP between windows."""
    records = {r.id: r for r in analysis.results.done}
    best: tuple[float, str] | None = None
    for step in [*finding.path, Step(finding.subject, finding.file or "", finding.first_line or 0, None, None, None)]:
        per_run = []
        for run_id in (w.run_id for w in finding.windows):
            record = records.get(run_id)
            row = _func_row(record, step.file, step.first_line, step.function) if record else None
            its = _iterations(record) if record else None
            if row is not None and its:
                per_run.append((row.ncall / its, row.ncall, run_id))
        jumped = call_jump(per_run)
        if jumped is not None:
            jump, low, high = jumped
            text = (f"the code path changes between windows: `{_short(step.function)}` ran {high[1]:,} times in {high[2]} "
                    f"({md.rate(high[0])} per iteration) against {low[1]:,} in {low[2]} ({md.rate(low[0])} per iteration)")
            if best is None or jump > best[0]:
                best = (jump, text)
    if best:
        finding.evidence_for.append(best[1])


def _cold_warm(analysis: Analysis, finding: Finding) -> None:
    summary = analysis.results.plan.get("phase0")
    rows = summary.get("code_path_changes") if isinstance(summary, dict) else None
    if not rows:
        return
    wanted = {f"{Path(s.file).name}:{s.first_line}" for s in finding.path}
    wanted.add(f"{Path(finding.file or '').name}:{finding.first_line}")
    for row in rows:
        where = str(row.get("function", "")).split(" ", 1)[0]
        if where in wanted:
            finding.evidence_for.append(
                f"the cold and warm Phase 0 probes run it differently: `{row['function']}` {row['cold_calls']:,} → "
                f"{row['warm_calls']:,} calls")
            return


def _against(analysis: Analysis, finding: Finding, samples: int | None, heaviest: RunRecord,
             crosscheck: dict[str, Any] | None) -> None:
    if crosscheck is None and finding.measured == "sampled":  # a sites file written before it carried the verdict
        trust = load_run(analysis.results, heaviest)
        probe = next((r for r in trust.rows.values() if r.module == finding.file and r.lineno == finding.first_line), None)
        if probe is not None:
            crosscheck = {"verdict": probe.verdict, "yappi_inclusive": probe.yappi_inclusive,
                          "sampled_inclusive": probe.sampled_inclusive}
    if crosscheck is not None and crosscheck.get("verdict") == cc.OVER:
        finding.evidence_against.append(
            f"yappi over-states it in {heaviest.id} ({100 * (crosscheck.get('yappi_inclusive') or 0):.1f} % under yappi vs "
            f"{100 * (crosscheck.get('sampled_inclusive') or 0):.1f} % sampled): trust the sampled seconds")
    summary = analysis.results.plan.get("phase0")
    band = summary.get("noise_band_percent") if isinstance(summary, dict) else None
    shares = [w.share for w in finding.windows if w.share is not None]
    if isinstance(band, int | float) and shares and 100 * max(shares) < band:
        finding.evidence_against.append(
            f"below the noise band in every window (at most {100 * max(shares):.1f} % of a window's wall; Phase 0's band "
            f"is {band:.1f} %): fixing it could not be told from run-to-run noise")
    if samples is not None and samples < FEW_SAMPLES:
        finding.evidence_against.append(f"only {samples} samples: its share is uncertain by a fifth or more")
    if finding.measured == "profiled":
        finding.evidence_against.append("measured by yappi alone (no cross-check): yappi inflates many small Python calls")


def _look_next(analysis: Analysis, record: RunRecord, finding: Finding) -> list[str]:
    items = []
    svg = record.value("sampled_svg")
    if isinstance(svg, str):
        items.append(f"flame graph `{svg}` (search for `{finding.subject}`)")
    pstat = record.value("pstat")
    if isinstance(pstat, str):
        # pstats matches a regex against `file:line(name)`: the bare name (`__init__`) matches every class's
        where = re.escape(f"{Path(finding.file or '').name}:{finding.first_line}({finding.subject})")
        items.append(f"`python -c \"import pstats; pstats.Stats('{pstat}').sort_stats('cumulative')"
                     f".print_callers(r'{where}')\"`")
    if finding.hot_lines and finding.file:
        items.append(f"the source: `{finding.file}:{finding.hot_lines[0].line}`")
    return items


def findings(analysis: Analysis, limit: int = LIMIT) -> tuple[list[Finding], str]:
    """The report's findings and how their seconds were measured (``sampled`` or ``profiled``); once per analysis."""
    from report.memory import memory_findings  # it builds on this module's Finding

    cached: tuple[list[Finding], str] | None = analysis.__dict__.get("_findings")
    if cached is None:
        timed, how = time_findings(analysis, limit)
        cached = analysis.__dict__["_findings"] = (rank([*timed, *memory_findings(analysis)], limit), how)
    return cached
