"""CME futures contract specifications and raw-symbol parsing.

LumiBot's ``futures_roll`` asks DataBento for raw symbols such as ``MESZ4`` (one year digit);
other code paths may use ``MESZ24`` or ``MESZ2024``. All three spellings of one contract must map
to the same instrument, the same synthetic prices and the same definition, so everything keyed
on a contract uses :attr:`Contract.canonical`, never the spelling the client sent.
Stdlib only.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

PRICE_SCALE = 1_000_000_000
"""DBN fixed-point scale: prices are integers times 1e9."""

MONTH_CODES = "FGHJKMNQUVXZ"
"""CME month codes, January to December."""


@dataclass(frozen=True)
class RootSpec:
    """Contract terms of one futures root, close enough to the real ones to look right."""

    base_price: float
    tick: float
    multiplier: float
    exchange: str
    volume: int
    """Typical contracts traded in an active minute; synthetic volume scales from it."""


ROOTS: dict[str, RootSpec] = {
    "ES": RootSpec(5500.0, 0.25, 50.0, "XCME", 1500),
    "MES": RootSpec(5500.0, 0.25, 5.0, "XCME", 800),
    "NQ": RootSpec(19000.0, 0.25, 20.0, "XCME", 600),
    "MNQ": RootSpec(19000.0, 0.25, 2.0, "XCME", 1200),
    "RTY": RootSpec(2100.0, 0.1, 50.0, "XCME", 150),
    "M2K": RootSpec(2100.0, 0.1, 5.0, "XCME", 120),
    "YM": RootSpec(40000.0, 1.0, 5.0, "XCBT", 150),
    "MYM": RootSpec(40000.0, 1.0, 0.5, "XCBT", 150),
    "CL": RootSpec(75.0, 0.01, 1000.0, "XNYM", 900),
    "MCL": RootSpec(75.0, 0.01, 100.0, "XNYM", 150),
    "NG": RootSpec(3.0, 0.001, 10000.0, "XNYM", 300),
    "GC": RootSpec(2400.0, 0.1, 100.0, "XCEC", 400),
    "MGC": RootSpec(2400.0, 0.1, 10.0, "XCEC", 100),
    "SI": RootSpec(30.0, 0.005, 5000.0, "XCEC", 100),
}

DEFAULT_SPEC = RootSpec(100.0, 0.01, 1.0, "XCME", 100)
"""Terms for a root this table does not know: a plausible, clearly generic contract."""

_SYMBOL = re.compile(rf"^([A-Z0-9]+?)([{MONTH_CODES}])(\d|\d\d|\d{{4}})$")


@dataclass(frozen=True)
class Contract:
    """One futures contract as the client named it, resolved to a canonical identity."""

    raw_symbol: str
    root: str
    year: int
    month: int

    @property
    def spec(self) -> RootSpec:
        """The root's terms (a default for unknown roots)."""
        return ROOTS.get(self.root, DEFAULT_SPEC)

    @property
    def canonical(self) -> str:
        """A spelling-independent key, e.g. ``MES:2024-12`` for MESZ4, MESZ24 and MESZ2024."""
        return f"{self.root}:{self.year:04d}-{self.month:02d}"

    @property
    def instrument_id(self) -> int:
        """A stable non-zero 31-bit id derived from :attr:`canonical` (never from a seed, so
        ids agree between gateway runs)."""
        digest = hashlib.blake2b(self.canonical.encode(), digest_size=4).digest()
        return (int.from_bytes(digest, "little") & 0x7FFFFFFF) or 1

    @property
    def expiration_ns(self) -> int:
        """Expiry at 13:30 UTC on the third Friday of the contract month (the equity-index
        rule; used for every root because rough is good enough here)."""
        weeks = calendar.Calendar().monthdatescalendar(self.year, self.month)
        fridays = [d for w in weeks for d in w if d.weekday() == 4 and d.month == self.month]
        third = fridays[2]
        when = datetime(third.year, third.month, third.day, 13, 30, tzinfo=UTC)
        return int(when.timestamp()) * PRICE_SCALE


def _resolve_year(digits: str, reference_year: int) -> int:
    """Turn a 1, 2 or 4 digit year into a full year.

    One digit is ambiguous: pick the year in ``[reference-2, reference+7]`` that ends in it, so
    contracts listed a little before or well after the request date both resolve sensibly.
    """
    if len(digits) == 4:
        return int(digits)
    if len(digits) == 2:
        return 2000 + int(digits)
    d = int(digits)
    low = reference_year - 2
    return low + ((d - low) % 10)


def parse_raw_symbol(raw_symbol: str, reference_year: int) -> Contract | None:
    """Parse ``ROOT + month code + year`` (e.g. ``MESZ4``, ``M2KH25``); ``None`` if it is not a
    futures contract symbol. ``reference_year`` disambiguates one-digit years."""
    match = _SYMBOL.match(raw_symbol.strip().upper())
    if match is None:
        return None
    root, code, digits = match.groups()
    year = _resolve_year(digits, reference_year)
    if not 1990 <= year <= 2100:
        return None
    return Contract(raw_symbol.strip(), root, year, MONTH_CODES.index(code) + 1)
