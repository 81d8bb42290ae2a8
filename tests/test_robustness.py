"""Issue 15: no input, signal or full disk crashes the supervisor, blocks the queue, loses a
result or touches what is not ours. Real processes, real signals, a real small tmpfs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from filelock import FileLock

from tests.conftest import load, short_run, supervise
from tests.test_faults import FAULTY, gone, start_supervisor, wait_for_file, wait_for_worker

MARKER = "LUMIPROF_OWNER_TOKEN"


def one_line_exit_2(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def sleeper(env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True,
                            env={**os.environ, **(env or {})})


def running_entry(run_id: str, **owner: Any) -> dict[str, Any]:
    record = {"token": "deadbeef0001", "supervisor_pid": dead_pid(), "supervisor_create_time": 1.0,
              "host": socket.gethostname(), "worker_pid": None, "worker_create_time": None} | owner
    return short_run(run_id) | {"status": "running", "attempts": 1, "owner": record}


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs; skipped where mounting is not allowed (not root, no CAP_SYS_ADMIN)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}): disk-full/read-only untested")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system holding ``folder`` until it refuses another byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


# -- 1. values that used to crash after the claim -------------------------------------------------
@pytest.mark.parametrize("meta", [
    {"budget": "100k"}, {"budget": None}, {"strategy_parameters": ["sleeptime", "60M"]}, {"cache": "profiling/cache"},
    {"cache": {"folder": 5}}, {"timeout_seconds": 1e12},
], ids=lambda m: f"{next(iter(m))}={next(iter(m.values()))!r}")
def test_values_that_crashed_after_the_claim_are_rejected_before_it(make_plan, meta):
    plan = make_plan([short_run("r")], meta=meta)
    before = plan.read_bytes()
    one_line_exit_2(supervise(plan, timeout=60), f"meta.{next(iter(meta))}")
    assert plan.read_bytes() == before  # nothing claimed


def test_run_id_too_long_for_a_file_name_and_cli_numbers_are_rejected(make_plan):
    plan = make_plan([short_run("x" * 245)])
    one_line_exit_2(supervise(plan, timeout=60), "id: must be 1-100 printable characters")
    plan = make_plan([short_run("r")])
    before = plan.read_bytes()
    for flag, value in (("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "1e12"), ("--timeout", "-1"),
                        ("--grace", "-1"), ("--grace", "nan"), ("--timeout", "soon")):
        one_line_exit_2(supervise(plan, flag, value, timeout=60), flag)
    assert plan.read_bytes() == before


@pytest.mark.slow
def test_a_failure_after_the_claim_ends_in_error_and_the_queue_moves_on_without_touching_user_folders(make_plan, tmp_path):
    """Items 1 and 7: with meta.cache.folder "." and a run named like a user's folder, that folder is
    not ours: the run ends in error (not `running`), the folder survives, the next entry runs."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("precious")
    plan = make_plan([short_run("docs", "2024-09-03", "2024-09-04"), short_run("ok", "2024-09-03", "2024-09-04")],
                     meta={"cache": {"folder": "."}, "strategy_parameters": {"sleeptime": "60M"}})
    proc = supervise(plan)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    final = load(plan)
    assert [r["status"] for r in final["runs"]] == ["error", "done"]
    assert "was not created by this tool" in final["results"]["docs"]["notes"]
    assert (docs / "thesis.txt").read_text() == "precious"
    assert (tmp_path / "ok" / ".lumiprof-owned").exists()  # a folder we made is marked as ours


def test_an_entry_whose_supervisor_keeps_dying_is_given_up_and_only_proven_processes_are_killed(make_plan):
    """Items 1 (bounded attempts), 2 (leftovers found by their marker) and 4 (no create time: not ours)."""
    leftover = sleeper({MARKER: "deadbeef0001"})
    stranger = sleeper()
    try:
        entry = running_entry("doomed", worker_pid=stranger.pid, worker_create_time=None) | {"crashes": 2}
        plan = make_plan([entry], meta={"max_attempts": 3})
        proc = supervise(plan, timeout=120)
        assert proc.returncode == 1 and "gave up after the supervisor died 3 times" in proc.stdout, proc.stdout + proc.stderr
        final = load(plan)
        assert final["runs"][0]["status"] == "error"
        assert "gave up" in final["results"]["doomed"]["notes"]
        assert leftover.wait(timeout=15) == -signal.SIGKILL  # carried our token: ours, killed
        assert stranger.poll() is None  # pid recorded without create time: identity unproven, untouched
        assert f"orphaned worker {stranger.pid}" not in proc.stdout
    finally:
        for p in (leftover, stranger):
            if p.poll() is None:
                p.kill()


# -- 2. the worker's whole tree ends with the run --------------------------------------------------
@pytest.mark.slow
def test_children_of_the_worker_in_their_own_session_end_with_the_run(make_plan):
    plan = make_plan([short_run("kids", "2024-09-03", "2024-09-04")], meta={"strategy": f"{FAULTY}:Spawner"})
    proc = supervise(plan)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pids = [int(p) for p in (plan.parent / "profiling" / "work" / "kids" / "children.pids").read_text().split()]
    assert len(pids) == 2 and all(gone(pid, 15) for pid in pids), pids


@pytest.mark.slow
def test_kill_9_of_the_supervisor_ends_every_process_the_worker_started(make_plan):
    plan = make_plan([short_run("kids9", "2024-09-03", "2024-09-04")],
                     meta={"strategy": f"{FAULTY}:Spawner", "strategy_parameters": {"hang": True}})
    sup = start_supervisor(plan)
    worker = wait_for_worker(plan, "kids9")
    pid_file = plan.parent / "profiling" / "work" / "kids9" / "children.pids"
    wait_for_file(pid_file)
    time.sleep(0.5)  # the file is written at once; its content follows
    pids = [int(p) for p in pid_file.read_text().split()]
    sup.kill()
    sup.communicate()
    assert gone(worker, 30), "worker outlived its supervisor"
    assert all(gone(pid, 30) for pid in pids), "a process the worker started outlived the supervisor"


# -- 3. a signal between the worker's exit and the result write ------------------------------------
@pytest.mark.slow
def test_sigterm_while_the_result_is_being_written_keeps_the_result(make_plan):
    plan = make_plan([short_run("late")], meta={"strategy": f"{FAULTY}:WaitForGo"})
    sup = start_supervisor(plan)
    worker = wait_for_worker(plan, "late")
    work = plan.parent / "profiling" / "work" / "late"
    wait_for_file(work / "wait.started")
    with FileLock(str(plan) + ".lock"):  # the supervisor will wait here to write the result
        (work / "go").touch()
        deadline = time.monotonic() + 120
        while psutil.pid_exists(worker):  # exited and reaped: the answer is in, the write is next
            assert time.monotonic() < deadline, "worker never finished"
            time.sleep(0.05)
        time.sleep(0.5)
        sup.send_signal(signal.SIGTERM)
        time.sleep(1.0)
    out, err = sup.communicate(timeout=120)
    assert sup.returncode == 130, out + err
    final = load(plan)
    assert final["runs"][0]["status"] == "done", final["runs"][0]
    assert final["results"]["late"]["wall_seconds_total"] > 0
    assert "late " in out and "done" in out and "interrupted by SIGTERM" in out


# -- 5. a finished run survives an invalid plan or a full disk ---------------------------------------
@pytest.mark.slow
def test_result_survives_a_hand_edit_that_left_the_plan_invalid(make_plan):
    plan = make_plan([short_run("edit")], meta={"strategy": f"{FAULTY}:WaitForGo"})
    sup = start_supervisor(plan)
    wait_for_worker(plan, "edit")
    work = plan.parent / "profiling" / "work" / "edit"
    wait_for_file(work / "wait.started")
    good = plan.read_bytes()
    plan.write_bytes(good.replace(b'"runs"', b'"runs" "', 1))  # a typo saved from an editor
    (work / "go").touch()
    out, err = sup.communicate(timeout=120)
    assert sup.returncode == 2, out + err
    assert "edit done; result kept beside the plan until it parses again (edit.result.json; " in err, out + err
    sidecar = plan.parent / "profiling" / "edit.result.json"
    assert sidecar.exists()
    plan.write_bytes(good)  # the typo fixed; the entry is still `running` under the dead supervisor
    proc = supervise(plan, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "merged" in proc.stdout and "is now in the plan" in proc.stdout
    final = load(plan)
    assert final["runs"][0]["status"] == "done" and final["results"]["edit"]["wall_seconds_total"] > 0
    assert not sidecar.exists()


@pytest.mark.slow
def test_a_typo_saved_while_a_window_runs_never_runs_it_again(make_plan):
    """The default plan's case: the plan turns invalid during the profiled pass, and the cross-check
    pass still has to start (its worker cannot be recorded). The window ends, its result waits in a
    sidecar, and after the fix the next start merges it: one attempt, the same numbers."""
    plan = make_plan([short_run("typo")], meta={"strategy": f"{FAULTY}:WaitForGo", "cross_check": "sampled"})
    sup = start_supervisor(plan)
    wait_for_worker(plan, "typo")
    work = plan.parent / "profiling" / "work"
    wait_for_file(work / "typo" / "wait.started")
    good = plan.read_bytes()
    plan.write_bytes(good.replace(b'"plan_version": 1,', b'"plan_version": 1,,', 1))  # a double comma, saved
    (work / "typo" / "go").touch()
    deadline = time.monotonic() + 180
    while sup.poll() is None and time.monotonic() < deadline:  # the unprofiled pass waits for its own go
        if (work / "typo.sampled" / "wait.started").exists():
            (work / "typo.sampled" / "go").touch()
        time.sleep(0.1)
    out, err = sup.communicate(timeout=30)
    assert sup.returncode == 2, out + err
    assert "typo done; result kept beside the plan until it parses again" in err, out + err
    assert "not valid JSON" in err and "error" not in out, out + err
    side = orjson.loads((plan.parent / "profiling" / "typo.result.json").read_bytes())
    assert side["status"] == "done" and side["result"]["cross_check"] == "sampled", side["result"]["notes"]
    plan.write_bytes(good)  # the typo fixed; the entry is still `running` under the dead supervisor
    proc = supervise(plan, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "typo: done result kept in typo.result.json" in proc.stdout and "recovered" not in proc.stdout
    final = load(plan)
    assert final["runs"][0]["status"] == "done" and final["runs"][0]["attempts"] == 1, final["runs"][0]
    assert final["results"]["typo"] == side["result"]  # the same numbers, not a second run's


@pytest.mark.slow
def test_result_survives_a_full_disk(make_plan, tmpfs, tmp_path):
    out_dir = tmp_path / "outputs"  # outputs elsewhere: only the plan's disk fills up
    plan = make_plan([short_run("full")], meta={"strategy": f"{FAULTY}:WaitForGo", "output_dir": str(out_dir)},
                     folder=tmpfs)
    sup = start_supervisor(plan)
    wait_for_worker(plan, "full")
    work = out_dir / "work" / "full"
    wait_for_file(work / "wait.started")
    filler = fill(tmpfs)
    (work / "go").touch()
    out, err = sup.communicate(timeout=120)
    assert sup.returncode == 1, out + err
    assert "No space left on device" in err and "result kept in" in err and "Traceback" not in err
    assert "error" not in out and "No space" not in out, out  # errors on stderr only: 2>err.log catches them
    assert load(plan)["runs"][0]["status"] == "running"  # the plan itself stayed whole and valid
    filler.unlink()
    proc = supervise(plan, timeout=120)
    assert proc.returncode == 0 and "merged" in proc.stdout, proc.stdout + proc.stderr
    final = load(plan)
    assert final["runs"][0]["status"] == "done" and final["results"]["full"]["wall_seconds_total"] > 0


# -- 6, 8. nothing is claimed or rewritten on a bad plan -----------------------------------------
def test_reset_refuses_a_plan_with_a_duplicate_runs_key(make_plan):
    plan = make_plan([short_run("a"), short_run("b")])
    text = plan.read_bytes()
    plan.write_bytes(text[:-1] + b', "runs": []}')
    before = plan.read_bytes()
    one_line_exit_2(supervise(plan, "reset", timeout=60), 'duplicate key "runs"')
    assert plan.read_bytes() == before


@pytest.mark.parametrize("meta, expected", [
    ({"phase1_mode": "singel"}, "meta.phase1_mode: must be one of auto"),
    ({"decision_rule": {"min_delta_secs": 1.0}}, 'meta.decision_rule: unknown key "min_delta_secs"'),
])
def test_phase1_configuration_errors_stop_before_phase0_runs(make_plan, meta, expected):
    plan = make_plan([short_run("p0c", label="cache_probe_cold"), short_run("p1")], meta=meta)
    before = plan.read_bytes()
    for command in ((), ("--only", "phase1"), ("status",), ("report",)):
        one_line_exit_2(supervise(plan, *command, timeout=60), expected)
    assert plan.read_bytes() == before


# -- 9. the file system's surprises are one-line errors ------------------------------------------
def test_plan_path_or_lock_that_is_a_folder_or_a_fifo(make_plan, tmp_path):
    one_line_exit_2(supervise(tmp_path, "status", timeout=60), "not a regular file")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for command in ("status", "run", "reset", "report"):
        one_line_exit_2(supervise(fifo, command, timeout=60), "not a regular file")  # no hang on open
    plan = make_plan([short_run("r")])
    Path(str(plan) + ".lock").mkdir()
    one_line_exit_2(supervise(plan, timeout=60), "cannot lock")


LOCAL_DATABENTO = {"kind": "databento", "mode": "local", "dataset": "GLBX.MDP3"}


def _typo(plan: Path) -> list[str]:
    plan.write_bytes(plan.read_bytes().replace(b'"plan_version": 1,', b'"plan_version": 1,,', 1))
    return []


def _lock_folder(plan: Path) -> list[str]:
    Path(str(plan) + ".lock").mkdir()
    return []


def _gateway_folder_is_a_file(plan: Path) -> list[str]:
    (plan.parent / "profiling").mkdir()
    (plan.parent / "profiling" / "gateway").write_text("a file where the gateway's folder goes")
    return []


def _stray_sidecar(plan: Path) -> list[str]:
    (plan.parent / "profiling").mkdir()
    (plan.parent / "profiling" / "stray.result.json").write_text("{}")
    return []


@pytest.mark.parametrize(("meta", "prepare", "args", "code", "expected"), [
    ({}, _typo, (), 2, "not valid JSON"),
    ({}, lambda plan: [], ("--only", "nope"), 2, "matches no entry"),
    ({}, _lock_folder, (), 2, "cannot lock"),
    ({"data_source": LOCAL_DATABENTO}, _gateway_folder_is_a_file, (), 1, "error: local DataBento gateway did not start"),
    ({"data_source": LOCAL_DATABENTO}, _gateway_folder_is_a_file, ("gateway",), 1, "error: cannot use the gateway folder"),
    ({}, _stray_sidecar, ("--only", "done"), 0, "not a result sidecar of this plan; left in place"),
], ids=["bad-plan", "bad-selector", "lock", "gateway-run", "gateway-command", "stray-sidecar"])
def test_errors_and_warnings_go_to_stderr_alone(make_plan, meta, prepare, args, code, expected):
    """``2>err.log`` catches every problem and a pipe of stdout carries none (the full disk and
    the typo at a run's end are checked with their real runs above)."""
    plan = make_plan([short_run("pending"), short_run("done") | {"status": "done"}], meta=meta)
    prepare(plan)
    proc = supervise(plan, *args, timeout=60)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "error" not in proc.stdout and "warning" not in proc.stdout, proc.stdout


def test_a_plan_in_a_read_only_folder(make_plan, tmpfs):
    read_only = make_plan([short_run("r")], folder=tmpfs)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    one_line_exit_2(supervise(read_only, timeout=60), "Read-only file system")
    assert supervise(read_only, "status", timeout=60).returncode == 0  # reading needs no lock


def test_status_into_a_closed_pipe_is_quiet(make_plan):
    plan = make_plan([short_run(f"r{i}") for i in range(3000)])  # more than a pipe buffer of output
    proc = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m supervisor status --plan "{plan}" | head -1; echo "rc=${{PIPESTATUS[0]}}"'],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.stdout.splitlines()[0].startswith("id ") and "rc=0" in proc.stdout, proc.stdout[-300:]
    assert proc.stderr == "", proc.stderr


@pytest.mark.slow
def test_a_closed_console_pipe_does_not_stop_the_queue(make_plan):
    plan = make_plan([short_run(f"p{i}", "2024-09-03", "2024-09-04") for i in range(2)],
                     meta={"strategy_parameters": {"sleeptime": "60M"}})
    proc = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m supervisor --quiet --plan "{plan}" | head -1; echo "rc=${{PIPESTATUS[0]}}"'],
        capture_output=True, text=True, timeout=600,
    )
    assert "rc=0" in proc.stdout and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert [r["status"] for r in load(plan)["runs"]] == ["done", "done"]


# -- 10. a stuck entry can be taken over explicitly; exit codes tell the difference -----------------
@pytest.mark.parametrize("owner", [
    {"host": "container-before-restart"},
    {"supervisor_pid": 1, "supervisor_create_time": None},  # alive, but nothing proves it is the owner
], ids=["other host", "no create time"])
def test_an_entry_owned_by_an_unprovable_owner_is_taken_over_only_by_force(make_plan, owner):
    plan = make_plan([running_entry("stuck", **owner)])
    status = supervise(plan, "status", timeout=60)
    assert "cannot be checked" in status.stdout and "reset --force stuck" in status.stdout
    run = supervise(plan, timeout=60)
    assert run.returncode == 3 and "still running under another supervisor" in run.stdout, run.stdout + run.stderr
    reset = supervise(plan, "reset", timeout=60)
    assert reset.returncode == 0 and "0 entries reset" in reset.stdout and "reset --force stuck" in reset.stdout
    assert load(plan)["runs"][0]["status"] == "running"
    forced = supervise(plan, "reset", "--force", "stuck", timeout=60)
    assert forced.returncode == 0 and "running -> pending" in forced.stdout and "1 entry reset" in forced.stdout
    assert load(plan)["runs"][0]["status"] == "pending"
    assert supervise(plan, "status", "--force", "stuck", timeout=60).returncode == 2


# -- 11. smaller gaps --------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, expected", [
    ("id", "week1\n", "id: must be 1-100 printable characters"),
    ("start", "20240903", "must be a date YYYY-MM-DD"),
    ("start", "2024-W36-2", "must be a date YYYY-MM-DD"),
])
def test_ids_and_dates_must_match_as_a_whole(make_plan, field, value, expected):
    plan = make_plan([short_run("week1") | {field: value}])
    one_line_exit_2(supervise(plan, "status", timeout=60), expected)


def test_a_non_string_strategy_fails_before_the_claim(make_plan):
    plan = make_plan([short_run("r")], meta={"strategy": 42})
    one_line_exit_2(supervise(plan, timeout=60), "meta.strategy: must be a string")


@pytest.mark.slow
def test_a_flood_on_the_worker_stdout_is_not_held_in_memory(make_plan, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os\n"
        f"if os.environ.get({MARKER!r}):  # the worker only, not the supervisor\n"
        "    chunk = b'x' * (1 << 20)\n"
        "    for _ in range(200):\n"
        "        os.write(1, chunk)\n"
        "    os._exit(0)\n"
    )
    plan = make_plan([short_run("flood")])
    wrapper = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "supervisor", "--plan", str(plan)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(site)},
    )
    peak_mb = int(proc.stdout.strip())
    notes = load(plan)["results"]["flood"]["notes"]
    assert "garbage" in notes and "209715200 bytes" in notes, notes
    assert peak_mb < 150, f"supervisor peaked at {peak_mb} MB for 200 MB of worker output"
