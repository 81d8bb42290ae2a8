"""Markdown building blocks and the one way each kind of number is printed.

Every table formats through these helpers so a number in the report can be checked against
its source by formatting the source the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def seconds(value: Any, places: int = 2) -> str:
    """Seconds, or an en dash when the value is unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:.{places}f}"


def wall(value: Any) -> str:
    """Run-level wall and CPU seconds."""
    return seconds(value, 2)


def wall_spread(passes: Sequence[float], value: Any) -> str:
    """A run's wall seconds: ``value`` (the median) and, with repeats, ``(min–max, n=N)`` of its passes."""
    if len(passes) < 2:
        return wall(value)
    return f"{wall(value)} ({wall(min(passes))}–{wall(max(passes))}, n={len(passes)})"


def func_seconds(value: Any) -> str:
    """Per-function seconds: three places, since many self times are well under 0.1 s."""
    return seconds(value, 3)


def percent(part: float, whole: float | None) -> str:
    if not whole:
        return "–"
    return f"{100.0 * part / whole:.1f} %"


def ratio(after: float | None, before: float | None) -> str:
    if after is None or before is None:
        return "–"
    if before == 0:
        return "new" if after else "1.00"
    return f"{after / before:.2f}"


def plain(value: Any) -> str:
    return "–" if value is None or value == "" else str(value)


def code(text: str) -> str:
    """Inline code: function names hold ``<genexpr>`` and ``__init__``, which markdown would eat."""
    return f"`{text}`"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A GitHub table; columns listed in ``right`` (numbers) are right-aligned."""
    aligns = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = [_row(headers), _row(aligns)]
    lines.extend(_row(r) for r in rows)
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def listing(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def rate(value: float) -> str:
    """A per-iteration rate: whole numbers from 100 up, two places from 1, three significant digits below."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
