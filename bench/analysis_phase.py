"""What LumiBot's end-of-backtest analysis costs, with its defaults against the old switches.

The worker used to call ``run_backtest`` with ``show_plot``, ``show_indicators``,
``show_tearsheet`` and ``save_tearsheet`` False (and no progress bar), which hid the analysis
every LumiBot user waits for. Now it keeps LumiBot's defaults. This benchmark measures both on
the same window, paired and rotated, through the real worker (yappi on, so the phase split is
the worker's own), and prints the analysis phase and the whole ``run_backtest`` per variant:

  user's run   LumiBot's defaults (what the worker now does; browser suppressed)
  switched off ``meta.backtest_options`` with the four switches and the progress bar off
"""

from __future__ import annotations

import _common as c

WINDOW = ("2025-09-01", "2025-09-30")
QUICK_WINDOW = ("2025-09-01", "2025-09-06")
OFF = {"show_plot": False, "show_indicators": False, "show_tearsheet": False, "save_tearsheet": False,
       "show_progress_bar": False}
PARAMS = {"sleeptime": "30M"}


def run_once(folder: c.Path, window: tuple[str, str], options: dict[str, bool], smoke: bool = False) -> dict[str, float]:
    plan = c.make_plan(folder, [c.short_run("ap", *window, label="month")],
                       meta={"strategy_parameters": PARAMS, "backtest_options": options})
    spec = c.specs_for(plan, profile=True)[0]
    if smoke:
        return {}
    answer = c.run_worker_direct(spec, c.child_env()).answer
    if not answer.get("ok"):
        raise RuntimeError(f"worker failed: {answer.get('error')}")
    phases = answer["phases"]
    return {"analysis": phases["analysis_and_output"], "backtest_analysis": phases["components"]["backtest_analysis"],
            "wall": answer["wall_seconds_total"]}


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--pairs", type=int, help="repetitions (default 3, --quick 1)")
    args = p.parse_args()
    pairs = args.pairs or (1 if args.quick else 3)
    window = QUICK_WINDOW if args.quick else WINDOW
    c.header("analysis_phase", f"{window[0]} -> {window[1]}, pandas_synthetic MES, sleeptime {PARAMS['sleeptime']}, "
                               f"yappi on; {pairs} rotated pairs")
    series = {name: {k: c.Series(f"{name}: {k}") for k in ("analysis", "backtest_analysis", "wall")}
              for name in ("user's run", "switched off")}
    with c.temp_dir("analysis") as tmp:
        if c.smoke_stop(args, "the spec of a month with LumiBot's analysis on and off"):
            run_once(tmp / "user", window, {}, smoke=True)
            run_once(tmp / "off", window, OFF, smoke=True)
            return 0
        for i in range(pairs):
            for name, options in c.rotate([("user's run", {}), ("switched off", OFF)], i):
                measured = run_once(tmp / f"{name[:4]}{i}", window, options)
                for key, value in measured.items():
                    series[name][key].add(value)
            print(f"  pair {i + 1}/{pairs}: " + ", ".join(
                f"{name} analysis {s['analysis'].values[-1]:.2f} s of {s['wall'].values[-1]:.2f} s"
                for name, s in series.items()), flush=True)
    print()
    c.series_table([s for variant in series.values() for s in variant.values()])
    user, off = series["user's run"], series["switched off"]
    c.series_table([c.differences(user["analysis"], off["analysis"], "analysis phase added by LumiBot's defaults"),
                    c.ratios(user["wall"], off["wall"], "run_backtest wall, defaults / switched off")], unit="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
