"""COMPARE.md: two result sets side by side, typically before and after a LumiBot change.

Functions are matched by portable key (module path inside site-packages + name), not by
absolute path and line, so two checkouts, two machines or an edited file still line up.
"""

from __future__ import annotations

from typing import Any

from report import markdown as md
from report.resultset import ResultSet, RunRecord
from report.totals import aggregate

TOP_FUNCTIONS = 15


class Comparison:
    """``before`` is the plan given with ``--compare``; ``after`` is the plan given with ``--plan``."""

    def __init__(self, before: ResultSet, after: ResultSet) -> None:
        self.before = before
        self.after = after
        old = before.by_id()
        self.common = [(old[r.id], r) for r in after.records if r.id in old and old[r.id].done and r.done]
        self.only_before = [r.id for r in before.done if r.id not in {a.id for _, a in self.common}]
        self.only_after = [r.id for r in after.done if r.id not in {a.id for _, a in self.common}]

    def render(self) -> str:
        parts = [
            "# Profiling comparison",
            f"**Before** = `{self.before.store.path}` (the plan given with `--compare`); **after** = "
            f"`{self.after.store.path}` (the plan given with `--plan`). Ratios are after ÷ before: below 1.00 the "
            "after run is faster, above 1.00 it is slower.",
            self._runs(),
            self._functions(),
            self._setup(),
        ]
        return "\n\n".join(parts) + "\n"

    def _runs(self) -> str:
        head = "## Wall time per run"
        if not self.common:
            return f"{head}\n\nNo run id is done in both result sets, so there is nothing to compare."
        rows = [
            [a.id, a.label, str(a.days), md.wall(b.wall), md.wall(a.wall), md.ratio(a.wall, b.wall)] for b, a in self.common
        ]
        total_b = sum(b.wall or 0.0 for b, _ in self.common)
        total_a = sum(a.wall or 0.0 for _, a in self.common)
        rows.append(["**all common runs**", "", "", md.wall(total_b), md.wall(total_a), md.ratio(total_a, total_b)])
        text = [head, md.table(["run", "label", "trading days", "before wall s", "after wall s", "ratio"], rows, [2, 3, 4, 5])]
        for side, ids in (("before", self.only_before), ("after", self.only_after)):
            if ids:
                text.append(f"Done only {side} (not compared): {', '.join(ids)}.")
        return "\n\n".join(text)

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
        rows = []
        for item in ranked:
            b, a = before.get(item.key), after.get(item.key)
            rows.append(
                [
                    md.code((a or b or item).short),
                    md.func_seconds(b.cumulative if b else None),
                    md.func_seconds(a.cumulative if a else None),
                    md.ratio(a.cumulative if a else 0.0, b.cumulative if b else 0.0),
                ]
            )
        return "\n\n".join(
            [
                head,
                f"Cumulative seconds summed over the {md.plural(len(self.common), 'run')} done in both, ranked by the larger "
                "of the two; entry points and thread waits are left out as in REPORT.md.",
                md.table(["function", "before s", "after s", "ratio"], rows, [1, 2, 3]),
            ]
        )

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
