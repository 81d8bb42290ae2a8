"""Whose code is it: the one rule that sorts a frame, a stack or a function into an owner class.

A flat function table is not an answer; "whose time (or memory) is it" is. The report's findings,
its per-window owner table and the memory pass all ask this question, so it is answered once,
here, from nothing but a frame's file path and function name (what yappi, py-spy and memray all
record). The classes, in the order a reader acts on them:

- ``strategy``: the user's own code: any file outside site-packages, the standard library and this
  profiler's own packages (a strategy's helper modules count as the strategy's);
- ``lumibot``: LumiBot's engine (broker, executor, data sources, entities), minus its output phase;
- ``data layer``: pandas, polars, numpy, pyarrow and the calendar and time-zone libraries under them;
- ``I/O and network``: sockets, HTTP, TLS, the DataBento client, file system and compression;
- ``logging and output``: the ``logging`` package and everything that writes LumiBot's files and
  charts (stats, tearsheet, indicators, plots, its logger);
- ``profiler``: this tool's own frames (the worker, its counters and watchdog), never the user's.

A frame from generic code (the standard library outside the groups above, import machinery,
an unlisted third-party package) has no owner of its own: ``owner_of_stack`` gives its time to
the nearest caller that has one, so ``copy.deepcopy`` called by LumiBot is LumiBot's time and
``json.dumps`` called by the strategy is the strategy's. What no caller claims is ``other``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import lru_cache

from common.profiles import module_tail


class Owner(StrEnum):
    STRATEGY = "strategy"
    LUMIBOT = "lumibot"
    DATA = "data layer"
    IO = "I/O and network"
    OUTPUT = "logging and output"
    PROFILER = "profiler"
    OTHER = "other"


#: The verdict word for a window whose largest owner holds at least ``BOUND_SHARE`` of the wall.
VERDICTS: Mapping[Owner, str] = {
    Owner.STRATEGY: "strategy-bound",
    Owner.LUMIBOT: "LumiBot-bound",
    Owner.DATA: "data-layer-bound",
    Owner.IO: "I/O-bound",
    Owner.OUTPUT: "output-bound",
}
BOUND_SHARE = 0.40

#: This profiler's own top-level packages (a repo checkout or an installed wheel alike).
PROFILER_PACKAGES = frozenset({"worker", "supervisor", "common", "gateway", "report"})

_DATA = frozenset(
    {
        "pandas", "polars", "numpy", "pyarrow", "scipy", "numba", "numexpr", "bottleneck",
        "pandas_market_calendars", "exchange_calendars", "pytz", "dateutil", "tzdata", "zoneinfo",
        "pandas_ta", "pandas_ta_classic", "talib", "_strptime.py", "_pydatetime.py", "datetime.py",
    }
)  # fmt: skip
_IO = frozenset(
    {
        "socket.py", "ssl.py", "selectors.py", "http", "urllib", "urllib3", "requests", "httpx",
        "httpcore", "aiohttp", "asyncio", "curl_cffi", "yfinance", "databento", "databento_dbn",
        "zstandard", "fsspec", "shutil.py", "tempfile.py", "gzip.py", "zipfile", "zipfile.py",
        "pathlib.py", "glob.py", "os.py", "genericpath.py", "posixpath.py", "io.py", "_pyio.py",
        "certifi", "idna", "charset_normalizer", "websocket", "websockets", "filelock",
    }
)  # fmt: skip
_OUTPUT = frozenset(
    {
        "logging", "plotly", "matplotlib", "quantstats", "quantstats_lumi", "kaleido", "jinja2",
        "tabulate", "tqdm", "PIL", "webbrowser.py", "seaborn",
    }
)  # fmt: skip

#: LumiBot's output phase, by file (a glob on the module tail) and function name (globs).
_LUMIBOT_OUTPUT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lumibot/tools/indicators.py", ("*",)),
    ("lumibot/tools/lumibot_logger.py", ("*",)),
    (
        "lumibot/strategies/_strategy.py",
        (
            "*_dump_stats", "*backtest_analysis", "*tearsheet*", "*plot_*", "*write_parquet_with_logging",
            "*create_tearsheet", "*_export_*", "*write_*",
        ),
    ),
    ("lumibot/brokers/broker.py", ("*write_parquet_with_logging",)),
)  # fmt: skip


_STDLIB = re.compile(r"/lib/python\d+\.\d+/")


def _top(tail: str) -> str:
    """The first part of a module tail: the package (``pandas``) or the single-file module (``socket.py``)."""
    return tail.split("/", 1)[0]


@lru_cache(maxsize=65536)
def owner_of_frame(file: str, name: str = "") -> Owner | None:
    """The owner class of one frame, or None when the frame is generic code that its caller owns.

    ``file`` is the path a profiler recorded (absolute, or yappi's ``~`` / ``<frozen ...>`` for
    built-ins and import machinery); ``name`` the function's (qualified) name.
    """
    normal = file.replace("\\", "/")
    if not normal or normal.startswith(("<", "~")):
        return None  # built-ins, <frozen importlib._bootstrap>, <string>: whoever called them
    tail = module_tail(normal)
    top = _top(tail)
    in_site = "site-packages/" in normal or "dist-packages/" in normal
    in_stdlib = not in_site and _STDLIB.search(normal) is not None
    if top in PROFILER_PACKAGES and not in_stdlib:
        return Owner.PROFILER
    if top == "lumibot":
        short = name.rsplit(".", 1)[-1]
        for pattern, names in _LUMIBOT_OUTPUT:
            if fnmatchcase(tail, pattern) and any(fnmatchcase(name, n) or fnmatchcase(short, n) for n in names):
                return Owner.OUTPUT
        return Owner.LUMIBOT
    if top in _DATA:
        return Owner.DATA
    if top in _IO:
        return Owner.IO
    if top in _OUTPUT:
        return Owner.OUTPUT
    if in_site or in_stdlib:
        return None  # generic library code: its caller's
    return Owner.STRATEGY


def owner_of_stack(frames: Sequence[tuple[str, str]]) -> Owner:
    """The owner of a sample whose stack is ``frames`` (``(file, name)``, outermost first).

    The innermost frame that has an owner decides: time inside pandas is the data layer's
    whoever called it, while time inside ``copy`` or ``json`` is its caller's.
    """
    for file, name in reversed(frames):
        owner = owner_of_frame(file, name)
        if owner is not None:
            return owner
    return Owner.OTHER


def shares(seconds: Mapping[Owner, float], total: float) -> dict[Owner, float]:
    """Each owner's share of ``total`` (0 when ``total`` is not positive)."""
    return {owner: (value / total if total > 0 else 0.0) for owner, value in seconds.items()}


def verdict(seconds: Mapping[Owner, float]) -> str:
    """``strategy-bound`` etc. when the largest owner holds at least 40 % of the time, else ``mixed``.

    The profiler's own share and ``other`` never make a verdict: they are not the user's to fix.
    """
    total = sum(seconds.values())
    candidates: Iterable[tuple[Owner, float]] = ((o, s) for o, s in seconds.items() if o in VERDICTS)
    best = max(candidates, key=lambda item: item[1], default=None)
    if best is None or total <= 0 or best[1] / total < BOUND_SHARE:
        return "mixed"
    return VERDICTS[best[0]]
