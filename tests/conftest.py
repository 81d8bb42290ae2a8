"""Shared fixtures: temporary copies of the real plan, and a way to run the supervisor as a user does."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from supervisor.plan import pristine

REPO = Path(__file__).resolve().parent.parent
REPO_PLAN = REPO / "profiling_plan.json"
SYNTHETIC = {"kind": "pandas_synthetic", "assets": [{"symbol": "MES", "type": "cont_future"}]}


def short_run(run_id: str, start: str = "2024-09-03", end: str = "2024-09-05", label: str = "week") -> dict[str, Any]:
    return {"id": run_id, "start": start, "end": end, "label": label, "status": "pending"}


@pytest.fixture(scope="session", autouse=True)
def repo_plan_untouched() -> Any:
    """No test may modify the repo's own plan file."""
    before = REPO_PLAN.read_bytes()
    yield
    assert REPO_PLAN.read_bytes() == before, "a test modified the repo's profiling_plan.json"


def write_plan(folder: Path, runs: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> Path:
    """A new-round copy of the repo plan in ``folder`` with these runs, synthetic data, no cross-check, no memory
    pass and ``meta`` overrides."""
    plan = pristine(orjson.loads(REPO_PLAN.read_bytes()))  # the repo plan may hold a finished round
    plan["runs"] = runs
    plan["meta"]["data_source"] = dict(SYNTHETIC)
    plan["meta"]["timeout_seconds"] = 300
    plan["meta"]["cross_check"] = "off"  # doubles a run's time; tests/test_crosscheck.py turns it on
    plan["meta"]["memory"] = "off"  # one more pass per window; tests/test_memory.py turns it on
    plan["meta"].update(meta or {})
    target = folder / "profiling_plan.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(orjson.dumps(plan, option=orjson.OPT_INDENT_2))
    return target


@pytest.fixture
def make_plan(tmp_path: Path) -> Callable[..., Path]:
    """Copy the repo plan into tmp_path (or ``folder``) with the given runs and meta overrides."""

    def make(runs: list[dict[str, Any]], meta: dict[str, Any] | None = None, folder: Path | None = None) -> Path:
        return write_plan(folder or tmp_path, runs, meta)

    return make


def supervise(plan: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m supervisor`` in a real process, from an unrelated working directory."""
    return supervise_together([plan], *args, timeout=timeout)[0]


def supervise_together(plans: list[Path], *args: str, timeout: float = 600) -> list[subprocess.CompletedProcess[str]]:
    """:func:`supervise` on several plans at once, one process each (a plan names one strategy).

    Output goes to files, not pipes, so no process stalls on a full pipe while another is awaited.
    """
    with contextlib.ExitStack() as stack:
        started = []
        for plan in plans:
            cmd = [sys.executable, "-m", "supervisor", *args, "--plan", str(plan)]
            out, err = (stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(2))
            started.append((cmd, subprocess.Popen(cmd, cwd=plan.parent, stdout=out, stderr=err, text=True), out, err))
        deadline = time.monotonic() + timeout
        try:
            for _cmd, proc, _, _ in started:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            for _, proc, _, _ in started:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        done = []
        for cmd, proc, out, err in started:
            out.seek(0)
            err.seek(0)
            done.append(subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read()))
        return done


def load(plan: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(plan.read_bytes())
    return data
