"""What ``--executor ray`` adds per run over the local executor (goal: under 1 s).

A one-node Ray cluster with one profiling slot (tests/raycluster.py, loopback only) runs the
same K one-day windows as the local executor, so both run one pass at a time on the same
machine. Per repetition, rotated:
  a  ``python -m supervisor --executor local`` over K windows
  b  ``python -m supervisor --executor ray --address ...`` over the same K windows
Per run, ``entry_seconds`` (claim to result, recorded by the supervisor) is compared: the
Ray path adds task submission, a fresh Ray worker process, the files' way back as bytes and
their writing. The connection to the cluster is paid once per supervisor and shown apart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c
import orjson

WINDOWS = [("2024-09-03", "2024-09-04"), ("2024-09-04", "2024-09-05")]
PARAMS = {"sleeptime": "60M"}
GOAL = 1.0


def supervise(folder: Path, executor: list[str], env: dict[str, str]) -> tuple[float, list[float]]:
    """One supervisor over the K windows: its wall time and each run's entry_seconds."""
    runs = [c.short_run(f"w{i}", *w) for i, w in enumerate(WINDOWS)]
    plan = c.make_plan(folder, runs, meta={"strategy_parameters": PARAMS})
    t0 = time.perf_counter()
    proc = subprocess.run([c.PY, "-m", "supervisor", *executor, "--plan", str(plan)], cwd=folder, env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"supervisor {executor} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    results = orjson.loads(plan.read_bytes())["results"]
    return seconds, [float(results[r["id"]]["entry_seconds"]) for r in runs]


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--pairs", type=int, help="repetitions (default 3, --quick 2)")
    args = p.parse_args()
    pairs = args.pairs or (2 if args.quick else 3)
    k = len(WINDOWS)
    c.header("ray_overhead", f"K={k} one-day windows, pandas_synthetic, sleeptime 60M; one-node cluster, 1 slot; {pairs} pairs")
    if c.smoke_stop(args, f"{(c.ROOT / 'tests' / 'raycluster.py').name} found: {(c.ROOT / 'tests' / 'raycluster.py').exists()}"):
        return 0 if (c.ROOT / "tests" / "raycluster.py").exists() else 1
    temp = Path(tempfile.mkdtemp(prefix="lp-bench-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_TMPDIR": str(temp), "LUMIPROF_NODE_DIR": str(temp / "nodes"), "RAY_USAGE_STATS_ENABLED": "0"}
    cluster = subprocess.Popen([c.PY, str(c.ROOT / "tests" / "raycluster.py"), "1"], env=env, cwd=temp,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert cluster.stdout is not None and cluster.stdin is not None
    try:
        address = json.loads(cluster.stdout.readline())["address"]
        local, ray = c.Series("a local, per run (entry_seconds)"), c.Series("b ray, per run (entry_seconds)")
        local_whole, ray_whole = c.Series("a local supervisor, whole"), c.Series("b ray supervisor, whole")
        with c.temp_dir("ray") as tmp:
            for i in range(pairs):
                jobs = [
                    lambda i=i: record(supervise(tmp / f"a{i}", ["--executor", "local"], env), local, local_whole),
                    lambda i=i: record(supervise(tmp / f"b{i}", ["--executor", "ray", "--address", address], env),
                                       ray, ray_whole),
                ]
                for job in c.rotate(jobs, i):
                    job()
                last = f"local {local.values[-1]:.2f} s, ray {ray.values[-1]:.2f} s"
                print(f"  repetition {i + 1}/{pairs}: per run {last}", flush=True)
        print()
        c.series_table([local, ray, local_whole, ray_whole])
        added = c.differences(ray, local, "ray - local, per run (paired)")
        whole = zip(ray_whole.values, local_whole.values, added.values, strict=True)
        start = c.Series("connection and start-up, per supervisor", [(rw - lw) - k * d for rw, lw, d in whole])
        c.series_table([added, start])
        ok = c.goal("ray_overhead per run", f"median {added.median:.3f} s (min {added.min:.3f}, max {added.max:.3f}); "
                    f"plus {start.median:.1f} s once per supervisor; {pairs} pairs", f"< {GOAL} s", added.median < GOAL)
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=180)
        shutil.rmtree(temp, ignore_errors=True)
    return 0 if ok else 1


def record(got: tuple[float, list[float]], per_run: c.Series, whole: c.Series) -> None:
    """Mean entry_seconds over the K runs as one paired value, and the whole process's wall."""
    seconds, entries = got
    per_run.add(sum(entries) / len(entries))
    whole.add(seconds)


if __name__ == "__main__":
    sys.exit(main())
