"""The shipped example plus one thing real strategies do: fetch something from the internet."""

from __future__ import annotations

import requests

from strategies.mes_momentum import MesMomentum


class ReachesOut(MesMomentum):
    def initialize(self) -> None:
        super().initialize()
        try:
            requests.get("https://query1.finance.yahoo.com/v8/finance/chart/SPY", timeout=5)
        except requests.RequestException:
            pass  # a user's strategy typically shrugs this off; the profiler must still tell them
