"""How much py-spy's sampling slows the cross-check's unprofiled pass, at the rate the supervisor uses.

The cross-check's ``unprofiled_wall_seconds`` is the wall time of a worker watched by py-spy,
and ``profiler_overhead_ratio`` divides yappi's wall by it, so py-spy's own slowdown must be
small and known. Variants, each a fresh ``python -m worker`` with ``profile=False``, alternated
within every repetition:
  a  plain: nobody watching
  s  sampled: ``py-spy record --pid`` attached the moment the worker exists, exactly as the
     supervisor's cross-check attaches it (``supervisor.crosscheck.Sampler``), at each rate asked
Figures are backtest seconds as the worker reports them; ratios are per pair.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import _common as c
import orjson

WINDOW = ("2024-09-03", "2024-09-05")
PARAMS = {"sleeptime": "15M"}
GOAL = 1.25  # py-spy at 200 Hz measured 1.21x (1.07-1.50) on a quiet machine; the chosen rate must not do worse


def sampled_run(spec: Any, env: dict[str, str], rate: int, folder: Path) -> tuple[float, int]:
    """One worker under py-spy; (backtest seconds, samples py-spy wrote)."""
    from common.collapsed import read_stacks
    from supervisor.crosscheck import Sampler

    c.fresh_dirs(spec)
    output = folder / f"sampled-{rate}.txt"
    output.unlink(missing_ok=True)
    sampler = Sampler(py_spy_path(), rate, output, folder / f"sampled-{rate}.log")
    with (folder / "sampled.stderr.log").open("wb") as err:
        proc = subprocess.Popen([c.PY, "-m", "worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                cwd=spec.work_dir, env=env)
        sampler.attach(proc.pid)
        stdout, _ = proc.communicate(orjson.dumps(spec.to_json()))
    sampler.finish()
    if sampler.problem:
        raise RuntimeError(f"py-spy failed: {sampler.problem}")
    answer = orjson.loads(stdout.strip().splitlines()[-1])
    if not answer.get("ok"):
        raise RuntimeError(f"sampled worker failed: {answer.get('error')}")
    return float(answer["wall_seconds_total"]), sum(s.count for s in read_stacks(output))


def py_spy_path() -> str:
    from supervisor.crosscheck import CrossCheckConfig, locate_py_spy

    path, why = locate_py_spy(CrossCheckConfig(), c.ROOT)
    if path is None:
        raise SystemExit(f"cannot measure: {why}")
    return path


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--pairs", type=int, help="repetitions (default 5, --quick 3)")
    p.add_argument("--rates", default="100", help="comma-separated sampling rates in Hz (default: the supervisor's 100)")
    args = p.parse_args()
    pairs = args.pairs or (3 if args.quick else 5)
    rates = [int(r) for r in args.rates.split(",")]
    c.header("sampled_overhead", f"window {WINDOW[0]}..{WINDOW[1]}, MesMomentum sleeptime {PARAMS['sleeptime']}, "
             f"pandas_synthetic, {pairs} repetitions, rates {rates} Hz")
    ok = True
    with c.temp_dir("sampled") as tmp:
        plan = c.make_plan(tmp, [c.short_run("smp", *WINDOW)], meta={"strategy_parameters": PARAMS})
        spec = c.specs_for(plan, profile=False)[0]
        env = c.child_env()
        if c.smoke_stop(args, f"the plain spec, py-spy at {py_spy_path()}"):
            return 0
        plain = c.Series("a plain")
        sampled = {r: c.Series(f"s py-spy {r} Hz") for r in rates}
        samples = {r: c.Series(f"samples {r} Hz") for r in rates}

        def run_plain() -> None:
            plain.add(c.run_worker_direct(spec, env).answer["wall_seconds_total"])

        def sampler_of(rate: int) -> Any:
            def run() -> None:
                seconds, count = sampled_run(spec, env, rate, tmp)
                sampled[rate].add(seconds)
                samples[rate].add(count)

            return run

        for i in range(pairs):
            for fn in c.rotate([run_plain, *(sampler_of(r) for r in rates)], i):
                fn()
            print(f"  repetition {i + 1}/{pairs}: plain {plain.values[-1]:.2f} s, "
                  + ", ".join(f"{r} Hz {sampled[r].values[-1]:.2f} s" for r in rates), flush=True)
        print()
        c.series_table([plain, *sampled.values()])
        c.series_table(list(samples.values()), fmt="{:.0f}", unit="samples")
        for rate in rates:
            ratio = c.ratios(sampled[rate], plain, f"{rate} Hz / plain")
            c.series_table([ratio], fmt="{:.3f}", unit="x")
            ok &= c.goal(
                f"sampled_overhead[{rate} Hz]",
                f"sampled / plain median {ratio.median:.3f}x (min {ratio.min:.3f}, max {ratio.max:.3f}), {pairs} pairs",
                f"<= {GOAL}x",
                ratio.median <= GOAL,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
