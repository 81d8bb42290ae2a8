"""``make bench``: run every benchmark in its own process and collect the GOAL lines at the end.

Each benchmark is a script that also runs alone (``python bench/NAME.py --quick``); running
them as separate processes keeps one benchmark's imports and threads from colouring the next
one's start-up figures. The exit code is 1 if any goal was missed or any script failed, so a
regression is visible in CI, but read the tables: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = (
    "profiler_overhead",
    "sampled_overhead",
    "memory_cost",
    "progress_overhead",
    "eta_accuracy",
    "supervisor_overhead",
    "report_rewrite",
    "analysis_phase",
    "plan_cost",
    "gateway_speed",
    "ray_overhead",
    "whole_plan",
)


def arguments(name: str, args: argparse.Namespace) -> list[str]:
    """Per-script arguments. whole_plan is the long one: it reads a finished plan when given one,
    and under --quick runs only the four week windows (single mode) instead of the whole plan."""
    extra = [*(["--quick"] if args.quick else []), *(["--smoke"] if args.smoke else [])]
    if name == "whole_plan":
        if args.from_results:
            return [*extra, "--from-results", str(args.from_results)]
        if args.quick:
            return [*extra, "--only", "week", "--mode", "single"]
    return extra


def main() -> int:
    p = argparse.ArgumentParser(description="Run the lumiprof benchmarks.")
    p.add_argument("--quick", action="store_true", help="fewer repetitions; whole_plan runs the week windows only")
    p.add_argument("--smoke", action="store_true", help="only build each benchmark's plans and specs (what make test runs)")
    p.add_argument("--only", metavar="NAME", choices=SCRIPTS, help="run one benchmark")
    p.add_argument("--from-results", type=Path, metavar="PLAN", help="whole_plan reads this finished plan (read only)")
    args = p.parse_args()
    names = [args.only] if args.only else list(SCRIPTS)
    goals: list[str] = []
    failed: list[str] = []
    t_all = time.perf_counter()
    for name in names:
        cmd = [sys.executable, str(BENCH / f"{name}.py"), *arguments(name, args)]
        print(f"\n### {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert proc.stdout is not None
        own_goals = 0
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("GOAL "):
                goals.append(line.rstrip())
                own_goals += 1
        code = proc.wait()
        print(f"### {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        # Exit 1 with GOAL lines is a missed goal, which they already say; anything else is a crash.
        if code not in (0, 1) or (code == 1 and not own_goals):
            failed.append(f"{name} (exit {code})")
    print(f"\n=== summary ({time.perf_counter() - t_all:.0f} s{', --quick' if args.quick else ''})")
    for line in goals:
        print(line)
    for name in failed:
        print(f"FAILED {name}")
    missed = sum(1 for line in goals if line.endswith("MISS"))
    print(f"{len(goals)} goals: {len(goals) - missed} PASS, {missed} MISS; {len(failed)} script(s) failed")
    return 1 if missed or failed else 0


if __name__ == "__main__":
    sys.exit(main())
