"""Bad input: exit code 2, one clear line naming the problem, and the plan file left as it was."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from supervisor.plan import PlanError, validate
from tests.conftest import REPO_PLAN, supervise


def mutated(change: Callable[[dict[str, Any]], None]) -> bytes:
    plan = orjson.loads(REPO_PLAN.read_bytes())
    change(plan)
    return orjson.dumps(plan, option=orjson.OPT_INDENT_2)


def _set_run(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(plan: dict[str, Any]) -> None:
        plan["runs"][index].update(fields)

    return change


def _drop_run_field(field: str) -> Callable[[dict[str, Any]], None]:
    return lambda plan: plan["runs"][3].pop(field)


def _duplicate(plan: dict[str, Any]) -> None:
    plan["runs"].append(dict(plan["runs"][2]))


CASES = {
    "invalid JSON": (b'{"meta": {', "not valid JSON"),
    "unknown status": (mutated(_set_run(2, status="finished")), 'status: must be one of pending, running, done, error'),
    "duplicate ids": (mutated(_duplicate), "duplicate id"),
    "end before start": (
        mutated(_set_run(4, start="2025-03-16", end="2025-03-10")),
        "end 2025-03-10 must be after start 2025-03-16",
    ),
    "unparsable date": (mutated(_set_run(5, start="2025-02-30")), "start: must be a real date YYYY-MM-DD"),
    "missing run field": (mutated(_drop_run_field("end")), '("wk-2025-03-10_03-16").end: is missing'),
    "missing section": (mutated(lambda p: p.pop("invariants")), "invariants: is missing"),
    "bad timeout": (mutated(lambda p: p["meta"].update(timeout_seconds=-5)), "meta.timeout_seconds: must be a number in"),
    "wrong clock": (mutated(lambda p: p["meta"].update(clock_type="CPU")), "meta.clock_type: must be one of WALL"),
    "unknown backtest option": (
        mutated(lambda p: p["meta"].update(backtest_options={"show_plots": False})),
        "meta.backtest_options.show_plots is not a run_backtest option",
    ),
    "backtest option of the wrong type": (
        mutated(lambda p: p["meta"].update(backtest_options={"save_tearsheet": "no"})),
        "meta.backtest_options.save_tearsheet must be true/false, got 'no'",
    ),
    "backtest option reaching the network": (
        mutated(lambda p: p["meta"].update(backtest_options={"benchmark_asset": "SPY"})),
        "benchmark_asset='SPY' is refused in local mode: LumiBot would download",
    ),
    "backtest option set by an invariant": (
        mutated(lambda p: p["meta"].update(backtest_options={"save_logfile": False})),
        "save_logfile cannot be set: set by the invariant file_logging",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_plan_exits_2_with_one_line_and_file_unchanged(tmp_path: Path, case: str) -> None:
    content, expected = CASES[case]
    plan = tmp_path / "profiling_plan.json"
    plan.write_bytes(content)
    for args in ((), ("status",), ("reset",)):
        proc = supervise(plan, *args, timeout=60)
        assert proc.returncode == 2, (case, args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (case, proc.stderr)
        assert plan.read_bytes() == content


def test_unknown_selector_and_missing_plan(tmp_path: Path, make_plan) -> None:
    plan = make_plan([])
    before = plan.read_bytes()
    proc = supervise(plan, "--only", "fortnight", timeout=60)
    assert proc.returncode == 2 and "--only 'fortnight' matches no entry" in proc.stderr
    assert plan.read_bytes() == before
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor", "--plan", str(tmp_path / "nope.json")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_the_repo_plan_is_valid_and_matches_the_spec() -> None:
    plan = orjson.loads(REPO_PLAN.read_bytes())
    validate(plan)
    assert [(r["id"], r["start"], r["end"], r["label"]) for r in plan["runs"]] == [
        ("phase0-cold-2024-09", "2024-09-01", "2024-09-30", "cache_probe_cold"),
        ("phase0-warm-2024-09", "2024-09-01", "2024-09-30", "cache_probe_warm"),
        ("wk-2025-01-20_01-26", "2025-01-20", "2025-01-26", "week"),
        ("wk-2025-03-10_03-16", "2025-03-10", "2025-03-16", "week"),
        ("wk-2025-07-14_07-20", "2025-07-14", "2025-07-20", "week"),
        ("wk-2025-10-13_10-19", "2025-10-13", "2025-10-19", "week"),
        ("mo-2025-02", "2025-02-01", "2025-02-28", "month"),
        ("mo-2025-05", "2025-05-01", "2025-05-31", "month"),
        ("mo-2025-09", "2025-09-01", "2025-09-30", "month"),
        ("qtr-2025-Q2like", "2025-04-01", "2025-06-30", "three_months"),
        ("full-2025-01-01_10-31", "2025-01-01", "2025-10-31", "full_range"),
    ]
    # Statuses may be anything valid: `make profile` in this checkout fills the plan in.
    assert plan["meta"]["random_seed_for_selection"] == 20251101
    assert set(plan["results"]["_schema"]) == {
        "wall_seconds_total", "wall_seconds_no_download", "cpu_seconds", "top_functions_csv",
        "top_threads_csv", "git_rev", "timestamp_utc", "notes",
    }


def test_validate_rejects_with_planerror() -> None:
    with pytest.raises(PlanError, match="top level"):
        validate([])


def test_worker_answers_that_cannot_be_trusted_are_named() -> None:
    import orjson as json

    from supervisor.runner import parse_answer

    good = {
        "protocol": 1, "id": "r", "ok": True, "partial": False, "wall_seconds_total": 1.0,
        "cpu_seconds": 1.0, "files": {}, "invariants_in_effect": {},
    }
    assert parse_answer(json.dumps(good), run_id="r") == (good, None)
    cases = {
        b"": "printed nothing",
        b"hello\n{}": "garbage",
        b"[1, 2]": "not an object",
        json.dumps({k: v for k, v in good.items() if k != "files"}): "missing field(s): files",
        json.dumps(good | {"error_kind": "cosmic"}): "unknown error_kind 'cosmic'",
        json.dumps(good | {"protocol": 99}): "protocol 99",
        json.dumps(good | {"id": "other"}): "answered for run 'other'",
        json.dumps(good | {"wall_seconds_total": "fast"}): "malformed: answer.wall_seconds_total",
        json.dumps(good | {"files": {"pstat": 5}}): "malformed: answer.files",
    }
    for raw, expected in cases.items():
        answer, problem = parse_answer(raw, run_id="r")
        assert answer is None and problem is not None and expected in problem, (raw, problem)
