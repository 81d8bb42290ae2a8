"""Where the wall time of a whole plan goes: backtest, worker around it, supervisor around that.

A user waits for the whole plan, not for one backtest. This splits that wait into
  backtest     sum of wall_seconds_total (what the profiles describe)
  worker       sum of worker_process_seconds minus the backtest: interpreter and LumiBot
               start-up, data-source preparation, stats extraction, profile files, answer
  sampled      the cross-check: its unprofiled passes under py-spy (worker process seconds) and
               the comparison, flame graph and CSV the supervisor then writes (compare_seconds)
  supervisor   supervisor wall minus the worker processes: plan locking and rewrites,
               spawning, gateway checks, result building
Goals: the supervisor adds <= 0.25 s per run (as in supervisor_overhead); the worker's time
outside the backtest is <= 10 % of all worker time over the plan, and <= 25 % in any one run
(a week window must not be dominated by fixed costs).

Default: copy profiling_plan.json into a temp folder and run it with ``python -m supervisor``
(offline DataBento gateway). ``--from-results PLAN`` only reads an existing plan (never writes
it); then the supervisor wall is estimated from the runs' started/finished stamps (1 s steps;
start-up and gateway start before the first claim are not seen) unless ``--supervisor-wall`` gives it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import _common as c
import orjson

SUPERVISOR_GOAL = 0.25


def stamp(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def run_plan(folder: Path, extra: list[str]) -> tuple[Path, float]:
    """The repo plan copied to ``folder`` as a new round (output under it), run to the end; its wall time."""
    from supervisor.plan import encode, pristine

    plan = folder / "profiling_plan.json"
    plan.write_bytes(encode(pristine(orjson.loads(c.REPO_PLAN.read_bytes()))))
    t0 = time.perf_counter()
    proc = subprocess.run([c.PY, "-m", "supervisor", "--plan", str(plan), *extra], cwd=folder, check=False)
    seconds = time.perf_counter() - t0
    print(f"supervisor exited {proc.returncode} after {seconds:.1f} s")
    return plan, seconds


def analyse(plan: dict[str, Any], measured_wall: float | None) -> bool:
    from supervisor.plan import phase_of

    rows: list[list[str]] = []
    phases: dict[str, dict[str, float]] = {}
    spans: dict[str, list[float]] = {}
    shares: list[tuple[str, float]] = []
    unfinished: list[str] = []
    passes = 0
    for run in plan["runs"]:
        result = plan["results"].get(run["id"])
        if run["status"] not in ("done", "error") or not isinstance(result, dict):
            unfinished.append(f"{run['id']} ({run['status']})")
            continue
        wall = result.get("wall_seconds_total") or 0.0
        wps = result.get("worker_process_seconds") or 0.0
        warm = result.get("warmup") or {}
        warm_wall = warm.get("wall_seconds_total") or 0.0
        cross = result.get("sampled_pass") or {}
        sampled = (cross.get("worker_process_seconds") or 0.0) + (cross.get("compare_seconds") or 0.0)
        passes += 1 + bool(warm) + bool(sampled)
        outside = wps - wall
        share = outside / wps if wps else 0.0
        shares.append((run["id"], share))
        phase = phase_of(run)
        acc = phases.setdefault(phase, {"runs": 0, "wps": 0.0, "wall": 0.0, "warm": 0.0, "sampled": 0.0})
        acc["runs"] += 1
        acc["wps"] += wps
        acc["wall"] += wall
        acc["warm"] += warm_wall
        acc["sampled"] += sampled
        begin, end = stamp(run.get("started_utc")), stamp(run.get("finished_utc"))
        if begin is not None and end is not None:
            spans.setdefault(phase, []).extend([begin, end])
        rows.append(
            [
                run["id"],
                run["label"],
                run["status"],
                str(result.get("phase1_mode") or "-"),
                f"{wall:.2f}",
                f"{warm_wall:.2f}" if warm else "-",
                f"{wps:.2f}",
                f"{outside:.2f}",
                f"{share:.0%}",
                str(result.get("iterations") or "-"),
                f"{sampled:.2f}" if sampled else "-",
                str(result.get("profiler_overhead_ratio") or "-"),
                f"{(end or 0) - (begin or 0):.0f}",
            ]
        )
    print("per run (seconds; 'outside' = worker process minus backtest: start-up, prepare, stats, files)")
    c.table(["id", "label", "status", "mode", "backtest", "warm-up", "worker proc", "outside", "share", "iters",
             "sampled proc", "yappi/plain", "span"], rows)
    if unfinished:
        print(f"not finished, left out: {', '.join(unfinished)}")
        print()

    all_times = [t for ts in spans.values() for t in ts]
    estimated = (max(all_times) - min(all_times)) if all_times else 0.0
    supervisor_wall = measured_wall if measured_wall is not None else estimated
    how = "measured" if measured_wall is not None else "estimated from stamps, +-1 s"
    prow: list[list[str]] = []
    tot = {"runs": 0.0, "wps": 0.0, "wall": 0.0, "warm": 0.0, "sampled": 0.0}
    for phase, acc in sorted(phases.items()):
        ts = spans.get(phase, [])
        span = max(ts) - min(ts) if ts else 0.0
        prow.append(
            [
                phase,
                f"{acc['runs']:.0f}",
                f"{span:.0f}",
                f"{acc['wps']:.2f}",
                f"{acc['wall']:.2f}",
                f"{acc['warm']:.2f}",
                f"{acc['sampled']:.2f}",
                f"{acc['wps'] - acc['wall']:.2f}",
            ]
        )
        for key in tot:
            tot[key] += acc[key]
    prow.append(
        [
            "total",
            f"{tot['runs']:.0f}",
            f"{supervisor_wall:.1f} ({how})",
            f"{tot['wps']:.2f}",
            f"{tot['wall']:.2f}",
            f"{tot['warm']:.2f}",
            f"{tot['sampled']:.2f}",
            f"{tot['wps'] - tot['wall']:.2f}",
        ]
    )
    print("per phase (seconds)")
    c.table(
        [
            "phase",
            "runs",
            "supervisor wall",
            "sum worker_process_seconds",
            "sum wall_seconds_total",
            "sum warm-up backtest",
            "sum sampled passes",
            "worker outside backtest",
        ],
        prow,
    )
    if not tot["runs"]:
        return c.goal("whole_plan", "no finished runs", "some finished runs", False)

    # Warm-up / preload passes are separate worker processes whose process time the plan does not
    # record; only their backtest seconds are counted here, so their start-up lands in the gap.
    gap = supervisor_wall - tot["wps"] - tot["warm"] - tot["sampled"]
    per_run = gap / passes
    total_share = (tot["wps"] - tot["wall"]) / tot["wps"] if tot["wps"] else 0.0
    worst_id, worst = max(shares, key=lambda item: item[1])
    ok = c.goal(
        "whole_plan supervisor per run",
        f"(supervisor wall - worker processes - warm-up backtests - sampled passes) / {passes} worker passes = "
        f"{per_run:.3f} s ({how})",
        f"<= {SUPERVISOR_GOAL} s",
        per_run <= SUPERVISOR_GOAL,
    )
    # The issue sets no goal for the share outside the backtest: it is a fixed ~1.5 s a worker
    # (imports, stats, files), so it is large for a week and small for ten months. Reported only.
    print(
        f"worker time outside the backtest: {tot['wps'] - tot['wall']:.1f} s of {tot['wps']:.1f} s = {total_share:.1%}; "
        f"largest share {worst:.0%} in {worst_id}"
    )
    if tot["sampled"]:
        print(f"cross-check: sampled passes took {tot['sampled']:.1f} s of the plan's {supervisor_wall:.1f} s "
              f"({tot['sampled'] / supervisor_wall:.0%}); without them the plan would take about "
              f"{supervisor_wall - tot['sampled']:.1f} s")
    return ok


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--from-results", type=Path, metavar="PLAN", help="read this finished plan instead of running one")
    p.add_argument(
        "--supervisor-wall",
        type=float,
        metavar="SECONDS",
        help="with --from-results: the supervisor's measured wall time, instead of the stamp estimate",
    )
    p.add_argument("--only", metavar="SELECTOR", help="run only this selection of the copied plan (passed on)")
    p.add_argument("--mode", choices=("single", "preload", "two_pass"), help="Phase 1 mode for the copied plan")
    args = p.parse_args()
    if args.from_results:
        c.header("whole_plan", f"reading {args.from_results} (read only)")
        plan = orjson.loads(args.from_results.read_bytes())
        return 0 if analyse(plan, args.supervisor_wall) else 1
    extra = [*(["--only", args.only] if args.only else []), *(["--mode", args.mode] if args.mode else [])]
    c.header("whole_plan", f"running a copy of {c.REPO_PLAN.name} with python -m supervisor {' '.join(extra)}")
    with c.temp_dir("whole") as tmp:
        if args.smoke:
            from supervisor.plan import PlanStore, encode, pristine

            copy = tmp / "profiling_plan.json"
            copy.write_bytes(encode(pristine(orjson.loads(c.REPO_PLAN.read_bytes()))))
            c.smoke_stop(args, f"a valid new-round copy of the repo plan, {len(PlanStore(copy).read()['runs'])} entries")
            return 0
        plan_path, seconds = run_plan(tmp, extra)
        plan = orjson.loads(plan_path.read_bytes())
        return 0 if analyse(plan, seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
