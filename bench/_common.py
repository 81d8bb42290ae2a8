"""Shared plumbing for the benchmarks: paired timing, summaries, temporary plans, worker specs.

Every benchmark runs on a small machine shared with other agents' test runs, so a single
timing means little. The helpers here make the honest thing the easy thing: measure the
variants of one comparison back to back in a rotating order (so a burst of outside load
hits every variant alike), and report min/median/max plus per-pair ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
REPO_PLAN = ROOT / "profiling_plan.json"
PY = sys.executable
SYNTHETIC: dict[str, Any] = {"kind": "pandas_synthetic", "assets": [{"symbol": "MES", "type": "cont_future"}]}
LOCAL_DATABENTO: dict[str, Any] = {"kind": "databento", "mode": "local", "dataset": "GLBX.MDP3"}


# -- command line --------------------------------------------------------------------------
def parser(description: str | None) -> argparse.ArgumentParser:
    """Every script takes ``--quick`` (fewer repetitions) and ``--smoke`` so ``run_all`` can pass them on."""
    p = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions (noisier, faster)")
    p.add_argument("--smoke", action="store_true",
                   help="build the plans and worker specs a run would, then stop before timing anything (make test)")
    return p


def smoke_stop(args: argparse.Namespace, built: str) -> bool:
    """Under ``--smoke``: say what was built and tell the caller to stop (tests/test_bench.py)."""
    if args.smoke:
        print(f"SMOKE ok: {built}", flush=True)
    return bool(args.smoke)


# -- statistics and printing -----------------------------------------------------------------
@dataclass
class Series:
    """One measured quantity over repetitions; prints as min/median/max."""

    name: str
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def min(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def max(self) -> float:
        return max(self.values) if self.values else float("nan")

    def row(self, fmt: str = "{:.3f}", unit: str = "") -> list[str]:
        return [self.name, str(len(self.values)), fmt.format(self.min), fmt.format(self.median), fmt.format(self.max), unit]


def ratios(top: Series, bottom: Series, name: str) -> Series:
    """Per-pair ratios: each repetition divides by its own baseline, which cancels slow spells."""
    return Series(name, [a / b for a, b in zip(top.values, bottom.values, strict=True) if b > 0])


def differences(top: Series, bottom: Series, name: str, scale: float = 1.0) -> Series:
    """Per-pair differences, optionally divided by ``scale`` (e.g. runs per repetition)."""
    return Series(name, [(a - b) / scale for a, b in zip(top.values, bottom.values, strict=True)])


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print()


def series_table(series: Sequence[Series], fmt: str = "{:.3f}", unit: str = "s") -> None:
    table(["quantity", "n", "min", "median", "max", "unit"], [s.row(fmt, unit) for s in series])


def goal(name: str, measured: str, target: str, passed: bool) -> bool:
    """One machine-greppable verdict line; ``run_all`` collects these."""
    print(f"GOAL {name}: {measured} (goal {target}) {'PASS' if passed else 'MISS'}", flush=True)
    return passed


def rotate(variants: Sequence[Any], index: int) -> list[Any]:
    """The variants in a different order each repetition, so no variant always goes first."""
    k = index % len(variants)
    return [*variants[k:], *variants[:k]]


def header(title: str, note: str) -> None:
    print(f"== {title}")
    print(note)
    print()


# -- temporary plans and folders ---------------------------------------------------------------
@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A scratch folder removed afterwards (also on Ctrl-C), kept only with BENCH_KEEP=1."""
    folder = Path(tempfile.mkdtemp(prefix=f"lumiprof-bench-{prefix}-"))
    try:
        yield folder
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(folder, ignore_errors=True)


def short_run(run_id: str, start: str, end: str, label: str = "week") -> dict[str, Any]:
    return {"id": run_id, "start": start, "end": end, "label": label, "status": "pending"}


def make_plan(folder: Path, runs: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> Path:
    """A copy of the repo plan with these runs, the way tests/conftest.py makes one."""
    from supervisor.plan import pristine

    plan = pristine(orjson.loads(REPO_PLAN.read_bytes()))  # the repo plan may hold a finished round
    plan["runs"] = runs
    plan["meta"]["data_source"] = dict(SYNTHETIC)
    plan["meta"]["timeout_seconds"] = 600
    plan["meta"]["memory"] = "off"  # a benchmark of something else must not time memory passes too (memory_cost.py does)
    for key, value in (meta or {}).items():
        if key == "strategy_parameters":
            plan["meta"][key] = {**plan["meta"][key], **value}
        else:
            plan["meta"][key] = value
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "profiling_plan.json"
    target.write_bytes(orjson.dumps(plan, option=orjson.OPT_INDENT_2))
    return target


# -- worker runs ------------------------------------------------------------------------------
def specs_for(plan_path: Path, profile: bool = True) -> list[Any]:
    """The RunSpecs the supervisor would send for pass 1 of each run of the plan.

    Built by the supervisor's own public :func:`supervisor.specs.first_pass_specs`, so a direct
    worker run gets exactly what a supervised one would, down to the search path and cache folder.
    """
    from supervisor.plan import PlanStore
    from supervisor.specs import first_pass_specs

    return first_pass_specs(PlanStore(plan_path), profile=profile)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Session._spawn gives a worker (project on PYTHONPATH), plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


@dataclass
class ProcessRun:
    """One child process: its wall time from spawn to exit and its decoded JSON answer."""

    seconds: float
    answer: dict[str, Any]
    returncode: int


def fresh_dirs(spec: Any) -> None:
    """Empty work and cache folders, as the supervisor gives every (non warm-probe) run."""
    shutil.rmtree(spec.work_dir, ignore_errors=True)
    shutil.rmtree(spec.cache_folder, ignore_errors=True)
    Path(spec.work_dir).mkdir(parents=True)


def run_json_process(cmd: list[str], stdin: bytes, cwd: Path, env: dict[str, str], stderr_path: Path) -> ProcessRun:
    """Spawn, feed stdin, wait, decode the one JSON line on stdout; fail loudly if there is none."""
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with stderr_path.open("wb") as err:
        proc = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=err, cwd=cwd, env=env, check=False)
    seconds = time.perf_counter() - t0
    try:
        answer = orjson.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, orjson.JSONDecodeError):
        tail = stderr_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{cmd} printed no JSON (exit {proc.returncode}); stderr tail:\n{tail}") from None
    return ProcessRun(seconds, answer, proc.returncode)


def _run_spec(command: list[str], spec: Any, env: dict[str, str], stderr_stem: str, what: str) -> ProcessRun:
    """Run ``command`` with the spec on stdin in fresh folders; a failed run stops the benchmark."""
    fresh_dirs(spec)
    got = run_json_process(
        command, orjson.dumps(spec.to_json()), Path(spec.work_dir), env, Path(spec.output_dir) / f"{stderr_stem}.stderr.log"
    )
    if not got.answer.get("ok"):
        raise RuntimeError(f"{what} {spec.id} failed: {got.answer.get('error')}")
    return got


def run_worker_direct(spec: Any, env: dict[str, str]) -> ProcessRun:
    """``python -m worker`` with the spec on stdin, started the way runner.run_worker does (minus psutil)."""
    return _run_spec([PY, "-m", "worker"], spec, env, spec.stem, "worker run")


def run_bare(spec: Any, mode: str, env: dict[str, str]) -> ProcessRun:
    """``bench/_bare_backtest.py``: the same backtest in a fresh process, outside our worker."""
    return _run_spec([PY, str(BENCH / "_bare_backtest.py"), mode], spec, env, f"{spec.stem}.{mode}", f"bare run ({mode})")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value
