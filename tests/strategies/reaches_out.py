"""The shipped example plus one thing real strategies do: fetch something from the internet."""

from __future__ import annotations

import contextlib

import requests

from strategies.mes_momentum import MesMomentum


class ReachesOut(MesMomentum):
    def initialize(self) -> None:
        super().initialize()
        # A user's strategy typically shrugs a failed fetch off; the profiler must still tell them.
        with contextlib.suppress(requests.RequestException):
            requests.get("https://query1.finance.yahoo.com/v8/finance/chart/SPY", timeout=5)
