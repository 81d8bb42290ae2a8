"""What one claim plus one result write costs as the plan grows.

The plan file is queue and results log at once, and every state change rewrites it whole
under a lock (read, validate, encode, fsync, replace). That is simple and crash-safe, but its
cost grows with the file; this measures whether it stays negligible next to a backtest.
Goals: < 5 ms per claim+finish at 11 runs (the real plan), < 100 ms at 10,000 runs.

Two states per size, because the file grows as results arrive:
  fresh  every run pending, no results yet (the first claims of a plan)
  late   every other run already done with a full result (the last claims: the largest file)
The result written is built by supervisor.results.build_result plus the fields the session
adds, so it has the real record's shape (~40 fields).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import _common as c
import orjson

SIZES = (11, 1_000, 10_000)
GOALS_MS = {11: 5.0, 10_000: 100.0}


def realistic_result(store: Any, run: dict[str, Any]) -> dict[str, Any]:
    """A result with every field a real one has, built by the supervisor's own code."""
    from supervisor.results import build_result
    from supervisor.runner import Outcome

    folder = store.folder / "profiling"
    answer = {
        "protocol": 1,
        "id": run["id"],
        "ok": True,
        "partial": False,
        "wall_seconds_total": 3.790097779,
        "cpu_seconds": 3.820754132,
        "worker_seconds": 5.3,
        "files": {k: str(folder / f"{run['id']}.{k}") for k in ("top_functions_csv", "top_threads_csv", "pstat", "callgrind")},
        "invariants_in_effect": {
            "plot_price": True,
            "show_live_equity_curve": True,
            "file_logging": True,
            "lookbacks_unchanged": True,
            "log_file": str(folder / "work" / run["id"] / "logs" / "MesMomentum_logs.csv"),
        },
        "parameters_hash": "b5360aecf029d279",
        "iterations": 480,
        "bars_served": 14511,
        "history_calls": 351,
        "peak_rss_mb": 293.1,
        "versions": {
            "python": "3.11.7",
            "lumibot": "4.6.30",
            "yappi": "1.7.6",
            "databento": "0.87.0",
            "pandas": "2.3.3",
            "polars": "2.1.0",
            "numpy": "2.4.6",
        },
        "network_refused": [],
        "cache_files_before": 0,
        "cache_files_after": 2,
    }
    result = build_result(
        store,
        run,
        Outcome(answer, 0, 5.411, pid=7461),
        invariants={"plot_price": True, "show_live_equity_curve": True, "file_logging": True, "lookbacks_unchanged": True},
        git=("fd9af9dd39afde3d51f39326fa830b917da9b33d", False),
        stderr_log=folder / f"{run['id']}.stderr.log",
        notes=[],
        extra={
            "status": "done",
            "attempt": 1,
            "data_source": dict(c.LOCAL_DATABENTO),
            "cache_state": "cold",
            "gateway_requests": 5,
            "gateway_bytes": 382007,
            "gateway_requests_by_schema": {"definition": 1, "metadata.get_dataset_range": 2, "ohlcv-1m": 2},
            "transient_retries": 0,
            "worker_wall_seconds": 3.790097779,
            "phase1_mode": "single",
        },
    )
    return result


def pending_count(n: int, state: str, reps: int) -> int:
    """Runs left to claim: all of them when fresh; a few (at most ``reps``, at least 1) when late."""
    return n if state == "fresh" else max(1, min(reps, n // 100))


def build_plan(folder: Path, n: int, state: str, reps: int) -> tuple[Path, int]:
    """A plan of ``n`` runs; in the ``late`` state all but the last few are done with results."""
    from supervisor.plan import PlanStore

    runs = [
        c.short_run("phase0-cold", "2024-09-01", "2024-09-30", "cache_probe_cold"),
        c.short_run("phase0-warm", "2024-09-01", "2024-09-30", "cache_probe_warm"),
    ]
    runs += [c.short_run(f"wk-{i:05d}", "2025-01-20", "2025-01-26") for i in range(n - 2)]
    plan_path = c.make_plan(folder, runs, meta={"data_source": dict(c.LOCAL_DATABENTO)})
    if state == "late":
        store = PlanStore(plan_path)
        plan = orjson.loads(plan_path.read_bytes())
        for run in plan["runs"][: n - pending_count(n, state, reps)]:
            run.update(status="done", attempts=1, started_utc="2026-11-24T03:27:12Z", finished_utc="2026-11-24T03:27:18Z")
            plan["results"][run["id"]] = realistic_result(store, run)
        plan_path.write_bytes(orjson.dumps(plan, option=orjson.OPT_INDENT_2) + b"\n")
    return plan_path, plan_path.stat().st_size


def fsync_probe(folder: Path) -> float:
    """Milliseconds for two small write+fsync+folder-fsync cycles: the floor of two plan updates.

    fsync latency here depends on what other processes write at the same moment, so it is
    measured right next to every claim+finish and printed beside it.
    """
    t0 = time.perf_counter()
    for _ in range(2):
        target = folder / "fsync-probe"
        with target.open("wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return (time.perf_counter() - t0) * 1e3


def measure(folder: Path, n: int, state: str, reps: int) -> tuple[c.Series, c.Series, c.Series, c.Series, int, int]:
    from supervisor import claims
    from supervisor.claims import Claim, Owner
    from supervisor.plan import PlanStore

    plan_path, size = build_plan(folder, n, state, reps)
    original = plan_path.read_bytes()
    available = pending_count(n, state, reps)
    store = PlanStore(plan_path)
    owner = Owner()
    claim_s, finish_s, both = c.Series("claim_next"), c.Series("finish"), c.Series("claim+finish")
    floor = c.Series("2x fsync probe")
    fields = 0
    for rep in range(reps):
        if rep and rep % available == 0:  # queue drained: put the file back as it was, off the clock
            plan_path.write_bytes(original)
        floor.add(fsync_probe(folder))
        t0 = time.perf_counter()
        claim = claims.claim_next(store, None, owner)
        t1 = time.perf_counter()
        assert isinstance(claim, Claim), f"nothing to claim in a {n}-run plan ({claim!r})"
        result = realistic_result(store, claim.run)
        fields = len(result)
        t2 = time.perf_counter()
        assert claims.finish(store, claim.run["id"], owner, "done", result)
        t3 = time.perf_counter()
        claim_s.add((t1 - t0) * 1e3)
        finish_s.add((t3 - t2) * 1e3)
        both.add((t1 - t0 + t3 - t2) * 1e3)
    return claim_s, finish_s, both, floor, size, fields


def breakdown(folder: Path, n: int, reps: int) -> None:
    """Where one PlanStore.update() spends its time on the largest file: the steps it runs, timed apart."""
    from common.atomicio import atomic_write_bytes
    from supervisor.plan import encode, validate

    plan_path, size = build_plan(folder, n, "late", reps)
    steps = {
        name: c.Series(name)
        for name in ("read bytes", "orjson.loads", "validate", "encode (before)", "encode (after)", "atomic write + fsync")
    }
    for _ in range(reps):
        marks = [time.perf_counter()]
        raw = plan_path.read_bytes()
        marks.append(time.perf_counter())
        plan = orjson.loads(raw)
        marks.append(time.perf_counter())
        validate(plan)
        marks.append(time.perf_counter())
        encode(plan)
        marks.append(time.perf_counter())
        data = encode(plan)
        marks.append(time.perf_counter())
        atomic_write_bytes(plan_path, data)
        marks.append(time.perf_counter())
        for series, begin, end in zip(steps.values(), marks, marks[1:], strict=False):
            series.add((end - begin) * 1e3)
    print(
        f"one PlanStore.update() on the {n:,}-run late plan ({size / 1e6:.1f} MB), steps timed apart, {reps} reps; "
        "claim+finish is two of these"
    )
    c.series_table(list(steps.values()), fmt="{:.1f}", unit="ms")


def main() -> int:
    p = c.parser(__doc__)
    args = p.parse_args()
    reps = {11: 50, 1_000: 20, 10_000: 7} if args.quick else {11: 200, 1_000: 50, 10_000: 15}
    c.header("plan_cost", "claims.claim_next + claims.finish on a temp plan (sidecar lock, validate, encode, fsync, replace)")
    rows: list[list[str]] = []
    verdicts: list[tuple[int, str, c.Series]] = []
    fields = 0
    with c.temp_dir("plan") as tmp:
        if args.smoke:
            *_, both, _floor, size, _fields = measure(tmp / "smoke", SIZES[0], "late", 2)
            c.smoke_stop(args, f"claim+finish on an {SIZES[0]}-run plan ({size / 1e3:.0f} kB): {both.median:.2f} ms")
            return 0
        for n in SIZES:
            for state in ("fresh", "late"):
                cl, fi, both, floor, size, fields = measure(tmp / f"{n}-{state}", n, state, reps[n])
                rows.append(
                    [
                        f"{n:,}",
                        state,
                        f"{size / 1e6:.2f}",
                        str(len(both.values)),
                        f"{cl.median:.2f}",
                        f"{fi.median:.2f}",
                        f"{both.min:.2f}",
                        f"{both.median:.2f}",
                        f"{both.max:.2f}",
                        f"{floor.median:.2f}",
                    ]
                )
                verdicts.append((n, state, both))
                print(f"  {n} runs, {state}: median {both.median:.2f} ms", flush=True)
        print()
        breakdown(tmp / "breakdown", SIZES[-1], 3 if args.quick else 5)
    print(
        f"milliseconds; the result written has {fields} fields; 'fsync floor' is the median of a bare 2x "
        "write+fsync+dir-fsync probe taken before each repetition (disk contention from other processes)"
    )
    c.table(
        ["runs", "state", "file MB", "reps", "claim med", "finish med", "both min", "both med", "both max", "fsync floor"], rows
    )
    ok = True
    for n, state, both in verdicts:
        if n in GOALS_MS:
            ok &= c.goal(
                f"plan_cost {n} runs ({state})",
                f"claim+finish median {both.median:.2f} ms, max {both.max:.2f} ms, n={len(both.values)}",
                f"< {GOALS_MS[n]:g} ms median",
                both.median < GOALS_MS[n],
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
