"""What the live progress side channel costs a one-month backtest.

Two variants of the same profiled worker run, rotated within every pair, each a fresh
process: ``progress=True`` (what ships: the iteration counter and a ``progress.json`` write
about once a second) and ``progress=False``. Paired wall ratios on a shared 2-core machine
scatter by a few percent, more than the cost itself, so the goal is judged on the direct
figure: the seconds yappi attributes to the progress code (the writer's ``tick``, which
includes every file write, plus the wrapper's own self time) as a share of the run's wall.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import _common as c

WINDOW = ("2025-09-01", "2025-09-30")
PARAMS = {"sleeptime": "15M"}
GOAL_SHARE = 0.01


def progress_seconds(funcs_csv: str) -> float:
    """Seconds inside the profile spent on progress: the writer's tick plus the wrapper's own code."""
    total = 0.0
    with Path(funcs_csv).open(newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["module"].endswith("worker/progress.py"):
                continue
            if row["name"].endswith("ProgressWriter.tick"):
                total += float(row["cumulative_seconds"])
            elif row["name"].endswith("counted_iteration"):
                total += float(row["self_seconds"])
    return total


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--pairs", type=int, help="pairs (default 3, --quick 2)")
    args = p.parse_args()
    pairs = args.pairs or (2 if args.quick else 3)
    c.header("progress_overhead", f"window {WINDOW[0]}..{WINDOW[1]}, MesMomentum sleeptime {PARAMS['sleeptime']}, "
             f"pandas_synthetic, profiled, {pairs} pairs")
    with c.temp_dir("progress") as tmp:
        plan = c.make_plan(tmp, [c.short_run("month", *WINDOW, label="month")],
                           meta={"strategy_parameters": PARAMS, "data_source": c.SYNTHETIC})
        on = c.specs_for(plan, profile=True)[0]
        off = dataclasses.replace(on, progress=False)
        env = c.child_env()
        if c.smoke_stop(args, "the profiled month spec with progress on and off"):
            return 0
        with_p, without_p, share = c.Series("with progress"), c.Series("without progress"), c.Series("progress share")

        def run_on() -> None:
            got = c.run_worker_direct(on, env).answer
            with_p.add(got["wall_seconds_total"])
            share.add(progress_seconds(got["files"]["top_functions_csv"]) / got["wall_seconds_total"])

        def run_off() -> None:
            without_p.add(c.run_worker_direct(off, env).answer["wall_seconds_total"])

        for i in range(pairs):
            for fn in c.rotate([run_on, run_off], i):
                fn()
            print(f"  pair {i + 1}/{pairs}: with {with_p.values[-1]:.2f} s, without {without_p.values[-1]:.2f} s, "
                  f"progress code {100 * share.values[-1]:.3f} % of wall", flush=True)
    c.series_table([with_p, without_p])
    ratio = c.ratios(with_p, without_p, "with / without")
    c.series_table([ratio], fmt="{:.3f}", unit="x")
    ok = c.goal(
        "progress_overhead one month",
        f"progress code {100 * share.median:.3f} % of wall (max {100 * share.max:.3f} %) under yappi; "
        f"paired wall ratio with/without median {ratio.median:.3f}x (min {ratio.min:.3f}, max {ratio.max:.3f}), {pairs} pairs",
        f"< {100 * GOAL_SHARE:g} % of wall",
        share.max < GOAL_SHARE,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
