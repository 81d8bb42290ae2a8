"""Same trades, same fingerprint, whatever order ids LumiBot drew; a changed trade, a different one.

LumiBot names bracket and OCO child orders with ``uuid4().hex``, so two identical backtests
write trade-event files that differ in their ``identifier`` column. Two real strategies that
place such orders are profiled with the cross-check on (a yappi pass and an unprofiled pass of
the same window); their fingerprints must match. The hash's sensitivity is then checked on the
trade-events file that run really wrote, edited one field at a time.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load, short_run, supervise_together, write_plan
from worker.fingerprint import ID_COLUMN, canonical_sha256

CHILD_ORDER_STRATEGIES = {
    "bracket": "tests.strategies.child_orders:BracketOrders",
    "oco": "tests.strategies.child_orders:OcoOrders",
}
UUID_HEX = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def child_orders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Both strategies over two trading days, cross-checked; one supervisor each, run at the same time."""
    plans = {
        name: write_plan(tmp_path_factory.mktemp(f"fp-{name}"), [short_run(f"fp-{name}", "2024-09-03", "2024-09-05")],
                         {"strategy": strategy, "phase1_mode": "single", "cross_check": "sampled"})
        for name, strategy in CHILD_ORDER_STRATEGIES.items()
    }
    runs = {}
    for (name, plan), proc in zip(plans.items(), supervise_together(list(plans.values())), strict=True):
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs[name] = (plan, load(plan)["results"][f"fp-{name}"])
    return runs


def trade_events(plan: Path, result: dict[str, Any]) -> str:
    """The trade-events CSV the profiled pass's LumiBot wrote."""
    found = [p for p in result["lumibot_outputs"] if p.endswith("_trade_events.csv")]
    assert len(found) == 1, result["lumibot_outputs"]
    return (plan.parent / found[0]).read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHILD_ORDER_STRATEGIES))
def test_child_orders_fingerprint_alike_profiled_or_not(child_orders: dict[str, Any], name: str) -> None:
    plan, result = child_orders[name]
    assert result["status"] == "done" and result["cross_check"] == "sampled", result["notes"]
    profiled, unprofiled = result["backtest_outcome"], result["sampled_pass"]["outcome"]
    # The window really exercised random ids: child orders named by uuid, so the raw bytes differ.
    ids = {row[ID_COLUMN] for row in csv.DictReader(io.StringIO(trade_events(plan, result)))}
    assert sum(1 for i in ids if UUID_HEX.fullmatch(i)) >= 4 and any(i.startswith("bt_") for i in ids)
    assert profiled["orders"] >= 10 and profiled["fills"] >= 6
    assert profiled["trade_events_sha256"] != unprofiled["trade_events_sha256"]
    # ... and still the same backtest.
    assert result["sampled_outcome_matches"] is True, result["notes"]
    assert "differs" not in (result["notes"] or "")
    assert profiled["trade_events_canonical_sha256"] == unprofiled["trade_events_canonical_sha256"]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


Edit = Callable[[list[list[str]]], None]


def _set(column: str, value: Callable[[str], str]) -> Edit:
    """An edit of ``column`` in the first child-order fill (a uuid-named order)."""

    def edit(rows: list[list[str]]) -> None:
        header = rows[0]
        at, status, ident = header.index(column), header.index("status"), header.index(ID_COLUMN)
        row = next(r for r in rows[1:] if r[status] == "fill" and UUID_HEX.fullmatch(r[ident]))
        row[at] = value(row[at])

    return edit


def _swap_first_two_child_rows(rows: list[list[str]]) -> None:
    ident = rows[0].index(ID_COLUMN)
    first = next(i for i, r in enumerate(rows) if i and UUID_HEX.fullmatch(r[ident]))
    rows[first], rows[first + 1] = rows[first + 1], rows[first]


def _fill_names_its_sibling(rows: list[list[str]]) -> None:
    """The first child-order row now names the other child of its parent: a different order filled."""
    ident = rows[0].index(ID_COLUMN)
    children = [r for r in rows[1:] if UUID_HEX.fullmatch(r[ident])]
    children[0][ident] = children[1][ident]


CHANGED_TRADES: dict[str, Edit] = {
    "time": _set("time", lambda t: str(datetime.fromisoformat(t) + timedelta(minutes=1))),
    "price": _set("price", lambda p: str(float(p) + 0.25)),
    "quantity": _set("filled_quantity", lambda q: str(float(q) + 1)),
    "side": _set("side", lambda s: "buy" if s != "buy" else "sell"),
    "status": _set("status", lambda _s: "partial_fill"),
    "type": _set("type", lambda t: "stop" if t != "stop" else "limit"),
    "trade_cost": _set("trade_cost", lambda c: str(float(c or 0) + 1.5)),
    "row order": _swap_first_two_child_rows,
    "which order filled": _fill_names_its_sibling,
}


@pytest.mark.slow
def test_a_changed_trade_changes_the_hash_and_a_changed_id_does_not(child_orders: dict[str, Any]) -> None:
    plan, result = child_orders["oco"]
    text = trade_events(plan, result)
    rows = _rows(text)
    base = canonical_sha256(text)
    assert canonical_sha256(_text(rows)) == base  # writing the rows back is not itself a change

    for what, edit in CHANGED_TRADES.items():
        changed = [list(r) for r in rows]
        edit(changed)
        assert changed != rows, what
        assert canonical_sha256(_text(changed)) != base, f"a changed {what} kept the hash"

    # Other ids for the same orders, as another run draws them (counters renamed too): same hash.
    ident = rows[0].index(ID_COLUMN)
    renamed: dict[str, str] = {}
    redrawn = [rows[0]] + [
        [renamed.setdefault(c, uuid.uuid4().hex) if at == ident else c for at, c in enumerate(r)] for r in rows[1:]
    ]
    assert redrawn != rows and canonical_sha256(_text(redrawn)) == base
    assert base == result["backtest_outcome"]["trade_events_canonical_sha256"]  # what the worker recorded
