"""``## Where the memory goes, per window``: the memory passes' figures, and how the peak grows."""

from __future__ import annotations

from report import markdown as md
from report.analysis import Analysis
from report.memory import MB, heap_growth, projected, windows


def _mb(value: object) -> str:
    return f"{value / MB:,.1f}" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


class MemorySection:
    """Per covered window: peak heap, peak RSS, MB per trading day, the owner holding most; the growth fit."""

    def render(self, analysis: Analysis) -> str:
        head = "## Where the memory goes, per window"
        covered = windows(analysis)
        held = [(r.id, r.value("memory")) for r in analysis.results.done if isinstance(r.value("memory"), dict)]
        # a pass that ran and failed (crash, time-out) is named by its window; "not run" reasons are shared
        failed = [f"{run_id}: **{m.get('status')}**, {m.get('reason')}" for run_id, m in held
                  if m.get("status") not in ("done", "not run")]
        skipped = sorted({str(m.get("reason")) for _, m in held if m.get("status") == "not run"})
        failures = f"Memory passes that failed (the run's time profile stands): {'; '.join(failed)}." if failed else ""
        if not covered:
            why = f" ({'; '.join(skipped)})" if skipped else ""
            return "\n\n".join(filter(None, [head, f"No window has a memory pass yet{why}.", failures]))
        rows = []
        for w in covered:
            m = w.memory
            owners = m.get("by_owner_at_peak") or {}
            top = m.get("top_owner_at_peak")
            share = owners.get(top, 0) / w.peak if top and w.peak else None
            spread = (m.get("repeats") or {}).get("peak_heap_bytes") or {}
            noise = (f"{100 * (spread['max'] - spread['min']) / spread['median']:.2f} % over {spread['n']}"
                     if spread.get("n", 0) > 1 and spread.get("median") else "1 pass")
            same = m.get("outcome_matches")
            rows.append([
                w.record.id, str(w.record.days), _mb(w.peak), md.plain(m.get("peak_rss_mb")),
                f"{w.peak / MB / w.record.days:,.1f}" if w.record.days else "–",
                f"{top} ({100 * share:.0f} %)" if share is not None else "–", _mb(m.get("retained_bytes")),
                _mb(m.get("total_allocated_bytes")), noise, "–" if same is None else ("yes" if same else "**no**"),
                "–" if m.get("cost_ratio") is None else f"{m['cost_ratio']:.2f}×",
            ])  # fmt: skip
        tools = sorted({f"{w.memory.get('tool')} {w.memory.get('tool_version')}" for w in covered})
        pools = sorted({str(w.memory.get("arrow_memory_pool")) for w in covered})
        intro = (
            f"One more fresh worker per covered window runs the same backtest under {', '.join(tools)} (no yappi). "
            "**Peak heap**: memray's high-water mark, the most bytes allocated and not yet freed at any moment of the "
            "backtest call, every thread. **Peak RSS**: that worker's `ru_maxrss` (the whole process, interpreter and "
            "imports included). **MB per trading day**: peak heap / trading days. **Top owner**: the owner class of the "
            "allocation stacks holding most at the peak (the time findings' rule). **Retained**: still allocated when "
            "`run_backtest` returned. **Allocated**: every byte allocated, freed or not. **Noise**: (max - min) / median "
            "of the peak heap over the memory passes of the window's repeats. **Same backtest**: the memory pass's "
            "fingerprint equals the profiled pass's. **Cost**: memory pass wall / the cross-check's unprofiled wall. "
            f"Arrow's memory pool in these passes: {', '.join(pools)} (its default pool reserves memory ahead of use, "
            "which memray would count as allocated; docs/memory.md)."
        )
        table = md.table(["run", "trading days", "peak heap MB", "peak RSS MB", "MB per trading day", "top owner at peak",
                          "retained MB", "allocated MB", "noise", "same backtest", "cost"], rows, [1, 2, 3, 4, 6, 7])
        parts = [head, intro, table, self._growth(analysis), *filter(None, [failures])]
        if skipped:
            parts.append(f"Windows without a memory pass: {'; '.join(skipped)}.")
        return "\n\n".join(parts)

    @staticmethod
    def _growth(analysis: Analysis) -> str:
        covered = windows(analysis)
        fit = heap_growth(analysis)
        if fit is None:
            return "A growth fit needs memory passes of at least two window lengths."
        longest = max(covered, key=lambda w: (w.record.days, w.peak))
        target = 2 * longest.record.days
        at_target = projected(fit, target)
        shape = "faster than the window" if fit.slope > 1.15 else "no faster than the window"
        return (f"Peak heap grows as **days^{fit.slope:.2f}** over {fit.points} windows (log-log least squares, "
                f"R² {fit.r_squared:.2f}), {shape}: about {at_target / MB:,.0f} MB at {target} trading days "
                f"(twice {longest.record.id}), if the power law holds beyond the longest covered window.")
