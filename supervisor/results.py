"""Turn one worker outcome into the ``results[id]`` record the spec's ``_schema`` describes.

Every field of ``_schema`` is always present (``null`` where unknown), paths are relative to
the plan file, and the invariants are recorded twice: what the plan asked for and what the
worker read back from the finished backtest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.cadence import iteration_warning, iterations_expected_at_most
from supervisor.claims import utc_now
from supervisor.plan import PlanStore, run_dates
from supervisor.runner import Outcome

SCHEMA_FIELDS = (
    "wall_seconds_total",
    "wall_seconds_no_download",
    "cpu_seconds",
    "top_functions_csv",
    "top_threads_csv",
    "git_rev",
    "timestamp_utc",
    "notes",
)


def invariants_hold(asked: dict[str, Any], in_effect: dict[str, Any]) -> bool:
    """Every invariant the plan sets was observed with the same value in the finished run."""
    return bool(in_effect) and all(in_effect.get(k) == v for k, v in asked.items())


#: Said of every partial profile, since neither fact shows in the files themselves.
PARTIAL_NOTE = (
    "partial profile: yappi was stopped mid-run, so functions still running then (run_backtest, a thread's loop, "
    "the call that hung) show 0 s or are absent, and the phase split is not available"
)


def relative_files(store: PlanStore, answer: dict[str, Any]) -> dict[str, str]:
    """The worker's output paths, relative to the plan file as the plan records them."""
    return {k: store.relative(Path(v)) for k, v in (answer.get("files") or {}).items()}


def build_result(
    store: PlanStore,
    run: dict[str, Any],
    outcome: Outcome,
    *,
    invariants: dict[str, Any],
    git: tuple[str, bool],
    stderr_log: Path,
    notes: list[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    answer = outcome.answer or {}
    files = relative_files(store, answer)
    in_effect = answer.get("invariants_in_effect") or {}
    expected = iterations_expected_at_most(*run_dates(run), answer.get("sleeptime_seconds"))
    warning = iteration_warning(answer.get("iterations"), expected, answer.get("sleeptime"))
    result: dict[str, Any] = {
        "wall_seconds_total": answer.get("wall_seconds_total"),
        "wall_seconds_no_download": None,
        "cpu_seconds": answer.get("cpu_seconds"),
        "top_functions_csv": files.get("top_functions_csv"),
        "top_threads_csv": files.get("top_threads_csv"),
        "git_rev": git[0],
        "timestamp_utc": utc_now(),
        "notes": "; ".join(n for n in [*notes, warning, PARTIAL_NOTE if answer.get("partial") else None] if n),
        "git_dirty": git[1],
        "status": None,
        "label": run["label"],
        "start": run["start"],
        "end": run["end"],
        "partial": bool(answer.get("partial")),
        "pstat": files.get("pstat"),
        "callgrind": files.get("callgrind"),
        "stderr_log": store.relative(stderr_log),
        "worker_process_seconds": round(outcome.seconds, 3),
        "worker_returncode": outcome.returncode,
        "worker_pid": outcome.pid,
        "error_kind": answer.get("error_kind"),
        "iterations": answer.get("iterations"),
        "sleeptime": answer.get("sleeptime"),
        "iterations_expected_at_most": expected,
        "bars_served": answer.get("bars_served"),
        "history_calls": answer.get("history_calls"),
        "internal_bars_served": answer.get("internal_bars_served"),
        "internal_history_calls": answer.get("internal_history_calls"),
        "phases": answer.get("phases"),
        "lumibot_outputs": [store.relative(Path(p)) for p in answer.get("lumibot_outputs") or []],
        "backtest_options": answer.get("backtest_options") or {},
        "browser": answer.get("browser") or {},
        "machine": outcome.machine,
        "peak_rss_mb": answer.get("peak_rss_mb"),
        "parameters_hash": answer.get("parameters_hash"),
        "invariants": dict(invariants),
        "invariants_in_effect": in_effect,
        "invariants_hold": invariants_hold(invariants, in_effect),
        "versions": answer.get("versions") or {},
        "network_refused": answer.get("network_refused") or [],
        "cache_files_before": answer.get("cache_files_before"),
        "cache_files_after": answer.get("cache_files_after"),
        "fingerprint": answer.get("fingerprint"),
        "time_by_owner": answer.get("time_by_owner"),
    }
    if extra:
        result.update(extra)
    return result


def error_result(run: dict[str, Any], reason: str) -> dict[str, Any]:
    """The record of an entry that ended without any worker outcome to build on (given up, crashed)."""
    return {**dict.fromkeys(SCHEMA_FIELDS), "timestamp_utc": utc_now(), "notes": reason, "status": "error",
            "label": run["label"], "start": run["start"], "end": run["end"], "error_kind": None}
