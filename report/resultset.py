"""A plan's runs joined with their results and profiles: what the report and the comparison read.

Loading never raises for a missing or unreadable CSV: a result set with holes must still
render, so each problem is kept beside the run it belongs to and shown to the reader.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from common.profiles import FuncRow, ThreadRow, portable, read_funcs, read_threads
from common.windows import window_days
from report.filecache import cached
from supervisor.plan import Plan, PlanStore, Run, phase_of, run_dates


@dataclass
class RunRecord:
    """One plan entry, its ``results[id]`` record (if any) and its profiles (if readable)."""

    run: Run
    result: dict[str, Any] | None
    funcs: list[FuncRow] | None = None
    threads: list[ThreadRow] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.run["id"])

    @property
    def label(self) -> str:
        return str(self.run["label"])

    @property
    def status(self) -> str:
        return str(self.run["status"])

    @property
    def phase(self) -> str:
        return phase_of(self.run)

    @cached_property
    def days(self) -> int:
        return window_days(*run_dates(self.run))

    def value(self, name: str) -> Any:
        return (self.result or {}).get(name)

    @property
    def wall(self) -> float | None:
        value = self.value("wall_seconds_total")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def done(self) -> bool:
        """Finished, timed and profiled: the only runs that enter totals and fits."""
        return self.status == "done" and self.wall is not None and self.funcs is not None and not self.value("partial")

    @property
    def pass_walls(self) -> list[float]:
        """Wall seconds of every done pass (one run without repeats is its own one pass)."""
        passes = self.value("passes") or [self.result or {}]
        return [float(p["wall_seconds_total"]) for p in passes
                if p.get("status") == "done" and isinstance(p.get("wall_seconds_total"), int | float)]

    def pass_funcs(self, store: PlanStore) -> list[list[FuncRow]]:
        """The profile of every done pass that has a readable one, portable keys, in pass order."""
        passes = self.value("passes") or [self.result or {}]
        found = []
        for p in passes:
            if p.get("status") == "done" and p.get("top_functions_csv"):
                try:
                    found.append(portable(read_funcs(store.resolve(p["top_functions_csv"]))))
                except (OSError, ValueError, KeyError, csv.Error) as exc:
                    self.problems.append(f"{p['top_functions_csv']} is unreadable ({type(exc).__name__})")
        return found

    @property
    def mode(self) -> str:
        if self.phase == "phase0":
            return "probe"
        return str(self.value("phase1_mode") or "—")


def _load_profiles(store: PlanStore, record: RunRecord) -> None:
    for name, reader, target in (
        ("top_functions_csv", lambda p: portable(read_funcs(p)), "funcs"),
        ("top_threads_csv", read_threads, "threads"),
    ):
        relative = record.value(name)
        if not relative:
            if record.status == "done":
                record.problems.append(f"no {name} recorded")
            continue
        path = store.resolve(relative)
        try:
            setattr(record, target, cached(name, path, reader))
        except FileNotFoundError:
            record.problems.append(f"{relative} is missing")
        except (OSError, ValueError, KeyError, csv.Error) as exc:
            record.problems.append(f"{relative} is unreadable ({type(exc).__name__}: {exc})")


@dataclass
class ResultSet:
    """Every entry of one plan in plan order, with helpers for the subsets the report needs."""

    store: PlanStore
    plan: Plan
    records: list[RunRecord]

    @property
    def done(self) -> list[RunRecord]:
        return [r for r in self.records if r.done]

    @property
    def phase1_done(self) -> list[RunRecord]:
        return [r for r in self.done if r.phase == "phase1"]

    @property
    def not_done(self) -> list[RunRecord]:
        return [r for r in self.records if not r.done]

    def by_id(self) -> dict[str, RunRecord]:
        return {r.id: r for r in self.records}

    @property
    def output_dir(self) -> Path:
        return self.store.resolve(self.plan["meta"]["output_dir"])

    @property
    def longest_planned_days(self) -> int:
        """The longest window in the plan, done or not: the backtest the scaling is extrapolated to."""
        return max((r.days for r in self.records), default=0)


def load(store: PlanStore) -> ResultSet:
    plan = store.read()
    results: dict[str, Any] = plan["results"]
    records: list[RunRecord] = []
    for run in plan["runs"]:
        result = results.get(run["id"])
        record = RunRecord(run, result if isinstance(result, dict) else None)
        if record.result is not None:
            _load_profiles(store, record)
        records.append(record)
    return ResultSet(store, plan, records)
