"""Strategies whose exits are LumiBot child orders: a bracket and an OCO, as users write them.

LumiBot names the orders a strategy creates with counters (``bt_1``) but the child orders of a
bracket or OCO order with a random ``uuid4().hex``, so two identical backtests of these
strategies write trade-event files that differ in their ``identifier`` column only. The
fingerprint must call them the same backtest (``tests/test_fingerprint.py``).

Both trade one MES contract whenever they are flat with nothing open, exiting at a take-profit
or a stop ``offset`` points away, so a two-day window of synthetic minute bars sees a handful
of entries, fills and cancelled siblings.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lumibot.entities import Asset, Order
from lumibot.strategies import Strategy


class ChildOrders(Strategy):
    """Enter when flat and idle; the subclass says how the exits are attached."""

    parameters: ClassVar[dict[str, Any]] = {"symbol": "MES", "sleeptime": "30M", "offset": 3.0}

    def initialize(self) -> None:
        self.sleeptime = self.parameters["sleeptime"]
        self.set_market("us_futures")
        self.asset = Asset(self.parameters["symbol"], asset_type=Asset.AssetType.CONT_FUTURE)

    def on_trading_iteration(self) -> None:
        price = self.get_last_price(self.asset)
        position = self.get_position(self.asset)
        flat = position is None or float(position.quantity) == 0
        idle = not any(order.is_active() for order in self.get_orders())
        if price is not None and flat and idle:
            self.enter(float(price), float(self.parameters["offset"]))

    def enter(self, price: float, offset: float) -> None:
        raise NotImplementedError


class BracketOrders(ChildOrders):
    """A market buy with its take-profit and stop-loss as one bracket order."""

    def enter(self, price: float, offset: float) -> None:
        self.submit_order(self.create_order(
            self.asset, 1, Order.OrderSide.BUY, order_class=Order.OrderClass.BRACKET,
            secondary_limit_price=price + offset, secondary_stop_price=price - offset,
        ))


class OcoOrders(ChildOrders):
    """A market buy, then its take-profit and stop-loss as one OCO order (LumiBot's ``StockOco`` way)."""

    def enter(self, price: float, offset: float) -> None:
        self.submit_order(self.create_order(self.asset, 1, Order.OrderSide.BUY))
        self.submit_order(self.create_order(
            self.asset, 1, Order.OrderSide.SELL, order_class=Order.OrderClass.OCO,
            limit_price=price + offset, stop_price=price - offset,
        ))
