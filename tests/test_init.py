"""``lumiprof init``: a ready plan for a user's own strategy, or one line saying why not.

Real processes throughout: the CLI, and the fresh interpreter it imports the strategy in.
The plan it writes runs end to end in ``tests/test_wheel.py`` (from an installed wheel).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from supervisor.initcmd import choose_data_source
from supervisor.plan import pristine, validate
from supervisor.template import SHORT_WINDOWS, SPEC_WINDOWS
from tests.conftest import REPO_PLAN, load, short_run, supervise, write_plan
from worker.symbols import scan


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan is reaped by whoever adopted it, maybe later)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def init(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", "init", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def strategy_file(folder: Path, body: str, name: str = "my_strategy.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def test_the_repo_plan_is_what_init_writes_for_the_example_strategy(tmp_path: Path) -> None:
    """One source for the windows and settings: the template reproduces the repository's plan exactly."""
    target = tmp_path / "profiling_plan.json"
    proc = init("strategies.mes_momentum:MesMomentum", "--plan", str(target), cwd=REPO_PLAN.parent)
    assert proc.returncode == 0, proc.stderr
    written = orjson.loads(target.read_bytes())
    repo = pristine(orjson.loads(REPO_PLAN.read_bytes()))
    assert written["meta"].pop("created_utc") != repo["meta"].pop("created_utc")  # when this plan was made
    assert written == repo
    assert [tuple(w) for w in SPEC_WINDOWS] == [(r["id"], r["start"], r["end"], r["label"]) for r in repo["runs"]]
    assert "LumiBot's DataBento path against the local gateway: synthetic CME minute bars for MES" in proc.stdout
    command = "python -m supervisor"
    assert proc.stdout.splitlines()[-1] == f"next: {command} run --plan {target} && {command} report --plan {target}"


def test_a_file_strategy_gets_a_short_plan_beside_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    strategy_file(project, """
        from datetime import datetime
        from lumibot.strategies import Strategy

        class Daily(Strategy):
            parameters = {"tickers": ["AAPL", "MSFT"], "window": (5, 20), "since": datetime(2020, 1, 1),
                          "plot_price": False}

            def initialize(self):
                self.sleeptime = "1D"

            def on_trading_iteration(self):
                for ticker in self.parameters["tickers"]:
                    self.get_last_price(ticker)
        """)
    proc = init("project/my_strategy.py:Daily", "--windows", "short", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    plan = orjson.loads((project / "profiling_plan.json").read_bytes())
    validate(plan)
    meta = plan["meta"]
    assert meta["strategy"] == "my_strategy.py:Daily"  # relative to the plan's folder, which is the file's
    # window (a tuple) and since (a datetime) do not survive JSON: the class's own values apply
    assert meta["strategy_parameters"] == {"tickers": ["AAPL", "MSFT"], "plot_price": True, "show_live_equity_curve": True}
    assert meta["data_source"] == {"kind": "pandas_synthetic", "assets": [
        {"symbol": "AAPL", "type": "stock", "timestep": "day"}, {"symbol": "MSFT", "type": "stock", "timestep": "day"}]}
    assert meta["phase1_mode"] == "single"
    assert [(r["id"], r["start"], r["end"], r["label"]) for r in plan["runs"]] == [tuple(w) for w in SHORT_WINDOWS]
    for expected in ("parameter window (tuple) cannot be written in JSON", "parameter since (datetime)",
                     "plot_price is False in the class: the plan sets it to True",
                     "next: python -m supervisor run --plan project/profiling_plan.json"):
        assert expected in proc.stdout
    assert sorted(p.name for p in project.iterdir()) == ["my_strategy.py", "profiling_plan.json"]  # nothing else left


NOT_A_STRATEGY = """
    class Plain:
        parameters = {"x": 1}
    """
BROKEN_IMPORT = """
    import lumibot
    import a_module_nobody_has  # noqa
    """


@pytest.mark.parametrize(
    ("body", "target", "message"),
    [
        (NOT_A_STRATEGY, "my_strategy.py:Plain", "my_strategy.py:Plain is not a LumiBot Strategy subclass (its bases: object)"),
        (BROKEN_IMPORT, "my_strategy.py:X",
         "my_strategy.py does not import: ModuleNotFoundError: No module named 'a_module_nobody_has'"),
        (NOT_A_STRATEGY, "my_strategy.py:Missing", "my_strategy.py has no class 'Missing'"),
        (NOT_A_STRATEGY, "my_strategy.py",
         "STRATEGY must be path/to/file.py:ClassName or package.module:ClassName, got 'my_strategy.py'"),
    ],
    ids=["not a Strategy", "import error", "no such class", "no class named"],
)
def test_refusals_are_one_line_and_write_nothing(tmp_path: Path, body: str, target: str, message: str) -> None:
    strategy_file(tmp_path, body)
    proc = init(target, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {message}\n"
    assert proc.stdout == ""
    assert not (tmp_path / "profiling_plan.json").exists()


USES_ITS_OWN_COMMON = """
    from lumibot.strategies import Strategy
    from common.indicators import fast


    class MyStrategy(Strategy):
        def on_trading_iteration(self):
            fast(1)
    """


def test_a_package_named_like_one_of_ours_is_named_as_the_reason(tmp_path: Path) -> None:
    """A user's own ``common`` package is shadowed by ours: say so, in init and in a run, not
    'No module named common.indicators' for a file that is right there."""
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "__init__.py").write_text("")
    (tmp_path / "common" / "indicators.py").write_text("def fast(x):\n    return x\n")
    strategy_file(tmp_path, USES_ITS_OWN_COMMON)
    reason = "its package 'common' has the name of one of the profiler's own packages"
    proc = init("my_strategy.py:MyStrategy", cwd=tmp_path)
    assert proc.returncode == 2 and reason in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr

    plan = write_plan(tmp_path, [short_run("r0", "2024-09-03", "2024-09-04")], {"strategy": "my_strategy.py:MyStrategy"})
    ran = supervise(plan)
    result = load(plan)["results"]["r0"]
    assert ran.returncode == 1 and result["status"] == "error" and result["error_kind"] == "import", ran.stdout
    assert reason in result["notes"] and reason in ran.stdout


def test_an_existing_plan_is_never_overwritten(tmp_path: Path) -> None:
    strategy_file(tmp_path, NOT_A_STRATEGY)
    existing = tmp_path / "profiling_plan.json"
    existing.write_bytes(b"mine, not a plan\n")
    proc = init("my_strategy.py:Plain", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {existing} already exists: not overwritten (remove it, or choose another --plan)\n"
    assert existing.read_bytes() == b"mine, not a plan\n"


def test_a_hanging_import_is_stopped_with_its_children(tmp_path: Path) -> None:
    """The import runs in its own process group: a time-out ends it and what it started."""
    pids = tmp_path / "pids"
    strategy_file(tmp_path, f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(600)
        """)
    started = time.monotonic()
    proc = init("my_strategy.py:X", "--import-timeout", "5", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "error: importing my_strategy.py took more than 5 s: stopped (see --import-timeout)\n"
    assert time.monotonic() - started < 30
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid)
    assert not (tmp_path / "profiling_plan.json").exists()


# -- the data source, from what the strategy's source says (no LumiBot needed) -----------------
def choice(source: str, parameters: dict[str, Any] | None = None, live: bool = False) -> dict[str, Any]:
    found = scan(textwrap.dedent(source), parameters or {})
    return choose_data_source(found, found["sleeptime"], live).source


def test_futures_get_the_local_gateway_and_live_only_when_asked() -> None:
    source = """
        class F(Strategy):
            def initialize(self):
                self.asset = Asset(self.parameters["symbol"], asset_type=Asset.AssetType.CONT_FUTURE)
        """
    assert choice(source, {"symbol": "ES"}) == {"kind": "databento", "mode": "local", "dataset": "GLBX.MDP3"}
    assert choice(source, {"symbol": "ES"}, live=True) == {"kind": "databento", "mode": "live", "dataset": "GLBX.MDP3"}
    assert choice('Asset("NQ", asset_type="future")') == {"kind": "databento", "mode": "local", "dataset": "GLBX.MDP3"}


def test_stocks_get_synthetic_bars_for_the_symbols_named() -> None:
    source = """
        SYMBOL = "QQQ"
        class S(Strategy):
            def on_trading_iteration(self):
                self.get_last_price("SPY")
                self.create_order(SYMBOL, 1, "buy")
                self.get_last_prices(["IWM", "USD"])
                Asset(symbol="TLT")
        """
    assert choice(source) == {"kind": "pandas_synthetic", "assets": [
        {"symbol": "SPY", "type": "stock"}, {"symbol": "QQQ", "type": "stock"}, {"symbol": "IWM", "type": "stock"},
        {"symbol": "TLT", "type": "stock"}]}


def test_stocks_and_futures_together_get_synthetic_bars_for_both() -> None:
    assert choice('Asset("MES", asset_type=AssetType.FUTURE)\nself.get_last_price("SPY")') == {
        "kind": "pandas_synthetic", "assets": [{"symbol": "MES", "type": "future"}, {"symbol": "SPY", "type": "stock"}]}


def test_when_nothing_names_a_symbol_spy_is_used_and_the_output_says_so() -> None:
    found = scan("class S(Strategy):\n    pass\n", {})
    data = choose_data_source(found, None, live=False)
    assert data.source == {"kind": "pandas_synthetic", "assets": [{"symbol": "SPY", "type": "stock"}]}
    assert "could not tell which symbols" in data.notes[0]
