"""Parsing of the ``start``/``end`` values DataBento accepts, to UTC nanoseconds.

The databento client forwards whatever the caller gave: ISO datetimes with or without a zone
(LumiBot strips the zone of New York wall-clock times; DataBento then reads them as UTC, and
so do we), bare dates, nanosecond integers, and pandas strings with nine fractional digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

NS = 1_000_000_000
_FRACTION = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)\.(\d+)(.*)$")


@dataclass(frozen=True)
class Timestamp:
    """A parsed time: nanoseconds since the epoch, and whether it was a bare date (which makes
    a missing ``end`` default to the next day, as DataBento forward-fills by resolution)."""

    ns: int
    date_only: bool


def parse_timestamp(text: str) -> Timestamp:
    """Parse ``text``; raise ``ValueError`` with a short reason if it is not a time."""
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    if value.isdigit():
        return Timestamp(int(value), False)
    if len(value) == 10:
        day = date.fromisoformat(value)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return Timestamp(int(midnight.timestamp()) * NS, True)
    extra_ns = 0
    match = _FRACTION.match(value)
    if match:
        base, fraction, zone = match.groups()
        extra_ns = int(fraction[:9].ljust(9, "0"))
        value = base + zone
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(moment.replace(microsecond=0).timestamp())
    return Timestamp(seconds * NS + extra_ns, False)


def format_timestamp(ns: int) -> str:
    """ISO 8601 with nanoseconds and ``Z``, the form DataBento's metadata endpoints answer."""
    seconds, rest = divmod(ns, NS)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"
