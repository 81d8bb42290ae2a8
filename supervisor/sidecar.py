"""A finished result the plan file could not take, kept beside the outputs until it can.

When the plan cannot be written at the end of a run (a hand edit left it invalid, the disk
is full, permissions changed), the result goes to ``<output_dir>/<id>.result.json`` instead
of being lost, and the next supervisor start (or the same session's next step) merges it.
A sidecar whose entry has since been run again goes to ``history``, like any older result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from common.atomicio import atomic_write_bytes
from supervisor import claims
from supervisor.claims import Owner
from supervisor.plan import PlanStore
from supervisor.schema import RESULT, SchemaError

SUFFIX = ".result.json"


def save(output_dir: Path, run_id: str, owner: Owner, status: str, result: dict[str, Any]) -> Path:
    path = output_dir / f"{run_id}{SUFFIX}"
    doc = {"id": run_id, "token": owner.token, "status": status, "finished_utc": claims.utc_now(), "result": result}
    atomic_write_bytes(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return path


def _load(path: Path) -> dict[str, Any] | None:
    """The sidecar's document if it is one we wrote and can trust, else None (left in place)."""
    try:
        doc = orjson.loads(path.read_bytes())
        if not (isinstance(doc, dict) and doc.get("status") in claims.FINAL and isinstance(doc.get("id"), str)
                and isinstance(doc.get("token"), str)):
            return None
        RESULT(doc.get("result"))
    except (OSError, ValueError, SchemaError):
        return None
    return doc


def merge(store: PlanStore, output_dir: Path, owner: Owner) -> tuple[list[str], list[str]]:
    """Move every sidecar's result into the plan; one console line per sidecar: what was merged,
    and the problems (a file that is not one of this plan's sidecars, left in place)."""
    found = sorted(output_dir.glob(f"*{SUFFIX}")) if output_dir.is_dir() else []
    if not found:
        return [], []
    messages: list[str] = []
    problems: list[str] = []
    merged: list[Path] = []
    with store.update() as plan:
        runs = {run["id"]: run for run in plan["runs"]}
        for path in found:
            doc = _load(path)
            run = runs.get(doc["id"]) if doc else None
            if doc is None or run is None:
                problems.append(f"{path}: not a result sidecar of this plan; left in place")
                continue
            record = run.get("owner") or {}
            ours = run["status"] == "running" and record.get("token") == doc["token"]
            if ours and record.get("token") != owner.token and claims.owner_state(run) == claims.ALIVE:
                continue  # its live supervisor merges it itself
            if ours or (run["status"] == "pending" and run["id"] not in plan["results"]):
                run.update(status=doc["status"], finished_utc=doc["finished_utc"])
                for key in ("owner", "note"):
                    run.pop(key, None)
                plan["results"][run["id"]] = doc["result"]
                messages.append(f"{run['id']}: {doc['status']} result kept in {path.name} (the plan could not be "
                                "written when the run finished) is now in the plan")
            else:
                plan.setdefault("history", []).append(
                    {"id": run["id"], "archived_utc": claims.utc_now(), "status": doc["status"], "result": doc["result"]})
                messages.append(f"{run['id']}: result in {path.name} is older than the entry's current state "
                                f"({run['status']}); moved to history")
            merged.append(path)
    for path in merged:
        path.unlink(missing_ok=True)
    return messages, problems
