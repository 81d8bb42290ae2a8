"""The cross-check on real backtests and a real py-spy: files, fields, verdicts, report, unavailability."""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from common import crosscheck as cc
from common.collapsed import Frame, Stack, parse_line, read_stacks
from common.flamegraph import render
from report.analysis import Analysis
from report.resultset import load as load_results
from supervisor.crosscheck import DEFAULT_RATE_HZ
from supervisor.plan import PlanStore
from tests.conftest import load, short_run, supervise, write_plan

EXAMPLE_RUN = "xc-example"
C_VS_PYTHON_RUN = "xc-c-vs-python"
SHORT = {"strategy_parameters": {"sleeptime": "60M"}, "phase1_mode": "single", "cross_check": "sampled"}


def run_plan(folder: Path, run_id: str, meta: dict[str, Any], *args: str) -> tuple[Path, dict[str, Any]]:
    """Run a one-window plan; the console's stdout is kept beside it in ``console.txt``."""
    plan = write_plan(folder, [short_run(run_id, "2024-09-03", "2024-09-05")], {**SHORT, **meta})
    proc = supervise(plan, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (folder / "console.txt").write_text(proc.stdout)
    return plan, load(plan)["results"][run_id]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The shipped example strategy over two trading days, cross-checked (the default)."""
    return run_plan(tmp_path_factory.mktemp("xc-example"), EXAMPLE_RUN, {}, "--progress-interval", "0.5")


@pytest.fixture(scope="module")
def c_vs_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A strategy whose time goes half into one big json.dumps (C) and half into many tiny Python calls."""
    # LumiBot's end-of-backtest analysis would dominate a two-day window (lazy imports): this
    # strategy's user mirrors a run_backtest call with it off, so the cross-check sees the iterations.
    meta = {"strategy": "tests.strategies.c_vs_python:CVsPython",
            "strategy_parameters": {"sleeptime": "60M", "json_items": 8000, "python_calls": 100_000},
            "backtest_options": {"show_plot": False, "show_tearsheet": False, "show_indicators": False,
                                 "save_tearsheet": False}}
    plan, result = run_plan(tmp_path_factory.mktemp("xc-cvp"), C_VS_PYTHON_RUN, meta)
    proc = supervise(plan, "report")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return plan, result


def crosscheck_rows(plan: Path, result: dict[str, Any]) -> dict[str, dict[str, str]]:
    with (plan.parent / result["crosscheck_csv"]).open(newline="") as fh:
        return {f"{Path(r['module']).name}:{r['function']}": r for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_a_real_window_is_cross_checked(example: tuple[Path, dict[str, Any]]) -> None:
    plan, result = example
    assert result["status"] == "done" and result["cross_check"] == "sampled", result["notes"]
    # yappi slows this window about 2x on a quiet machine; load that hits one pass more than the
    # other moves it (1.06x-2.69x on the default plan at load 2-6, 1.27x here beside a second suite)
    assert 1.0 < result["profiler_overhead_ratio"] <= 5
    measured = result["wall_seconds_total"] / result["unprofiled_wall_seconds"]
    assert result["profiler_overhead_ratio"] == pytest.approx(measured, rel=1e-2)
    assert result["sampled_samples"] > 50 and result["sampled_rate_hz"] == DEFAULT_RATE_HZ
    for by in ("inclusive", "self"):
        for n in ("top10", "top20"):
            item = result["rank_agreement"][by][n]
            assert 0 <= item["overlap"] <= item["of"]
            assert item["spearman"] is None or -1 <= item["spearman"] <= 1
    # Same backtest twice: the same iterations, orders, fills and final value, proven by both passes.
    assert result["sampled_outcome_matches"] is True
    assert result["backtest_outcome"] == result["sampled_pass"]["outcome"]
    assert result["backtest_outcome"]["iterations"] > 10 and result["backtest_outcome"]["orders"] >= 0

    base = plan.parent
    collapsed = read_stacks(base / result["sampled_collapsed"])
    assert any(f.name.endswith("MesMomentum.on_trading_iteration") for s in collapsed for f in s.frames)
    svg = ET.parse(base / result["sampled_svg"]).getroot()
    titles = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any("MesMomentum.on_trading_iteration" in t for t in titles)
    rows = crosscheck_rows(plan, result)
    own = rows["mes_momentum.py:MesMomentum.on_trading_iteration"]
    assert int(own["ncall"]) == result["backtest_outcome"]["iterations"]
    assert float(own["sampled_inclusive_pct"]) > 0 and float(own["yappi_inclusive_pct"]) > 0
    assert own["verdict"] in cc.VERDICTS and own["left_out_of_tables"] == "0"


@pytest.mark.slow
def test_the_progress_line_names_each_pass_and_restarts_its_clock(example: tuple[Path, dict[str, Any]]) -> None:
    """The window runs twice (profiled, then the unprofiled check): a line that starts again from
    0 % says which pass it is, and counts that pass's own seconds."""
    plan, _ = example
    lines = [line for line in (plan.parent / "console.txt").read_text().splitlines() if line.startswith("  ")]
    names = [re.match(rf"  {EXAMPLE_RUN}\s+(profiled|unprofiled check): ", line) for line in lines]
    assert all(names), lines
    kinds = [m.group(1) for m in names if m]
    first_check = kinds.index("unprofiled check")
    assert "profiled" in kinds[:first_check] and set(kinds[first_check:]) == {"unprofiled check"}, kinds
    elapsed = re.search(r"; (\d+) s elapsed", lines[first_check])
    assert elapsed and int(elapsed.group(1)) <= 2, lines[first_check]  # this pass's clock, not the entry's


@pytest.mark.slow
def test_c_time_is_not_over_stated_and_python_calls_are(c_vs_python: tuple[Path, dict[str, Any]]) -> None:
    plan, result = c_vs_python
    assert result["cross_check"] == "sampled" and result["sampled_outcome_matches"] is True
    rows = crosscheck_rows(plan, result)
    python = rows["c_vs_python.py:python_loop"]
    encode = rows["c_vs_python.py:encode_snapshot"]
    assert python["verdict"] == cc.OVER, python
    assert encode["verdict"] in (cc.UNDER, cc.AGREES), encode
    assert float(python["inclusive_ratio"]) > float(encode["inclusive_ratio"])


@pytest.mark.slow
def test_the_report_says_how_far_to_trust(c_vs_python: tuple[Path, dict[str, Any]]) -> None:
    plan, result = c_vs_python
    report = (plan.parent / "profiling" / "REPORT.md").read_text()
    trust = report.split("## How far to trust these numbers", 1)[1].split("\n## ", 1)[0]
    assert "sampled %" in trust and "yappi %" in trust and "python_loop" in trust and "encode_snapshot" in trust
    assert f"{result['profiler_overhead_ratio']:.2f}×" in trust
    assert "[svg](xc-c-vs-python.sampled.svg)" in trust
    assert "over-stated by yappi" in trust
    offenders = report.split("## Top offenders per run", 1)[1]
    assert "| sampled % |" in offenders and "xc-c-vs-python.sampled.svg" in offenders
    # The summary names the sampled ranking exactly when the pooled top three disagree with yappi's.
    trust_data = Analysis(load_results(PlanStore(plan))).trust
    pooled = [p for p in trust_data.pooled("inclusive") if not p.wrapper and p.verdict in cc.COMPARED]
    by_sampled, by_yappi = pooled[:3], sorted(pooled, key=lambda p: p.yappi, reverse=True)[:3]
    disagree = [p.key for p in by_sampled] != [p.key for p in by_yappi] or any(p.verdict != cc.AGREES for p in by_sampled)
    head = report.split("## Runs", 1)[0]
    assert ("by the sampled share the heaviest functions are" in head) == disagree
    if disagree:
        assert all(p.short in head for p in by_sampled)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("py_spy", "reason"),
    [("no/such/py-spy", "no executable py-spy at"), ("/bin/false", "py-spy exited with code 1")],
    ids=["missing-binary", "py-spy-fails"],
)
def test_without_py_spy_the_run_is_done_and_says_why(tmp_path: Path, py_spy: str, reason: str) -> None:
    plan, result = run_plan(tmp_path, "xc-none", {"cross_check": {"mode": "sampled", "py_spy": py_spy}})
    assert result["status"] == "done"
    assert result["cross_check"].startswith("unavailable: ") and reason in result["cross_check"]
    assert result["profiler_overhead_ratio"] is None and result["unprofiled_wall_seconds"] is None
    assert "cross-check unavailable" in result["notes"]
    proc = supervise(plan, "report")
    assert proc.returncode == 0, proc.stderr
    trust = (plan.parent / "profiling" / "REPORT.md").read_text().split("## How far to trust these numbers", 1)[1]
    assert "No run has a cross-check" in trust and "unavailable: " in trust


@pytest.mark.parametrize("value", ["maybe", 3, {"mode": "sampled", "rate_hz": 0}, {"modes": "off"}])
def test_a_bad_cross_check_setting_is_refused(tmp_path: Path, value: Any) -> None:
    plan = write_plan(tmp_path, [short_run("xc-bad")], {"cross_check": value})
    proc = supervise(plan)
    assert proc.returncode == 2 and "meta.cross_check" in proc.stderr
    assert load(plan)["runs"][0]["status"] == "pending"


# -- the pure parts, on made-up stacks ------------------------------------------------------
def frame(name: str, file: str = "/x/app.py", line: int = 1) -> Frame:
    return Frame(name, file, line)


def test_collapsed_lines_parse_with_threads_and_functions() -> None:
    stack = parse_line("thread (0x1A): MainThread;main (/x/app.py:3);JSONEncoder.iterencode (/py/json/encoder.py:205) 7\n")
    assert stack is not None and stack.thread == "0x1A" and stack.count == 7
    assert stack.frames[-1] == Frame("JSONEncoder.iterencode", "/py/json/encoder.py", 205)
    assert stack.frames[-1].short_name == "iterencode"
    assert parse_line("") is None and parse_line("no count here") is None


def test_scope_starts_at_the_backtest_and_drops_what_yappi_cannot_see() -> None:
    scope = frame("run", "/w/worker/backtest.py", 116)
    inner = frame("work", "/x/lib.py", 10)
    stacks = [
        Stack("1", (frame("main"), scope, inner), 6),  # main thread in the backtest: 6 ticks
        Stack("1", (frame("main"), scope), 4),  # 4 more ticks, idle in run itself
        Stack("1", (frame("main"), frame("startup")), 50),  # before the backtest: dropped
        Stack("2", (frame("Thread._bootstrap", "/py/threading.py"), frame("loop", "/x/lib.py", 20)), 10),
        Stack("3", (frame("watch", "/w/common/lifetime.py", 37),), 10),  # the worker's own watcher: dropped
    ]
    sampled = cc.in_scope(stacks)
    assert sampled.ticks == 10
    assert sampled.inclusive[cc.frame_key("/x/lib.py", 10, "work")] == 6
    assert sampled.inclusive[cc.frame_key("/x/lib.py", 20, "loop")] == 10  # summed over threads, like yappi
    assert cc.frame_key("/x/app.py", 1, "main") not in sampled.inclusive
    assert sampled.leaf[cc.frame_key("/w/worker/backtest.py", 116, "run")] == 4
    assert not any(k[0].endswith("lifetime.py") or k[2] == "_bootstrap" for k in sampled.inclusive)


def test_verdicts_respect_the_noise() -> None:
    assert cc.verdict(0.30, 0.29, 1000) == cc.AGREES  # 1 pp: below the floor
    assert cc.verdict(0.30, 0.10, 1000) == cc.OVER
    assert cc.verdict(0.05, 0.20, 1000) == cc.UNDER
    assert cc.verdict(0.12, 0.09, 100) == cc.AGREES  # 3 pp, but two standard errors at 100 ticks are ~6 pp
    assert cc.verdict(0.55, 0.45, 100_000) == cc.AGREES  # 10 pp but only 1.2x
    assert cc.verdict(0.0, 0.5, 1000, calls=1) == cc.UNTIMED
    assert cc.verdict(None, 0.5, 1000) == cc.NOT_IN_YAPPI


def test_spearman_and_rank_agreement() -> None:
    assert cc.spearman([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert cc.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert cc.spearman([1, 2], [2, 1]) is None
    rows = [
        cc.CrossRow(f"f{i}", "/x/app.py", i, 1, y, s, y, s, 10, cc.AGREES, False)
        for i, (y, s) in enumerate([(0.5, 0.4), (0.4, 0.5), (0.3, 0.3), (0.2, 0.2), (0.1, 0.01)])
    ]
    found = cc.agreement(rows, "inclusive", sizes=(2, 5))
    assert found["top2"]["overlap"] == 2 and found["top5"]["overlap"] == 5
    assert found["top5"]["spearman"] == pytest.approx(0.9)


def test_flame_graph_widths_follow_the_samples() -> None:
    stacks = [Stack("7", (frame("a"), frame("b")), 3), Stack("7", (frame("a"), frame("c")), 1)]
    svg = ET.fromstring(render(stacks, "t <&> title"))
    boxes = {}
    for group in svg.iter("{http://www.w3.org/2000/svg}g"):
        title = group.find("{http://www.w3.org/2000/svg}title")
        rect = group.find("{http://www.w3.org/2000/svg}rect")
        assert title is not None and rect is not None
        boxes[(title.text or "").split(" (")[0]] = float(rect.get("width", "0"))
    assert boxes["b"] == pytest.approx(3 * boxes["c"], rel=1e-3)
    assert boxes["all samples"] == pytest.approx(boxes["a"], rel=1e-3) == pytest.approx(boxes["b"] + boxes["c"], rel=1e-3)


@pytest.mark.slow
def test_a_backtest_that_differs_without_the_profiler_is_flagged(tmp_path: Path) -> None:
    meta = {"strategy": "tests.strategies.profile_sensitive:ProfileSensitive"}
    plan, result = run_plan(tmp_path, "xc-differs", meta)
    assert result["status"] == "done" and result["cross_check"] == "sampled"
    assert result["sampled_outcome_matches"] is False
    assert result["backtest_outcome"]["orders"] == result["sampled_pass"]["outcome"]["orders"] + 1
    assert "sampled pass's backtest differs from the profiled one: " in result["notes"]
    assert re.search(r"orders (\d+) → (\d+)", result["notes"])
    # The extra order is a changed trade, so the trade-events hash (order ids keyed by first appearance) differs too.
    assert "trade_events_canonical_sha256 " in result["notes"]
    proc = supervise(plan, "report")
    assert proc.returncode == 0, proc.stderr
    trust = (plan.parent / "profiling" / "REPORT.md").read_text().split("## How far to trust these numbers", 1)[1]
    assert "**no**: see notes" in trust
