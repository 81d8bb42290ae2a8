"""Every fact a result records is true, checked against strategies that count what they really did.

Four real supervisor runs (started together, each a short real backtest) are shared by the tests:

* ``probe``: a strategy named by file path, with a ``@dataclass`` and a helper module beside it,
  a subclass calling ``super().on_trading_iteration()``, a named user thread, and its own counts;
* ``crash_at_end``: the same strategy raising in ``on_strategy_end``;
* ``daily_on_minutes``: a ``sleeptime="1D"`` strategy on minute bars (LumiBot iterates every bar);
* ``daily_on_days``: the same strategy on daily synthetic bars, with a mirrored backtest option.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load, short_run, write_plan

pytestmark = pytest.mark.slow
PROBE_FILE = "tests/strategies/by_path/lifecycle_probe.py"
SPY_MINUTES = {"kind": "pandas_synthetic", "assets": [{"symbol": "SPY", "type": "stock"}]}
SPY_DAYS = {"kind": "pandas_synthetic", "assets": [{"symbol": "SPY", "type": "stock", "timestep": "day"}]}

PLANS: dict[str, dict[str, Any]] = {
    "probe": {"strategy": f"{PROBE_FILE}:Probe", "data_source": SPY_MINUTES},
    "crash_at_end": {"strategy": f"{PROBE_FILE}:CrashAtEnd", "data_source": SPY_MINUTES},
    "daily_on_minutes": {"strategy": f"{PROBE_FILE}:DailyProbe", "data_source": SPY_MINUTES},
    "daily_on_days": {
        "strategy": f"{PROBE_FILE}:DailyProbe",
        "data_source": SPY_DAYS,
        "backtest_options": {"save_tearsheet": False, "show_tearsheet": False},
    },
}


class Finished:
    """One finished plan: its supervisor's exit code, the entry's result and the strategy's own counts."""

    def __init__(self, plan: Path, returncode: int, output: str) -> None:
        self.plan, self.returncode, self.output = plan, returncode, output
        self.result: dict[str, Any] = load(plan)["results"]["run"]
        counts = plan.parent / "profiling" / "work" / "run" / "probe_counts.json"
        self.counts: dict[str, int] = json.loads(counts.read_text()) if counts.exists() else {}

    def rows(self, key: str) -> list[dict[str, str]]:
        with (self.plan.parent / self.result[key]).open(newline="") as fh:
            return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Finished]:
    plans = {
        name: write_plan(tmp_path_factory.mktemp(name), [short_run("run")], {"strategy_parameters": {}, **meta})
        for name, meta in PLANS.items()
    }
    procs = {
        name: subprocess.Popen([sys.executable, "-m", "supervisor", "--plan", str(plan)], cwd=plan.parent,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, plan in plans.items()
    }
    outputs = {name: proc.communicate(timeout=900)[0] for name, proc in procs.items()}
    return {name: Finished(plans[name], procs[name].returncode, outputs[name]) for name in plans}


def test_a_strategy_file_imports_like_python_file_py(finished: dict[str, Finished]) -> None:
    probe = finished["probe"]
    assert probe.returncode == 0, probe.output + probe.result["notes"]
    assert probe.result["status"] == "done" and probe.counts["iterations"] > 5


def line_of(path: Path, after: str, text: str) -> int:
    """1-based number of the first line containing ``text`` after the line containing ``after``."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i in range(start, len(lines)) if text in lines[i]) + 1


def test_iterations_are_the_strategy_method_calls(finished: dict[str, Finished]) -> None:
    probe = finished["probe"]
    lineno = line_of(Path(__file__).parent.parent / PROBE_FILE, "class Probe(ProbeBase)", "def on_trading_iteration")
    # yappi names the base method after the instance's class too: only the line tells them apart.
    own = [r for r in probe.rows("top_functions_csv")
           if r["module"].endswith("lifecycle_probe.py") and r["lineno"] == str(lineno)]
    assert len(own) == 1 and own[0]["name"] == "Probe.on_trading_iteration"
    assert probe.result["iterations"] == probe.counts["iterations"] == int(own[0]["ncall"])


def test_bars_served_counts_the_strategy_requests_apart_from_lumibot_internal_ones(finished: dict[str, Finished]) -> None:
    result = finished["probe"].result
    assert result["history_calls"] == finished["probe"].counts["history_requests"]
    assert result["bars_served"] >= result["history_calls"]
    assert result["internal_history_calls"] > 0  # fills of the orders the probe submits every iteration


def test_threads_carry_their_threading_names(finished: dict[str, Finished]) -> None:
    names = {r["name"] for r in finished["probe"].rows("top_threads_csv")}
    assert {"MainThread", "probe-side-thread"} <= names
    assert "Thread" not in names


def test_lumibot_analysis_and_its_files_are_part_of_the_run(finished: dict[str, Finished]) -> None:
    result = finished["probe"].result
    outputs = [Path(p).name for p in result["lumibot_outputs"]]
    for suffix in ("_tearsheet.html", "_tearsheet_metrics.json", "_indicators.html", "_settings.json", "_trades.csv"):
        assert any(name.endswith(suffix) for name in outputs), (suffix, outputs)
    assert all((finished["probe"].plan.parent / p).is_file() for p in result["lumibot_outputs"])
    assert "LUMIBOT_DISABLE_UI=1" in result["browser"]["how"]
    assert result["backtest_options"]["benchmark_asset"] is None and result["backtest_options"]["risk_free_rate"] == 0.0
    phases = result["phases"]
    assert phases["consistent"] is True, phases
    assert phases["components"]["backtest_analysis"] > 0 and phases["trading_loop"] > 0 and phases["setup"] > 0
    total = phases["setup"] + phases["trading_loop"] + phases["analysis_and_output"] + phases["other"]
    assert total == pytest.approx(result["wall_seconds_total"], abs=1e-3)


def test_the_machine_state_is_recorded(finished: dict[str, Finished]) -> None:
    machine = finished["probe"].result["machine"]
    assert machine["cpu_count"] >= 1 and machine["cpu_model"]
    assert len(machine["load_before"]) == 3 and len(machine["load_after"]) == 3
    assert 0.0 <= machine["other_cpu_share"] <= 1.0 and isinstance(machine["busy"], bool)


def test_a_crash_in_on_strategy_end_is_an_error_with_its_first_line(finished: dict[str, Finished]) -> None:
    crash = finished["crash_at_end"]
    assert crash.returncode == 1, crash.output
    assert crash.result["status"] == "error" and crash.result["error_kind"] == "backtest"
    assert "in on_strategy_end" in crash.result["notes"]
    assert "RuntimeError: end-of-run bug on purpose" in crash.result["notes"]


def test_a_daily_sleeptime_on_minute_bars_is_flagged(finished: dict[str, Finished]) -> None:
    minutes, days = finished["daily_on_minutes"], finished["daily_on_days"]
    assert minutes.returncode == 0 and days.returncode == 0, minutes.output + days.output
    assert minutes.result["iterations"] == minutes.counts["iterations"] > 100
    assert "far above the at most" in minutes.result["notes"] and "'1D'" in minutes.result["notes"]
    # Daily bars make the same strategy iterate once a trading day, with no warning.
    assert days.result["iterations"] == days.counts["iterations"] <= days.result["iterations_expected_at_most"]
    assert days.result["notes"] == ""


def test_backtest_options_mirror_the_users_run_backtest_call(finished: dict[str, Finished]) -> None:
    result = finished["daily_on_days"].result
    assert result["backtest_options"]["save_tearsheet"] is False and result["backtest_options"]["show_tearsheet"] is False
    assert not any(p.endswith("_tearsheet.html") for p in result["lumibot_outputs"])
    assert any(p.endswith("_indicators.html") for p in result["lumibot_outputs"])
