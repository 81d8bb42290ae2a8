"""Queue commands as a user runs them: status while running, reset into history, retry errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load, short_run, supervise
from tests.test_faults import start_supervisor, wait_for_worker

pytestmark = pytest.mark.slow
#: Result fields naming files, which reset moves to profiling/history/<id>.<n>/.
MOVED = ("top_functions_csv", "top_threads_csv", "pstat", "callgrind", "stderr_log", "lumibot_outputs",
         "invariants_in_effect", "passes")


def test_status_shows_owner_while_running_and_reset_keeps_history(make_plan):
    plan = make_plan([short_run("st", "2024-09-03", "2024-09-05")], meta={"strategy_parameters": {"sleeptime": "5M"}})
    sup = start_supervisor(plan)
    worker = wait_for_worker(plan, "st")
    status = supervise(plan, "status", timeout=30)
    assert status.returncode == 0
    line = next(x for x in status.stdout.splitlines() if x.startswith("st "))
    assert "running" in line and f"worker {worker}" in line and "alive" in line
    sup.communicate(timeout=300)
    assert sup.returncode == 0

    first = load(plan)["results"]["st"]
    first_csv = (plan.parent / first["top_functions_csv"]).read_bytes()
    reset = supervise(plan, "reset", "--only", "st", timeout=30)
    assert reset.returncode == 0 and "done -> pending" in reset.stdout
    after = load(plan)
    assert after["runs"][0]["status"] == "pending" and "st" not in after["results"]
    archived = after["history"][0]["result"]
    assert {k: v for k, v in archived.items() if k not in MOVED} == {k: v for k, v in first.items() if k not in MOVED}

    # A rerun writes the same file names; the archived result keeps its own files.
    assert supervise(plan).returncode == 0
    rerun = load(plan)["results"]["st"]
    for key in ("top_functions_csv", "top_threads_csv", "pstat", "callgrind", "stderr_log"):
        assert archived[key] != rerun[key] and archived[key].startswith("profiling/history/st.1/"), key
        assert (plan.parent / archived[key]).is_file() and (plan.parent / rerun[key]).is_file(), key
    assert (plan.parent / archived["top_functions_csv"]).read_bytes() == first_csv
    assert archived["lumibot_outputs"] and all((plan.parent / p).is_file() for p in archived["lumibot_outputs"])
    assert Path(archived["invariants_in_effect"]["log_file"]).is_file()
    assert archived["passes"][0]["top_functions_csv"] == archived["top_functions_csv"]  # each pass's files moved too


def test_error_entries_are_not_retried_silently_but_retry_errors_requeues_them(make_plan):
    plan = make_plan([short_run("crash")], meta={"strategy": "tests.strategies.faulty:Crash"})
    assert supervise(plan).returncode == 1
    assert "RuntimeError: strategy bug on purpose" in load(plan)["results"]["crash"]["notes"]
    again = supervise(plan)
    assert again.returncode == 0 and "nothing pending" in again.stdout
    assert load(plan)["runs"][0]["attempts"] == 1
    retried = supervise(plan, "--retry-errors")
    assert retried.returncode == 1
    assert load(plan)["runs"][0]["attempts"] == 2


def test_pristine_copy_of_a_finished_plan_starts_a_new_round():
    """Tests and benchmarks copy the repo plan, which `make profile` may have filled in."""
    import orjson

    from supervisor.plan import pristine, validate
    from tests.conftest import REPO_PLAN

    finished = orjson.loads(REPO_PLAN.read_bytes())
    for run in finished["runs"]:
        run.update(status="done", attempts=2, finished_utc="2026-01-01T00:00:00Z")
        finished["results"][run["id"]] = {"wall_seconds_total": 1.0}
    finished["phase0"] = {"decision": "preload"}
    finished["history"] = [{"id": "x"}]
    fresh = pristine(finished)
    validate(fresh)
    assert all(r["status"] == "pending" and "attempts" not in r for r in fresh["runs"])
    assert list(fresh["results"]) == ["_schema"] and "phase0" not in fresh and "history" not in fresh
    assert [r["id"] for r in fresh["runs"]] == [r["id"] for r in finished["runs"]]
    assert finished["runs"][0]["status"] == "done"  # the original is not modified
