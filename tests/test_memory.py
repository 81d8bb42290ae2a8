"""The memory pass on real backtests with planted memory: found, placed, owned, grown, and the same backtest.

Three plans run side by side (three supervisors, one- and two-day windows, LumiBot's analysis off):
a strategy that keeps every frame it builds (``tests/strategies/leaky.py:KeepsFrames``), one that
builds as much and frees it (``FreesFrames``), and the bracket-order strategy with the cross-check
on (its child orders get random ids, so only the canonical fingerprint can call two passes the same
backtest). Beside them a bare worker runs the tracemalloc fallback. Every figure the tests check is
also read straight from memray's capture, not only from the report's text.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from report.analysis import Analysis
from report.findings import Finding, findings
from report.resultset import load as load_results
from supervisor import memory
from supervisor.plan import PlanStore
from supervisor.specs import first_pass_specs
from tests.conftest import REPO, REPO_PLAN, load, short_run, supervise, write_plan
from tests.strategies.leaky import FreesFrames, planted_line

LEAKY_FILE = str(Path(__file__).parent / "strategies" / "leaky.py")
NO_ANALYSIS = {"show_plot": False, "show_tearsheet": False, "show_indicators": False, "save_tearsheet": False}
WINDOWS = [short_run("d1", "2024-09-03", "2024-09-04"), short_run("d2", "2024-09-03", "2024-09-05")]
MB = 1024 * 1024


def _start(folder: Path, strategy: str, runs: list[dict[str, Any]], **meta: Any) -> tuple[Path, subprocess.Popen[str]]:
    plan = write_plan(folder, runs, {"strategy": strategy, "strategy_parameters": {"sleeptime": "30M"},
                                     "phase1_mode": "single", "memory": "all", "backtest_options": NO_ANALYSIS, **meta})
    proc = subprocess.Popen([sys.executable, "-m", "supervisor", "--plan", str(plan)], cwd=plan.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return plan, proc


def _tracemalloc_worker(folder: Path) -> subprocess.Popen[bytes]:
    """A bare worker of the leak's one-day window with the fallback tool, as the supervisor would spawn it."""
    plan = write_plan(folder, WINDOWS[:1], {"strategy": "tests.strategies.leaky:KeepsFrames", "backtest_options": NO_ANALYSIS,
                                            "strategy_parameters": {"sleeptime": "30M"}, "phase1_mode": "single"})
    spec = dataclasses.replace(first_pass_specs(PlanStore(plan), profile=False)[0], memory="tracemalloc")
    Path(spec.work_dir).mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=spec.work_dir, env=env)
    assert proc.stdin is not None
    proc.stdin.write(orjson.dumps(spec.to_json()))
    proc.stdin.close()
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    started = {
        "leak": _start(tmp_path_factory.mktemp("leak"), "tests.strategies.leaky:KeepsFrames", WINDOWS),
        "frees": _start(tmp_path_factory.mktemp("frees"), "tests.strategies.leaky:FreesFrames", WINDOWS),
        "bracket": _start(tmp_path_factory.mktemp("bracket"), "tests.strategies.child_orders:BracketOrders", WINDOWS[1:],
                          cross_check="sampled"),
    }
    fallback_folder = tmp_path_factory.mktemp("fallback")
    fallback = _tracemalloc_worker(fallback_folder)
    found: dict[str, Any] = {}
    for name, (plan, proc) in started.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        found[name] = (plan, load(plan)["results"])
    stdout = fallback.stdout.read() if fallback.stdout else b""
    fallback.wait(timeout=300)
    found["fallback"] = (fallback_folder, orjson.loads(stdout.strip().splitlines()[-1]))
    return found


def _memory_findings(plan: Path) -> list[Finding]:
    found, _ = findings(Analysis(load_results(PlanStore(plan))))
    return [f for f in found if f.kind == "memory"]


def _bytes_on_line(plan: Path, result: dict[str, Any], line: int) -> tuple[int, int]:
    """The test's own count from memray's capture: bytes at the peak and still held at the end whose
    stack passes through ``leaky.py:line``."""
    from memray import FileReader

    def on_line(record: Any) -> bool:
        return any(file == LEAKY_FILE and no == line for _, file, no in record.stack_trace())

    with FileReader(str(plan.parent / result["memory"]["capture"])) as reader:
        peak = sum(r.size for r in reader.get_high_watermark_allocation_records(merge_threads=True) if on_line(r))
        kept = sum(r.size for r in reader.get_leaked_allocation_records(merge_threads=True) if on_line(r))
    return peak, kept


@pytest.mark.slow
def test_the_planted_leak_is_the_first_memory_finding(runs: dict[str, Any]) -> None:
    plan, results = runs["leak"]
    first = _memory_findings(plan)[0]
    assert first.subject.endswith("remember") and first.file == LEAKY_FILE, first
    assert first.hot_lines[0].line == planted_line() and first.owner == "strategy"
    assert first.anchor == "on_trading_iteration" and [s.function.rsplit(".", 1)[-1] for s in first.path][-1] == "remember"
    # Checked against memray's own records: the frames kept by the planted line, at the peak and at the end.
    rows = 40_000 * 16  # two 8-byte columns per row
    peaks = {}
    for run_id in ("d1", "d2"):
        peak, kept = _bytes_on_line(plan, results[run_id], planted_line())
        assert kept >= 0.95 * peak and peak >= 20 * rows, (run_id, peak, kept)
        peaks[run_id] = peak
        assert first.windows[[w.run_id for w in first.windows].index(run_id)].amount == pytest.approx(peak, rel=0.05)
    assert peaks["d2"] == pytest.approx(2 * peaks["d1"], rel=0.15)  # one frame per iteration: in step with the window
    assert first.leak_shaped and first.retained == pytest.approx(peaks["d2"], rel=0.05)
    assert first.growth_exponent is not None and 0.8 <= first.growth_exponent <= 1.2
    assert first.projected == pytest.approx(2 * peaks["d2"], rel=0.2) and first.projected_days == 4
    text = (plan.parent / "profiling" / "REPORT.md").read_text()
    heading = next(line for line in text.splitlines() if line.startswith("### ") and "`remember`" in line)
    assert "retained, **leak-shaped**" in heading and f"line {planted_line()} (" in text
    assert "## Where the memory goes, per window" in text


@pytest.mark.slow
def test_frames_freed_after_use_are_not_called_retained(runs: dict[str, Any]) -> None:
    plan, results = runs["frees"]
    line = planted_line(FreesFrames.glance)
    for run_id in ("d1", "d2"):
        peak, kept = _bytes_on_line(plan, results[run_id], line)
        assert kept < 2 * 40_000 * 16 and peak < 4 * 40_000 * 16, (run_id, peak, kept)  # at most the frame in hand
    for finding in _memory_findings(plan):
        assert not finding.leak_shaped or not finding.subject.endswith("glance"), finding
        if finding.subject.endswith("glance"):
            assert any(text.startswith("not retained") for text in finding.evidence_against)
    leak_plan, leak_results = runs["leak"]
    held = {name: r["d2"]["memory"]["retained_bytes"] for name, r in (("leak", leak_results), ("frees", results))}
    _, kept = _bytes_on_line(leak_plan, leak_results["d2"], planted_line())
    assert held["leak"] - held["frees"] == pytest.approx(kept, rel=0.1)  # the kept frames, and only those, differ


@pytest.mark.slow
def test_the_memory_pass_is_the_same_backtest_as_the_profiled_one(runs: dict[str, Any]) -> None:
    plan, results = runs["bracket"]
    result = results["d2"]
    held = result["memory"]
    assert result["status"] == "done" and held["status"] == "done", result["notes"]
    profiled, mem, sampled = result["fingerprint"], held["outcome"], result["sampled_pass"]["outcome"]
    assert profiled["orders"] > 2 and profiled["trade_events_canonical_sha256"]
    for other in (mem, sampled):
        assert {k: other[k] for k in ("orders", "fills", "iterations", "portfolio_value", "trade_events_canonical_sha256")} \
            == {k: profiled[k] for k in ("orders", "fills", "iterations", "portfolio_value", "trade_events_canonical_sha256")}
    assert held["outcome_matches"] is True and result["sampled_outcome_matches"] is True
    # The figures, each from its own source and consistent with the others.
    assert held["tool"] == "memray" and held["arrow_memory_pool"] == "system" and held["fallback_reason"] is None
    assert 0 < held["peak_heap_bytes"] <= held["total_allocated_bytes"] and 0 < held["retained_bytes"] <= held["peak_heap_bytes"]
    assert held["peak_rss_mb"] * MB > held["peak_heap_bytes"] / 2 and held["trading_days"] == 2
    assert held["cost_ratio"] == pytest.approx(held["wall_seconds_total"] / result["unprofiled_wall_seconds"], rel=1e-2)
    assert 0.5 < held["cost_ratio"] < 10
    for key in ("capture", "sites", "flamegraph"):
        assert (plan.parent / held[key]).stat().st_size > 0, key
    assert "<html" in (plan.parent / held["flamegraph"]).read_text(errors="replace")[:5000].lower()


@pytest.mark.slow
def test_compare_shows_the_peak_heap_moving(runs: dict[str, Any]) -> None:
    (before, _), (after, _) = runs["leak"], runs["frees"]
    proc = supervise(after, "report", "--compare", str(before))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (after.parent / "profiling" / "COMPARE.md").read_text()
    section = text.split("## Memory per window", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| d")}
    assert set(rows) == {"d1", "d2"} and all("**less**" in row for row in rows.values()), section
    assert "one memory pass per side" in rows["d2"]


@pytest.mark.slow
def test_tracemalloc_stands_in_where_memray_cannot_run(runs: dict[str, Any]) -> None:
    folder, answer = runs["fallback"]
    assert answer["ok"], answer.get("error")
    held = answer["memory"]
    assert held["tool"] == "tracemalloc" and held["peak_heap_bytes"] > 20 * 40_000 * 16
    figures, _ = memory.summarize(answer, folder, "d1", "d1.memory")
    assert figures["status"] == "done" and figures["sites_at_peak"].startswith("not measured")
    sites = orjson.loads(Path(figures["sites"]).read_bytes())["sites"]
    kept = next(s for s in sites if s["file"] == LEAKY_FILE and s["function"] == "remember")
    assert kept["retained_bytes"] >= 20 * 40_000 * 16 and figures["top_owner_at_peak"] is None


def test_meta_memory_chooses_the_windows_and_a_bad_value_is_one_line(make_plan: Any) -> None:
    plan = orjson.loads(REPO_PLAN.read_bytes())
    by_mode = {}
    for mode in ("short", "scaling", "all", "off"):
        plan["meta"]["memory"] = mode
        by_mode[mode] = [r["id"] for r in plan["runs"] if not memory.covers(plan, r)]
    assert [r.split("-")[0] for r in by_mode["short"]] == ["wk"] * 4 + ["mo"] * 3
    assert by_mode["scaling"] == ["wk-2025-01-20_01-26", "mo-2025-02", "qtr-2025-Q2like", "full-2025-01-01_10-31"]
    assert len(by_mode["all"]) == 9 and by_mode["off"] == []
    bad = make_plan([short_run("x")], {"memory": "sometimes"})
    proc = supervise(bad)
    assert proc.returncode == 2 and "meta.memory: must be one of short, scaling, all, off" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_failed_memory_pass_is_named_by_its_window(runs: dict[str, Any], tmp_path: Path) -> None:
    """A crash or time-out of the memory pass leaves the run done (its time profile stands), and
    the memory section says which window's pass failed and why, not an anonymous reason."""
    plan, _ = runs["leak"]
    copy = tmp_path / "profiling_plan.json"
    shutil.copytree(plan.parent / "profiling", tmp_path / "profiling")
    document = load(plan)
    document["results"]["d2"]["memory"] = {"status": "error", "reason": "memory pass failed: timed out after 300 s"}
    copy.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    assert supervise(copy, "report").returncode == 0
    section = (tmp_path / "profiling" / "REPORT.md").read_text().split("## Where the memory goes", 1)[1].split("\n## ", 1)[0]
    assert "d2: **error**, memory pass failed: timed out after 300 s" in section
    assert "| d1 |" in section and "| d2 |" not in section
