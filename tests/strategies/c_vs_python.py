"""A strategy that splits its own time between C and Python bytecode, for the cross-check.

Each iteration it encodes one large object with ``json.dumps`` (one call: the time is spent in
the C encoder) and calls a tiny pure-Python function many times. A tracing profiler like yappi
adds a cost to every Python call and bytecode, so it should over-state ``tiny_step``'s share of
the wall time and under-state (or get about right) ``encode_snapshot``'s; the unprofiled pass
sampled by py-spy says what the shares really are.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from strategies.mes_momentum import MesMomentum


def tiny_step(value: int) -> int:
    """Almost no work per call: a profile of it is mostly the cost of calling it."""
    return value + 1


def python_loop(calls: int) -> int:
    total = 0
    for _ in range(calls):
        total = tiny_step(total)
    return total


def make_payload(items: int) -> dict[str, list[Any]]:
    return {f"k{i}": [i, i * 0.5, "abcdefgh", True, None] for i in range(items)}


def encode_snapshot(payload: dict[str, list[Any]]) -> int:
    """One call into the C encoder with a large object (built once, in ``initialize``)."""
    return len(json.dumps(payload))


class CVsPython(MesMomentum):
    """The example strategy's set-up (MES, its market and cadence) with this module's own iteration."""

    parameters: ClassVar[dict[str, Any]] = {**MesMomentum.parameters, "sleeptime": "60M", "json_items": 8_000,
                                            "python_calls": 150_000}

    def initialize(self) -> None:
        super().initialize()
        self.payload = make_payload(int(self.parameters["json_items"]))

    def on_trading_iteration(self) -> None:
        encode_snapshot(self.payload)
        python_loop(int(self.parameters["python_calls"]))
        price = self.get_last_price(self.asset)
        if self.parameters["plot_price"] and price is not None:
            self.add_line(self.parameters["symbol"], float(price), color="black")
        if self.parameters["show_live_equity_curve"]:
            self.add_line("portfolio_value", float(self.portfolio_value), color="blue")
