"""How much our yappi wall-clock profiling slows a backtest, next to LumiBot's own switch.

The worker profiles the whole ``run_backtest`` call in every thread; LumiBot's own
``BACKTESTING_PROFILE=yappi`` profiles only ``Trader.run_all``. If ours cost more than
LumiBot's for the same backtest, users would be right to prefer the built-in switch, so the
goal is: our slowdown (b/a) no worse than LumiBot's (c/a), while covering more functions.

Variants, each in a fresh process, rotated within every repetition:
  a  ``python -m worker`` with ``profile=False`` (backtest seconds as the worker reports them)
  b  ``python -m worker`` with ``profile=True``  (same, under our yappi session; save excluded)
  c  bench/_bare_backtest.py lumibot_yappi      (``run_backtest`` seconds, LumiBot's CSV write included)
  d  bench/_bare_backtest.py ours               (our WallProfile in the same harness: run + save)
d exists because c includes LumiBot's artifact write while b excludes our save: d/a is the
like-for-like figure for "profile and write the results".
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import _common as c

WINDOW = ("2024-09-03", "2024-09-04")
PARAMS = {"sleeptime": "15M"}
NOISE = 1.05  # b/a may exceed c/a by 5 % before we call it worse: paired runs scatter ~2-3 %


def rows_in(path: str | None) -> int | None:
    if not path or not Path(path).exists():
        return None
    with Path(path).open() as fh:
        return sum(1 for _ in fh) - 1


def measure(label: str, folder: Path, data_source: dict[str, Any], pairs: int, extra_env: dict[str, str]) -> bool | None:
    """Run the four variants ``pairs`` times; None under ``--smoke`` (pairs == 0): specs built, nothing run."""
    plan = c.make_plan(folder, [c.short_run("ovh", *WINDOW)], meta={"strategy_parameters": PARAMS, "data_source": data_source})
    plain_spec = c.specs_for(plan, profile=False)[0]
    prof_spec = c.specs_for(plan, profile=True)[0]
    env = c.child_env(extra_env)
    if not pairs:
        return None
    a, b, cc, d = (c.Series(n) for n in ("a worker plain", "b worker yappi", "c lumibot yappi", "d ours run+save"))
    d_save = c.Series("d save only")
    coverage: dict[str, int | None] = {}

    def run_a() -> None:
        a.add(c.run_worker_direct(plain_spec, env).answer["wall_seconds_total"])

    def run_b() -> None:
        got = c.run_worker_direct(prof_spec, env)
        b.add(got.answer["wall_seconds_total"])
        coverage["ours (b) function rows"] = rows_in(got.answer["files"].get("top_functions_csv"))

    def run_c() -> None:
        got = c.run_bare(prof_spec, "lumibot_yappi", env)
        cc.add(got.answer["run_seconds"])
        coverage["LumiBot (c) function rows"] = got.answer.get("lumibot_profile_rows")

    def run_d() -> None:
        got = c.run_bare(prof_spec, "ours", env)
        d.add(got.answer["run_seconds"] + got.answer["save_seconds"])
        d_save.add(got.answer["save_seconds"])

    for i in range(pairs):
        for fn in c.rotate([run_a, run_b, run_c, run_d], i):
            fn()
        print(
            f"  [{label}] repetition {i + 1}/{pairs}: a={a.values[-1]:.2f} b={b.values[-1]:.2f} "
            f"c={cc.values[-1]:.2f} d={d.values[-1]:.2f} s",
            flush=True,
        )
    print()
    print(f"{label}: backtest seconds, {pairs} repetitions of 4 variants (rotated order)")
    c.series_table([a, b, cc, d, d_save])
    ba, ca, da = c.ratios(b, a, "b/a ours"), c.ratios(cc, a, "c/a LumiBot"), c.ratios(d, a, "d/a ours+save")
    print(f"{label}: per-repetition ratios to the plain run ({pairs} pairs)")
    c.series_table([ba, ca, da], fmt="{:.2f}", unit="x")
    c.table(["profile", "function rows"], [[k, str(v)] for k, v in coverage.items()])
    ok = c.goal(
        f"profiler_overhead[{label}] b/a <= c/a",
        f"b/a median {ba.median:.2f}x (min {ba.min:.2f}, max {ba.max:.2f}) vs c/a median {ca.median:.2f}x; "
        f"d/a median {da.median:.2f}x; {pairs} pairs",
        f"b/a <= {NOISE:.2f} * c/a",
        ba.median <= NOISE * ca.median,
    )
    ours, theirs = coverage.get("ours (b) function rows"), coverage.get("LumiBot (c) function rows")
    covers = ours is not None and theirs is not None and ours > theirs
    c.goal(f"profiler_overhead[{label}] covers more", f"{ours} vs {theirs} function rows", "ours > LumiBot's", covers)
    return ok and covers


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--pairs", type=int, help="repetitions (default 5, --quick 3)")
    p.add_argument("--no-databento", action="store_true", help="skip the local DataBento gateway case")
    args = p.parse_args()
    pairs = args.pairs or (3 if args.quick else 5)
    c.header(
        "profiler_overhead",
        f"window {WINDOW[0]}..{WINDOW[1]}, MesMomentum sleeptime {PARAMS['sleeptime']}, each variant a fresh process; "
        f"{pairs} repetitions",
    )
    ok = True
    with c.temp_dir("overhead") as tmp:
        if c.smoke_stop(args, "profiled and plain specs of the pandas_synthetic and local DataBento cases"):
            measure("pandas_synthetic", tmp / "synthetic", c.SYNTHETIC, 0, {})
            measure("databento_local_cold", tmp / "databento", c.LOCAL_DATABENTO, 0, {})
            import gateway.control  # noqa: F401 - the import the real run needs
            return 0
        ok &= bool(measure("pandas_synthetic", tmp / "synthetic", c.SYNTHETIC, pairs, {}))
        if not args.no_databento:
            from gateway.control import make_token, start_gateway

            handle = start_gateway(tmp / "gateway", seed=20251101)
            try:
                env = handle.worker_env(make_token("bench-overhead"))
                ok &= bool(measure("databento_local_cold", tmp / "databento", c.LOCAL_DATABENTO, max(2, pairs - 1), env))
            finally:
                with contextlib.suppress(Exception):
                    handle.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
