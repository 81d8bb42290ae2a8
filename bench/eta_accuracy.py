"""How close the supervisor's whole-selection ETA is when a finished plan is run again.

Runs a small plan (four week windows and one month, pandas_synthetic) once, resets it (the
results move to ``history``), then runs it again with plain progress lines and compares the
ETA the supervisor had for the whole selection before the first worker reported anything
(the estimator the display uses, built from round one) with the real duration of round two.
Goal from the issue: within 25 % on a quiet machine. A busy machine makes round two slower
or faster than round one, and the ETA cannot know that: the load average is printed with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import _common as c
import orjson

RUNS = [
    ("wk1", "2025-01-20", "2025-01-27", "week"),
    ("wk2", "2025-03-10", "2025-03-17", "week"),
    ("wk3", "2025-07-14", "2025-07-21", "week"),
    ("wk4", "2025-10-13", "2025-10-20", "week"),
    ("mo", "2025-02-01", "2025-03-01", "month"),
]
GOAL = 0.25


def supervise(plan: object, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor", *args, "--plan", str(plan)],
        capture_output=True, text=True, env=c.child_env(), check=True,
    )
    return time.perf_counter() - t0, proc.stdout


def main() -> int:
    p = c.parser(__doc__)
    args = p.parse_args()
    c.header("eta_accuracy", "4 week windows + 1 month, MesMomentum sleeptime 30M, pandas_synthetic; run, reset, run again")
    from supervisor.eta import Estimator, duration
    from supervisor.plan import PlanStore

    with c.temp_dir("eta") as tmp:
        plan = c.make_plan(tmp, [c.short_run(*r) for r in RUNS], meta={"strategy_parameters": {"sleeptime": "30M"},
                                                                        "phase1_mode": "single"})
        if c.smoke_stop(args, f"a {len(RUNS)}-window plan; estimator {Estimator.__name__}, {duration(0)}"):
            return 0
        first, _ = supervise(plan, "--quiet")
        supervise(plan, "reset")
        document = orjson.loads(plan.read_bytes())
        estimate, unknown = Estimator.from_plan(document).total(document["runs"])
        load_before = os.getloadavg()[0]
        second, console = supervise(plan, "--progress-interval", "5")
        load_after = os.getloadavg()[0]
        done = sum(1 for r in PlanStore(plan).read()["runs"] if r["status"] == "done")
    print(console)
    error = estimate / second - 1.0
    c.table(
        ["round 1 s", "ETA for round 2", "round 2 s", "ETA error", "no estimate", "load 1 min before/after"],
        [[f"{first:.1f}", duration(estimate), f"{second:.1f}", f"{100 * error:+.1f} %", str(unknown),
          f"{load_before:.2f} / {load_after:.2f}"]],
    )
    ok = c.goal(
        "eta_accuracy rerun",
        f"ETA {estimate:.1f} s vs real {second:.1f} s ({100 * error:+.1f} %), {done}/{len(RUNS)} done, "
        f"load {load_before:.2f}->{load_after:.2f}",
        f"within {100 * GOAL:.0f} %",
        abs(error) <= GOAL and unknown == 0,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
