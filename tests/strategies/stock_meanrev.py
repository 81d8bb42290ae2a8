"""A second, different strategy: daily-cadence stock mean reversion, to prove any strategy works.

It shares nothing with the shipped futures example: another asset class, another cadence,
its own parameter names, and it reads ``plot_price`` under the same invariant.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lumibot.entities import Asset
from lumibot.strategies import Strategy


class StockMeanReversion(Strategy):
    parameters: ClassVar[dict[str, Any]] = {"ticker": "SPY", "window": 20, "plot_price": True, "show_live_equity_curve": True}

    def initialize(self) -> None:
        self.sleeptime = "60M"
        self.asset = Asset(self.parameters["ticker"], asset_type=Asset.AssetType.STOCK)

    def on_trading_iteration(self) -> None:
        prices = self.get_historical_prices(self.asset, int(self.parameters["window"]), "minute")
        if prices is None or prices.df is None or prices.df.empty:
            return
        closes = prices.df["close"]
        z = (closes.iloc[-1] - closes.mean()) / (closes.std() or 1.0)
        if z < -1 and self.get_position(self.asset) is None:
            self.submit_order(self.create_order(self.asset, 10, "buy"))
        elif z > 1 and self.get_position(self.asset) is not None:
            self.sell_all()
        if self.parameters["plot_price"]:
            self.add_line(self.parameters["ticker"], float(closes.iloc[-1]))
        if self.parameters["show_live_equity_curve"]:
            self.add_line("equity", float(self.portfolio_value))
