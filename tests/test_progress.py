"""Live progress: the worker's side channel, the supervisor's display, ``status`` and the ETA.

Real runs: a two-week window piped to a file (plain progress lines, ``status`` read from a
second process), and a one-day window run quiet, then again under a pseudo-terminal (the
live bar, with an ETA that comes from the first round).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from common.offenders import is_wrapper
from common.profiles import read_funcs
from common.progress import Progress, read_progress
from supervisor.eta import DEFAULT_OVERHEAD, Estimator, check_after, duration, run_left
from supervisor.progress import PlainDisplay, View, Watched, pass_name
from tests.conftest import load, short_run, supervise

META = {"strategy_parameters": {"sleeptime": "30M"}, "phase1_mode": "single"}
STRATEGY_METHOD = "MesMomentum.on_trading_iteration"


def supervisor_command(plan: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "supervisor", *args, "--plan", str(plan)]


def test_piped_run_prints_progress_before_its_result_and_status_shows_it(make_plan, tmp_path: Path) -> None:
    plan = make_plan([short_run("two-weeks", "2024-09-02", "2024-09-16")], {**META, "phase1_mode": "preload"})
    console = tmp_path / "console.txt"
    seen: str | None = None
    with console.open("w") as out:
        proc = subprocess.Popen(
            supervisor_command(plan, "--progress-interval", "1"), cwd=plan.parent, stdout=out, stderr=subprocess.PIPE, text=True
        )
        while proc.poll() is None and seen is None:
            status = supervise(plan, "status", timeout=60)
            seen = next((line for line in status.stdout.splitlines() if "of window" in line), None)
            time.sleep(0.3)
        _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert seen is not None, "status never showed the running entry's progress"
    by_status = r"progress \(two-weeks(\.preload)?\): backtest at 2024-09-\d\d \d\d:\d\d \(\d+% of window\), [\d,]+ iterations"
    assert re.search(by_status, seen)

    lines = console.read_text().splitlines()
    result_at = next(i for i, line in enumerate(lines) if line.startswith("two-weeks") and " done " in line)
    shown = re.compile(r"two-weeks\s+profiled: backtest at 2024-09-\d\d .*\(\d+% of window\)")
    progress_at = [i for i, line in enumerate(lines) if shown.search(line)]
    assert progress_at and progress_at[0] < result_at, lines
    # The preload pass comes first under its own name; the profiled pass then counts its own time.
    elapsed = re.compile(r"two-weeks\s+(preload \(unprofiled\)|profiled): .*; (\d+) s elapsed")
    passes = [(m[1], int(m[2])) for m in map(elapsed.search, lines) if m]
    preload = [seconds for name, seconds in passes if name != "profiled"]
    profiled = [seconds for name, seconds in passes if name == "profiled"]
    assert preload and profiled and passes.index(("profiled", profiled[0])) > len(preload) - 1, passes
    assert profiled[0] < max(preload), passes

    result = load(plan)["results"]["two-weeks"]
    assert result["entry_seconds"] >= result["worker_process_seconds"] > 0
    rows = read_funcs(plan.parent / result["top_functions_csv"])
    wrapper = next(r for r in rows if r.name.endswith("counted_iteration"))
    own = next(r for r in rows if r.name == STRATEGY_METHOD)
    assert wrapper.ncall == own.ncall > 0  # the counter sees every iteration and nothing else
    assert is_wrapper(wrapper) and not is_wrapper(own)
    final = read_progress(plan.parent / "profiling" / "work" / "two-weeks")
    assert final is not None and final.phase == "finishing" and final.iterations == own.ncall


def run_in_terminal(command: list[str], cwd: Path) -> str:
    """Run ``command`` with a 220-column pseudo-terminal as stdout and stderr; all it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 220, 0, 0))
    env = {**os.environ, "TERM": "xterm"}
    proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=600) == 0, b"".join(chunks)[-2000:]
    return b"".join(chunks).decode("utf-8", "replace")


def test_quiet_is_one_line_and_a_terminal_gets_a_live_bar_with_the_last_rounds_eta(make_plan) -> None:
    plan = make_plan([short_run("one-day", "2024-09-03", "2024-09-04")], META)
    quiet = supervise(plan, "--quiet", "--progress-interval", "0.2")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("one-day") and " done " in lines[0], lines

    assert supervise(plan, "reset").returncode == 0
    text = run_in_terminal(supervisor_command(plan), plan.parent)
    assert "━" in text  # rich's bar
    # While the worker is still starting (no progress of its own yet), the ETA comes from round one.
    assert re.search(r"starting · \d+ s · ~\d+ s left · selection ~\d+ (s|min)", text), text[-3000:]
    assert re.search(r"one-day\s+done ", text)
    assert load(plan)["runs"][0]["status"] == "done"


# -- the estimates, from plan documents as the supervisor writes them ------------------------------
def plan_with(runs: list[dict[str, str]], results: dict[str, dict[str, float]], history: list[dict[str, object]]) -> dict:
    for run in runs:
        run["status"] = "done" if run["id"] in results else "pending"
    return {"runs": runs, "results": results, "history": history}


def test_estimates_prefer_the_entrys_last_round_then_a_line_through_known_entries() -> None:
    week, month, other_month = (
        short_run("wk", "2025-01-20", "2025-01-27"),
        short_run("mo", "2025-02-01", "2025-03-01", "month"),
        short_run("mo2", "2025-05-01", "2025-06-01", "month"),
    )
    history = [{"id": "mo2", "result": {"status": "done", "entry_seconds": 99.0}}]
    plan = plan_with([week, month, other_month], {"wk": {"entry_seconds": 10.0}, "mo": {"worker_process_seconds": 25.0}}, history)
    estimator = Estimator.from_plan(plan)
    assert estimator.entry(other_month) == 99.0  # its own earlier round wins
    assert estimator.fit is not None and estimator.fit.points == 3  # wk 5 days, mo 20, mo2 22 (from history)
    far = short_run("q", "2025-04-01", "2025-07-01", "three_months")
    assert estimator.entry(far) is not None and estimator.entry(far) > 99.0
    assert estimator.total([week, far, {"id": "bad", "start": "x", "end": "y"}])[1] == 1  # one with no estimate

    nothing = Estimator.from_plan(plan_with([week], {}, []))
    assert nothing.entry(week) is None and nothing.total([week]) == (0.0, 1)


def test_the_unprofiled_check_is_estimated_apart_and_counted_in_the_selection() -> None:
    """Pass 1's entry_seconds holds its cross-check: the profiled pass is estimated without it, the
    check from the ratio the plan measured, and a selection counts each entry's check once."""
    week, other = short_run("wk", "2025-01-20", "2025-01-27"), short_run("wk2", "2025-03-10", "2025-03-17")
    checked = {"entry_seconds": 30.0, "profiler_overhead_ratio": 2.5, "phases": {"analysis_and_output": 5.0},
               "sampled_pass": {"worker_process_seconds": 9.0, "compare_seconds": 1.0}}
    estimator = Estimator.from_plan(plan_with([week, other], {"wk": checked}, []))
    assert estimator.entry(other) == 20.0 and estimator.check_ratio == 0.5 and estimator.overhead == 2.5
    assert estimator.check(other) == 10.0 and estimator.tail(other) == 5.0  # wk's 5.0 s over 5 days, for 5 days
    assert estimator.total([(other, True), (other, False), other]) == (70.0, 0)  # pass 1 with its check, repeats without
    # With repeats, the combined result is the median pass's: its entry_seconds holds no check unless it is pass 1.
    later = {**checked, "repeats": {"median_pass": 2}}
    assert Estimator.from_plan(plan_with([week, other], {"wk": later}, [])).entry(other) == 30.0
    # Nothing measured yet: the check is the profiled estimate over yappi's usual overhead.
    plain = Estimator.from_plan(plan_with([week, other], {"wk": {"entry_seconds": 20.0}}, []))
    assert plain.check_ratio is None and plain.check(other) == 20.0 / DEFAULT_OVERHEAD
    # Once the profiled pass is done: its time outside the backtest, plus its backtest without yappi.
    assert check_after({"wall_seconds_total": 10.0}, 14.0, 2.0) == 9.0
    assert check_after({}, 14.0, 2.0) is None


def test_each_pass_has_a_name() -> None:
    assert pass_name(None, 1, 1) == "profiled"
    assert pass_name(None, 2, 3) == "profiled, repeat 2 of 3"
    assert pass_name(True, 1, 3) == "cold-cache probe 1 of 3" and pass_name(False, 3, 3) == "warm-cache probe 3 of 3"


def test_time_left_uses_the_runs_own_pace_once_it_has_covered_enough_of_its_window() -> None:
    young = Progress("backtest", "2025-02-01T09:30:00", 5, 2.0, 0.0)
    assert young.fraction("2025-02-01", "2025-03-01") < 0.05
    assert run_left(young, young.fraction("2025-02-01", "2025-03-01"), 30.0, 12.0) == 18.0  # estimate minus elapsed
    assert run_left(young, young.fraction("2025-02-01", "2025-03-01"), None, 12.0) is None
    half = Progress("backtest", "2025-02-15T00:00:00", 500, 10.0, 0.0)
    assert half.fraction("2025-02-01", "2025-03-01") == 0.5
    assert run_left(half, 0.5, 100.0, 12.0) == 10.0  # its own pace beats an older estimate
    # LumiBot's analysis after the last iteration is expected, and counted down once no snapshot comes.
    assert run_left(half, 0.5, 100.0, 12.0, tail=8.0, now=3.0) == 15.0
    assert run_left(half, 0.5, 100.0, 12.0, tail=8.0, now=30.0) == 0.0
    assert Progress("backtest", "2025-03-05T00:00:00", 1, 1.0, 0.0).fraction("2025-02-01", "2025-03-01") == 1.0
    assert [duration(s) for s in (None, 4.4, 190, 3900)] == ["?", "4 s", "3 min 10 s", "1 h 05 min"]


def test_a_torn_or_missing_progress_file_reads_as_none(tmp_path: Path) -> None:
    assert read_progress(tmp_path) is None
    (tmp_path / "progress.json").write_text('{"phase": "backtest", "simul')
    assert read_progress(tmp_path) is None


def test_a_snapshot_older_than_the_pass_is_an_earlier_attempts_and_is_not_shown(tmp_path: Path) -> None:
    """The display starts before the runner empties the work folder: the last attempt's 100 %
    must not be shown as this pass's progress."""
    began = time.monotonic()
    watched = Watched("r", "2024-09-03", "2024-09-04", tmp_path, 30.0, 0.0, 0, began, "profiled")
    old = Progress("finishing", "2024-09-03T23:00:00", 40, 12.0, time.time() - 60)
    (tmp_path / "progress.json").write_bytes(old.to_bytes())
    view = View.now(watched)
    assert view.progress is None and view.where() == "starting" and view.left is not None and view.left <= 30.0
    fresh = Progress("backtest", "2024-09-03T12:00:00", 20, 1.0, time.time())
    (tmp_path / "progress.json").write_bytes(fresh.to_bytes())
    assert View.now(watched).progress == fresh


def test_the_selection_left_is_approximate_or_a_lower_bound_never_both(tmp_path: Path) -> None:
    known = Watched("r", "2024-09-03", "2024-09-04", tmp_path, 30.0, 60.0, 0, time.monotonic(), "profiled")
    assert re.search(r"selection ~1 min 30 s left$", View.now(known).line())
    unknown = Watched("r", "2024-09-03", "2024-09-04", tmp_path, 30.0, 60.0, 2, time.monotonic(), "profiled")
    assert re.search(r"selection at least 1 min 30 s left$", View.now(unknown).line())


def test_plain_lines_count_from_the_passs_own_start_one_per_interval(tmp_path: Path) -> None:
    """Seen on the default plan: a profiled pass after a 45 s preload printed three lines at once."""
    lines: list[str] = []
    display = PlainDisplay(lines.append, interval=0.3)
    watched = Watched("r", "2024-09-03", "2024-09-04", tmp_path, 30.0, 0.0, 0, time.monotonic() - 45, "profiled")
    display.begin(watched)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        display.update(View.now(watched))
        time.sleep(0.01)
    assert 2 <= len(lines) <= 4, lines
