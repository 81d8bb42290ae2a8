"""The whole path on real things: plan -> supervisor -> fresh worker -> LumiBot under yappi -> plan."""

from __future__ import annotations

import csv
import pstats
from pathlib import Path

import pytest

from supervisor.results import SCHEMA_FIELDS
from tests.conftest import load, short_run, supervise

pytestmark = pytest.mark.slow


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_supervisor_profiles_a_real_backtest(make_plan):
    plan_path = make_plan([short_run("e2e-2024-09-03")])
    proc = supervise(plan_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "e2e-2024-09-03" in proc.stdout and "done" in proc.stdout

    plan = load(plan_path)  # still valid JSON
    assert plan["runs"][0]["status"] == "done"
    result = plan["results"]["e2e-2024-09-03"]
    for name in SCHEMA_FIELDS:
        assert name in result, name
    assert 0.2 < result["wall_seconds_total"] < 120
    assert result["wall_seconds_no_download"] is None
    assert 0 < result["cpu_seconds"] < result["wall_seconds_total"] * 2.5
    assert len(result["git_rev"]) == 40 and isinstance(result["git_dirty"], bool)
    assert result["timestamp_utc"].endswith("Z")
    assert result["iterations"] > 10 and result["bars_served"] > 0

    # The invariants recorded are the plan's, and the worker observed them in effect.
    assert result["invariants"] == plan["invariants"]
    seen = result["invariants_in_effect"]
    assert seen["plot_price"] is True and seen["show_live_equity_curve"] is True
    assert seen["file_logging"] is True and Path(seen["log_file"]).stat().st_size > 0
    assert seen["lookbacks_unchanged"] is True and result["invariants_hold"] is True

    base = plan_path.parent  # relative paths resolve beside the copied plan, not in the repo
    funcs = rows(base / result["top_functions_csv"])
    own = [r for r in funcs if r["name"] == "MesMomentum.on_trading_iteration"]
    assert len(own) == 1 and int(own[0]["ncall"]) == result["iterations"]  # the strategy's method, nothing else
    threads = rows(base / result["top_threads_csv"])
    assert any(r["name"] == "MesMomentum" for r in threads)  # LumiBot names the strategy thread after it
    # The profiler's own threads (the worker's watch on its supervisor) are not the user's: in no table.
    assert not [r["name"] for r in threads if r["name"].startswith("lumiprof-")], threads
    assert not [r["full_name"] for r in funcs if r["module"].endswith("common/lifetime.py")]
    assert result["phases"]["consistent"] is True and result["phases"]["components"]["backtest_analysis"] > 0
    assert any(p.endswith("_tearsheet.html") for p in result["lumibot_outputs"])
    stats = pstats.Stats(str(base / result["pstat"]))
    assert stats.total_tt > 0  # type: ignore[attr-defined]
    assert (base / result["callgrind"]).read_text().startswith("version:")


def test_any_lumibot_strategy_can_be_named_in_the_plan(make_plan):
    plan_path = make_plan(
        [short_run("stock-2024-09-03")],
        meta={
            "strategy": "tests.strategies.stock_meanrev:StockMeanReversion",
            "strategy_parameters": {"ticker": "SPY", "window": 15},
            "data_source": {"kind": "pandas_synthetic", "assets": [{"symbol": "SPY", "type": "stock"}]},
        },
    )
    proc = supervise(plan_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = load(plan_path)["results"]["stock-2024-09-03"]
    funcs = rows(plan_path.parent / result["top_functions_csv"])
    assert any(r["full_name"].find("stock_meanrev.py") >= 0 and r["name"].endswith("on_trading_iteration") for r in funcs)
    assert result["invariants_in_effect"]["plot_price"] is True  # applied although the plan omitted it


def test_a_strategy_named_by_file_path_runs(make_plan):
    plan_path = make_plan(
        [short_run("by-path")],
        meta={
            "strategy": "strategies_here/meanrev.py:StockMeanReversion",
            "strategy_parameters": {"ticker": "SPY"},
            "data_source": {"kind": "pandas_synthetic", "assets": [{"symbol": "SPY", "type": "stock"}]},
        },
    )
    here = plan_path.parent / "strategies_here"
    here.mkdir()
    (here / "meanrev.py").write_text((Path(__file__).parent / "strategies" / "stock_meanrev.py").read_text())
    proc = supervise(plan_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load(plan_path)["results"]["by-path"]["iterations"] > 0


def test_parameters_that_contradict_an_invariant_are_refused(make_plan):
    plan_path = make_plan([short_run("no-plot")], meta={"strategy_parameters": {"plot_price": False}})
    proc = supervise(plan_path)
    assert proc.returncode == 1
    result = load(plan_path)["results"]["no-plot"]
    assert result["error_kind"] == "config"
    assert "plot_price=False contradicts invariant plot_price=True" in result["notes"]
