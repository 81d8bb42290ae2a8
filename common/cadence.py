"""How many iterations a sleeptime allows over a window, and the warning when a run far exceeds it.

LumiBot iterates on every bar when the data is finer than the strategy's sleeptime (a ``"1D"``
strategy on minute-only data iterates every minute): the run then costs hundreds of times what
the user meant, and its profile is of the wrong run. The supervisor writes the warning into the
result's notes and the report repeats it per run.
"""

from __future__ import annotations

from datetime import date
from typing import Any

#: A run whose iterations exceed this multiple of what its sleeptime allows is flagged.
ITERATIONS_ABOVE_SLEEPTIME = 2.0


def iterations_expected_at_most(start: date, end: date, sleeptime_seconds: Any) -> int | None:
    """At most one iteration per sleeptime of calendar time from ``start`` to ``end`` (LumiBot stops there)."""
    if isinstance(sleeptime_seconds, bool) or not isinstance(sleeptime_seconds, int | float) or sleeptime_seconds <= 0:
        return None
    return int((end - start).total_seconds() // sleeptime_seconds) + 1


def iteration_warning(iterations: Any, expected: Any, sleeptime: Any) -> str | None:
    """One line when a run iterated far more often than its sleeptime implies, else None."""
    if not isinstance(iterations, int) or not isinstance(expected, int) or iterations <= ITERATIONS_ABOVE_SLEEPTIME * expected:
        return None
    return (f"{iterations} iterations, far above the at most {expected} that sleeptime {sleeptime!r} allows "
            f"over this window (LumiBot iterates on every bar when the data is finer than the sleeptime)")
