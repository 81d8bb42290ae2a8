"""Two strategies with a known cost, for the findings tests: one slow in the user's own code, one in LumiBot's.

:class:`PlantedHistory` rebuilds a history frame from a growing list of one-row frames every
iteration (``pd.concat`` over the whole list, then ``sort_index``): quadratic in the window, all
of it on one line of the user's own ``rebuild_history`` (:data:`PLANTED_LINE`). The findings must
name that function, this file, that line among its hottest, the path from
``on_trading_iteration`` and the owner class ``strategy``.

:class:`LumiBotHeavy` does almost nothing itself: each iteration it asks LumiBot for a long
history many times, so its time is spent in LumiBot's data path, not in its own lines.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import pandas as pd

from strategies.mes_momentum import MesMomentum


class PlantedHistory(MesMomentum):
    parameters: ClassVar[dict[str, Any]] = {**MesMomentum.parameters, "sleeptime": "30M", "rows_per_iteration": 15}

    def initialize(self) -> None:
        super().initialize()
        self.rows: list[pd.DataFrame] = []

    def on_trading_iteration(self) -> None:
        self.history = self.rebuild_history()
        super().on_trading_iteration()

    def rebuild_history(self) -> pd.DataFrame:
        """The planted slow path: every iteration concatenates and sorts everything seen so far."""
        now = len(self.rows)
        self.rows.extend(pd.DataFrame({"value": [float(now + i)]}, index=[now + i])
                         for i in range(int(self.parameters["rows_per_iteration"])))
        return pd.concat(self.rows).sort_index()  # PLANTED


def planted_line() -> int:
    """The line of this file that holds the planted work (found by its marker, so edits above it do not break the tests)."""
    lines, first = inspect.getsourcelines(PlantedHistory.rebuild_history)
    return first + next(i for i, text in enumerate(lines) if text.rstrip().endswith("# PLANTED"))


class LumiBotHeavy(MesMomentum):
    parameters: ClassVar[dict[str, Any]] = {**MesMomentum.parameters, "sleeptime": "30M", "lookups": 4}

    def on_trading_iteration(self) -> None:
        for _ in range(int(self.parameters["lookups"])):
            self.ask_lumibot()
        super().on_trading_iteration()

    def ask_lumibot(self) -> None:
        self.get_historical_prices(self.asset, 400, "minute")
