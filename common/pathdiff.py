"""Two profiles of the same window: a change of code path, or the same path run slower?

Wall seconds move with the machine's load; call counts do not. A function called a
different number of times in two passes ran a different code path (LumiBot with a warm
cache builds thousands of extra DataFrames, for instance); a function called the same
number of times but slower only shows the machine was busier. Phase 0 reports the two
apart so that the second is never mistaken for the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from common.profiles import FuncRow, module_tail

TOP = 15

#: Where a cold pass spends its first-time-data cost: the databento client's public API calls
#: (HTTP request and streaming the body; they never call each other) and the DBN decode into a
#: DataFrame. A warm pass has none of the downloads; these seconds are a small part of the run
#: and far less exposed to a busy machine than the whole run's wall time.
TRANSFER_PARTS = {
    "download": ("databento/historical/api/*", "*.[!_]*"),
    "decode": ("databento/common/dbnstore.py", "DBNStore.to_df"),
}


MIN_SLOWER_SECONDS = 0.001
"""A function listed as "same calls, slower" gained at least 1 ms of self time: below that the
rows are rounding (figures are kept to 0.1 ms) and yappi's own jitter."""


@dataclass(frozen=True)
class PathSplit:
    changed_calls: list[dict[str, Any]]
    same_calls: list[dict[str, Any]]


def _row(before: FuncRow | None, after: FuncRow | None) -> dict[str, Any]:
    some = after or before
    assert some is not None
    return {
        "function": some.short,
        "cold_calls": before.ncall if before else 0,
        "warm_calls": after.ncall if after else 0,
        "cold_seconds": round(before.cumulative, 4) if before else 0.0,
        "warm_seconds": round(after.cumulative, 4) if after else 0.0,
        "cold_self_seconds": round(before.self_time, 4) if before else 0.0,
        "warm_self_seconds": round(after.self_time, 4) if after else 0.0,
    }


def path_split(before: list[FuncRow], after: list[FuncRow], n: int = TOP) -> PathSplit:
    """Functions whose call counts differ (by how much their cumulative time moved), apart from
    functions with equal call counts that got slower (by how much their own, self time grew)."""
    old = {r.key: r for r in before}
    new = {r.key: r for r in after}

    def calls(row: FuncRow | None) -> int:
        return row.ncall if row else 0

    def moved(pair: tuple[FuncRow | None, FuncRow | None]) -> float:
        return abs((pair[1].cumulative if pair[1] else 0.0) - (pair[0].cumulative if pair[0] else 0.0))

    changed = [(old.get(k), new.get(k)) for k in old.keys() | new.keys() if calls(old.get(k)) != calls(new.get(k))]
    changed.sort(key=moved, reverse=True)
    same = [(old[k], new[k]) for k in old.keys() & new.keys() if calls(old[k]) == calls(new[k])]
    same = [(b, a) for b, a in same if a.self_time - b.self_time >= MIN_SLOWER_SECONDS]
    same.sort(key=lambda pair: pair[1].self_time - pair[0].self_time, reverse=True)
    return PathSplit([_row(b, a) for b, a in changed[:n]], [_row(b, a) for b, a in same[:n]])


def transfer_seconds(rows: list[FuncRow]) -> dict[str, Any]:
    """Seconds and calls in download and in decode functions (``TRANSFER_PARTS``)."""
    found: dict[str, Any] = {}
    for part, (module, name) in TRANSFER_PARTS.items():
        matching = [r for r in rows if fnmatchcase(module_tail(r.module), module) and fnmatchcase(r.name, name)]
        found[part] = {
            "seconds": round(sum(r.cumulative for r in matching), 4),
            "calls": sum(r.ncall for r in matching),
            "functions": sorted({r.short for r in matching}),
        }
    return found
