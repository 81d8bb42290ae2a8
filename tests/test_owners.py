"""The owner rule: every class on paths of the shapes yappi, py-spy and memray record, and stack attribution."""

from __future__ import annotations

import json
import logging
import sysconfig
from pathlib import Path

import pandas
import pytest

import common.owners
import worker.backtest
from common.owners import Owner, owner_of_frame, owner_of_stack, verdict

SITE = Path(pandas.__file__).parent.parent  # this venv's site-packages
STDLIB = Path(sysconfig.get_paths()["stdlib"])
STRATEGY_FILE = "/home/user/my_project/my_strategy.py"


@pytest.mark.parametrize(
    ("file", "name", "owner"),
    [
        (STRATEGY_FILE, "MyStrategy.on_trading_iteration", Owner.STRATEGY),
        ("/home/user/my_project/helpers/signals.py", "zscore", Owner.STRATEGY),
        (str(SITE / "lumibot/backtesting/backtesting_broker.py"), "BacktestingBroker.process_pending_orders", Owner.LUMIBOT),
        (str(SITE / "lumibot/strategies/_strategy.py"), "_Strategy._dump_stats", Owner.OUTPUT),
        (str(SITE / "lumibot/strategies/_strategy.py"), "write_parquet_with_logging", Owner.OUTPUT),
        (str(SITE / "lumibot/strategies/_strategy.py"), "_Strategy.get_portfolio_value", Owner.LUMIBOT),
        (str(SITE / "lumibot/tools/indicators.py"), "plot_indicators", Owner.OUTPUT),
        (str(SITE / "pandas/core/frame.py"), "DataFrame.__init__", Owner.DATA),
        (str(SITE / "polars/dataframe/frame.py"), "DataFrame.filter", Owner.DATA),
        (str(SITE / "databento/historical/client.py"), "Historical.__init__", Owner.IO),
        (str(STDLIB / "socket.py"), "socket.recv_into", Owner.IO),
        (str(STDLIB / "logging/__init__.py"), "Logger.info", Owner.OUTPUT),
        (worker.backtest.__file__, "run", Owner.PROFILER),
        (common.owners.__file__, "owner_of_frame", Owner.PROFILER),
        (str(SITE / "worker/backtest.py"), "run", Owner.PROFILER),  # installed from the wheel
        (str(STDLIB / "copy.py"), "deepcopy", None),
        (str(STDLIB / "json/encoder.py"), "JSONEncoder.iterencode", None),
        ("<frozen importlib._bootstrap>", "_find_and_load", None),
        ("~", "<built-in method time.sleep>", None),
    ],
)
def test_each_frame_has_the_owner_a_reader_would_name(file: str, name: str, owner: Owner | None) -> None:
    assert owner_of_frame(file, name) is owner


def test_the_real_modules_of_this_interpreter_sort_as_named() -> None:
    """Not only hand-written paths: the files these modules were really loaded from."""
    assert owner_of_frame(logging.__file__, "Logger.info") is Owner.OUTPUT
    assert owner_of_frame(pandas.core.frame.__file__, "DataFrame.__init__") is Owner.DATA
    assert owner_of_frame(json.__file__, "dumps") is None
    assert owner_of_frame(__file__, "test") is Owner.STRATEGY  # a file of the user's own (not ours, not a library)


def test_generic_code_is_its_callers_time() -> None:
    lumibot = (str(SITE / "lumibot/entities/data.py"), "Data.get_bars")
    strategy = (STRATEGY_FILE, "MyStrategy.on_trading_iteration")
    deepcopy = (str(STDLIB / "copy.py"), "deepcopy")
    dumps = (str(STDLIB / "json/__init__.py"), "dumps")
    frame_init = (str(SITE / "pandas/core/frame.py"), "DataFrame.__init__")
    assert owner_of_stack([strategy, lumibot, deepcopy]) is Owner.LUMIBOT
    assert owner_of_stack([lumibot, strategy, dumps]) is Owner.STRATEGY
    assert owner_of_stack([strategy, frame_init, deepcopy]) is Owner.DATA
    assert owner_of_stack([deepcopy, dumps]) is Owner.OTHER


def test_verdict_needs_forty_percent_and_ignores_the_profiler() -> None:
    assert verdict({Owner.STRATEGY: 4.0, Owner.LUMIBOT: 3.0, Owner.DATA: 3.0}) == "strategy-bound"
    assert verdict({Owner.STRATEGY: 3.9, Owner.LUMIBOT: 3.1, Owner.DATA: 3.0}) == "mixed"
    assert verdict({Owner.PROFILER: 9.0, Owner.LUMIBOT: 1.0}) == "mixed"
    assert verdict({Owner.PROFILER: 1.0, Owner.IO: 1.0}) == "I/O-bound"
    assert verdict({}) == "mixed"
