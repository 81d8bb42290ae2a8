"""Reading the per-run profile CSVs the worker writes (``<id>.funcs.wall.csv``, ``<id>.threads.wall.csv``).

Stdlib only: the report, the Phase 0 summary and the comparison all read profiles through
here, so the supervisor never needs pandas to understand a result.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class FuncRow:
    """One function's wall-clock totals in one run (merged across threads, as yappi does)."""

    key: str
    name: str
    module: str
    lineno: int
    ncall: int
    cumulative: float
    self_time: float

    @property
    def short(self) -> str:
        """``file.py:line name``: enough to find the function, short enough for a table."""
        return f"{file_name(self.module)}:{self.lineno} {self.name}"


@dataclass(frozen=True)
class ThreadRow:
    name: str
    ident: int
    wall: float
    top_self_function: str
    top_self_seconds: float | None


@lru_cache(maxsize=8192)
def file_name(module: str) -> str:
    """The file's name (cached: a report formats the same few thousand modules many times)."""
    return Path(module).name


def read_funcs(path: Path) -> list[FuncRow]:
    """Rows of a functions CSV, in file order (by cumulative time, descending)."""
    rows: list[FuncRow] = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append(
                FuncRow(
                    key=f"{row['module']}:{row['lineno']}:{row['name']}",
                    name=row["name"],
                    module=row["module"],
                    lineno=int(row["lineno"]),
                    ncall=int(row["ncall"]),
                    cumulative=float(row["cumulative_seconds"]),
                    self_time=float(row["self_seconds"]),
                )
            )
    return rows


_MODULE_TAILS = (re.compile(r"(?:site|dist)-packages/(.+)$"), re.compile(r"lib/python\d+\.\d+/(.+)$"))


@lru_cache(maxsize=8192)
def module_tail(module: str) -> str:
    """The part of a module path that is the same on every machine and checkout.

    ``.../site-packages/lumibot/x.py`` -> ``lumibot/x.py``; stdlib -> ``threading.py``;
    project code -> its last two path parts (``worker/backtest.py``).
    """
    normal = module.replace("\\", "/")
    for pattern in _MODULE_TAILS:
        found = pattern.search(normal)
        if found:
            return found.group(1)
    return "/".join(Path(normal).parts[-2:])


def portable(rows: list[FuncRow]) -> list[FuncRow]:
    """The same rows keyed so that two result sets from different checkouts or edited files match.

    The key is ``module tail:name``, plus ``#n`` for the n-th same-named function of that file
    (by line); line numbers are left out because an edit above a function moves it.
    """
    seen: dict[str, int] = {}
    keys: dict[int, str] = {}
    for row in sorted(rows, key=lambda r: (r.module, r.name, r.lineno)):
        base = f"{module_tail(row.module)}:{row.name}"
        index = seen.get(base, 0)
        seen[base] = index + 1
        keys[id(row)] = base if index == 0 else f"{base}#{index}"
    return [FuncRow(keys[id(row)], row.name, row.module, row.lineno, row.ncall, row.cumulative, row.self_time)
            for row in rows]  # the constructor, not dataclasses.replace: a third of the time on 20,000 rows


def read_threads(path: Path) -> list[ThreadRow]:
    with path.open(newline="") as fh:
        return [
            ThreadRow(
                name=row["name"],
                ident=int(row["id"]),
                wall=float(row["wall_seconds"]),
                top_self_function=row["top_self_function"],
                top_self_seconds=float(row["top_self_seconds"]) if row["top_self_seconds"] else None,
            )
            for row in csv.DictReader(fh)
        ]


def top(rows: list[FuncRow], by: str = "cumulative", n: int = 10) -> list[FuncRow]:
    """The ``n`` heaviest functions by ``cumulative`` or ``self_time``."""
    return sorted(rows, key=lambda r: getattr(r, by), reverse=True)[:n]


@dataclass(frozen=True)
class FuncDelta:
    """One function's cumulative time in two runs; ``delta`` = after - before."""

    key: str
    short: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        return self.after - self.before


def diff(before: list[FuncRow], after: list[FuncRow], n: int = 15) -> list[FuncDelta]:
    """Functions whose cumulative time dropped the most from ``before`` to ``after``.

    For Phase 0 (before = cold, after = warm) these are the download and decode paths a
    warm cache saves.
    """
    old = {r.key: r for r in before}
    new = {r.key: r for r in after}
    deltas = [
        FuncDelta(
            key=key,
            short=(new.get(key) or old[key]).short,
            before=old[key].cumulative if key in old else 0.0,
            after=new[key].cumulative if key in new else 0.0,
        )
        for key in old.keys() | new.keys()
    ]
    return sorted(deltas, key=lambda d: d.delta)[:n]
