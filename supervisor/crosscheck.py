"""The cross-check of every profiled window: the same backtest again, unprofiled, sampled by py-spy.

yappi is a tracing profiler and slows Python bytecode and calls unevenly (about 2.5x overall),
so its shares are checked against a sampling profiler watching from outside: a second fresh
worker over the same window with ``profile: false`` (same isolation, data source and cache
state; no yappi), run under ``py-spy record --idle --threads`` (line-level frames: the findings'
hot lines; a function-level copy keyed like yappi is derived from the source). This module holds
the plan setting, finds py-spy, builds the command, prepares the pass's cache, and turns the
two passes into the per-run files and ``results[id]`` fields. It never fails a run: a missing
py-spy or one that cannot attach is recorded as ``cross_check: "unavailable: <reason>"``.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import crosscheck as cc
from common.attribution import annotate, attribute, owner_table
from common.collapsed import read_stacks, write_function_level
from common.deflines import hints_from
from common.fingerprints import differences as fingerprint_differences
from common.flamegraph import write_svg
from common.profiles import read_funcs
from supervisor.owned import fresh_dir

DEFAULT_RATE_HZ = 100
"""py-spy's own default. At this rate py-spy slowed the unprofiled backtest by the factor in
docs/performance.md (``make bench``); at 200 Hz it was 1.21x (truth-facts), and a week at 100 Hz still
gives a few hundred ticks."""


@dataclass(frozen=True)
class CrossCheckConfig:
    """``meta.cross_check``: ``"sampled"`` (default), ``"off"``, or an object with
    ``mode``, ``py_spy`` (path to the binary, relative to the plan) and ``rate_hz``."""

    mode: str = "sampled"
    py_spy: str | None = None
    rate_hz: int = DEFAULT_RATE_HZ

    @property
    def on(self) -> bool:
        return self.mode == "sampled"


def config_from_meta(meta: dict[str, Any]) -> CrossCheckConfig:
    """``meta.cross_check`` as a config; the plan schema (``supervisor/schema.py``) has checked it."""
    value = meta.get("cross_check", "sampled")
    options: dict[str, Any] = {"mode": value} if isinstance(value, str) else dict(value)
    return CrossCheckConfig(options.get("mode", "sampled"), options.get("py_spy"), int(options.get("rate_hz", DEFAULT_RATE_HZ)))


def locate_py_spy(config: CrossCheckConfig, plan_folder: Path) -> tuple[str | None, str | None]:
    """(path, None) or (None, one-line reason): the configured binary, else the one pip put
    beside this Python, else one on PATH."""
    if config.py_spy:
        path = Path(config.py_spy)
        path = path if path.is_absolute() else plan_folder / path
        if path.is_file() and os.access(path, os.X_OK):
            return str(path), None
        return None, f"no executable py-spy at {path} (meta.cross_check.py_spy)"
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside), None
    found = shutil.which("py-spy")
    if found:
        return found, None
    return None, "no py-spy binary beside this Python or on PATH (pip install py-spy)"


class Sampler:
    """py-spy recording one worker from outside, attached by pid the moment the worker exists.

    Attaching (rather than ``py-spy record -- python -m worker``) keeps the worker a direct
    child of the supervisor, so its stdout, its tie to the supervisor and the time-out handling
    are exactly those of the profiled pass, and py-spy's own messages go to a log of their own.
    The worker's first milliseconds (interpreter start-up) may go unsampled; they lie outside
    the backtest the comparison covers.
    """

    WAIT_SECONDS = 60.0

    def __init__(self, py_spy: str, rate_hz: int, output: Path, log: Path) -> None:
        self.command = [py_spy, "record", "--idle", "--threads", "--full-filenames",
                        "--rate", str(rate_hz), "--format", "raw", "--output", str(output)]  # fmt: skip
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.problem: str | None = None

    def attach(self, pid: int) -> None:
        try:
            with self.log.open("wb") as log:
                self.proc = subprocess.Popen([*self.command, "--pid", str(pid)], stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            self.problem = f"py-spy did not start: {exc}"

    def finish(self) -> None:
        """Wait for py-spy to notice the worker is gone and write its file; never hang the run."""
        if self.proc is None:
            return
        try:
            self.proc.wait(self.WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.problem = f"py-spy did not stop within {self.WAIT_SECONDS:g} s of the worker's exit"
            return
        if self.proc.returncode:
            self.problem = py_spy_complaint(self.log) or f"py-spy exited with code {self.proc.returncode}"


def prepare_cache(start_state: Path | None, target: Path) -> None:
    """The sampled pass's own cache folder, in the state the profiled pass started from.

    ``start_state`` is a copy taken just before the profiled pass (None: it started empty).
    """
    fresh_dir(target)  # refuses a folder this tool did not create
    if start_state is not None and start_state.exists():
        shutil.copytree(start_state, target, dirs_exist_ok=True)


@dataclass(frozen=True)
class Paths:
    """The cross-check's files of one run."""

    collapsed: Path
    svg: Path
    csv: Path
    log: Path
    lines: Path
    """py-spy's own output: line-level frames (``collapsed`` is derived from it, keyed by first lines)."""
    sites: Path
    """Samples by owner class and by site (:mod:`common.attribution`), what the report's findings read."""

    @classmethod
    def for_run(cls, output_dir: Path, run_id: str) -> Paths:
        return cls(
            output_dir / f"{run_id}.sampled.collapsed.txt",
            output_dir / f"{run_id}.sampled.svg",
            output_dir / f"{run_id}.crosscheck.csv",
            output_dir / f"{run_id}.sampled.py-spy.log",
            output_dir / f"{run_id}.sampled.lines.collapsed.txt",
            output_dir / f"{run_id}.sampled.sites.json",
        )

    @property
    def all(self) -> tuple[Path, ...]:
        return self.collapsed, self.svg, self.csv, self.log, self.lines, self.sites


EMPTY_FIELDS: dict[str, Any] = {
    "unprofiled_wall_seconds": None,
    "profiler_overhead_ratio": None,
    "sampled_samples": None,
    "sampled_rate_hz": None,
    "rank_agreement": None,
    "sampled_collapsed": None,
    "sampled_lines_collapsed": None,
    "sampled_sites": None,
    "sampled_svg": None,
    "crosscheck_csv": None,
    "sampled_outcome_matches": None,
}


ENTRY_FIELDS = (*EMPTY_FIELDS, "cross_check", "sampled_pass", "backtest_outcome")
"""Everything the cross-check adds to a result: it runs once per entry, beside pass 1."""


def with_cross_check(result: dict[str, Any], first_pass: dict[str, Any]) -> dict[str, Any]:
    """The entry's combined result with the cross-check made beside its first pass, whichever
    pass the repeats chose as the median (and that pass's sampled owner table, if it has one)."""
    combined = {**result, **{k: first_pass[k] for k in ENTRY_FIELDS if k in first_pass}}
    sampled_owners = first_pass.get("time_by_owner")
    if isinstance(sampled_owners, dict) and sampled_owners.get("source") == "sampled":
        combined["time_by_owner"] = sampled_owners
    return combined


def not_run(reason: str) -> dict[str, Any]:
    """The fields of a run whose cross-check did not happen; ``cross_check`` says why."""
    return {**EMPTY_FIELDS, "cross_check": reason}


_PY_SPY_ERROR = re.compile(r"^(?:Error|py-spy>.*(?:error|Error|failed|Failed)).*$")


def py_spy_complaint(log: Path) -> str | None:
    """py-spy's own last error line from its log, if it wrote one."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = [line.strip() for line in lines if _PY_SPY_ERROR.match(line.strip())]
    return found[-1] if found else None


def outcome_of(answer: dict[str, Any]) -> dict[str, Any]:
    """What a pass's backtest did: its fingerprint (iterations, orders, fills, final value, trade-events hash)."""
    return dict(answer.get("fingerprint") or {})


def compare_passes(
    *, profiled: dict[str, Any], sampled: dict[str, Any], funcs_csv: Path, paths: Paths, rate_hz: int, run_id: str
) -> tuple[dict[str, Any], list[str]]:
    """Files and fields of a cross-check whose both passes finished; plus notes for the result.

    ``profiled`` and ``sampled`` are the two workers' answers.
    """
    funcs = read_funcs(funcs_csv)
    hints = hints_from((f.module, f.name, f.lineno) for f in funcs)
    if paths.lines.exists():
        write_function_level(paths.lines, paths.collapsed, hints)
    stacks = read_stacks(paths.collapsed) if paths.collapsed.exists() else []
    sampled_scope = cc.in_scope(stacks)
    if not sampled_scope.ticks:
        return not_run("unavailable: py-spy recorded no samples inside the backtest"), []
    write_svg(stacks, paths.svg, f"{run_id}: unprofiled backtest sampled by py-spy at {rate_hz} Hz (wall clock, idle included)")
    yappi_wall = profiled["wall_seconds_total"]
    rows = cc.compare(funcs, yappi_wall, sampled_scope)
    cc.write_csv(rows, paths.csv)
    plain_wall = sampled.get("wall_seconds_total")
    attribution = attribute(read_stacks(paths.lines), hints)
    sites = {"run_id": run_id, "rate_hz": rate_hz, "unprofiled_wall_seconds": plain_wall, **attribution.to_json()}
    pstat = (profiled.get("files") or {}).get("pstat")
    verdicts = {(r.module, r.lineno, r.function.rsplit(".", 1)[-1]): r for r in rows}
    for site in sites["sites"]:  # the cross-check's word on each site, so the report need not read the CSV
        row = verdicts.get((site["file"], int(site["first_line"]), site["function"].rsplit(".", 1)[-1]))
        site["crosscheck"] = None if row is None else {
            "verdict": row.verdict, "yappi_inclusive": row.yappi_inclusive, "sampled_inclusive": row.sampled_inclusive}
    if pstat:  # without it the sites stay without yappi's figures; the report says "–"
        with contextlib.suppress(OSError, ValueError, EOFError, TypeError, KeyError):
            annotate(sites, marshal.loads(Path(pstat).read_bytes()))
    paths.sites.write_text(json.dumps(sites, indent=1))
    differences = fingerprint_differences(outcome_of(profiled), outcome_of(sampled))
    notes = [f"sampled pass's backtest differs from the profiled one: {', '.join(differences)}"] if differences else []
    fields = {
        "cross_check": "sampled",
        "unprofiled_wall_seconds": plain_wall,
        "profiler_overhead_ratio": round(yappi_wall / plain_wall, 3) if plain_wall else None,
        "sampled_samples": sampled_scope.ticks,
        "sampled_rate_hz": rate_hz,
        "rank_agreement": {"inclusive": cc.agreement(rows, "inclusive"), "self": cc.agreement(rows, "self")},
        "sampled_collapsed": paths.collapsed,
        "sampled_lines_collapsed": paths.lines,
        "sampled_sites": paths.sites,
        "time_by_owner": owner_table(attribution, plain_wall),
        "sampled_svg": paths.svg,
        "crosscheck_csv": paths.csv,
        "sampled_outcome_matches": not differences,
        "backtest_outcome": outcome_of(profiled),
    }
    return fields, notes
