"""Repeats: N fresh worker processes per window, and one result that keeps every pass.

One wall time of a profiled backtest on a shared machine is one draw from a wide
distribution; pyperf runs 20 processes, LumiBot's maintainers take the median of three.
The supervisor runs pass 1 of every window it holds, then pass 2 of each, and so on
(interleaved, so a burst of load on the machine lands on several windows rather than on
every pass of one), and combines the passes here: the median wall time is the result, the
spread is kept beside it, and the backtests' fingerprints must match.
"""

from __future__ import annotations

import statistics
from typing import Any

from common.fingerprints import differences
from common.stats import Spread
from supervisor.plan import Plan, Run, phase_of

DEFAULT_PHASE0_REPEATS = 3
DEFAULT_REPEATS = 1
#: Windows a supervisor takes at once to interleave their repeats. More would hold entries
#: other supervisors on the same plan could run, and delay every window's result.
INTERLEAVE = 3

#: What the result keeps of each pass (the median pass's full record is the result itself).
_PASS_FIELDS = (
    "status", "wall_seconds_total", "cpu_seconds", "worker_process_seconds", "cache_state", "gateway_requests",
    "gateway_requests_by_schema", "top_functions_csv", "top_threads_csv", "pstat", "callgrind", "stderr_log",
    "fingerprint", "iterations", "peak_rss_mb", "notes",
)


def repeats_for(plan: Plan, run: Run, override: int | None) -> int:
    """Passes for this entry: ``--repeats``, else ``meta.phase0_repeats`` (3) or ``meta.repeats`` (1)."""
    if override:
        return override
    meta = plan["meta"]  # checked by the plan schema: whole numbers from 1
    if phase_of(run) == "phase0":
        return int(meta.get("phase0_repeats", DEFAULT_PHASE0_REPEATS))
    return int(meta.get("repeats", DEFAULT_REPEATS))


def pass_stem(run_id: str, number: int) -> str:
    """Pass 1 writes the spec's ``<id>.*`` files; pass k writes ``<id>.r<k>.*``."""
    return run_id if number == 1 else f"{run_id}.r{number}"


def median_pass(walls: list[float | None]) -> int:
    """Index of the pass whose wall time is the median (the lower middle for an even count)."""
    timed = sorted((w, i) for i, w in enumerate(walls) if isinstance(w, float))
    return timed[(len(timed) - 1) // 2][1] if timed else 0


def mismatches(passes: list[dict[str, Any]]) -> list[str]:
    """``pass k: field a → b`` for every done pass whose fingerprint differs from the first done one."""
    done = [(i + 1, p) for i, p in enumerate(passes) if p.get("status") == "done"]
    if len(done) < 2:
        return []
    first_number, first = done[0]
    found = []
    for number, other in done[1:]:
        diff = differences(first.get("fingerprint"), other.get("fingerprint"))
        if diff:
            found.append(f"pass {number} vs pass {first_number}: {', '.join(diff)}")
    return found


def combine(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``results[id]`` from its passes' results (in pass order).

    The median pass's record is the result (its profile files are the ones the report
    tables read), with ``wall_seconds_total`` and ``cpu_seconds`` the medians over the done
    passes, ``repeats`` their spread and ``passes`` every pass. The entry is ``done`` only if
    every pass is; differing fingerprints are a finding, noted and kept in ``fingerprints_match``.
    """
    walls = [p.get("wall_seconds_total") if p.get("status") == "done" else None for p in passes]
    chosen = median_pass(walls)
    result = dict(passes[chosen])
    done = [p for p in passes if p.get("status") == "done"]
    spreads: dict[str, Any] = {"n": len(passes), "done": len(done), "median_pass": chosen + 1}
    for name in ("wall_seconds_total", "cpu_seconds"):
        values = [float(p[name]) for p in done if isinstance(p.get(name), int | float)]
        if values:
            spreads[name] = Spread.of(values).as_dict()
            result[name] = statistics.median(values)
    differ = mismatches(passes)
    if len(passes) > 1:
        failed = [f"pass {i + 1}: {p.get('notes') or 'error'}" for i, p in enumerate(passes) if p.get("status") != "done"]
        summary = f"median of {len(done)} of {len(passes)} passes (pass {chosen + 1}'s profile)"
        notes = [*failed, summary, *sorted({p["notes"] for p in done if p.get("notes")})]
        if differ:
            notes.append("backtest results differ between passes of the same window: " + "; ".join(differ))
        result["notes"] = "; ".join(notes)
        result["status"] = "error" if failed else "done"
    result["repeats"] = spreads
    result["fingerprints_match"] = not differ
    result["passes"] = [{"pass": i + 1, **{k: p.get(k) for k in _PASS_FIELDS}} for i, p in enumerate(passes)]
    return result
