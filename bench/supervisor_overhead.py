"""What the supervisor adds on top of the worker, and what the worker adds on top of LumiBot.

The design spends a fresh process per run for isolation; that is worth it only if the
supervisor's own bookkeeping (plan lock/rewrite per state change, psutil, git revision,
result building) stays small next to a backtest. Goal: at most 0.25 s per run beyond the
worker's own start and backtest. Its quick commands (``--help``, ``status``) must feel
instant (< 0.3 s) and must not drag in LumiBot, pandas or polars.

Per repetition, rotated:
  a  ``python -m supervisor --plan TEMP`` over K short windows (wall of the whole process)
  b  the same K RunSpecs (built by supervisor.specs, as the supervisor builds them) sent to ``python -m worker`` one after another
  c  K bare backtests, one fresh process each (bench/_bare_backtest.py plain: no yappi, no worker)
(a-b)/K is the supervisor's cost per run, (b-c)/K the worker's (yappi + profile files + start-up).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import _common as c

K_WINDOWS = [  # one trading day each: LumiBot stops at midnight starting the end date
    ("2024-09-03", "2024-09-04"),
    ("2024-09-04", "2024-09-05"),
    ("2024-09-05", "2024-09-06"),
    ("2024-09-06", "2024-09-07"),
]
PARAMS = {"sleeptime": "60M"}
PER_RUN_GOAL = 0.25
QUICK_GOAL = 0.3
HEAVY = ("lumibot", "pandas", "polars", "numpy", "databento", "yappi", "git", "matplotlib")


def supervisor_once(folder: Path, k: int) -> float:
    """One whole supervisor process over a fresh K-run plan; its wall time, less the report rewrites it printed."""
    runs = [c.short_run(f"w{i}", *K_WINDOWS[i % len(K_WINDOWS)]) for i in range(k)]
    plan = c.make_plan(folder, runs, meta={"strategy_parameters": PARAMS})
    t0 = time.perf_counter()
    proc = subprocess.run(
        [c.PY, "-m", "supervisor", "--plan", str(plan)], cwd=folder, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"supervisor exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    # The report rewritten after each run has its own goal (bench/report_rewrite.py): left out here.
    return seconds - sum(float(m) for m in re.findall(r"rewritten in ([0-9.]+) s", proc.stdout))


def workers_once(folder: Path, k: int, mode: str, smoke: bool = False) -> float:
    """K fresh processes in a row, ``worker`` or bare ``plain``; total wall from the first spawn
    (under ``--smoke`` only the K specs are built)."""
    runs = [c.short_run(f"w{i}", *K_WINDOWS[i % len(K_WINDOWS)]) for i in range(k)]
    plan = c.make_plan(folder, runs, meta={"strategy_parameters": PARAMS})
    specs = c.specs_for(plan, profile=True)
    env = c.child_env()
    if smoke:
        return 0.0
    t0 = time.perf_counter()
    for spec in specs:
        if mode == "worker":
            c.run_worker_direct(spec, env)
        else:
            c.run_bare(spec, "plain", env)
    return time.perf_counter() - t0


def quick_command(args: list[str], n: int) -> c.Series:
    series = c.Series(" ".join(["supervisor", *args]).replace(str(c.REPO_PLAN), "profiling_plan.json"))
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([c.PY, "-m", "supervisor", *args], cwd=c.ROOT, capture_output=True, check=True)
        series.add(time.perf_counter() - t0)
    return series


def heavy_imports(args: list[str], cwd: Path) -> tuple[list[str], float]:
    """Top-level packages from HEAVY that ``-X importtime`` shows, and the summed import time (s)."""
    proc = subprocess.run(
        [c.PY, "-X", "importtime", "-m", "supervisor", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    found: set[str] = set()
    total_us = 0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
        if not m:
            continue
        if len(m.group(3)) <= 1:  # top-level entries only, for the cumulative total
            total_us += int(m.group(2))
        top = m.group(4).split(".")[0]
        if top in HEAVY:
            found.add(top)
    return sorted(found), total_us / 1e6


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--pairs", type=int, help="repetitions (default 4, --quick 2)")
    p.add_argument("-k", type=int, default=4, help="runs per repetition (default 4)")
    args = p.parse_args()
    pairs = args.pairs or (2 if args.quick else 4)
    k = args.k
    c.header(
        "supervisor_overhead",
        f"K={k} one-day windows, pandas_synthetic, sleeptime {PARAMS['sleeptime']}; {pairs} repetitions of a, b, c",
    )
    a, b, cc = c.Series("a supervisor (K runs)"), c.Series("b K direct workers"), c.Series("c K bare backtests")
    ok = True
    with c.temp_dir("supervisor") as tmp:
        if c.smoke_stop(args, f"{k} worker specs"):
            workers_once(tmp / "smoke", k, "worker", smoke=True)
            return 0
        for i in range(pairs):
            jobs = [
                lambda i=i: a.add(supervisor_once(tmp / f"a{i}", k)),
                lambda i=i: b.add(workers_once(tmp / f"b{i}", k, "worker")),
                lambda i=i: cc.add(workers_once(tmp / f"c{i}", k, "plain")),
            ]
            for job in c.rotate(jobs, i):
                job()
            print(f"  repetition {i + 1}/{pairs}: a={a.values[-1]:.2f} b={b.values[-1]:.2f} c={cc.values[-1]:.2f} s", flush=True)
        print()
        c.series_table([a, b, cc])
        sup = c.differences(a, b, "(a-b)/K supervisor per run", k)
        wrk = c.differences(b, cc, "(b-c)/K worker per run", k)
        print(f"per-run added cost, {pairs} paired repetitions")
        c.series_table([sup, wrk])
        ok &= c.goal(
            "supervisor_overhead per run",
            f"(a-b)/K median {sup.median:.3f} s (min {sup.min:.3f}, max "
            f"{sup.max:.3f}; worker adds (b-c)/K {wrk.median:.3f} s); {pairs} pairs",
            f"<= {PER_RUN_GOAL} s",
            sup.median <= PER_RUN_GOAL,
        )

        n = 5 if args.quick else 10
        quick = [quick_command(["--help"], n), quick_command(["status", "--plan", str(c.REPO_PLAN)], n)]
        print(f"quick commands, {n} runs each")
        c.series_table(quick)
        for s in quick:
            ok &= c.goal(
                f"quick command '{s.name}'",
                f"median {s.median:.3f} s (max {s.max:.3f}; n={n})",
                f"< {QUICK_GOAL} s",
                s.median < QUICK_GOAL,
            )

        done = c.make_plan(tmp / "done", [{**c.short_run("x", *K_WINDOWS[0]), "status": "done"}])
        checks = [
            ("--help", ["--help"], c.ROOT),
            ("status", ["status", "--plan", str(c.REPO_PLAN)], c.ROOT),
            ("run (nothing pending)", ["--plan", str(done)], done.parent),
        ]
        rows = []
        for name, argv, cwd in checks:
            found, seconds = heavy_imports(argv, cwd)
            rows.append([name, f"{seconds:.3f}", ", ".join(found) or "-"])
            bad = [m for m in found if m in ("lumibot", "pandas", "polars")]
            ok &= c.goal(
                f"no heavy imports '{name}'",
                f"imports {', '.join(found) or 'none of ' + '/'.join(HEAVY)}",
                "no lumibot/pandas/polars",
                not bad,
            )
        print()
        print("python -X importtime -m supervisor ...: summed top-level import time and heavy packages seen")
        c.table(["command", "import s", "heavy packages"], rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
