"""The ``run_backtest`` keyword arguments of a run: LumiBot's own defaults, plus what the plan mirrors.

A profiled run must be the run the user waits for, so LumiBot's end-of-backtest analysis and
its output files stay on (LumiBot's defaults). Only two things differ, and both are recorded:
nothing opens a browser (see :mod:`worker.browser`), and nothing reaches the network in local
mode (no benchmark or risk-free-rate look-ups, which LumiBot makes through yfinance in C code
that no Python hook sees).

``meta.backtest_options`` lets a user mirror the keyword arguments of their own ``run_backtest``
call. This module is stdlib-only: the supervisor validates the plan with it (exit 2 naming the
key) and the worker checks it again before the clock starts.
"""

from __future__ import annotations

from typing import Any

_NONE = type(None)

#: Keyword arguments a plan may set, with the JSON types each accepts (bool is never an int here).
ALLOWED: dict[str, tuple[type, ...]] = {
    "show_plot": (bool,),
    "show_tearsheet": (bool,),
    "show_indicators": (bool,),
    "save_tearsheet": (bool,),
    "analyze_backtest": (bool,),
    "save_stats_file": (bool,),
    "show_progress_bar": (bool,),
    "include_cash_positions": (bool,),
    "auto_adjust": (bool,),
    "use_quote_data": (bool,),
    "minutes_before_closing": (int,),
    "minutes_before_opening": (int,),
    "benchmark_asset": (str, _NONE),
    "risk_free_rate": (int, float, _NONE),
}

#: Keys the worker owns: an invariant or the run's own definition sets them.
RESERVED = {
    "save_logfile": "set by the invariant file_logging",
    "quiet_logs": "console logging stays on so the file_logging invariant can be observed",
    "parameters": "use meta.strategy_parameters",
    "budget": "use meta.budget",
    "backtesting_start": "set by each run's start",
    "backtesting_end": "set by each run's end",
    "datasource_class": "set by meta.data_source",
    "pandas_data": "set by meta.data_source",
}

#: What the worker passes unless the plan says otherwise: the two look-ups that leave the machine are off.
OFFLINE_DEFAULTS: dict[str, Any] = {"benchmark_asset": None, "risk_free_rate": 0.0}


class OptionsError(ValueError):
    """A ``meta.backtest_options`` problem, one line naming the key."""


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is _NONE else {"bool": "true/false", "int": "integer"}.get(t.__name__, t.__name__)
                       for t in types)


def check(options: Any, local: bool, where: str = "meta.backtest_options") -> dict[str, Any]:
    """The options if valid; raise :class:`OptionsError` naming the first bad key otherwise.

    ``local`` is true when nothing may leave the machine (local gateway, synthetic data).
    """
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise OptionsError(f"{where} must be a JSON object of run_backtest keyword arguments")
    for key, value in options.items():
        if key in RESERVED:
            raise OptionsError(f"{where}.{key} cannot be set: {RESERVED[key]}")
        types = ALLOWED.get(key)
        if types is None:
            raise OptionsError(f"{where}.{key} is not a run_backtest option this profiler knows "
                               f"(known: {', '.join(sorted(ALLOWED))})")
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            raise OptionsError(f"{where}.{key} must be {_type_names(types)}, got {value!r}")
    if local:
        if options.get("benchmark_asset", None) is not None:
            raise OptionsError(
                f"{where}.benchmark_asset={options['benchmark_asset']!r} is refused in local mode: LumiBot would "
                "download the benchmark's prices from Yahoo (yfinance) during the analysis; use null"
            )
        if "risk_free_rate" in options and options["risk_free_rate"] is None:
            raise OptionsError(
                f"{where}.risk_free_rate=null is refused in local mode: LumiBot would download the ^IRX "
                "rate from Yahoo (yfinance); give a number such as 0.0"
            )
    return dict(options)


def effective(options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments the worker passes: offline defaults overlaid by the plan's options.

    Everything not named here is LumiBot's own default (analysis, plots, tearsheet, progress bar).
    """
    return {**OFFLINE_DEFAULTS, **options}
