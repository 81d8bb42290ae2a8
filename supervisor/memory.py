"""The memory pass, supervisor side: which windows it covers, and what its capture says.

The worker runs the window once more under memray (``worker/memory.py``) and leaves the capture
file; this module reads it after the worker has exited (so reading costs the worker nothing),
keeps memray's own HTML flame graph beside it, and builds the ``memory`` object of
``results[id]``. Files, beside the profile: ``<stem>.memory.memray.bin`` (the capture),
``<stem>.memory.sites.json`` (bytes by site and owner) and ``<stem>.memory.flamegraph.html``.
Every allocation stack is placed by the same rule as a py-spy sample
(:func:`common.attribution.place`: the innermost frame of the strategy's or LumiBot's code is the
*site*; the owner class of the whole stack says whose library physically allocated), so the
memory findings read like the time findings.

Figures (all of the backtest call only, every thread):

* ``peak_heap_bytes``: memray's high-water mark, the most bytes allocated and not yet freed at any
  moment (tracemalloc: its own peak counter);
* ``total_allocated_bytes``: every byte allocated, freed or not (memray's statistics);
* ``retained_bytes``: still allocated when ``run_backtest`` returned (memray's "leaked" records,
  taken when the tracker stops; tracemalloc: a snapshot at that moment);
* ``peak_rss_mb``: the memory-pass worker's ``ru_maxrss``: the whole process, imports included.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from common.attribution import LINES_KEPT, PATHS_KEPT, place
from common.collapsed import Frame
from common.fingerprints import differences
from common.owners import owner_of_stack
from common.profiles import module_tail
from common.stats import Spread
from common.windows import window_days
from supervisor.plan import Plan, Run, phase_of, run_dates

DEFAULT = "short"
SHORT_DAYS = 31
"""``short`` covers the Phase 1 windows of at most this many calendar days (the weeks and months
of the default plan): enough lengths for a growth fit, and ``make profile`` stays under 12 minutes."""
SITES_KEPT = 40
FLAMEGRAPH_SECONDS = 300.0
MEASURED = {
    "memray": "memray high-water mark (every thread, Python frames, Arrow on the system allocator)",
    "tracemalloc": "tracemalloc (memray could not run): peak counter and a snapshot at the end; no sites at the peak",
}


def mode_of(plan: Plan) -> str:
    """``meta.memory`` (checked by the plan schema): short, scaling, all or off."""
    return str(plan["meta"].get("memory", DEFAULT))


def covers(plan: Plan, run: Run) -> str:
    """Why ``run`` gets no memory pass, or '' when it gets one. Phase 0's probes never do: they
    measure the cache, and a third pass would disturb the warm probe's folder."""
    mode = mode_of(plan)
    if phase_of(run) == "phase0":
        return "Phase 0 probes have no memory pass"
    if mode == "off":
        return "meta.memory is off"
    if mode == "short":
        start, end = run_dates(run)
        if (end - start).days > SHORT_DAYS:
            return f"meta.memory is short: windows of at most {SHORT_DAYS} days ('scaling' or 'all' covers this one)"
    if mode == "scaling":
        first = next(r for r in plan["runs"] if phase_of(r) == "phase1" and r["label"] == run["label"])
        if first["id"] != run["id"]:
            return f"meta.memory is scaling: one window per label ({first['id']} is this label's)"
    return ""


def not_run(reason: str) -> dict[str, Any]:
    return {"status": "not run", "reason": reason}


# -- reading a capture ------------------------------------------------------------------------
@dataclass
class _Site:
    peak_bytes: int = 0
    peak_allocations: int = 0
    retained_bytes: int = 0
    lines: Counter[int] = field(default_factory=Counter)
    paths: Counter[tuple[str, tuple[tuple[str, str, int, int], ...]]] = field(default_factory=Counter)
    spent_in: Counter[str] = field(default_factory=Counter)


@dataclass
class Placement:
    """A capture's bytes by owner class and by site, at the peak and at the end."""

    owners_at_peak: Counter[str] = field(default_factory=Counter)
    owners_retained: Counter[str] = field(default_factory=Counter)
    unplaced_at_peak: int = 0
    sites: dict[tuple[str, int, str], _Site] = field(default_factory=dict)

    def add(self, chain: list[Frame], size: int, count: int, *, retained: bool) -> None:
        """One allocation record (its stack outermost first): at the peak, or still held at the end."""
        owner = str(owner_of_stack([(f.file, f.name) for f in chain]))
        (self.owners_retained if retained else self.owners_at_peak)[owner] += size
        strategy_thread = any(module_tail(f.file) == "lumibot/strategies/strategy_executor.py" for f in chain)
        placed = place(chain, strategy_thread)
        if placed is None:
            self.unplaced_at_peak += 0 if retained else size
            return
        site = self.sites.setdefault(placed.key, _Site())
        if retained:
            site.retained_bytes += size
            return
        site.peak_bytes += size
        site.peak_allocations += count
        site.lines[placed.line] += size
        site.paths[placed.path] += size
        site.spent_in[owner] += size

    def sites_json(self) -> list[dict[str, Any]]:
        ranked = sorted(self.sites.items(), key=lambda kv: (kv[1].peak_bytes, kv[1].retained_bytes), reverse=True)
        return [
            {"function": name, "file": file, "first_line": first, "peak_bytes": s.peak_bytes,
             "peak_allocations": s.peak_allocations, "retained_bytes": s.retained_bytes,
             "lines": [[line, n] for line, n in s.lines.most_common(LINES_KEPT)],
             "paths": [{"anchor": a, "bytes": n, "steps": [list(st) for st in steps]}
                       for (a, steps), n in s.paths.most_common(PATHS_KEPT)],
             "spent_in": dict(s.spent_in)}
            for (file, first, name), s in ranked[:SITES_KEPT]
        ]  # fmt: skip


def _chain(trace: Iterable[tuple[str, str, int]]) -> list[Frame]:
    """memray's stack (innermost first, ``(function, file, line)``) as frames outermost first."""
    return [Frame(name, file, int(line)) for name, file, line in reversed(list(trace))]


def read_memray(capture: Path) -> dict[str, Any]:
    from memray import FileReader
    from memray._memray import compute_statistics

    placement = Placement()
    with FileReader(str(capture)) as reader:
        peak = int(reader.metadata.peak_memory)
        for record in reader.get_high_watermark_allocation_records(merge_threads=True):
            placement.add(_chain(record.stack_trace()), int(record.size), int(record.n_allocations), retained=False)
        retained = 0
        for record in reader.get_leaked_allocation_records(merge_threads=True):
            retained += int(record.size)
            placement.add(_chain(record.stack_trace()), int(record.size), int(record.n_allocations), retained=True)
    stats = compute_statistics(str(capture), num_largest=1)
    return {"peak_heap_bytes": peak, "total_allocated_bytes": int(stats.total_memory_allocated),
            "allocations": int(stats.total_num_allocations), "retained_bytes": retained, **_owners(placement)}


def read_tracemalloc(capture: Path, peak: int | None) -> dict[str, Any]:
    import tracemalloc

    placement = Placement()
    retained = 0
    for stat in tracemalloc.Snapshot.load(str(capture)).statistics("traceback"):
        retained += stat.size
        # tracemalloc's frames carry no function names: the site is keyed by its file and the line's function from the source
        chain = [Frame(_function_at(f.filename, f.lineno), f.filename, f.lineno) for f in stat.traceback]  # oldest first
        placement.add(chain, stat.size, stat.count, retained=True)
    return {"peak_heap_bytes": peak, "total_allocated_bytes": None, "allocations": None, "retained_bytes": retained,
            **_owners(placement), "sites_at_peak": "not measured: tracemalloc keeps no record of the peak's allocations"}


@lru_cache(maxsize=65536)
def _function_at(file: str, line: int) -> str:
    """The name of the innermost ``def`` above ``line`` in ``file`` (tracemalloc records no names)."""
    lines = _source(file)[:line]
    for text in reversed(lines):
        stripped = text.lstrip()
        if stripped.startswith(("def ", "async def ")):
            return stripped.split("def ", 1)[1].split("(", 1)[0]
    return "<module>"


@lru_cache(maxsize=1024)
def _source(file: str) -> tuple[str, ...]:
    with contextlib.suppress(OSError):
        return tuple(Path(file).read_text(encoding="utf-8", errors="replace").splitlines())
    return ()


def _owners(placement: Placement) -> dict[str, Any]:
    at_peak = placement.owners_at_peak
    top = max(at_peak.items(), key=lambda kv: kv[1], default=(None, 0))[0]
    return {"by_owner_at_peak": dict(at_peak), "by_owner_retained": dict(placement.owners_retained),
            "top_owner_at_peak": top, "unplaced_at_peak_bytes": placement.unplaced_at_peak,
            "_sites": placement.sites_json()}


def flamegraph(capture: Path, target: Path) -> str | None:
    """memray's own HTML flame graph of the peak; None, or why it could not be written."""
    target.unlink(missing_ok=True)
    try:
        proc = subprocess.run([sys.executable, "-m", "memray", "flamegraph", "--force", "-o", str(target), str(capture)],
                              capture_output=True, text=True, timeout=FLAMEGRAPH_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"memray flamegraph failed: {exc}"
    return None if proc.returncode == 0 and target.exists() else f"memray flamegraph exited {proc.returncode}: " + (
        proc.stderr.strip().splitlines() or [""])[-1]


def summarize(answer: dict[str, Any], output_dir: Path, run_id: str, stem: str) -> tuple[dict[str, Any], list[str]]:
    """The pass's figures from its capture, its sites written to ``<stem>.sites.json``; plus notes."""
    capture_info = answer.get("memory") or {}
    tool = capture_info.get("tool")
    # the capture's path among the files: an executor on another node rewrites those to where it landed them
    where = (answer.get("files") or {}).get("memory_capture") or capture_info.get("capture")
    capture = Path(where) if where else None
    base = {k: capture_info.get(k) for k in ("tool", "tool_version", "fallback_reason", "arrow_memory_pool")}
    base["measured"] = MEASURED.get(str(tool), str(tool))
    if capture is None or not capture.exists():
        return {**base, "status": "error", "reason": "the worker left no capture file"}, ["memory pass left no capture"]
    t0 = time.perf_counter()
    try:
        figures = read_memray(capture) if tool == "memray" else read_tracemalloc(capture, capture_info.get("peak_heap_bytes"))
    except Exception as exc:  # an unreadable capture is a failed memory pass, never a failed run
        why = f"reading {capture.name} failed: {type(exc).__name__}: {exc}".splitlines()[0]
        return {**base, "status": "error", "reason": why}, [f"memory pass: {why}"]
    sites = figures.pop("_sites")
    sites_path = output_dir / f"{stem}.sites.json"
    sites_path.write_text(json.dumps({"run_id": run_id, "tool": tool, "peak_heap_bytes": figures["peak_heap_bytes"],
                                      "retained_bytes": figures["retained_bytes"], "sites": sites}, indent=1))
    notes = []
    html = output_dir / f"{stem}.flamegraph.html"
    problem = flamegraph(capture, html) if tool == "memray" else "tracemalloc has no flame graph"
    if problem and tool == "memray":
        notes.append(f"memory pass: {problem}")
    return {**base, "status": "done", **figures, "capture": str(capture), "sites": str(sites_path),
            "flamegraph": None if problem else str(html), "flamegraph_problem": problem,
            "read_seconds": round(time.perf_counter() - t0, 3)}, notes


def same_backtest(profiled: dict[str, Any] | None, memory: dict[str, Any] | None) -> tuple[bool, list[str]]:
    """Did the memory pass run the profiled pass's backtest (fingerprint, order ids aside)?"""
    found = differences(profiled, memory)
    return not found, found


# -- the entry's memory, over its passes --------------------------------------------------------
def combine(passes: list[dict[str, Any]], unprofiled_wall: Any, run: Run) -> dict[str, Any] | None:
    """The entry's ``memory`` from its passes' (the one with the median peak heap), its spread over
    repeats, MB per trading day and the cost against the entry's unprofiled wall; None if no pass had one."""
    found: list[dict[str, Any]] = [p["memory"] for p in passes if isinstance(p.get("memory"), dict)]
    if not found:
        return None
    done = [m for m in found if m.get("status") == "done" and isinstance(m.get("peak_heap_bytes"), int)]
    if not done:
        return dict(found[0])
    ordered = sorted(done, key=lambda m: m["peak_heap_bytes"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    days = window_days(*run_dates(run))
    chosen["trading_days"] = days
    chosen["mb_per_trading_day"] = round(chosen["peak_heap_bytes"] / 1024 / 1024 / days, 3) if days else None
    chosen["repeats"] = {name: Spread.of([float(m[name]) for m in done]).as_dict()
                         for name in ("peak_heap_bytes", "peak_rss_mb", "retained_bytes")
                         if all(isinstance(m.get(name), int | float) for m in done)}
    wall = chosen.get("wall_seconds_total")
    if isinstance(unprofiled_wall, int | float) and unprofiled_wall > 0 and isinstance(wall, int | float):
        chosen["cost_ratio"] = round(wall / unprofiled_wall, 3)
        chosen["cost_measured"] = "memory pass wall / the cross-check's unprofiled wall, both backtest seconds"
    else:
        chosen["cost_ratio"] = None
        chosen["cost_measured"] = "not measured: no unprofiled pass (the cross-check is off or did not run)"
    chosen["passes"] = len(found)
    return chosen
