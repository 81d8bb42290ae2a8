"""A strategy that trades differently when yappi is watching: the cross-check must notice.

It is the example strategy plus one extra order on its first iteration, placed only while
yappi runs. The profiled and the unprofiled pass then disagree on their order count, which
the supervisor must flag in ``notes`` and the report (the run itself stays ``done``).
"""

from __future__ import annotations

import yappi

from strategies.mes_momentum import MesMomentum


class ProfileSensitive(MesMomentum):
    def on_trading_iteration(self) -> None:
        if yappi.is_running() and not getattr(self, "extra_order_sent", False):
            self.extra_order_sent = True
            self.submit_order(self.create_order(self.asset, 1, "buy"))
        super().on_trading_iteration()
