"""One backtest in a fresh process without our worker: the benchmarks' reference points.

Usage: ``python bench/_bare_backtest.py MODE < runspec.json`` with MODE one of

* ``plain``: no profiler at all (the baseline of supervisor_overhead's case c);
* ``lumibot_yappi``: LumiBot's own ``BACKTESTING_PROFILE=yappi``, which our worker removes on
  purpose; here it is set again so we can compare against what LumiBot offers out of the box;
* ``ours``: our ``WallProfile`` in this same harness, with its save timed apart from the run.

It copies what the worker does before the clock starts (environment, network guard, prepare)
so the only difference between modes is the profiler. It prints one JSON line on the real
stdout; LumiBot's chatter goes to stderr.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

T_PROCESS = time.perf_counter()

import orjson  # noqa: E402 - the clock above must start before any import

from worker.browser import BrowserSuppressor  # noqa: E402
from worker.isolation import StdoutGuard, prepare_environment  # noqa: E402
from worker.netguard import NetworkGuard  # noqa: E402
from worker.protocol import RunSpec  # noqa: E402

MODES = ("plain", "lumibot_yappi", "ours")


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "plain"
    if mode not in MODES:
        print(f"mode must be one of {', '.join(MODES)}", file=sys.stderr)
        return 2
    guard = StdoutGuard()
    spec = RunSpec.from_json(orjson.loads(sys.stdin.buffer.read()))
    Path(spec.work_dir).mkdir(parents=True, exist_ok=True)
    os.chdir(spec.work_dir)
    prepare_environment(Path(spec.cache_folder))
    BrowserSuppressor().install()  # LumiBot's "show" defaults are on, as in the worker
    if mode == "lumibot_yappi":
        os.environ["BACKTESTING_PROFILE"] = "yappi"
    if spec.data_source.get("mode", "local") == "local":
        NetworkGuard().arm()
    t_prepare = time.perf_counter()
    from worker import backtest

    prepared = backtest.prepare(spec)
    prepare_seconds = time.perf_counter() - t_prepare
    answer: dict[str, object] = {"ok": False, "mode": mode, "prepare_seconds": prepare_seconds}
    try:
        if mode == "ours":
            from worker.profiler import ProfileFiles, WallProfile

            profile = WallProfile(enabled=True)
            profile.start()
            try:
                backtest.run(prepared, spec)
            finally:
                profile.stop()
            answer["run_seconds"] = profile.wall_seconds
            t_save = time.perf_counter()
            profile.save(ProfileFiles.for_stem(Path(spec.work_dir) / "ours", spec.stem))
            answer["save_seconds"] = time.perf_counter() - t_save
        else:
            t_run = time.perf_counter()
            backtest.run(prepared, spec)
            answer["run_seconds"] = time.perf_counter() - t_run
        artifacts = sorted(Path(spec.work_dir, "logs").glob("*_profile_yappi.csv"))
        answer["lumibot_profile_rows"] = sum(1 for _ in artifacts[0].open()) - 1 if artifacts else None
        answer["bars_served"] = prepared.counter.bars_served
        answer["ok"] = prepared.counter.bars_served > 0
        if not answer["ok"]:
            answer["error"] = "no bars reached the strategy"
    except Exception as exc:
        answer["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    answer["process_seconds"] = time.perf_counter() - T_PROCESS
    guard.emit(orjson.dumps(answer))
    sys.stderr.flush()
    os._exit(0 if answer["ok"] else 1)


if __name__ == "__main__":
    raise SystemExit(main())
