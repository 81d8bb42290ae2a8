"""The spec's plan, as data: its windows, its ``meta`` defaults, its invariants.

The one place they are written down. ``lumiprof init`` builds a user's plan from here, and
``tests/test_init.py`` checks that the repository's own ``profiling_plan.json`` is exactly this
template filled in with the example strategy, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

from supervisor.plan import Plan


class Window(NamedTuple):
    id: str
    start: str
    end: str
    label: str


#: Phase 0 (the cache probe: one month twice, cold then warm) and Phase 1 (the spec's nine 2025
#: windows), in the spec's order. Dates are LumiBot's ``backtesting_start``/``backtesting_end``.
SPEC_WINDOWS: tuple[Window, ...] = (
    Window("phase0-cold-2024-09", "2024-09-01", "2024-09-30", "cache_probe_cold"),
    Window("phase0-warm-2024-09", "2024-09-01", "2024-09-30", "cache_probe_warm"),
    Window("wk-2025-01-20_01-26", "2025-01-20", "2025-01-26", "week"),
    Window("wk-2025-03-10_03-16", "2025-03-10", "2025-03-16", "week"),
    Window("wk-2025-07-14_07-20", "2025-07-14", "2025-07-20", "week"),
    Window("wk-2025-10-13_10-19", "2025-10-13", "2025-10-19", "week"),
    Window("mo-2025-02", "2025-02-01", "2025-02-28", "month"),
    Window("mo-2025-05", "2025-05-01", "2025-05-31", "month"),
    Window("mo-2025-09", "2025-09-01", "2025-09-30", "month"),
    Window("qtr-2025-Q2like", "2025-04-01", "2025-06-30", "three_months"),
    Window("full-2025-01-01_10-31", "2025-01-01", "2025-10-31", "full_range"),
)

#: ``--windows short``: a first look in about a minute. Two trading days each (LumiBot stops at
#: the midnight that starts ``end``), inside the first two spec weeks; no Phase 0 (a cache probe
#: is a month twice, and a first look is about where the time goes, not about the cache).
SHORT_WINDOWS: tuple[Window, ...] = (
    Window("short-2025-01-21_01-23", "2025-01-21", "2025-01-23", "short"),
    Window("short-2025-03-11_03-13", "2025-03-11", "2025-03-13", "short"),
)

WINDOW_SETS = {"spec": SPEC_WINDOWS, "short": SHORT_WINDOWS}

#: The spec's invariants: the worker applies them and reads back what held.
INVARIANTS: dict[str, bool] = {
    "plot_price": True,
    "show_live_equity_curve": True,
    "file_logging": True,
    "lookbacks_unchanged": True,
}

#: Every ``meta`` key a plan gets besides the strategy's own ones (strategy, parameters, data).
META_DEFAULTS: dict[str, Any] = {
    "profiler": "yappi",
    "clock_type": "WALL",
    "output_dir": "profiling",
    "random_seed_for_selection": 20251101,
    "created_utc": "2025-11-01T00:00:00Z",
    "plan_version": 1,
}

META_SETTINGS: dict[str, Any] = {
    "cache": {
        "folder": "profiling/cache",
        "policy": "Each run starts from an empty cache folder of its own (profiling/cache/<id>); the Phase 0 warm probe "
        "reuses the cold probe's folder (profiling/cache/phase0) untouched.",
    },
    "timeout_seconds": 1200,
    "cross_check": "sampled",
    "phase1_mode": "auto",
    "phase0_repeats": 3,
    "repeats": 1,
    "decision_rule": {
        "min_delta_seconds": 1.0,
        "min_delta_percent": 5.0,
        "material_action": "preload",
        "why": "The cold/warm saving is material only if it clears both bars and the noise band measured by the "
        "phase0_repeats interleaved rounds: a percentage alone would act on noise in a short probe (single runs of the "
        "probe month differed by -10.8 % to +30.5 % under yappi on a 2-core machine), seconds alone would call every "
        "long window material. 'auto' Phase 1 then runs 'preload' (material) or 'single' (minor, inconclusive, "
        "cache-path regression).",
    },
}

DEFAULT_BUDGET = 100000

#: The spec's ``results._schema``: field name -> type, as the spec writes it.
RESULTS_SCHEMA: dict[str, str] = {
    "wall_seconds_total": "float",
    "wall_seconds_no_download": "float|nullable",
    "cpu_seconds": "float|nullable",
    "top_functions_csv": "path",
    "top_threads_csv": "path",
    "git_rev": "string",
    "timestamp_utc": "iso8601",
    "notes": "string",
}


def build_plan(
    strategy: str,
    parameters: dict[str, Any],
    data_source: dict[str, Any],
    *,
    windows: str = "spec",
    budget: float = DEFAULT_BUDGET,
    created_utc: str | None = None,
) -> Plan:
    """A new plan: every run pending, no results. ``parameters`` should already carry the invariants.

    ``windows="short"`` has no Phase 0, so Phase 1 runs ``single`` (nothing to decide on).
    """
    meta: dict[str, Any] = copy.deepcopy(META_DEFAULTS)
    if created_utc is not None:
        meta["created_utc"] = created_utc
    meta |= {"strategy": strategy, "strategy_parameters": dict(parameters), "budget": budget,
             "data_source": copy.deepcopy(data_source)}
    meta |= copy.deepcopy(META_SETTINGS)
    if windows == "short":
        meta["phase1_mode"] = "single"
    return {
        "meta": meta,
        "invariants": dict(INVARIANTS),
        "runs": [{**window._asdict(), "status": "pending"} for window in WINDOW_SETS[windows]],
        "results": {"_schema": dict(RESULTS_SCHEMA)},
    }
