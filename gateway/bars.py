"""Deterministic synthetic OHLCV 1-minute bars for CME futures, as DBN-layout numpy records.

Why it is built this way:

* Every value is a pure function of (seed, contract, minute). Prices come from multi-scale
  "value noise" (hashed knots, smoothly interpolated) instead of a random walk, so the bar of a
  minute is the same whatever range was asked for: overlapping requests agree, and a cache built
  from one request matches a later one.
* Contracts of one root share the root's price path (plus a small per-contract basis), so a roll
  from one contract to the next looks like a real roll, not a jump to another market.
* Everything is vectorised: one month of minutes is a few numpy passes, and the result is a
  structured array whose bytes are exactly ``databento_dbn.OHLCVMsg`` records (56 bytes each).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gateway.contracts import PRICE_SCALE, Contract

RTYPE_OHLCV_1M = 0x21
"""``databento_dbn.RType.OHLCV_1M``."""

PUBLISHER_GLBX = 1
"""Publisher id of GLBX.MDP3.GLBX (CME Globex)."""

OHLCV_DTYPE = np.dtype(
    [
        ("length", "u1"),
        ("rtype", "u1"),
        ("publisher_id", "<u2"),
        ("instrument_id", "<u4"),
        ("ts_event", "<u8"),
        ("open", "<i8"),
        ("high", "<i8"),
        ("low", "<i8"),
        ("close", "<i8"),
        ("volume", "<u8"),
    ]
)
"""The OHLCVMsg layout: a 16-byte record header then five 8-byte fields, no padding."""

MINUTE_NS = 60 * 1_000_000_000
NEW_YORK = ZoneInfo("America/New_York")

# (period in minutes, relative amplitude) of the value-noise octaves; they sum to at most 19%.
_OCTAVES: tuple[tuple[int, float], ...] = (
    (525_600, 0.10),
    (43_200, 0.05),
    (7_200, 0.02),
    (1_440, 0.008),
    (240, 0.004),
    (60, 0.002),
    (15, 0.001),
    (1, 0.0003),
)

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


def stream_key(seed: int, *parts: str) -> int:
    """A 64-bit key for one independent random stream (stable across processes, unlike
    ``hash()``)."""
    text = "|".join((str(seed), *parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _splitmix(key: int, counter: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """Counter-based hash (splitmix64 finaliser): independent 64-bit values per counter."""
    with np.errstate(over="ignore"):
        z = counter.astype(np.uint64) * _GOLDEN + _U64(key)
        z = (z ^ (z >> _U64(30))) * _MIX1
        z = (z ^ (z >> _U64(27))) * _MIX2
        return z ^ (z >> _U64(31))


def _uniform(key: int, counter: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Uniform floats in [0, 1) keyed by (stream, counter)."""
    return (_splitmix(key, counter) >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _value_noise(key: int, minutes: npt.NDArray[np.int64], period: int) -> npt.NDArray[np.float64]:
    """Smooth noise in [-1, 1]: hashed knots every ``period`` minutes, smoothstep between.

    Only the knots the minutes touch are hashed (a month needs one knot of the yearly octave,
    not one per minute).
    """
    knot = minutes // period
    first = int(knot.min())
    table = _uniform(key, np.arange(first, int(knot.max()) + 2, dtype=np.int64)) * 2.0 - 1.0
    v0 = table[knot - first]
    v1 = table[knot - first + 1]
    frac = (minutes - knot * period).astype(np.float64) / period
    w = frac * frac * (3.0 - 2.0 * frac)
    return v0 + (v1 - v0) * w


def _relative_level(seed: int, contract: Contract, minutes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Relative price offset at the start of each minute: the root's shared path plus the
    contract's basis."""
    total = np.zeros(minutes.shape, dtype=np.float64)
    for index, (period, amplitude) in enumerate(_OCTAVES):
        key = stream_key(seed, "level", contract.root, str(index))
        total += amplitude * _value_noise(key, minutes, period)
    basis_key = stream_key(seed, "basis", contract.canonical)
    basis = (_uniform(basis_key, np.zeros(1, dtype=np.int64))[0] - 0.5) * 0.004
    return total + basis


def _ny_offset_minutes(first: int, last: int) -> npt.NDArray[np.int64]:
    """UTC offset of New York, in minutes, for each UTC hour from ``first`` to ``last`` minute.

    US DST changes happen on whole UTC hours, so an hourly table is exact and costs a few
    thousand zoneinfo calls a year at most.
    """
    h0, h1 = first // 60, last // 60
    offsets = np.empty(h1 - h0 + 1, dtype=np.int64)
    for i, hour in enumerate(range(h0, h1 + 1)):
        moment = datetime.fromtimestamp(hour * 3600, tz=UTC).astimezone(NEW_YORK)
        delta = moment.utcoffset()
        offsets[i] = int(delta.total_seconds()) // 60 if delta is not None else 0
    return offsets


def trading_minutes(start_ns: int, end_ns: int) -> npt.NDArray[np.int64]:
    """Minutes (since the epoch) whose bar opens in [start_ns, end_ns) while CME Globex trades.

    Rough CME hours: Sunday 18:00 to Friday 17:00 New York time, closed 17:00-18:00 each day.
    Holidays are ignored on purpose: rough hours are enough for a profiler's data.
    """
    first = -(-start_ns // MINUTE_NS)
    last = -(-end_ns // MINUTE_NS) - 1
    if last < first:
        return np.empty(0, dtype=np.int64)
    minutes = np.arange(first, last + 1, dtype=np.int64)
    local = minutes + _ny_offset_minutes(first, last)[(minutes // 60) - first // 60]
    minute_of_day = local % 1440
    weekday = (local // 1440 + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    closed = (minute_of_day >= 17 * 60) & (minute_of_day < 18 * 60)
    closed |= weekday == 5
    closed |= (weekday == 4) & (minute_of_day >= 17 * 60)
    closed |= (weekday == 6) & (minute_of_day < 18 * 60)
    return minutes[~closed]


def _regular_hours(minutes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """True for minutes in New York 09:30-16:00, when volume is much higher."""
    if minutes.size == 0:
        return np.zeros(0, dtype=bool)
    first, last = int(minutes[0]), int(minutes[-1])
    local = minutes + _ny_offset_minutes(first, last)[(minutes // 60) - first // 60]
    minute_of_day = local % 1440
    return (minute_of_day >= 9 * 60 + 30) & (minute_of_day < 16 * 60)


def ohlcv_bars(seed: int, contract: Contract, start_ns: int, end_ns: int) -> npt.NDArray[np.void]:
    """Synthetic 1-minute bars of ``contract`` for [start_ns, end_ns), as OHLCVMsg records.

    Bars stop at the contract's expiration, as real data does. Prices are tick-rounded integers
    times 1e9 with ``low <= min(open, close) <= max(open, close) <= high``; volume is positive.
    """
    end_ns = min(end_ns, contract.expiration_ns)
    minutes = trading_minutes(start_ns, end_ns) if end_ns > start_ns else np.empty(0, np.int64)
    out = np.zeros(minutes.size, dtype=OHLCV_DTYPE)
    if minutes.size == 0:
        return out
    spec = contract.spec
    tick_nanos = round(spec.tick * PRICE_SCALE)

    # Price level at every minute boundary of the span (closed minutes included, so that
    # open = level at the bar's start and close = level at its end are plain lookups).
    first = int(minutes[0])
    span = np.arange(first, int(minutes[-1]) + 2, dtype=np.int64)
    # 1 + x rather than exp(x): only exact IEEE adds and multiplies, so a minute's price cannot
    # depend on which SIMD lane (i.e. which requested range) computed it.
    ticks = np.rint((1.0 + _relative_level(seed, contract, span)) * (spec.base_price / spec.tick))
    ticks_open = ticks[minutes - first].astype(np.int64)
    ticks_close = ticks[minutes - first + 1].astype(np.int64)

    wick_key = stream_key(seed, "wick", contract.canonical)
    up = np.floor(_uniform(wick_key, minutes * 2) ** 2 * 4.0).astype(np.int64)
    down = np.floor(_uniform(wick_key, minutes * 2 + 1) ** 2 * 4.0).astype(np.int64)
    ticks_high = np.maximum(ticks_open, ticks_close) + up
    ticks_low = np.minimum(ticks_open, ticks_close) - down

    volume_key = stream_key(seed, "volume", contract.canonical)
    activity = np.where(_regular_hours(minutes), 1.0, 0.25)
    volume = np.floor(spec.volume * activity * (0.2 + 1.6 * _uniform(volume_key, minutes))) + 1

    out["length"] = OHLCV_DTYPE.itemsize // 4
    out["rtype"] = RTYPE_OHLCV_1M
    out["publisher_id"] = PUBLISHER_GLBX
    out["instrument_id"] = contract.instrument_id
    out["ts_event"] = minutes.astype(np.uint64) * np.uint64(MINUTE_NS)
    out["open"] = ticks_open * tick_nanos
    out["high"] = ticks_high * tick_nanos
    out["low"] = ticks_low * tick_nanos
    out["close"] = ticks_close * tick_nanos
    out["volume"] = volume.astype(np.uint64)
    return out


def merge_by_time(parts: list[npt.NDArray[np.void]]) -> npt.NDArray[np.void]:
    """Concatenate several contracts' bars ordered by ``ts_event`` (then instrument), as
    DataBento merges a multi-symbol request."""
    if not parts:
        return np.zeros(0, dtype=OHLCV_DTYPE)
    merged = np.concatenate(parts)
    order = np.lexsort((merged["instrument_id"], merged["ts_event"]))
    return merged[order]
