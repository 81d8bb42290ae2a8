"""Which functions count as offenders: the rule the Phase 0 summary and the report share.

yappi's cumulative column is topped by frames that contain the whole backtest or that only
wait for another thread: they are 100 % of every run and say nothing about where the time
goes. They are left out of every offender table by the explicit list below, which the
report prints so a reader can see exactly what was dropped and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

from common.profiles import FuncRow, module_tail, top


@dataclass(frozen=True)
class Wrapper:
    """Functions of ``module`` (a glob on the portable module path) named like one of ``names`` (globs)."""

    module: str
    names: tuple[str, ...]
    why: str

    def matches(self, module_tail: str, name: str) -> bool:
        return fnmatchcase(module_tail, self.module) and any(fnmatchcase(name, n) for n in self.names)


_EXECUTOR = "lumibot/strategies/strategy_executor.py"

WRAPPERS: tuple[Wrapper, ...] = (
    Wrapper("worker/backtest.py", ("run",), "the profiling worker's own call into LumiBot: the whole backtest"),
    Wrapper(
        "worker/datasources.py",
        ("*get_historical_prices",),
        "the worker's bar counter around the data source's own get_historical_prices (which stays listed)",
    ),
    Wrapper(
        "worker/progress.py",
        ("*counted_iteration",),
        "the worker's progress counter around the strategy's on_trading_iteration (which stays listed)",
    ),
    Wrapper("*", ("*run_backtest",), "LumiBot's entry point: the whole backtest"),
    Wrapper(
        "threading.py",
        ("*",),
        "stdlib thread plumbing (Thread.join, Condition.wait, Event.wait, lock waits): the main thread "
        "blocking while the strategy thread works, so its time mirrors that thread's",
    ),
    Wrapper("queue.py", ("*",), "stdlib Queue.get/put: LumiBot's helper threads idling until an event arrives"),
    Wrapper("*", ("*.acquire", "acquire"), "lock acquires: time spent waiting, not working"),
    Wrapper(
        "lumibot/traders/trader.py",
        ("Trader.run_all", "Trader._join_pool"),
        "the main thread starting the strategy thread and joining it",
    ),
    Wrapper(
        "<frozen importlib.*>",
        (
            "_find_and_load_unlocked",
            "_load_unlocked",
            "*.exec_module",
            "_call_with_frames_removed",
            "_handle_fromlist",
            "_gcd_import",
        ),
        "import machinery nested in `_find_and_load`, which stays as the one line for modules imported mid-backtest",
    ),
    Wrapper(_EXECUTOR, ("StrategyExecutor.join",), "the main thread joining the strategy thread"),
    Wrapper(_EXECUTOR, ("run",), "the strategy thread's body: equal to that thread's wall time (see the thread table)"),
    Wrapper(
        _EXECUTOR,
        ("StrategyExecutor._run_trading_session", "StrategyExecutor._run_backtesting_loop"),
        "the backtest loop: everything the strategy thread does",
    ),
    Wrapper(
        _EXECUTOR,
        ("StrategyExecutor.func_output",),
        "LumiBot's decorator around each lifecycle call; its time is the wrapped call's",
    ),
)


def is_wrapper(row: FuncRow) -> bool:
    return _is_wrapper(row.module, row.name)


def wrapped_function(module: str, name: str) -> bool:
    """:func:`is_wrapper` for a function known by its module path and name."""
    return _is_wrapper(module, name)


@lru_cache(maxsize=65536)
def _is_wrapper(module: str, name: str) -> bool:
    """Cached per (module, name): every run repeats the same few thousand functions."""
    tail = module_tail(module)
    return any(w.matches(tail, name) for w in WRAPPERS)


def offenders(rows: list[FuncRow], by: str = "cumulative", n: int = 10) -> list[FuncRow]:
    """The ``n`` heaviest functions by ``cumulative`` or ``self_time``, wrappers left out."""
    return top([r for r in rows if not is_wrapper(r)], by, n)
