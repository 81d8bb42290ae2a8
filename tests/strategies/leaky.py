"""Two strategies with a known memory cost, for the memory-pass tests: one keeps what it builds, one frees it.

:class:`KeepsFrames` builds a frame of ``rows`` rows every iteration and keeps every one of them in a
growing list on one line of its own ``remember`` (:func:`planted_line`): memory that grows with the
window and is all still held when the backtest ends. The memory findings must name that function,
this file, that line, the owner class ``strategy`` and growth with the window.

:class:`FreesFrames` builds the same frame on the same kind of line every iteration but only reads
it: as much allocated per iteration, nothing kept. It must never be called retained.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from strategies.mes_momentum import MesMomentum


class KeepsFrames(MesMomentum):
    parameters: ClassVar[dict[str, Any]] = {**MesMomentum.parameters, "sleeptime": "30M", "rows": 40_000}

    def initialize(self) -> None:
        super().initialize()
        self.kept: list[pd.DataFrame] = []

    def on_trading_iteration(self) -> None:
        self.remember(len(self.kept))
        super().on_trading_iteration()

    def remember(self, step: int) -> None:
        """The planted leak: every frame built is appended to a list nobody ever empties."""
        rows = int(self.parameters["rows"])
        self.kept.append(pd.DataFrame({"step": np.full(rows, step), "value": np.arange(rows, dtype=float)}))  # PLANTED


class FreesFrames(MesMomentum):
    parameters: ClassVar[dict[str, Any]] = {**MesMomentum.parameters, "sleeptime": "30M", "rows": 40_000}

    def initialize(self) -> None:
        super().initialize()
        self.total = 0.0

    def on_trading_iteration(self) -> None:
        self.glance(0)
        super().on_trading_iteration()

    def glance(self, step: int) -> None:
        """As much allocated per iteration as :meth:`KeepsFrames.remember`, dropped at once."""
        rows = int(self.parameters["rows"])
        frame = pd.DataFrame({"step": np.full(rows, step), "value": np.arange(rows, dtype=float)})  # PLANTED
        self.total += float(frame["value"].iloc[-1])


def planted_line(method: Any = KeepsFrames.remember) -> int:
    """The line of ``method`` marked ``# PLANTED`` (found by its marker, so edits above it do not break the tests)."""
    lines, first = inspect.getsourcelines(method)
    return first + next(i for i, text in enumerate(lines) if text.rstrip().endswith("# PLANTED"))
