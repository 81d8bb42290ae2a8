"""The queue as a person reads it, and ``reset`` for a new round that keeps the old results."""

from __future__ import annotations

import glob
import time
from pathlib import Path
from typing import Any

from common.progress import read_progress
from supervisor import claims
from supervisor.archive import archive_result
from supervisor.eta import duration, run_left
from supervisor.plan import Plan, PlanStore, Run


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
            owner = run.get("owner") or {}
            alive = "alive" if claims.owner_alive(run) else "DEAD (recovered at next start)"
            detail = (
                f"supervisor {owner.get('supervisor_pid')}@{owner.get('host')} ({alive}), "
                f"worker {owner.get('worker_pid')}, since {run.get('started_utc')}"
            )
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


def reset(store: PlanStore, selector: str | None) -> list[str]:
    """Put selected entries back to ``pending``; their results move to ``history``, never deleted.

    The files a result names move with it (see :mod:`supervisor.archive`), so a rerun cannot
    overwrite them. Entries running under a live supervisor are left alone and reported.
    """
    messages: list[str] = []
    with store.update() as plan:
        history: list[dict[str, Any]] = plan.setdefault("history", [])
        now = claims.utc_now()
        for run in claims.select(plan, selector):
            if run["status"] == "running" and claims.owner_alive(run):
                messages.append(f"{run['id']}: left alone, a live supervisor is running it")
                continue
            result = plan["results"].pop(run["id"], None)
            if result is not None:
                number = 1 + sum(1 for old in history if old.get("id") == run["id"])
                result = archive_result(store, store.resolve(plan["meta"]["output_dir"]), run["id"], number, result)
                history.append({"id": run["id"], "archived_utc": now, "status": run["status"], "result": result})
            if run["status"] != "pending" or result is not None:
                messages.append(f"{run['id']}: {run['status']} -> pending")
            run["status"] = "pending"
            run["attempts"] = 0
            for key in ("owner", "note", "started_utc", "finished_utc"):
                run.pop(key, None)
    messages.append(f"{len(messages)} entr{'y' if len(messages) == 1 else 'ies'} reset; earlier results kept in "
                    f"'history', their files in {plan['meta']['output_dir']}/history/")
    return messages
