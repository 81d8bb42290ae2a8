"""COMPARE.md: two result sets side by side, typically before and after a LumiBot change.

Functions are matched by portable key (module path inside site-packages + name), not by
absolute path and line, so two checkouts, two machines or an edited file still line up.
"""

from __future__ import annotations

import statistics
from typing import Any

from common.fingerprints import differences as fingerprint_differences
from common.owners import Owner
from common.stats import Verdict, judge_repeats, judge_single
from report import markdown as md
from report.resultset import ResultSet, RunRecord
from report.totals import aggregate

TOP_FUNCTIONS = 15
VOID = "results changed: the timing comparison is not like for like"

HOW = (
    "How a verdict is reached: with at least two passes per run on both sides, a run is `faster` or `slower` only "
    "if Welch's t-test on the passes' wall times rejects \"same mean\" at p < 0.05 (pyperf's `compare_to` uses a "
    "t-test at 95 %) **and** the medians differ by a factor of at least 1.1 (asv's default `--factor`); otherwise it "
    "is `within noise`. With a single run on either side there is nothing to test, so the noise band measured by "
    "Phase 0's repeats stands in: the change must exceed both that band and the factor 1.1. A difference below the "
    "noise is never called a change. Wall times are medians of the passes; the spread is min–max."
)


class Comparison:
    """``before`` is the plan given with ``--compare``; ``after`` is the plan given with ``--plan``."""

    def __init__(self, before: ResultSet, after: ResultSet) -> None:
        self.before = before
        self.after = after
        old = before.by_id()
        self.common = [(old[r.id], r) for r in after.records if r.id in old and old[r.id].done and r.done]
        self.only_before = [r.id for r in before.done if r.id not in {a.id for _, a in self.common}]
        self.only_after = [r.id for r in after.done if r.id not in {a.id for _, a in self.common}]
        self.noise, self.noise_source = _noise_band(after, before)

    def render(self) -> str:
        parts = [
            "# Profiling comparison",
            f"**Before** = `{self.before.store.path}` (the plan given with `--compare`); **after** = "
            f"`{self.after.store.path}` (the plan given with `--plan`). Ratios are after ÷ before: below 1.00 the "
            "after run is faster, above 1.00 it is slower.",
            HOW,
            self._runs(),
            self._results(),
            self._functions(),
            self._owners(),
            self._memory(),
            self._setup(),
        ]
        return "\n\n".join(parts) + "\n"

    def verdict(self, before: RunRecord, after: RunRecord) -> Verdict:
        """One run's verdict: a deliberate test with repeats, the Phase 0 band without."""
        b, a = before.pass_walls, after.pass_walls
        if len(b) >= 2 and len(a) >= 2:
            return judge_repeats(b, a)
        return judge_single(statistics.median(b), statistics.median(a), self.noise, self.noise_source)

    def _runs(self) -> str:
        head = "## Wall time per run"
        if not self.common:
            return f"{head}\n\nNo run id is done in both result sets, so there is nothing to compare."
        rows = []
        for b, a in self.common:
            verdict = self.verdict(b, a)
            changed = fingerprint_differences(b.value("fingerprint"), a.value("fingerprint"))
            word = f"**{VOID}**" if changed else (f"**{verdict.word}**" if verdict.is_change else verdict.word)
            walls = [md.wall_spread(b.pass_walls, b.wall), md.wall_spread(a.pass_walls, a.wall)]
            rows.append([a.id, a.label, *walls, md.ratio(a.wall, b.wall), word, verdict.test])
        text = [
            head,
            md.table(["run", "label", "before s", "after s", "ratio", "verdict", "how judged"], rows, [2, 3, 4]),
        ]
        for side, ids in (("before", self.only_before), ("after", self.only_after)):
            if ids:
                text.append(f"Done only {side} (not compared): {', '.join(ids)}.")
        return "\n\n".join(text)

    def _results(self) -> str:
        """Same backtest on both sides, and within each side's passes, or the timings do not compare."""
        head = "## Backtest results (fingerprints)"
        rows = []
        for b, a in self.common:
            changed = fingerprint_differences(b.value("fingerprint"), a.value("fingerprint"))
            if changed:
                rows.append([a.id, VOID, "; ".join(changed)])
            for side, record in (("before", b), ("after", a)):
                if record.value("fingerprints_match") is False:
                    rows.append([a.id, f"passes of the {side} plan differ", str(record.value("notes") or "")])
        if not self.common:
            return f"{head}\n\nNo common runs."
        if not rows:
            return (
                f"{head}\n\nEvery common run did the same backtest on both sides and in every pass (final portfolio "
                "value, orders, fills, iterations and the sha256 of LumiBot's trade events, order ids aside, all equal)."
            )
        return "\n\n".join([head, md.table(["run", "finding", "what differs"], rows)])

    def _functions(self) -> str:
        head = f"## Top {TOP_FUNCTIONS} functions by cumulative time"
        if not self.common:
            return f"{head}\n\nNothing to compare."
        before = {a.key: a for a in aggregate(b.funcs or [] for b, _ in self.common)}
        after = {a.key: a for a in aggregate(a.funcs or [] for _, a in self.common)}
        union = list(before.values()) + [a for k, a in after.items() if k not in before]
        ranked = sorted(
            union, key=lambda x: max(_cum(before.get(x.key)), _cum(after.get(x.key))), reverse=True
        )[:TOP_FUNCTIONS]
        passes_b, passes_a = self._per_pass_totals("before"), self._per_pass_totals("after")
        judged = len(passes_b) >= 2 and len(passes_a) >= 2
        rows = []
        for item in ranked:
            b, a = before.get(item.key), after.get(item.key)
            if judged:
                seconds = [t.get(item.key, 0.0) for t in passes_b], [t.get(item.key, 0.0) for t in passes_a]
                word = judge_repeats(*seconds, tests=len(ranked)).word
            else:
                word = "– (single runs)"
            rows.append(
                [
                    md.code((a or b or item).short),
                    md.func_seconds(b.cumulative if b else None),
                    md.func_seconds(a.cumulative if a else None),
                    md.ratio(a.cumulative if a else 0.0, b.cumulative if b else 0.0),
                    f"{b.ncall if b else 0:,} → {a.ncall if a else 0:,}",
                    word,
                ]
            )
        how = (
            f"per function, the same test on its cumulative seconds summed over the runs, pass by pass "
            f"({len(passes_b)} vs {len(passes_a)} passes), at p < 0.05 / {len(ranked)} (Bonferroni: {len(ranked)} "
            "functions are judged at once)"
            if judged
            else "no per-function verdict: it needs at least two passes of every common run on both sides (`--repeats`)"
        )
        return "\n\n".join(
            [
                head,
                f"Cumulative seconds of each run's median pass, summed over the {md.plural(len(self.common), 'run')} done "
                f"in both, ranked by the larger of the two; entry points and thread waits are left out as in REPORT.md. "
                f"Verdict: {how}. A changed call count is a changed code path, whatever the seconds say.",
                md.table(["function", "before s", "after s", "ratio", "calls", "verdict"], rows, [1, 2, 3, 4]),
            ]
        )

    def _owners(self) -> str:
        """Each common run's owner table (``results[id].time_by_owner``) before and after: whose time moved."""
        head = "## Whose time is it (owner classes)"
        rows = []
        for b, a in self.common:
            old, new = b.value("time_by_owner"), a.value("time_by_owner")
            if not isinstance(old, dict) and not isinstance(new, dict):
                continue
            cells = []
            for owner in OWNER_COLUMNS:
                cells.append(f"{_owner_share(old, owner)} → {_owner_share(new, owner)}")
            verdicts = f"{_verdict(old)} → {_verdict(new)}"
            moved = _verdict(old) != _verdict(new)
            sources = f"{(old or {}).get('source', '–')} / {(new or {}).get('source', '–')}"
            rows.append([a.id, f"**{verdicts}**" if moved else verdicts, *cells, sources])
        if not rows:
            return f"{head}\n\nNo common run has an owner table on either side."
        return "\n\n".join([
            head,
            "Share of each run's wall by owner class (REPORT.md's \"Whose time is it, per window\"), before → after; "
            "a verdict that changed is in bold. Compare like with like: a `sampled` table (unprofiled pass) against a "
            "`profiled` one (yappi self time) differs by method, not only by code.",
            md.table(["run", "verdict", *[str(o) for o in OWNER_COLUMNS], "source before / after"], rows),
        ])

    def _memory(self) -> str:
        """Each common run's memory pass before and after: peak heap, peak RSS, the owner holding most."""
        head = "## Memory per window"
        rows = []
        for b, a in self.common:
            old, new = _memory_of(b), _memory_of(a)
            if old is None or new is None:
                continue
            noise, how = memory_noise(old, new)
            ratio = new["peak_heap_bytes"] / old["peak_heap_bytes"] if old["peak_heap_bytes"] else None
            moved = ratio is not None and abs(ratio - 1.0) > noise
            word = ("**more**" if ratio > 1 else "**less**") if moved and ratio is not None else "within noise"
            rows.append([
                a.id, f"{old['peak_heap_bytes'] / MB:,.1f} → {new['peak_heap_bytes'] / MB:,.1f}", md.ratio(
                    new["peak_heap_bytes"], old["peak_heap_bytes"]),
                f"{md.plain(old.get('peak_rss_mb'))} → {md.plain(new.get('peak_rss_mb'))}",
                f"{old.get('top_owner_at_peak') or '–'} → {new.get('top_owner_at_peak') or '–'}", word, how,
            ])  # fmt: skip
        if not rows:
            return f"{head}\n\nNo common run has a memory pass on both sides (`meta.memory`, docs/memory.md)."
        return "\n\n".join([
            head,
            "Peak heap (memray's high-water mark of the memory pass) and peak RSS (its worker's `ru_maxrss`), MB before → "
            "after, and the owner class holding most at the peak. Memory is near-deterministic: the peak heap of one "
            "window moves by the spread its repeats measured ((max - min) / median of each side's memory passes), and a "
            f"change must exceed twice the wider side's spread and at least {100 * MEMORY_FLOOR:.0f} %; with one memory "
            f"pass per side, the floor alone ({SINGLE_PASS_NOTE}).",
            md.table(["run", "peak heap MB", "ratio", "peak RSS MB", "top owner at peak", "verdict", "noise"], rows, [2]),
        ])

    def _per_pass_totals(self, side: str) -> list[dict[str, float]]:
        """Pass k's cumulative seconds per function, summed over the common runs (k up to the fewest passes)."""
        records = [b if side == "before" else a for b, a in self.common]
        store = (self.before if side == "before" else self.after).store
        profiles = [r.pass_funcs(store) for r in records]
        rounds = min((len(p) for p in profiles), default=0)
        if rounds < 2:
            return []
        return [{x.key: x.cumulative for x in aggregate(p[k] for p in profiles)} for k in range(rounds)]

    def _setup(self) -> str:
        head = "## What else differs"
        rows = []
        for b, a in self.common:
            flags = _differences(b, a)
            if flags:
                rows.append([a.id, "; ".join(flags)])
        if not self.common:
            return f"{head}\n\nNo common runs."
        if not rows:
            return f"{head}\n\nEvery common run has the same git revision, library versions and parameters hash on both sides."
        return "\n\n".join(
            [
                head,
                "A ratio only measures the change under study if nothing else changed; these runs differ in:",
                md.table(["run", "before → after"], rows),
            ]
        )


def _noise_band(*sides: ResultSet) -> tuple[float | None, str]:
    """Phase 0's noise band as a fraction of its probe's median, from the first side that measured one."""
    for side in sides:
        summary = side.plan.get("phase0") or {}
        percent = summary.get("noise_band_percent")
        if isinstance(percent, int | float):
            return percent / 100.0, f"Phase 0 of {side.store.path}, {summary.get('repeats')} repeats"
    return None, "no Phase 0 repeats"


MB = 1024 * 1024
MEMORY_FLOOR = 0.01
"""The least relative change of a peak heap called a change: three memory passes of one window were
0.000 % (a week) and 0.007 % (a month) apart (``bench/memory_cost.py``, docs/memory.md); 1 % leaves room
for a machine or library difference that moves allocations without changing the code."""
SINGLE_PASS_NOTE = "docs/memory.md has the spread measured between identical memory passes"


def _memory_of(record: RunRecord) -> dict[str, Any] | None:
    held = record.value("memory")
    ok = isinstance(held, dict) and held.get("status") == "done" and isinstance(held.get("peak_heap_bytes"), int)
    return held if ok else None


def memory_noise(before: dict[str, Any], after: dict[str, Any]) -> tuple[float, str]:
    """The relative change of the peak heap below which it is noise, and how that was measured."""
    spreads = []
    for side in (before, after):
        spread = (side.get("repeats") or {}).get("peak_heap_bytes") or {}
        if spread.get("n", 0) >= 2 and spread.get("median"):
            spreads.append((spread["max"] - spread["min"]) / spread["median"])
    if not spreads:
        return MEMORY_FLOOR, "one memory pass per side: the floor"
    widest = max(spreads)
    return max(2 * widest, MEMORY_FLOOR), f"repeats: spread up to {100 * widest:.2f} %"


OWNER_COLUMNS = (Owner.STRATEGY, Owner.LUMIBOT, Owner.DATA, Owner.IO, Owner.OUTPUT)


def _owner_share(table: Any, owner: Owner) -> str:
    shares = table.get("shares") if isinstance(table, dict) else None
    value = (shares or {}).get(str(owner))
    return "–" if value is None else f"{100 * value:.0f} %"


def _verdict(table: Any) -> str:
    return str(table.get("verdict")) if isinstance(table, dict) else "–"


def _cum(item: Any) -> float:
    return float(item.cumulative) if item is not None else 0.0


def _differences(before: RunRecord, after: RunRecord) -> list[str]:
    flags = []
    for name in ("git_rev", "git_dirty", "parameters_hash", "data_source", "cache_state", "phase1_mode"):
        old, new = before.value(name), after.value(name)
        if old != new:
            flags.append(f"{name} {_short(old)} → {_short(new)}")
    old_v, new_v = before.value("versions") or {}, after.value("versions") or {}
    for key in sorted(set(old_v) | set(new_v)):
        if old_v.get(key) != new_v.get(key):
            flags.append(f"{key} {old_v.get(key, '–')} → {new_v.get(key, '–')}")
    return flags


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 40:
        return value[:12]
    return md.plain(value)
