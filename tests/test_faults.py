"""Faults with real processes and real signals: races, kill -9, hangs, garbage, interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import load, short_run, supervise

pytestmark = pytest.mark.slow
FAULTY = "tests.strategies.faulty"


def start_supervisor(plan: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor", *args, "--plan", str(plan)],
        cwd=plan.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_worker(plan: Path, run_id: str, seconds: float = 60) -> int:
    """The worker pid recorded in the plan once the entry is running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for run in load(plan)["runs"]:
            pid = (run.get("owner") or {}).get("worker_pid")
            if run["id"] == run_id and pid:
                return int(pid)
        time.sleep(0.1)
    raise AssertionError(f"{run_id} never started a worker")


def wait_for_file(path: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def processes_in(folder: Path) -> list[int]:
    """Live processes whose working directory is under ``folder`` (workers run in their work dir)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if str(folder) in proc.cwd() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_racing_supervisors_run_each_entry_exactly_once(make_plan):
    runs = [short_run(f"race-{i}", "2024-09-03", "2024-09-04") for i in range(5)]
    plan = make_plan(runs, meta={"strategy_parameters": {"sleeptime": "60M"}})
    procs = [start_supervisor(plan) for _ in range(3)]
    outputs = [p.communicate(timeout=600) for p in procs]
    # 3: this supervisor is done but another still runs an entry; the last one to finish sees all done
    assert {p.returncode for p in procs} <= {0, 3} and 0 in {p.returncode for p in procs}, outputs
    final = load(plan)
    assert [r["status"] for r in final["runs"]] == ["done"] * 5
    assert [r["attempts"] for r in final["runs"]] == [1] * 5
    printed = [line.split()[0] for out, _ in outputs for line in out.splitlines() if line.startswith("race-")]
    assert sorted(printed) == sorted(r["id"] for r in runs)  # each reported by exactly one supervisor
    assert all(final["results"][r["id"]]["status"] == "done" for r in runs)


def test_kill_9_supervisor_then_restart_completes_once_without_orphans(make_plan):
    plan = make_plan(
        [short_run("k9", "2024-09-03", "2024-09-06")],
        meta={"strategy_parameters": {"sleeptime": "5M"}, "data_source": {"kind": "databento", "mode": "local"}},
    )
    sup = start_supervisor(plan)
    worker = wait_for_worker(plan, "k9")
    gateway = json.loads(next((plan.parent / "profiling" / "gateway").glob("*/gateway.json")).read_text())["pid"]
    time.sleep(1.0)
    sup.kill()
    sup.communicate()
    assert gone(worker), "worker outlived its supervisor"
    assert gone(gateway), "gateway outlived its supervisor"
    assert load(plan)["runs"][0]["status"] == "running"  # what a crash leaves behind
    proc = supervise(plan)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "recovered" in proc.stdout and "died" in proc.stdout
    run = load(plan)["runs"][0]
    assert run["status"] == "done" and run["attempts"] == 2
    assert not processes_in(plan.parent / "profiling" / "work")


def test_worker_killed_by_sigkill_is_an_error_with_reason(make_plan):
    plan = make_plan([short_run("selfkill")], meta={"strategy": f"{FAULTY}:SelfKill"})
    proc = supervise(plan)
    assert proc.returncode == 1
    final = load(plan)
    result = final["results"]["selfkill"]
    assert final["runs"][0]["status"] == "error"
    assert "killed by SIGKILL" in result["notes"]
    assert (plan.parent / result["stderr_log"]).exists()


def run_into_timeout(make_plan, run_id: str, strategy: str, timeout: int, grace: int) -> tuple[Path, dict]:
    """Run one entry of ``strategy`` into its time-out; returns the plan and the entry's result."""
    plan = make_plan([short_run(run_id)], meta={"strategy": f"{FAULTY}:{strategy}"})
    t0 = time.monotonic()
    proc = supervise(plan, "--timeout", str(timeout), "--grace", str(grace))
    assert proc.returncode == 1
    assert time.monotonic() - t0 < timeout + grace + 60
    result = load(plan)["results"][run_id]
    assert result["status"] == "error" and result["notes"].startswith(f"timeout after {timeout} s")
    return plan, result


def test_hanging_worker_times_out_with_a_partial_profile_and_no_survivors(make_plan):
    plan, result = run_into_timeout(make_plan, "hang", "Hang", 15, 10)
    assert result["partial"] is True
    assert result["worker_returncode"] == 128 + signal.SIGTERM  # the worker's own exit after saving, not 0
    assert "partial profile" in result["notes"] and result["phases"]["reason"].startswith("phase split not available")
    funcs = (plan.parent / result["top_functions_csv"]).read_text()
    assert "Hang.on_trading_iteration" in funcs  # the hang itself is in the profile
    assert gone(result["worker_pid"], 1)
    assert not processes_in(plan.parent / "profiling" / "work")


def test_strategy_that_does_not_import_is_a_one_line_error(make_plan):
    plan = make_plan([short_run("noimport")], meta={"strategy": "no_such_module.sub:Strategy"})
    proc = supervise(plan)
    assert proc.returncode == 1
    notes = load(plan)["results"]["noimport"]["notes"]
    assert "does not import" in notes and "no_such_module" in notes and "\n" not in notes


def test_worker_printing_garbage_on_stdout_is_an_error(make_plan, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("print('hello from a noisy sitecustomize')\n")
    plan = make_plan([short_run("garbage")])
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor", "--plan", str(plan)],
        cwd=plan.parent, capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 1
    notes = load(plan)["results"]["garbage"]["notes"]
    assert "garbage" in notes and "hello from a noisy" in notes


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "sighup"])
def test_a_stop_signal_stops_the_worker_and_returns_the_entry_to_pending(make_plan, stop):
    """Ctrl-C, and SIGHUP (a closed terminal) like SIGTERM: the worker tree ends, the entry waits."""
    plan = make_plan([short_run("stop")], meta={"strategy": f"{FAULTY}:Hang"})
    sup = start_supervisor(plan)
    worker = wait_for_worker(plan, "stop")
    wait_for_file(plan.parent / "profiling" / "work" / "stop" / "hang.started")
    sup.send_signal(stop)
    out, err = sup.communicate(timeout=120)
    assert sup.returncode == 130, out + err
    assert f"interrupted by {stop.name}" in out and "pending (interrupted" in out
    run = load(plan)["runs"][0]
    assert run["status"] == "pending" and "interrupted" in run["note"]
    assert gone(worker, 5)


def test_plan_write_killed_at_random_never_loses_a_committed_result(tmp_path, make_plan):
    plan = make_plan([short_run("w")])
    writer = (
        "import sys\nfrom pathlib import Path\nfrom supervisor.plan import PlanStore\n"
        "store = PlanStore(Path(sys.argv[1]))\n"
        "for i in range(int(sys.argv[2]), 10**6):\n"
        "    with store.update() as plan:\n"
        "        plan['results'][f'r{i}'] = {'i': i, 'pad': 'x' * 2000}\n"
        "    print(i, flush=True)\n"
    )
    committed = -1
    rng = __import__("random").Random(7)
    for _round in range(15):
        proc = subprocess.Popen(
            [sys.executable, "-c", writer, str(plan), str(committed + 1)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # killed only once it writes: start-up under load is not the subject
        time.sleep(rng.random() * 0.3)
        proc.kill()
        out, _ = proc.communicate()
        done = [int(x) for x in (first + out).split()]
        committed = max([committed, *done])
        data = json.loads(plan.read_text())  # always whole, valid JSON
        missing = [i for i in range(committed + 1) if f"r{i}" not in data["results"]]
        assert not missing, f"lost committed results {missing[:5]}"
    assert committed >= 15  # at least one committed write per round
    from supervisor.plan import PlanStore

    with PlanStore(plan).update():
        pass  # the next locked change sweeps up what killed writers left behind
    assert not list(plan.parent.glob(".profiling_plan.json.*.tmp"))


def test_transient_failures_are_classified_and_retried_bounded(make_plan):
    """A provider-side failure is retried (each attempt counted); a strategy bug is not."""
    from worker.main import classify

    class BentoServerError(Exception):
        pass

    try:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as inner:
            raise RuntimeError("fetch failed") from inner
    except RuntimeError as outer:
        assert classify(outer) == "transient"
    assert classify(BentoServerError("502")) == "transient"
    assert classify(ValueError("strategy bug")) == "backtest"

    plan = make_plan([short_run("flaky")], meta={"strategy": f"{FAULTY}:Flaky"})
    proc = supervise(plan)
    assert proc.returncode == 1
    result = load(plan)["results"]["flaky"]
    assert result["transient_retries"] == 2 and result["error_kind"] == "transient"
    assert result["notes"].count("attempt") == 2 and "ConnectionResetError" in result["notes"]


def test_second_ctrl_c_kills_at_once_when_the_worker_does_not_answer(make_plan):
    plan = make_plan([short_run("hog")], meta={"strategy": f"{FAULTY}:GilHog"})
    sup = start_supervisor(plan, "--grace", "120")
    worker = wait_for_worker(plan, "hog")
    wait_for_file(plan.parent / "profiling" / "work" / "hog" / "hog.started")
    time.sleep(0.5)  # inside the regex by now
    sup.send_signal(signal.SIGINT)
    time.sleep(2.0)
    assert sup.poll() is None, "the first Ctrl-C should wait for the worker's grace period"
    t0 = time.monotonic()
    sup.send_signal(signal.SIGINT)
    out, err = sup.communicate(timeout=60)
    assert time.monotonic() - t0 < 15, "a second Ctrl-C must not wait out the 120 s grace"
    assert sup.returncode == 130, out + err
    assert gone(worker, 5)
    assert load(plan)["runs"][0]["status"] == "pending"


def test_recovery_kills_an_orphaned_worker_left_by_a_dead_supervisor(make_plan):
    """The state a crash can leave: entry running, its supervisor dead, its worker still alive."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    try:
        run = short_run("orphaned") | {
            "status": "running",
            "attempts": 1,
            "owner": {
                "token": "deadbeef",
                "supervisor_pid": dead.pid,
                "supervisor_create_time": 1.0,
                "host": __import__("socket").gethostname(),
                "worker_pid": orphan.pid,
                "worker_create_time": psutil.Process(orphan.pid).create_time(),
            },
        }
        plan = make_plan([run])
        proc = supervise(plan)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"orphaned worker {orphan.pid} killed" in proc.stdout
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        final = load(plan)["runs"][0]
        assert final["status"] == "done" and final["attempts"] == 2
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_a_worker_stuck_in_c_code_is_killed_after_the_grace_period(make_plan):
    # The time-out must fall inside the regex, not in LumiBot's start-up: a loaded machine took
    # more than 5 s to reach the first iteration, and a worker still in Python saved a partial profile.
    plan, result = run_into_timeout(make_plan, "stuck", "GilHog", 15, 3)
    assert (plan.parent / "profiling" / "work" / "stuck" / "hog.started").exists()  # it was killed inside the regex
    assert result["partial"] is False and result["top_functions_csv"] is None  # nothing could be saved
    assert result["worker_returncode"] == -signal.SIGKILL
    assert gone(result["worker_pid"], 1)
    assert not processes_in(plan.parent / "profiling" / "work")
