"""REPORT.md and COMPARE.md on real results, on holes in the results, and the pure-Python fits."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import orjson
import pytest

from common.offenders import is_wrapper, offenders
from common.profiles import FuncRow, portable, read_funcs
from common.windows import fit_line, robust_line, trading_days, window_days
from report import markdown as md
from report.analysis import explain
from report.resultset import RunRecord
from report.scaling import marginal_costs, superlinear
from report.write import CHART_NAMES, write_report
from supervisor.plan import PlanStore
from tests.conftest import REPO_PLAN, load, short_run, supervise, write_plan

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# LumiBot stops at the midnight starting `end`: 1, 2 and 4 trading days (the last one spans a weekend).
RUNS = [
    short_run("rp-1d", "2024-09-03", "2024-09-04"),
    short_run("rp-2d", "2024-09-03", "2024-09-05"),
    short_run("rp-4d", "2024-09-03", "2024-09-09"),
]


@pytest.fixture(scope="module")
def done_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real backtests of 1, 2 and 4 trading days, profiled once for the whole module."""
    meta = {"strategy_parameters": {"sleeptime": "60M"}, "phase1_mode": "single"}
    plan = write_plan(tmp_path_factory.mktemp("report"), [dict(r) for r in RUNS], meta)
    proc = supervise(plan)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return plan


def copy_plan(plan: Path, target: Path) -> Path:
    """The plan file and its CSVs, same relative layout, so paths in the plan still resolve."""
    (target / "profiling").mkdir(parents=True)
    shutil.copy(plan, target / plan.name)
    for csv_file in (plan.parent / "profiling").glob("*.csv"):
        shutil.copy(csv_file, target / "profiling" / csv_file.name)
    return target / plan.name


def section(text: str, heading: str) -> str:
    """The body under a markdown heading, up to the next heading of the same or higher level."""
    level = heading.split(" ", 1)[0]
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    ends = [i for i in (rest.find(f"\n{'#' * n} ") for n in range(1, len(level) + 1)) if i >= 0]
    return rest[: min(ends)] if ends else rest


def table_rows(text: str) -> list[list[str]]:
    """Cells of every data row of every markdown table in ``text`` (header and rule rows skipped)."""
    rows: list[list[str]] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("| "):
            continue
        is_header = index + 1 < len(lines) and lines[index + 1].startswith("| ---")
        if is_header or line.startswith("| ---"):
            continue
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


@pytest.mark.slow
def test_report_on_real_results(done_plan: Path) -> None:
    proc = supervise(done_plan, "report")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = done_plan.parent / "profiling"
    report = (out / "REPORT.md").read_text()
    assert str(out / "REPORT.md") in proc.stdout
    plan = load(done_plan)
    results = plan["results"]

    runs_table = {row[0]: row for row in table_rows(section(report, "## Runs"))}
    for run in RUNS:
        result = results[run["id"]]
        row = runs_table[run["id"]]
        assert row[6] == md.wall(result["wall_seconds_total"]) == f"{result['wall_seconds_total']:.2f}"
        assert row[7] == md.wall(result["cpu_seconds"])
        assert row[4] == str(window_days(*map(_date, (run["start"], run["end"])))) == run["id"][3]
        assert row[5] == str(result["iterations"])

    # Every number in a run's offender tables is that run's CSV row, and the ranking is the CSV's.
    run_id = "rp-4d"
    result = results[run_id]
    rows = read_funcs(done_plan.parent / result["top_functions_csv"])
    body = section(report, f"### {run_id}")
    cumulative_part, self_part = body.split("By self time:")
    for part, attribute in ((cumulative_part, "cumulative"), (self_part, "self_time")):
        shown = table_rows(part)
        assert len(shown) == 10
        expected = offenders(portable(rows), attribute, 10)
        assert [r[1] for r in shown] == [md.code(f.short) for f in expected]
        for cells, func in zip(shown, expected, strict=True):
            # Short names can repeat (LumiBot's analysis imports many packages lazily: `__init__.py:1 <module>`).
            source = [r for r in rows if r.short == func.short and r.ncall == func.ncall]
            assert (cells[2], cells[3]) in {
                (md.func_seconds(getattr(r, attribute)), md.percent(getattr(r, attribute), result["wall_seconds_total"]))
                for r in source
            }
        heaviest = max((r for r in rows if not is_wrapper(r)), key=lambda r: getattr(r, attribute))
        assert shown[0][2] == md.func_seconds(getattr(heaviest, attribute))

    for name in CHART_NAMES.values():
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
        assert f"]({name})" in report
    assert "Phase 0 (the cache probe) has not run yet." in report
    assert "R² =" in section(report, "## Scaling with window length")
    assert "Thread times overlap and must not be summed" in report

    # The phase split is each run's recorded one, and it adds up to the run's wall time.
    phases = {row[0]: row for row in table_rows(section(report, "## Where each run's time goes: phases"))}
    for run in RUNS:
        split, row = results[run["id"]]["phases"], phases[run["id"]]
        assert row[1] == md.wall(results[run["id"]]["wall_seconds_total"]) and row[6] == "yes"
        assert row[4].startswith(md.wall(split["analysis_and_output"]) + " (")
        assert split["components"]["backtest_analysis"] > 0


@pytest.mark.slow
def test_missing_and_failed_runs_still_render(done_plan: Path, tmp_path: Path) -> None:
    plan_path = copy_plan(done_plan, tmp_path)
    plan = load(plan_path)
    plan["runs"][1]["status"] = "error"
    failed = plan["results"]["rp-2d"]
    failed.update(status="error", notes="worker exited with code -9 (killed)", wall_seconds_total=None)
    failed.update(top_functions_csv=None, top_threads_csv=None)
    plan["runs"][2]["status"] = "pending"
    del plan["results"]["rp-4d"]
    plan["phase0"] = {
        "cold_id": "probe-cold",
        "warm_id": "probe-warm",
        "cold_wall_seconds": 20.0,
        "warm_wall_seconds": 15.0,
        "delta_wall_seconds": -5.0,
        "delta_percent": -25.0,
        "function_diff": [{"function": "x.py:1 download", "cold_seconds": 5.5, "warm_seconds": 0.5, "delta_seconds": -5.0}],
        "verdict": "material",
        "decision": "preload",
        "reason": "warm run took 15.00 s vs cold 20.00 s: +5.00 s saved (+25.0 %)",
    }
    plan_path.write_bytes(orjson.dumps(plan))

    message = write_report(PlanStore(plan_path))
    report = (tmp_path / "profiling" / "REPORT.md").read_text()
    assert str(tmp_path / "profiling" / "REPORT.md") in message
    missing = {row[0]: row for row in table_rows(section(report, "## Missing or failed runs"))}
    assert set(missing) == {"rp-2d", "rp-4d"}
    assert missing["rp-2d"][2] == "error" and "killed" in missing["rp-2d"][3]
    assert missing["rp-4d"][2] == "pending" and "not run yet" in missing["rp-4d"][3]
    assert "### rp-1d" in report and "### rp-2d" not in report
    assert "1 done, 1 error and 1 pending" in report
    assert "**Verdict: material; Phase 1 runs preload.**" in report and "`x.py:1 download`" in report
    assert "Phase 1 runs 'preload'" in report
    assert "at least two different lengths" in report


@pytest.mark.slow
def test_a_run_stopped_by_its_timeout_shows_its_partial_profile(done_plan: Path, tmp_path: Path) -> None:
    plan_path = copy_plan(done_plan, tmp_path)
    plan = load(plan_path)
    plan["runs"][2]["status"] = "error"
    plan["results"]["rp-4d"].update(status="error", partial=True, notes="timeout after 2 s")
    plan_path.write_bytes(orjson.dumps(plan))

    write_report(PlanStore(plan_path))
    report = (tmp_path / "profiling" / "REPORT.md").read_text()
    missing = {row[0]: row for row in table_rows(section(report, "## Missing or failed runs"))}
    assert "timeout after 2 s" in missing["rp-4d"][3] and "stopped before the end" in missing["rp-4d"][3]
    assert "**Stopped before the end** (timeout after 2 s)" in section(report, "### rp-4d")
    assert "Seconds are summed over the 2 done runs" in report


def test_explain_names_the_function_whose_calls_jumped() -> None:
    def record(run_id: str, iterations: int, rows: list[tuple[str, int, float]]) -> RunRecord:
        funcs = [FuncRow(f"m.py:{name}", name, "/x/lumibot/m.py", 1, calls, seconds, 0.0) for name, calls, seconds in rows]
        run = short_run(run_id, "2025-04-01", "2025-06-30") | {"status": "done"}
        return RunRecord(run, {"wall_seconds_total": sum(s for _, _, s in rows), "iterations": iterations}, funcs)

    reference = record("ref", 100, [("on_iteration", 100, 10.0), ("get_prices", 100, 8.0), ("load_data", 1, 1.0)])
    slow = record("slow", 50, [("on_iteration", 50, 60.0), ("get_prices", 50, 59.0), ("load_data", 50, 55.0)])
    excess, culprit = explain(slow, reference)
    assert culprit is not None and culprit.short == "m.py:1 load_data"
    assert (culprit.calls, culprit.reference_calls) == (50, 1)
    assert excess[0].short == "m.py:1 on_iteration" and excess[0].seconds == pytest.approx(60.0 - 10.0 * 0.5)


@pytest.mark.slow
def test_runs_that_differ_from_the_others_are_flagged(done_plan: Path, tmp_path: Path) -> None:
    plan_path = copy_plan(done_plan, tmp_path)
    plan = load(plan_path)
    odd = plan["results"]["rp-4d"]
    odd["invariants_in_effect"]["plot_price"] = False
    odd.update(invariants_hold=False, parameters_hash="deadbeef", git_rev="f" * 40, git_dirty=True)
    odd["versions"]["lumibot"] = "9.9.9"
    plan_path.write_bytes(orjson.dumps(plan))

    write_report(PlanStore(plan_path))
    flagged = table_rows(section((tmp_path / "profiling" / "REPORT.md").read_text(), "## Invariants and reproducibility"))
    assert [row[0] for row in flagged] == ["rp-4d"]
    what = flagged[0][2]
    assert "plot_price = false (plan: true)" in what and "parameters hash deadbeef" in what
    assert "git ffffffffffff dirty" in what and "lumibot 9.9.9" in what


def test_report_with_no_results_at_all(tmp_path: Path) -> None:
    plan_path = write_plan(tmp_path, [dict(r) for r in RUNS])
    write_report(PlanStore(plan_path))
    report = (tmp_path / "profiling" / "REPORT.md").read_text()
    assert "3 pending" in report and "Phase 0 (the cache probe) has not run yet." in report
    assert "_No chart: no run has finished yet._" in report
    assert "No run has finished with a profile yet." in report
    assert not any((tmp_path / "profiling" / name).exists() for name in CHART_NAMES.values())


@pytest.mark.slow
def test_compare_with_itself_gives_ratios_of_one_within_noise(done_plan: Path) -> None:
    proc = supervise(done_plan, "report", "--compare", str(done_plan))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (done_plan.parent / "profiling" / "COMPARE.md").read_text()
    assert "**Before** =" in text and "after ÷ before" in text
    runs = table_rows(section(text, "## Wall time per run"))
    assert {r[0] for r in runs} >= {r["id"] for r in RUNS}
    assert all(r[4] == "1.00" and r[5] == "within noise" for r in runs)  # single runs: below the factor 1.1
    functions = table_rows(section(text, "## Top 15 functions by cumulative time"))
    assert len(functions) == 15 and all(r[3] == "1.00" and r[5] == "– (single runs)" for r in functions)
    assert "Every common run has the same git revision" in text


def test_supervisor_report_imports_no_heavy_library() -> None:
    heavy = "{'matplotlib', 'numpy', 'pandas', 'polars', 'lumibot'}"
    code = f"import sys, supervisor.cli, report.write; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_PLAN.parent)
    assert out.stdout.strip() == "[]"


def test_line_fit_on_an_exact_line() -> None:
    fit = fit_line([1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 7.0, 9.0])
    assert fit is not None
    assert fit.intercept == pytest.approx(1.0) and fit.slope == pytest.approx(2.0) and fit.r_squared == pytest.approx(1.0)
    assert fit_line([5.0, 5.0], [1.0, 2.0]) is None  # one window length: no slope


def test_robust_line_ignores_one_outlier_and_least_squares_does_not() -> None:
    xs, ys = [5.0, 5.0, 20.0, 22.0, 65.0], [3.0, 3.0, 50.0, 12.0, 33.0]  # 20 days: 4× the trend
    robust = robust_line(xs, ys)
    assert robust is not None and robust.slope == pytest.approx(0.5, abs=0.02)
    plain = fit_line(xs, ys)
    assert plain is not None and plain.r_squared < 0.8


def test_superlinear_detection_on_synthetic_rows() -> None:
    days = [5, 5, 20, 65, 218]
    samples = {
        "quadratic": [(d, 0.01 * d**2) for d in days],
        "linear": [(d, 0.3 * d) for d in days],
        "fixed_plus_linear": [(d, 2.0 + 0.1 * d) for d in days],  # sub-linear on a log scale
        "too_few_runs": [(5, 0.1), (218, 500.0)],
        "one_length_only": [(5, 0.1), (5, 0.2), (5, 0.3)],
    }
    found = {g.key: g for g in superlinear(samples)}
    assert set(found) == {"quadratic"}
    growth = found["quadratic"]
    assert growth.exponent == pytest.approx(2.0) and growth.r_squared == pytest.approx(1.0)
    assert growth.longest_days == 218 and growth.longest_seconds == pytest.approx(0.01 * 218**2)
    assert growth.projected(436) == pytest.approx(4 * growth.longest_seconds)
    mild = {"mild": [(d, d**1.1) for d in days]}
    assert superlinear(mild) == [] and math.isclose(superlinear(mild, threshold=1.05)[0].exponent, 1.1)


def test_trading_days_and_marginal_costs() -> None:
    assert trading_days(_date("2024-09-01"), _date("2024-09-30")) == 21  # Sunday to Monday
    assert trading_days(_date("2025-01-20"), _date("2025-01-26")) == 5
    assert trading_days(_date("2025-01-25"), _date("2025-01-26")) == 0  # a weekend
    assert trading_days(_date("2025-01-01"), _date("2025-10-31")) == 218
    assert window_days(_date("2025-01-01"), _date("2025-10-31")) == 217  # the backtest stops as Oct 31 begins
    assert window_days(_date("2025-01-20"), _date("2025-01-26")) == 5
    steps = marginal_costs([(5, 3.0), (20, 10.0), (22, 12.0), (65, 40.0)])
    assert [(m.from_days, m.to_days) for m in steps] == [(5, 21), (21, 65)]  # 20 and 22 days merge
    assert steps[0].seconds_per_day == pytest.approx((11.0 - 3.0) / 16.0)


def _date(text: str) -> date:
    return date.fromisoformat(text)


@pytest.mark.slow
def test_busy_machine_and_runaway_iterations_are_flagged_per_run(done_plan: Path, tmp_path: Path) -> None:
    plan_path = copy_plan(done_plan, tmp_path)
    plan = load(plan_path)
    for result in plan["results"].values():  # the real runs may have met a busy machine themselves
        if isinstance(result, dict) and "machine" in result:
            result["machine"]["busy"] = False
    busy = plan["results"]["rp-1d"]
    busy["machine"].update(busy=True, other_cpu_share=0.6, load_before=[3.1, 2.0, 1.0])
    runaway = plan["results"]["rp-2d"]
    runaway.update(iterations=2880, sleeptime="1D", iterations_expected_at_most=3,
                   notes="2880 iterations, far above the at most 3 that sleeptime '1D' allows over this window")
    plan_path.write_bytes(orjson.dumps(plan))

    write_report(PlanStore(plan_path))
    report = (tmp_path / "profiling" / "REPORT.md").read_text()
    care = section(report, "## Runs to read with care")
    assert "**rp-1d**: machine busy: other processes used 60.0 %" in care and "[3.1, 2.0, 1.0]" in care
    assert "**rp-2d**: 2880 iterations where sleeptime '1D' allows at most 3" in care
    assert "rp-4d" not in care
    assert "Read rp-1d and rp-2d with care" in report

    plan["runs"] = plan["runs"][:1]
    plan_path.write_bytes(orjson.dumps(plan))
    write_report(PlanStore(plan_path))
    report = (tmp_path / "profiling" / "REPORT.md").read_text()
    assert "The one planned run is done." in report and "Seconds are summed over the 1 done run (" in report
