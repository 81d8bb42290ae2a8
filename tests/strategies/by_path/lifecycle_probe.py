"""Strategies named by file path that count what they really did, for the truth tests.

The file uses a ``@dataclass`` and imports a helper module beside it (both need the import to
work as ``python lifecycle_probe.py`` does), starts a named thread, and writes its own counts to
``probe_counts.json`` in the run's working folder at the end.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from lumibot.entities import Asset
from lumibot.strategies import Strategy
from probe_helpers import start_side_thread


@dataclass
class Counts:
    iterations: int = 0
    history_requests: int = 0


class ProbeBase(Strategy):
    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True}
    sleeptime_setting = "60M"

    def initialize(self) -> None:
        self.sleeptime = self.sleeptime_setting
        self.asset = Asset("SPY", asset_type=Asset.AssetType.STOCK)
        self.counts = Counts()
        self.stop_side = threading.Event()
        self.side = start_side_thread(self.stop_side)

    def on_trading_iteration(self) -> None:
        self.counts.iterations += 1
        bars = self.get_historical_prices(self.asset, 10, "minute")
        self.counts.history_requests += 1
        # Trade every iteration so LumiBot looks prices up for its own fills as well.
        side = "buy" if self.counts.iterations % 2 else "sell"
        self.submit_order(self.create_order(self.asset, 1, side))
        if bars is not None and bars.df is not None and not bars.df.empty:
            self.add_line("SPY", float(bars.df["close"].iloc[-1]))
        self.add_line("equity", float(self.portfolio_value))

    def on_strategy_end(self) -> None:
        self.stop_side.set()
        Path("probe_counts.json").write_text(json.dumps(asdict(self.counts)))


class Probe(ProbeBase):
    """Calls ``super().on_trading_iteration()``: three functions share the method's name."""

    def on_trading_iteration(self) -> None:
        super().on_trading_iteration()


class CrashAtEnd(Probe):
    """Fails in ``on_strategy_end``, which LumiBot logs and hands to ``on_bot_crash``."""

    def on_strategy_end(self) -> None:
        super().on_strategy_end()
        raise RuntimeError("end-of-run bug on purpose")


class DailyProbe(Strategy):
    """A daily strategy that only counts its iterations."""

    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True}

    def initialize(self) -> None:
        self.sleeptime = "1D"
        self.iterations = 0

    def on_trading_iteration(self) -> None:
        self.iterations += 1

    def on_strategy_end(self) -> None:
        Path("probe_counts.json").write_text(json.dumps({"iterations": self.iterations}))
