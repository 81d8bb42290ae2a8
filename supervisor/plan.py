"""``profiling_plan.json``: its format, its validation, and the lock around every change.

The plan file is the plan, the queue and the results log at once, so every read-modify-write
happens under an exclusive lock on a sidecar file (``<plan>.lock``; the JSON file itself
cannot carry the lock because ``os.replace`` swaps its inode) and lands with an atomic
replace. Readers without the lock always see a whole file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout

from common.atomicio import atomic_write_bytes
from worker import options

STATUSES = ("pending", "running", "done", "error")
PHASE0_LABELS = ("cache_probe_cold", "cache_probe_warm")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REQUIRED_META = ("profiler", "clock_type", "output_dir", "random_seed_for_selection", "strategy", "data_source")
_REQUIRED_RUN = ("id", "start", "end", "label", "status")

Plan = dict[str, Any]
Run = dict[str, Any]


class PlanError(Exception):
    """Bad input in the plan file or on the command line: one line, exit code 2."""


def phase_of(run: Run) -> str:
    """Phase 0 is the cache probe; everything else is Phase 1."""
    return "phase0" if run.get("label") in PHASE0_LABELS else "phase1"


def run_dates(run: Run) -> tuple[date, date]:
    return date.fromisoformat(run["start"]), date.fromisoformat(run["end"])


def validate(plan: Any, source: str = "plan") -> None:
    """Raise :class:`PlanError` naming the first problem; accept every valid plan unchanged."""
    if not isinstance(plan, dict):
        raise PlanError(f"{source}: top level must be a JSON object")
    for section, kind in (("meta", dict), ("invariants", dict), ("runs", list), ("results", dict)):
        if section not in plan:
            raise PlanError(f"{source}: missing section {section!r}")
        if not isinstance(plan[section], kind):
            raise PlanError(f"{source}: {section!r} must be a JSON {'object' if kind is dict else 'array'}")
    meta = plan["meta"]
    for key in _REQUIRED_META:
        if key not in meta:
            raise PlanError(f"{source}: meta.{key} is missing")
    if str(meta["profiler"]).lower() != "yappi" or str(meta["clock_type"]).upper() != "WALL":
        raise PlanError(f"{source}: meta.profiler must be 'yappi' and meta.clock_type 'WALL'")
    if not isinstance(meta["data_source"], dict) or "kind" not in meta["data_source"]:
        raise PlanError(f"{source}: meta.data_source must be an object with a 'kind'")
    if ":" not in str(meta["strategy"]):
        raise PlanError(f"{source}: meta.strategy must look like 'package.module:ClassName'")
    _positive(meta.get("timeout_seconds", 1), f"{source}: meta.timeout_seconds")
    try:
        options.check(meta.get("backtest_options"), local=meta["data_source"].get("mode", "local") == "local")
    except options.OptionsError as exc:
        raise PlanError(f"{source}: {exc}") from None
    seen: set[str] = set()
    for index, run in enumerate(plan["runs"]):
        where = f"{source}: runs[{index}]"
        if not isinstance(run, dict):
            raise PlanError(f"{where} must be a JSON object")
        for key in _REQUIRED_RUN:
            if key not in run:
                raise PlanError(f"{where} ({run.get('id', '?')}): missing field {key!r}")
        run_id = run["id"]
        if not isinstance(run_id, str) or not _ID_PATTERN.match(run_id):
            raise PlanError(f"{where}: id {run_id!r} must be letters, digits, '.', '_' or '-'")
        where = f"{source}: run {run_id!r}"
        if run_id in seen:
            raise PlanError(f"{where}: duplicate id")
        seen.add(run_id)
        if run["status"] not in STATUSES:
            raise PlanError(f"{where}: unknown status {run['status']!r} (expected one of {', '.join(STATUSES)})")
        try:
            start, end = run_dates(run)
        except (TypeError, ValueError):
            raise PlanError(f"{where}: dates must be YYYY-MM-DD, got {run['start']!r} -> {run['end']!r}") from None
        if end <= start:
            raise PlanError(f"{where}: end {end} must be after start {start} (LumiBot stops at midnight starting the end date)")
        if "timeout_seconds" in run:
            _positive(run["timeout_seconds"], f"{where}: timeout_seconds")


def _positive(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PlanError(f"{what} must be a positive number, got {value!r}")


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
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            raise PlanError(f"{self.path}: plan file does not exist") from None

    def _parse(self, raw: bytes) -> Plan:
        try:
            plan = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise PlanError(f"{self.path}: not valid JSON: {exc}") from None
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
            validate(plan, str(self.path))
            after = encode(plan)
            if after != before:
                atomic_write_bytes(self.path, after)
            self._last = (after, plan)
        finally:
            self._lock.release()
