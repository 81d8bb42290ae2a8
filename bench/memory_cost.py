"""What the memory pass costs, and how near-deterministic its figures are.

Variants, each a fresh ``python -m worker`` over the same window, alternated within every repetition:
  a  plain: ``profile=False``, nothing watching (the cross-check's pass minus py-spy)
  m  memory: ``memory="memray"``, exactly the spec the supervisor's memory pass sends
Per window: backtest seconds of each (as the worker reports them), the per-pair ratio m / a (the
cost the report shows per run, there against the py-spy-watched pass), the seconds the supervisor
then spends reading the capture and writing memray's flame graph, and the spread of the peak heap
and peak RSS over the memory passes (the noise ``compare`` holds a change against).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import _common as c

WINDOWS = {"week": ("2025-01-20", "2025-01-26"), "month": ("2025-02-01", "2025-02-28")}
PARAMS = {"sleeptime": "1M"}
GOAL = 3.0  # the default plan's `make profile` stays under 12 minutes at this cost (docs/memory.md)


def measure(name: str, plain_spec: Any, memory_spec: Any, env: dict[str, str], pairs: int) -> bool:
    """One window: plain and memory passes alternated, the capture read as the supervisor reads it."""
    from supervisor import memory

    plain, held = c.Series(f"a plain {name}"), c.Series(f"m memory {name}")
    heap, rss, reading = c.Series(f"peak heap {name}"), c.Series(f"peak RSS {name}"), c.Series(f"read {name}")

    def run_plain() -> None:
        plain.add(c.run_worker_direct(plain_spec, env).answer["wall_seconds_total"])

    def run_memory() -> None:
        answer = c.run_worker_direct(memory_spec, env).answer
        held.add(answer["wall_seconds_total"])
        t0 = time.perf_counter()
        figures, notes = memory.summarize(answer, Path(memory_spec.output_dir), name, memory_spec.stem)
        if figures.get("status") != "done":
            raise RuntimeError(f"memory pass unreadable: {figures.get('reason')} {notes}")
        reading.add(time.perf_counter() - t0)
        heap.add(figures["peak_heap_bytes"] / 1024 / 1024)
        rss.add(answer["peak_rss_mb"])

    for i in range(pairs):
        for fn in c.rotate([run_plain, run_memory], i):
            fn()
        print(f"  {name} {i + 1}/{pairs}: plain {plain.values[-1]:.2f} s, memory {held.values[-1]:.2f} s", flush=True)
    print()
    c.series_table([plain, held, reading])
    c.series_table([heap, rss], fmt="{:.1f}", unit="MB")
    ratio = c.ratios(held, plain, f"memory / plain {name}")
    c.series_table([ratio], unit="x")
    spread = 100 * (heap.max - heap.min) / heap.median if heap.median else float("nan")
    print(f"peak heap spread over {len(heap.values)} memory passes: {spread:.3f} % of the median\n")
    return c.goal(f"memory_cost[{name}]", f"memory / plain median {ratio.median:.2f}x (min {ratio.min:.2f}, "
                  f"max {ratio.max:.2f}), {pairs} pairs; peak heap spread {spread:.2f} %", f"<= {GOAL}x", ratio.median <= GOAL)


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--pairs", type=int, help="repetitions per window (default 3, --quick 2)")
    args = p.parse_args()
    pairs = args.pairs or (2 if args.quick else 3)
    names = ["week"] if args.quick else list(WINDOWS)
    c.header("memory_cost", f"windows {names}, MesMomentum sleeptime {PARAMS['sleeptime']}, pandas_synthetic, "
             f"{pairs} repetitions each")
    ok = True
    with c.temp_dir("memory") as tmp:
        plan = c.make_plan(tmp, [c.short_run(n, *WINDOWS[n]) for n in names], meta={"strategy_parameters": PARAMS})
        plain_specs = c.specs_for(plan, profile=False)
        memory_specs = [dataclasses.replace(s, memory="memray", output_stem=f"{s.stem}.memory") for s in plain_specs]
        env = c.child_env()
        if c.smoke_stop(args, f"{len(memory_specs)} memory specs ({memory_specs[0].memory}) beside their plain specs"):
            return 0
        for name, plain_spec, memory_spec in zip(names, plain_specs, memory_specs, strict=True):
            ok &= measure(name, plain_spec, memory_spec, env, pairs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
