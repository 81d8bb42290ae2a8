"""What a worker is sent for one pass of one entry: the :class:`~worker.protocol.RunSpec`,
and the folders the plan gives that pass.

The session builds every spec here, and so do the benchmarks (``bench/_common.py``), so a
worker started by hand gets exactly what a supervised one would, down to the search path
and the cache folder. Public on purpose: a benchmark must not reach into the session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common.sourcetree import PACKAGES_ROOT
from supervisor.plan import PHASE0_LABELS, Plan, PlanStore, Run
from supervisor.repeats import pass_stem
from worker.protocol import RunSpec

#: The folder holding our packages (a checkout, or site-packages): the worker's last search-path entry.
PROJECT_ROOT = PACKAGES_ROOT


def data_settings(plan: Plan, data_mode: str | None = None) -> dict[str, Any]:
    """``meta.data_source``, with ``--data-mode`` (local/live) applied when given."""
    settings = dict(plan["meta"]["data_source"])
    if data_mode:
        settings["mode"] = data_mode
    return settings


def output_dir(store: PlanStore, plan: Plan) -> Path:
    return store.resolve(plan["meta"]["output_dir"])


def cache_root(store: PlanStore, plan: Plan) -> Path:
    cache = plan["meta"].get("cache") or {}
    return store.resolve(cache.get("folder", Path(plan["meta"]["output_dir"]) / "cache"))


def cache_folder(store: PlanStore, plan: Plan, run: Run, number: int = 1) -> Path:
    """Pass k of Phase 0's two probes share one folder (that is the point); every other run has its own."""
    key = pass_stem("phase0", number) if run["label"] in PHASE0_LABELS else run["id"]
    return cache_root(store, plan) / key


def stderr_path(output_dir: Path, stem: str) -> Path:
    return output_dir / f"{stem}.stderr.log"


def run_spec(
    store: PlanStore, plan: Plan, run: Run, settings: dict[str, Any], cache: Path, *, profile: bool, stem: str,
    memory: str = "",
) -> RunSpec:
    """The spec of one worker pass; ``stem`` names its files and its work folder; ``memory`` the memory pass's tool."""
    meta = plan["meta"]
    out = output_dir(store, plan)
    return RunSpec(
        id=run["id"],
        start=run["start"],
        end=run["end"],
        label=run["label"],
        strategy=meta["strategy"],
        parameters=dict(meta.get("strategy_parameters") or {}),
        invariants=dict(plan["invariants"]),
        data_source=settings,
        output_dir=str(out),
        work_dir=str(out / "work" / stem),
        output_stem=stem,
        cache_folder=str(cache),
        search_path=[str(store.folder), str(PROJECT_ROOT)],
        budget=float(meta.get("budget", 100_000)),
        seed=int(meta["random_seed_for_selection"]),
        profile=profile,
        memory=memory,
        supervisor_pid=os.getpid(),
        backtest_options=dict(meta.get("backtest_options") or {}),
    )


def first_pass_specs(store: PlanStore, *, profile: bool = True, data_mode: str | None = None) -> list[RunSpec]:
    """The spec of pass 1 of every entry of the plan, as the supervisor would send it."""
    plan = store.read()
    settings = data_settings(plan, data_mode)
    return [
        run_spec(store, plan, run, settings, cache_folder(store, plan, run, 1), profile=profile, stem=pass_stem(run["id"], 1))
        for run in plan["runs"]
    ]
