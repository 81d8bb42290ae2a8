"""``profiling_plan.json``: reading it, checking it (rules in :mod:`supervisor.schema`), and the
lock around every change.

The plan file is the plan, the queue and the results log at once, so every read-modify-write
happens under an exclusive lock on a sidecar file (``<plan>.lock``; the JSON file itself
cannot carry the lock because ``os.replace`` swaps its inode) and lands with an atomic
replace. Readers without the lock always see a whole file. Whatever goes wrong with the file
or its folder (not JSON, not a regular file, no permission, disk full) is a one-line
:class:`PlanError`, never a traceback.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout

from common.atomicio import atomic_write_bytes
from supervisor.schema import STATUSES, SchemaError, check_plan, parse
from worker import options

__all__ = ["PHASE0_LABELS", "STATUSES", "Plan", "PlanError", "PlanStore", "PlanWriteError", "Run", "validate"]

PHASE0_LABELS = ("cache_probe_cold", "cache_probe_warm")

Plan = dict[str, Any]
Run = dict[str, Any]


class PlanError(Exception):
    """Bad input in the plan file or on the command line: one line, exit code 2."""


class PlanWriteError(PlanError):
    """The plan could not be written (disk full, permissions, the file turned invalid under us).

    A finished run's result must survive this: the session keeps it in a sidecar instead.
    """


def phase_of(run: Run) -> str:
    """Phase 0 is the cache probe; everything else is Phase 1."""
    return "phase0" if run.get("label") in PHASE0_LABELS else "phase1"


def run_dates(run: Run) -> tuple[date, date]:
    return date.fromisoformat(run["start"]), date.fromisoformat(run["end"])


def validate(plan: Any, source: str = "plan", *, records: bool = True) -> None:
    """Raise :class:`PlanError` naming the first problem (see :mod:`supervisor.schema`).

    ``meta.backtest_options`` is checked by :mod:`worker.options`, which the worker uses too.
    """
    try:
        check_plan(plan, records=records)
    except SchemaError as exc:
        raise PlanError(f"{source}: {exc}") from None
    meta = plan["meta"]
    try:
        options.check(meta.get("backtest_options"), local=meta["data_source"].get("mode", "local") == "local")
    except options.OptionsError as exc:
        raise PlanError(f"{source}: {exc}") from None


def pristine(plan: Plan) -> Plan:
    """The same plan as a new round would start it: every run pending, no results or history.

    For copies of a plan that has already run (tests, benchmarks, a second machine).
    """
    fresh = {k: v for k, v in plan.items() if k not in ("phase0", "history")}
    fresh["runs"] = [
        {k: v for k, v in run.items() if k not in ("owner", "note", "attempts", "started_utc", "finished_utc")}
        | {"status": "pending"}
        for run in plan["runs"]
    ]
    fresh["results"] = {k: v for k, v in plan["results"].items() if k == "_schema"}
    return fresh


def encode(plan: Plan) -> bytes:
    return orjson.dumps(plan, option=orjson.OPT_INDENT_2) + b"\n"


class PlanStore:
    """The plan file on disk. ``read`` for a snapshot, ``update`` for a locked change."""

    def __init__(self, path: Path, lock_timeout: float = 60.0) -> None:
        self.path = path.resolve()
        self.folder = self.path.parent
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout)
        # The bytes this store last wrote and the plan they encode. A 10,000-run plan with
        # results is ~25 MB; comparing bytes costs ~3 ms where parsing costs ~130 ms.
        self._last: tuple[bytes, Plan] | None = None

    def resolve(self, relative: str | Path) -> Path:
        """Paths in the plan are relative to the plan file's folder, so a copied plan is self-contained."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.folder / candidate

    def relative(self, path: Path) -> str:
        """The inverse of :meth:`resolve`, for paths recorded in the plan."""
        try:
            return str(path.resolve().relative_to(self.folder))
        except ValueError:
            return str(path)

    def _remove_stale_temporaries(self) -> None:
        """Temp files of a writer killed mid-write; safe to delete while we hold the lock."""
        for leftover in self.folder.glob(f".{self.path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)

    def read(self) -> Plan:
        return self._parse(self._raw())

    def _raw(self) -> bytes:
        """The file's bytes; a FIFO, a folder or an unreadable file is bad input, not a hang or a traceback."""
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                raise PlanError(f"{self.path}: not a regular file")
            return self.path.read_bytes()
        except FileNotFoundError:
            raise PlanError(f"{self.path}: plan file does not exist") from None
        except OSError as exc:
            raise PlanError(f"{self.path}: cannot read: {exc.strerror or exc}") from None

    def _parse(self, raw: bytes) -> Plan:
        """Strict JSON; a file exactly as a supervisor writes it skips the slower duplicate-key parse.

        Re-encoding what orjson read gives back the same bytes only if nothing was lost, so a
        file a supervisor wrote (and nobody edited) cannot hide a duplicate key.
        """
        try:
            try:
                plan = orjson.loads(raw)
            except orjson.JSONDecodeError:
                plan = None
            if plan is None or encode(plan) != raw:
                plan = parse(raw)  # edited by hand, or broken: the strict parser names the problem
        except SchemaError as exc:
            raise PlanError(f"{self.path}: {exc}") from None
        except ValueError as exc:
            raise PlanError(f"{self.path}: not valid JSON: {str(exc).splitlines()[0]}") from None
        validate(plan, str(self.path))
        return plan

    @contextmanager
    def update(self) -> Iterator[Plan]:
        """Lock, read, let the caller change the plan, validate, write atomically.

        If the caller raises, nothing is written. The lock is held for the whole change, so
        concurrent supervisors never lose each other's writes.
        """
        try:
            self._lock.acquire()
        except Timeout:
            raise PlanError(f"{self.path}: could not lock {self._lock.lock_file} (another process holds it)") from None
        except OSError as exc:
            raise PlanError(f"{self.path}: cannot lock {self._lock.lock_file}: {exc.strerror or exc}") from None
        try:
            self._remove_stale_temporaries()
            raw = self._raw()
            cached, self._last = self._last, None  # the caller may change it: trust it again only once written
            if cached is not None and cached[0] == raw:
                plan, before = cached[1], raw  # nobody wrote since our last change: skip the parse
            else:
                plan = self._parse(raw)
                before = encode(plan)
            yield plan
            validate(plan, str(self.path), records=False)
            after = encode(plan)
            if after != before:
                try:
                    atomic_write_bytes(self.path, after)
                except OSError as exc:
                    raise PlanWriteError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
            self._last = (after, plan)
        finally:
            self._lock.release()
