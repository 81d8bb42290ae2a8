"""The example strategy with a deliberate slowdown, for the compare tests: ``sleep`` seconds per iteration.

Sleeping changes nothing the backtest does (same bars, same orders, same fingerprint), only
how long it takes: the one difference ``report --compare`` must call ``slower``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from strategies.mes_momentum import MesMomentum


class SlowedMes(MesMomentum):
    parameters: ClassVar[dict[str, Any]] = {**MesMomentum.parameters, "sleep": 0.0}

    def on_trading_iteration(self) -> None:
        time.sleep(float(self.parameters.get("sleep", 0.0)))
        super().on_trading_iteration()
