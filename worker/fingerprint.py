"""What the backtest did, in a few numbers a timing comparison can be checked against.

Two passes of the same window are only comparable if the backtest did the same thing:
LumiBot's maintainers compare timings only between runs with identical results. The
fingerprint is the final portfolio value, the number of orders and fills, the iteration
count and a sha256 of LumiBot's trade-events file (``logs/*_trade_events.csv``).
``common/fingerprints.py`` compares them.

The hash must not depend on anything LumiBot draws at random. Every column of the file
describes the trade (backtest time, symbol, side, type, status, price, quantity, costs,
asset) except the order ids: LumiBot numbers the orders a strategy creates (``bt_1``, ...)
but names the child orders of bracket, OCO and OTO orders with ``uuid4().hex``. So the
canonical hash (``trade_events_canonical_sha256``) replaces every order id by its order of
first appearance (``order1``, ``order2``, ...), the same key wherever the id recurs (a
parent id in an audit column, a leg list), and keeps every other byte. Rows stay in the
order LumiBot wrote them: its backtesting broker dispatches every order event
synchronously, so simultaneous events come out in the same order every run (and a
different order is a different backtest). The file's name (``<Strategy>_<wall-clock
minute>_<random suffix>_trade_events.csv``) is never hashed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path
from typing import Any

#: The column LumiBot writes each order's id into.
ID_COLUMN = "identifier"
#: A uuid4 as LumiBot writes it elsewhere in the row: 32 hex digits (order ids, e.g. in
#: ``audit.parent.identifier`` or a JSON leg list) or dashed (agent decision ids).
_UUID4 = re.compile(
    r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{12}4[0-9a-fA-F]{3}[89abAB][0-9a-fA-F]{15}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12})(?![0-9a-fA-F])"
)
_SHORTEST_UUID = 32


def trade_events_file(work_dir: Path) -> Path | None:
    found = sorted((work_dir / "logs").glob("*_trade_events.csv"))
    return found[0] if found else None


def canonical_trade_events(text: str) -> list[list[str]]:
    """The file's rows (header first) with every order id replaced by its order of first appearance.

    A cell of the ``identifier`` column is an id whatever its form (``bt_3``, a uuid4, a
    broker's id); elsewhere a uuid4 inside a cell is. One id gets one key everywhere.
    """
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return []
    keys: dict[str, str] = {}

    def key(value: str) -> str:
        return keys.setdefault(value, f"order{len(keys) + 1}")

    def uuid_key(match: re.Match[str]) -> str:
        return key(match.group(0))

    header = rows[0]
    id_at = header.index(ID_COLUMN) if ID_COLUMN in header else -1
    canonical = [header]
    for row in rows[1:]:
        canonical.append([
            key(cell) if at == id_at and cell
            else _UUID4.sub(uuid_key, cell) if len(cell) >= _SHORTEST_UUID else cell
            for at, cell in enumerate(row)
        ])
    return canonical


def canonical_sha256(text: str) -> str:
    """sha256 of :func:`canonical_trade_events`, written back as CSV (one ``\\n`` per row)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(canonical_trade_events(text))
    return hashlib.sha256(out.getvalue().encode("utf-8")).hexdigest()


def fingerprint(strategy: Any, work_dir: Path, iterations: int | None) -> dict[str, Any]:
    """The run's fingerprint; a part that could not be read is ``None`` and ``missing`` says why."""
    missing: list[str] = []
    value: float | None = None
    try:
        value = round(float(strategy.portfolio_value), 6)
    except (AttributeError, TypeError, ValueError) as exc:
        missing.append(f"portfolio value unreadable ({type(exc).__name__})")
    events = trade_events_file(work_dir)
    orders = fills = None
    digest = canonical = None
    if events is None:
        missing.append("LumiBot wrote no logs/*_trade_events.csv")
    else:
        raw = events.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        text = raw.decode("utf-8", "replace")
        canonical = canonical_sha256(text)
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        orders = len({r.get(ID_COLUMN) for r in rows if r.get("event_kind", "trade") == "trade" and r.get(ID_COLUMN)})
        fills = sum(1 for r in rows if r.get("status") in ("fill", "partial_fill"))
    if iterations is None:
        missing.append("iteration count unknown")
    return {
        "portfolio_value": value,
        "orders": orders,
        "fills": fills,
        "iterations": iterations,
        "trade_events_canonical_sha256": canonical,
        "trade_events_sha256": digest,
        "missing": missing,
    }
