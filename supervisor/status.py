"""The queue as a person reads it, and ``reset`` for a new round that keeps the old results."""

from __future__ import annotations

import glob
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.progress import read_progress
from supervisor import claims
from supervisor.archive import archive_result
from supervisor.eta import duration, run_left
from supervisor.plan import Plan, PlanError, PlanStore, Run

_OWNER_WORDS = {
    claims.ALIVE: "alive",
    claims.DEAD: "DEAD (recovered at next start)",
    claims.UNKNOWN: "cannot be checked from here (other host, or no create time recorded)",
}


def _owner_detail(run: Run) -> str:
    owner = run.get("owner") or {}
    state = claims.owner_state(run)
    detail = (
        f"supervisor {owner.get('supervisor_pid')}@{owner.get('host')} ({_OWNER_WORDS[state]}), "
        f"worker {owner.get('worker_pid')}, since {run.get('started_utc')}"
    )
    if state == claims.UNKNOWN:
        detail += f"; if it is gone: python -m supervisor reset --force {run['id']}"
    return detail


def render_status(plan: Plan, output_dir: Path | None = None) -> str:
    """One line per entry: status, attempts, owner if running, wall seconds, last error.

    With ``output_dir``, a running entry also gets a line with its worker's live progress.
    """
    results: dict[str, Any] = plan["results"]
    header = f"{'id':<24} {'label':<17} {'status':<8} {'try':>3} {'wall s':>8}  detail"
    lines = [header, "-" * len(header)]
    counts: dict[str, int] = {}
    for run in plan["runs"]:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
        result = results.get(run["id"]) or {}
        wall = result.get("wall_seconds_total")
        wall_text = f"{wall:8.2f}" if isinstance(wall, int | float) else f"{'-':>8}"
        detail = ""
        if run["status"] == "running":
            detail = _owner_detail(run)
        elif run["status"] == "error":
            detail = str(result.get("notes") or "")
        elif run.get("note"):
            detail = str(run["note"])
        lines.append(
            f"{run['id']:<24} {run['label']:<17} {run['status']:<8} {run.get('attempts', 0):>3} {wall_text}  {detail}"
        )
        if run["status"] == "running" and output_dir is not None:
            lines.append(f"{'':<24} {live_progress(run, output_dir)}")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines.append(f"{len(plan['runs'])} entries: {summary}")
    return "\n".join(lines)


def live_progress(run: Run, output_dir: Path) -> str:
    """The running entry's latest progress snapshot, read from its newest worker folder.

    A preload or two-pass entry has a folder per pass (``<id>``, ``<id>.preload``, ...); the
    one written last is the pass running now.
    """
    work = output_dir / "work"
    folders = [p for p in work.glob(glob.escape(run["id"]) + "*") if p.name == run["id"] or p.name.startswith(run["id"] + ".")]
    snapshots = [(s, f.name) for f in folders if (s := read_progress(f)) is not None]
    if not snapshots:
        return "progress: no report from the worker yet"
    progress, stem = max(snapshots, key=lambda pair: pair[0].written)
    fraction = progress.fraction(run["start"], run["end"])
    where = f"{progress.phase}"
    if progress.simulated is not None and fraction is not None:
        where += f" at {progress.simulated[:16].replace('T', ' ')} ({fraction:.0%} of window), {progress.iterations:,} iterations"
    left = run_left(progress, fraction, None, 0.0)
    age = max(time.time() - progress.written, 0.0)
    return (
        f"progress ({stem}): {where}; backtest {duration(progress.elapsed_seconds)} in, ~{duration(left)} left "
        f"(reported {duration(age)} ago)"
    )


def reset(store: PlanStore, selector: str | None, force: Iterable[str] = ()) -> list[str]:
    """Put selected entries back to ``pending``; their results move to ``history``, never deleted.

    A running entry is reset only if its supervisor is provably dead, or, for ``force`` ids,
    if it cannot be proven alive (another host, no create time): the explicit take-over of
    an entry stuck under an owner nobody can check. A provably live owner is never overridden.
    The files a result names move with it (see :mod:`supervisor.archive`), so a rerun cannot
    overwrite them.
    """
    forced = set(force)
    if forced and selector:
        raise PlanError("reset: give either --only or --force, not both")
    messages: list[str] = []
    count = 0
    with store.update() as plan:
        history: list[dict[str, Any]] = plan.setdefault("history", [])
        now = claims.utc_now()
        chosen = [claims.find(plan, run_id) for run_id in sorted(forced)] if forced else claims.select(plan, selector)
        for run in chosen:
            if run["status"] == "running":
                state = claims.owner_state(run)
                if state == claims.ALIVE:
                    messages.append(f"{run['id']}: left alone, a live supervisor is running it")
                    continue
                if state == claims.UNKNOWN and run["id"] not in forced:
                    messages.append(f"{run['id']}: left alone, its owner cannot be checked; "
                                    f"to take it over: reset --force {run['id']}")
                    continue
            result = plan["results"].pop(run["id"], None)
            if result is not None:
                number = 1 + sum(1 for old in history if old.get("id") == run["id"])
                result = archive_result(store, store.resolve(plan["meta"]["output_dir"]), run["id"], number, result)
                history.append({"id": run["id"], "archived_utc": now, "status": run["status"], "result": result})
            if run["status"] != "pending" or result is not None:
                messages.append(f"{run['id']}: {run['status']} -> pending")
                count += 1
            run["status"] = "pending"
            run["attempts"] = 0
            for key in ("owner", "note", "started_utc", "finished_utc", "crashes"):
                run.pop(key, None)
    messages.append(f"{count} entr{'y' if count == 1 else 'ies'} reset; earlier results kept in 'history', "
                    f"their files in {plan['meta']['output_dir']}/history/")
    return messages
