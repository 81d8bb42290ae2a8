"""The queue: which entry runs next, who owns it, and how a dead owner's entry comes back.

Every function here changes the plan only inside :meth:`PlanStore.update`, so a claim is
atomic across processes: two supervisors on one plan never take the same entry.
Ownership is a random token plus the owner's pid, process create time and host, so a
reused pid is never mistaken for a live supervisor.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psutil

from supervisor import reaper
from supervisor.plan import PHASE0_LABELS, Plan, PlanError, PlanStore, Run, phase_of

FINAL = ("done", "error")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def process_create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_alive(pid: Any, create_time: Any) -> bool:
    """True only if ``pid`` runs and provably is the process recorded: same create time, not a zombie.

    Without a recorded create time nothing is proven (the pid may have been reused by anyone),
    so the answer is False: callers that kill must never act on an unproven identity.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(create_time, int | float):
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - float(create_time)) < 0.01
    except psutil.Error:
        return False


ALIVE, DEAD, UNKNOWN = "alive", "dead", "unknown"


def owner_state(run: Run) -> str:
    """Whether the supervisor recorded as running this entry is ``alive``, ``dead`` or ``unknown``.

    ``unknown``: another host (a container restarted under a new host name looks the same), or
    a live pid whose create time was not recorded. Such an entry is never recovered on a guess;
    ``reset --force ID`` takes it over explicitly.
    """
    record = run.get("owner") or {}
    if record.get("host") not in (None, socket.gethostname()):
        return UNKNOWN
    pid, create_time = record.get("supervisor_pid"), record.get("supervisor_create_time")
    if is_alive(pid, create_time):
        return ALIVE
    if create_time is None and isinstance(pid, int) and process_create_time(pid) is not None:
        return UNKNOWN
    return DEAD


@dataclass(frozen=True)
class Owner:
    """This supervisor process, as recorded in every entry it claims."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)

    @property
    def create_time(self) -> float | None:
        return process_create_time(self.pid)

    def record(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "supervisor_pid": self.pid,
            "supervisor_create_time": self.create_time,
            "host": self.host,
            "worker_pid": None,
            "worker_create_time": None,
        }


def select(plan: Plan, selector: str | None) -> list[Run]:
    """Entries matching ``phase0``, ``phase1``, a label or a run id; unknown selectors are errors."""
    runs: list[Run] = plan["runs"]
    if selector is None or selector == "all":
        return runs
    if selector in ("phase0", "phase1"):
        return [r for r in runs if phase_of(r) == selector]
    chosen = [r for r in runs if selector in (r["label"], r["id"])]
    if not chosen:
        labels = sorted({r["label"] for r in runs})
        raise PlanError(
            f"--only {selector!r} matches no entry (use phase0, phase1, a label such as "
            f"{', '.join(labels[:4])}, or a run id)"
        )
    return chosen


def find(plan: Plan, run_id: str) -> Run:
    for run in plan["runs"]:
        if run["id"] == run_id:
            return run
    raise PlanError(f"run {run_id!r} is not in the plan")


def owned_by(run: Run, owner: Owner) -> bool:
    return run.get("status") == "running" and (run.get("owner") or {}).get("token") == owner.token


#: Crashes of a supervisor while running one entry before the entry is given up as ``error``
#: (``meta.max_attempts`` overrides): an entry that kills its supervisor must not block the queue.
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Recovery:
    """One entry taken back from a dead supervisor: back to ``pending``, or given up as ``error``."""

    run_id: str
    message: str
    gave_up: bool


def recover(store: PlanStore) -> list[Recovery]:
    """Put entries whose supervisor provably died back to ``pending``, ending their leftovers first.

    The orphaned worker is killed only if its pid and create time match the record; anything
    else it started is found by the owner's token in its environment. An entry whose
    supervisor died ``max_attempts`` times ends in ``error`` instead.
    """
    recovered: list[Recovery] = []
    with store.update() as plan:
        limit = int(plan["meta"].get("max_attempts", DEFAULT_MAX_ATTEMPTS))
        for run in plan["runs"]:
            if run["status"] != "running" or owner_state(run) != DEAD:
                continue
            record = run.get("owner") or {}
            left = ""
            if is_alive(record.get("worker_pid"), record.get("worker_create_time")) and reaper.kill_pid(record["worker_pid"]):
                left += f"; orphaned worker {record['worker_pid']} killed"
            others = reaper.kill_marked(record["token"]) if record.get("token") else []
            if others:
                left += f"; processes it started killed: {', '.join(map(str, sorted(others)))}"
            crashes = int(run.get("crashes", 0)) + 1
            note = f"supervisor {record.get('supervisor_pid')} died while this entry was running{left}"
            run.pop("owner", None)
            run["crashes"] = crashes
            if crashes >= limit:
                from supervisor.results import error_result

                reason = f"gave up after the supervisor died {crashes} times running it (last: {note})"
                run["status"] = "error"
                run["finished_utc"] = utc_now()
                plan["results"][run["id"]] = error_result(run, reason)
                recovered.append(Recovery(run["id"], f"error: {reason}", gave_up=True))
            else:
                run["status"] = "pending"
                run["note"] = f"recovered {utc_now()}: {note}"
                recovered.append(Recovery(run["id"], run["note"], gave_up=False))
    return recovered


@dataclass(frozen=True)
class Claim:
    """An entry this supervisor now owns, with the attempt number recorded in the plan."""

    run: Run
    attempt: int


BLOCKED = "blocked"


def claim_next(store: PlanStore, selector: str | None, owner: Owner) -> Claim | str | None:
    """Atomically take the first pending entry that may run now.

    Returns the claim, :data:`BLOCKED` when pending entries wait on another supervisor's
    running entry (the warm probe waits for the cold one), or None when nothing is left.
    """
    with store.update() as plan:
        wanted = {r["id"] for r in select(plan, selector)}
        blocked = False
        for run in plan["runs"]:
            if run["id"] not in wanted or run["status"] != "pending":
                continue
            if not _dependencies_final(plan, run):
                blocked = True
                continue
            return _take(run, owner)
        return BLOCKED if blocked else None


def claim_beside(store: PlanStore, selector: str | None, owner: Owner, held: list[Claim], limit: int) -> list[Claim]:
    """Also take up to ``limit`` pending entries of the same phase as ``held``, to interleave their passes.

    An entry whose only unfinished dependency is held by this supervisor may be taken (the
    warm probe beside the cold one: each warm pass runs right after its cold pass).
    """
    claimed: list[Claim] = []
    with store.update() as plan:
        wanted = {r["id"] for r in select(plan, selector)}
        phase = phase_of(held[0].run)
        for run in plan["runs"]:
            if len(claimed) >= limit:
                break
            if run["id"] not in wanted or run["status"] != "pending" or phase_of(run) != phase:
                continue
            ours = {c.run["id"] for c in (*held, *claimed)}
            if _dependencies_final(plan, run, ours):
                claimed.append(_take(run, owner))
    return claimed


def _take(run: Run, owner: Owner) -> Claim:
    attempt = int(run.get("attempts", 0)) + 1
    run["status"] = "running"
    run["attempts"] = attempt
    run["started_utc"] = utc_now()
    run["owner"] = owner.record()
    run.pop("note", None)
    return Claim(run=orjson.loads(orjson.dumps(run)), attempt=attempt)  # no reference into the plan


def _dependencies_final(plan: Plan, run: Run, ours: set[str] | None = None) -> bool:
    """The warm probe runs after the cold one; Phase 1 runs after Phase 0. Entries in ``ours``
    are held by the asking supervisor, which orders their passes itself."""
    held = ours or set()

    def final(r: Run) -> bool:
        return r["status"] in FINAL or r["id"] in held

    if run["label"] == PHASE0_LABELS[1]:
        return all(final(r) for r in plan["runs"] if r["label"] == PHASE0_LABELS[0])
    if phase_of(run) == "phase1":
        return all(final(r) for r in plan["runs"] if phase_of(r) == "phase0" and r["status"] != "pending")
    return True


def record_worker(store: PlanStore, run_id: str, owner: Owner, pid: int, create_time: float | None) -> None:
    with store.update() as plan:
        run = find(plan, run_id)
        if owned_by(run, owner):
            run["owner"]["worker_pid"] = pid
            run["owner"]["worker_create_time"] = create_time


def finish(store: PlanStore, run_id: str, owner: Owner, status: str, result: dict[str, Any]) -> bool:
    """Write the final state and ``results[id]``, only if this supervisor still owns the entry.

    Returns False (and writes nothing) when ownership was lost, e.g. a recovery by another
    supervisor after this one was suspended past its owner check.
    """
    with store.update() as plan:
        run = find(plan, run_id)
        if not owned_by(run, owner):
            return False
        run["status"] = status
        run["finished_utc"] = utc_now()
        run.pop("owner", None)
        plan["results"][run_id] = result
        return True


def release(store: PlanStore, run_id: str, owner: Owner, note: str) -> bool:
    """Give an entry back to the queue (interrupted run), with a note saying why.

    An interruption is not the entry's fault, so the attempt is given back too.
    Returns False if this supervisor no longer owned the entry.
    """
    with store.update() as plan:
        run = find(plan, run_id)
        if not owned_by(run, owner):
            return False
        run["status"] = "pending"
        run["attempts"] = max(0, int(run.get("attempts", 1)) - 1)
        run.pop("owner", None)
        run["note"] = note
        return True
