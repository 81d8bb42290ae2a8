"""Whether two runs did the same backtest: the check before any timing comparison.

The worker records each run's fingerprint (``worker/fingerprint.py``); the supervisor checks
that every pass of a window matches, and ``report --compare`` checks a window against the
other plan's. A timing ratio between backtests that traded differently is not like for like.
"""

from __future__ import annotations

from typing import Any

#: Fields that must be equal between two runs for their timings to be comparable.
CANONICAL_EVENTS_HASH = "trade_events_canonical_sha256"
FINGERPRINT_FIELDS = ("portfolio_value", "orders", "fills", "iterations", CANONICAL_EVENTS_HASH)
#: The trade-events file's raw bytes: compared only when a side predates the canonical hash (a
#: result recorded before it), since LumiBot's random child-order ids make identical runs differ.
RAW_EVENTS_HASH = "trade_events_sha256"


def differences(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """One phrase per field that differs (``orders 4 → 6``); empty when they match.

    A missing fingerprint on either side is a difference too: it cannot be shown to match.
    Trade events compare by their canonical hash (order ids keyed by first appearance, see
    ``worker/fingerprint.py``); a fingerprint recorded before that hash existed has only the
    raw file hash, and then both sides' raw hashes are compared, as they were then.
    """
    if not before or not after:
        return ["fingerprint missing on " + ("both sides" if not before and not after else "one side")]
    found = []
    fields: tuple[str, ...] = FINGERPRINT_FIELDS
    if before.get(CANONICAL_EVENTS_HASH) is None or after.get(CANONICAL_EVENTS_HASH) is None:
        fields = tuple(RAW_EVENTS_HASH if f == CANONICAL_EVENTS_HASH else f for f in FINGERPRINT_FIELDS)
    for name in fields:
        old, new = before.get(name), after.get(name)
        if old != new:
            show = (lambda v: str(v)[:12]) if name.endswith("sha256") else str
            found.append(f"{name} {show(old)} → {show(new)}")
    return found
