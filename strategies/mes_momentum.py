"""An example LumiBot futures strategy, written the way a user would write one.

Each iteration it looks back over recent minute bars of the Micro E-mini S&P 500 continuous
future, computes a fast/slow moving-average spread, and goes long or flat when the spread
crosses zero. ``plot_price`` adds the price line and ``show_live_equity_curve`` adds the
portfolio value line every iteration: the profiler's invariants keep both switched on.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lumibot.entities import Asset
from lumibot.strategies import Strategy


class MesMomentum(Strategy):
    """Moving-average crossover on MES minute bars."""

    parameters: ClassVar[dict[str, Any]] = {
        "symbol": "MES",
        "sleeptime": "30M",
        "lookback_bars": 60,
        "fast_window": 10,
        "slow_window": 40,
        "contracts": 1,
        "plot_price": True,
        "show_live_equity_curve": True,
    }

    def initialize(self) -> None:
        self.sleeptime = self.parameters["sleeptime"]
        self.set_market("us_futures")
        self.asset = Asset(self.parameters["symbol"], asset_type=Asset.AssetType.CONT_FUTURE)
        self.last_signal = 0

    def on_trading_iteration(self) -> None:
        bars = self.get_historical_prices(self.asset, int(self.parameters["lookback_bars"]), "minute")
        if bars is None or bars.df is None or len(bars.df) < int(self.parameters["slow_window"]):
            return
        closes = bars.df["close"]
        fast = closes.tail(int(self.parameters["fast_window"])).mean()
        slow = closes.tail(int(self.parameters["slow_window"])).mean()
        price = float(closes.iloc[-1])
        signal = 1 if fast > slow else -1

        if signal != self.last_signal:
            position = self.get_position(self.asset)
            held = float(position.quantity) if position is not None else 0.0
            if signal > 0 and held <= 0:
                self.submit_order(self.create_order(self.asset, self.parameters["contracts"], "buy"))
            elif signal < 0 and held > 0:
                self.submit_order(self.create_order(self.asset, held, "sell"))
            self.last_signal = signal

        if self.parameters["plot_price"]:
            self.add_line(self.parameters["symbol"], price, color="black")
        if self.parameters["show_live_equity_curve"]:
            self.add_line("portfolio_value", float(self.portfolio_value), color="blue")
