"""Findings on real backtests with a planted cost: the report must find it, place it, reach it and own it.

Two one-window plans run side by side (two supervisors, cross-check on, two trading days,
LumiBot's end-of-backtest analysis off so the iterations fill the window): one strategy slow in
its own code on a known line (``tests/strategies/planted.py``), one whose time is LumiBot's.
Every assertion is checked against numbers this test computes itself from the raw files (py-spy's
line-level stacks, yappi's pstat), not against text the report always prints.
"""

from __future__ import annotations

import marshal
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from common.collapsed import Stack, read_stacks
from common.offenders import is_wrapper
from common.owners import Owner, owner_of_frame, owner_of_stack, verdict
from common.profiles import read_funcs
from report.analysis import Analysis
from report.findings import Finding, call_jump, findings
from report.resultset import load as load_results
from supervisor.plan import PlanStore
from tests.conftest import load, short_run, write_plan
from tests.strategies.planted import planted_line

PLANTED_FILE = str(Path(__file__).parent / "strategies" / "planted.py")
NO_ANALYSIS = {"show_plot": False, "show_tearsheet": False, "show_indicators": False, "save_tearsheet": False}
LOOKUPS = 4


def _start(folder: Path, run_id: str, strategy: str, parameters: dict[str, Any],
           cross_check: str = "sampled") -> tuple[Path, subprocess.Popen[str]]:
    meta = {"strategy": strategy, "strategy_parameters": parameters, "phase1_mode": "single", "cross_check": cross_check,
            "backtest_options": NO_ANALYSIS}
    plan = write_plan(folder, [short_run(run_id, "2024-09-03", "2024-09-05")], meta)
    proc = subprocess.Popen([sys.executable, "-m", "supervisor", "--plan", str(plan)], cwd=plan.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return plan, proc


@pytest.fixture(scope="module")
def planted_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any], str]]:
    """Both plans at once (two supervisors side by side: the tests compare shares, not seconds)."""
    started = {
        "planted": _start(tmp_path_factory.mktemp("planted"), "planted", "tests.strategies.planted:PlantedHistory",
                          {"sleeptime": "30M"}),
        "lumibot": _start(tmp_path_factory.mktemp("lumibot"), "lumibot", "tests.strategies.planted:LumiBotHeavy",
                          {"sleeptime": "30M", "lookups": LOOKUPS}),
        "yappi-only": _start(tmp_path_factory.mktemp("yappi-only"), "yappi-only", "tests.strategies.planted:PlantedHistory",
                             {"sleeptime": "30M"}, cross_check="off"),
    }
    found = {}
    for run_id, (plan, proc) in started.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        found[run_id] = (plan, load(plan)["results"][run_id], out)
    return found


def _first(plan: Path, measured: str = "sampled") -> tuple[Finding, Analysis]:
    analysis = Analysis(load_results(PlanStore(plan)))
    found, how = findings(analysis)
    assert how == measured and found
    return found[0], analysis


def _lines(plan: Path, result: dict[str, Any]) -> list[Stack]:
    return read_stacks(plan.parent / result["sampled_lines_collapsed"])


def _counted(stacks: list[Stack]) -> tuple[int, list[Stack]]:
    """The test's own count: ticks (main thread inside the worker's backtest call) and the samples
    of the strategy thread or the main thread's own work, not waiting in threading/queue."""
    ticks, counted = 0, []
    main = {s.thread for s in stacks if any(f.name == "run" and f.file.endswith("worker/backtest.py") for f in s.frames)}
    for s in stacks:
        frames = s.frames
        if s.thread in main:
            cut = [i for i, f in enumerate(frames) if f.name == "run" and f.file.endswith("worker/backtest.py")]
            if not cut:
                continue
            frames = frames[cut[0]:]
            ticks += s.count
        elif not any(f.file.endswith("lumibot/strategies/strategy_executor.py") for f in frames):
            continue
        if frames and Path(frames[-1].file).name in ("threading.py", "queue.py"):
            continue
        counted.append(Stack(s.thread, frames, s.count))
    return ticks, counted


def _own_verdict(counted: list[Stack]) -> str:
    owners: Counter[Owner] = Counter()
    for s in counted:
        owners[owner_of_stack([(f.file, f.name) for f in s.frames])] += s.count
    return verdict(owners)


def _pstat(plan: Path, result: dict[str, Any]) -> dict[tuple[str, int, str], Any]:
    stats: dict[tuple[str, int, str], Any] = marshal.loads((plan.parent / result["pstat"]).read_bytes())
    return stats


@pytest.mark.slow
def test_the_planted_slow_path_is_the_first_finding(planted_runs: dict[str, tuple[Path, dict[str, Any], str]]) -> None:
    plan, result, console = planted_runs["planted"]
    first, _ = _first(plan)
    ticks, counted = _counted(_lines(plan, result))
    in_plant = [s for s in counted if any(f.name.endswith("rebuild_history") for f in s.frames)]
    plant_samples = sum(s.count for s in in_plant)
    by_line: Counter[int] = Counter()
    for s in in_plant:
        by_line[next(f.line for f in s.frames if f.name.endswith("rebuild_history"))] += s.count
    assert plant_samples / ticks > 0.3, "the plant must dominate the window for this test to mean anything"
    assert by_line.most_common(1)[0][0] == planted_line()

    # What and where: the function, its file, the planted line the hottest, seconds = share x unprofiled wall.
    assert first.subject.endswith("PlantedHistory.rebuild_history") and first.file == PLANTED_FILE
    assert first.hot_lines[0].line == planted_line()
    wall = result["unprofiled_wall_seconds"]
    assert first.amount == pytest.approx(plant_samples / ticks * wall, rel=1e-6)
    assert first.hot_lines[0].amount == pytest.approx(by_line[planted_line()] / ticks * wall, rel=1e-6)
    assert first.owner == str(Owner.STRATEGY)

    # How it is reached: from on_trading_iteration, with yappi's call counts along the path.
    stats = _pstat(plan, result)
    plant = next(k for k in stats if k[2].endswith("rebuild_history"))
    iteration = next(k for k in stats if k[0] == PLANTED_FILE and k[2].endswith("on_trading_iteration"))
    assert first.anchor == "on_trading_iteration"
    assert [s.function.rsplit(".", 1)[-1] for s in first.path] == ["on_trading_iteration", "rebuild_history"]
    assert first.path[0].file == PLANTED_FILE and first.path[0].first_line == iteration[1]
    assert first.path[-1].calls == stats[plant][4][iteration][1] == result["iterations"]
    assert first.path[-1].per_iteration == pytest.approx(1.0)

    # Whose time per window: the stored verdict is the one the raw samples give.
    assert result["time_by_owner"]["source"] == "sampled"
    assert result["time_by_owner"]["verdict"] == _own_verdict(counted) != "mixed"
    report = (plan.parent / "profiling" / "REPORT.md").read_text()
    assert report.index("## Findings") < report.index("## Runs")
    assert "### 1. `PlantedHistory.rebuild_history`" in report
    assert f"**{result['time_by_owner']['verdict']}**" in report.split("## Whose time is it, per window", 1)[1]

    # Where to look next: the pstats command, run as printed, shows the planted function's callers and nothing else.
    command = next(item for item in first.look_next if "print_callers" in item).strip("`")
    shown = subprocess.run(["sh", "-c", command.replace("python", shlex.quote(sys.executable), 1)], cwd=plan.parent,
                           capture_output=True, text=True, check=True).stdout
    assert "List reduced from" in shown and " to 1 due to restriction" in shown, shown
    assert f"planted.py:{plant[1]}(PlantedHistory.rebuild_history)" in shown

    # Peak RSS of both passes; the report was rewritten right after the run, and the console said where.
    assert result["peak_rss_mb"] > 50 and result["sampled_pass"]["peak_rss_mb"] > 50
    assert f"report     {plan.parent / 'profiling' / 'REPORT.md'} rewritten in" in console


@pytest.mark.slow
def test_time_spent_in_lumibot_is_lumibots(planted_runs: dict[str, tuple[Path, dict[str, Any], str]]) -> None:
    plan, result, _ = planted_runs["lumibot"]
    first, _ = _first(plan)
    ticks, counted = _counted(_lines(plan, result))
    assert first.owner == str(Owner.LUMIBOT) and "/lumibot/" in (first.file or "")
    assert first.share is not None and first.share > 0.1
    # Reached from the strategy's own loop, through the method that asks LumiBot LOOKUPS times per iteration.
    assert first.anchor == "on_trading_iteration" and first.path[0].file == PLANTED_FILE
    ask = next(s for s in first.path if s.function.endswith("ask_lumibot"))
    stats = _pstat(plan, result)
    own = next(k for k in stats if k[2].endswith("ask_lumibot"))
    assert ask.calls == stats[own][1] == LOOKUPS * result["iterations"]
    assert ask.per_iteration == pytest.approx(LOOKUPS)
    # The strategy's own lines are a sliver; the verdict is the one the raw samples give.
    strategy_leaf = sum(s.count for s in counted if owner_of_stack([(f.file, f.name) for f in s.frames]) is Owner.STRATEGY)
    assert strategy_leaf / ticks < 0.05
    assert result["time_by_owner"]["verdict"] == _own_verdict(counted) == "LumiBot-bound"


@pytest.mark.slow
def test_without_a_cross_check_the_findings_come_from_yappi_and_say_so(
    planted_runs: dict[str, tuple[Path, dict[str, Any], str]],
) -> None:
    plan, result, _ = planted_runs["yappi-only"]
    assert result["cross_check"] == "off"
    first, _ = _first(plan, measured="profiled")
    assert first.subject.endswith("rebuild_history") and first.file == PLANTED_FILE and not first.hot_lines
    assert first.measured == "profiled" and first.profiled_amount == first.amount
    stats = _pstat(plan, result)
    plant = next(k for k in stats if k[2].endswith("rebuild_history"))
    assert first.amount >= stats[plant][2]  # at least its own self time; the pandas under it is added
    assert [s.function.rsplit(".", 1)[-1] for s in first.path][-2:] == ["on_trading_iteration", "rebuild_history"]
    assert first.path[-1].calls == result["iterations"]
    # The owner table is yappi's (the worker's own stats), and its verdict is the one the CSV gives.
    table = result["time_by_owner"]
    assert table["source"] == "profiled"
    totals: Counter[Owner] = Counter()
    for row in read_funcs(plan.parent / result["top_functions_csv"]):
        if not is_wrapper(row):
            totals[owner_of_frame(row.module, row.name) or Owner.OTHER] += row.self_time
    assert table["verdict"] == verdict(totals)
    assert table["seconds"][str(Owner.DATA)] == pytest.approx(totals[Owner.DATA], abs=0.002)
    report = (plan.parent / "profiling" / "REPORT.md").read_text()
    assert "come from **yappi alone**" in report.split("## Findings", 1)[1]


def test_a_path_change_needs_more_calls_not_only_fewer_iterations() -> None:
    """Seen on the default plan: LumiBot's analysis runs once per backtest, so its calls per
    iteration are 45x higher in a week than in ten months; that is no change of code path."""
    once_per_run = [(1 / 228, 1, "wk"), (1 / 10_332, 1, "full")]
    assert call_jump(once_per_run) is None
    refetching = [(1_529 / 1_044, 1_529, "mo-2025-05"), (1 / 10_332, 1, "full"), (1 / 1_008, 1, "mo-2025-09")]
    jumped = call_jump(refetching)
    assert jumped is not None and jumped[2][2] == "mo-2025-05" and jumped[1][2] == "full"
    steady = [(1.0, 228, "wk"), (1.0, 10_332, "full")]
    assert call_jump(steady) is None and call_jump(steady[:1]) is None
