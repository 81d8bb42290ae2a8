"""Whose time, and at which site: an unprofiled window's py-spy samples sorted for the findings.

Input: py-spy's line-level collapsed stacks of the cross-check's unprofiled pass (every frame
names the line it was executing). Two questions are answered here, once per window, by the
supervisor right after the pass (the report then reads a small JSON instead of the stacks):

* **Whose time** (:func:`owner_table`): every counted sample goes to the owner class of its
  stack (:func:`common.owners.owner_of_stack`), as seconds of the unprofiled wall.
* **At which site** (the ``sites`` list): every counted sample goes to its *site*, the innermost
  frame of code someone can change: the user's strategy or LumiBot. The libraries under it
  (pandas, logging, the DataBento client, the stdlib) are what that code asked for, so their time
  is the site's. Per site: samples, the hottest of its lines, the call paths that reach it (each
  step with the line it called from) and where its time went by owner class.

**Which threads count.** A sample is counted when it comes from the *main thread inside the
worker's backtest call* or from *a strategy thread* (one running LumiBot's ``StrategyExecutor``),
and the thread is not waiting: its innermost Python frame is not in ``threading`` or ``queue``
(the main thread spends the trading loop waiting in ``Thread.join`` for the strategy thread).
The main thread's samples in the backtest call are the ticks: ``samples / ticks`` is a share
of the wall. Other threads (LumiBot's helpers, thread pools) are left out and counted apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from common.collapsed import Frame, Stack
from common.crosscheck import OUTSIDE_THREADS, SCOPE_FILE, SCOPE_NAME
from common.deflines import Hints, first_line
from common.offenders import wrapped_function
from common.owners import Owner, owner_of_frame, owner_of_stack, verdict
from common.profiles import module_tail

THREADS_COUNTED = (
    "the main thread inside the backtest call and the strategy thread (LumiBot's StrategyExecutor), "
    "while not waiting in threading or queue"
)
_EXECUTOR = "lumibot/strategies/strategy_executor.py"
_WAITING = frozenset({"threading.py", "queue.py"})
_ANALYSIS = ("backtest_analysis", "_dump_stats", "on_strategy_end", "write_", "tearsheet", "plot_")
INLINE = frozenset({"<genexpr>", "<listcomp>", "<setcomp>", "<dictcomp>", "<lambda>"})
SITES_KEPT = 40
LINES_KEPT = 8
PATHS_KEPT = 3

#: Where a call path starts, in the words of the findings.
ITERATION, LOOP, SETUP, ANALYSIS = "on_trading_iteration", "LumiBot's trading loop", "LumiBot's set-up", "LumiBot's analysis"


def _is_scope(frame: Frame) -> bool:
    return frame.name == SCOPE_NAME and frame.file.replace("\\", "/").endswith(SCOPE_FILE)


def fixable(frame: Frame) -> bool:
    """Code a reader can change: the user's strategy (and its helpers) or LumiBot."""
    if module_tail(frame.file).startswith("lumibot/"):
        return True
    return owner_of_frame(frame.file, frame.name) is Owner.STRATEGY


def is_user_iteration(frame: Frame) -> bool:
    return frame.name.rsplit(".", 1)[-1] == "on_trading_iteration" and owner_of_frame(frame.file, frame.name) is Owner.STRATEGY


def waiting(chain: Sequence[Frame]) -> bool:
    return bool(chain) and module_tail(chain[-1].file) in _WAITING


def function_key(frame: Frame, hints: Hints | None = None) -> tuple[str, int, str]:
    """(file, first line, name): yappi's key for the function this line-level frame runs in."""
    return frame.file, first_line(frame.file, frame.name, frame.line, hints) or frame.line, frame.name


@dataclass
class _Site:
    samples: int = 0
    lines: Counter[int] = field(default_factory=Counter)
    paths: Counter[tuple[str, tuple[tuple[str, str, int, int], ...]]] = field(default_factory=Counter)
    spent_in: Counter[str] = field(default_factory=Counter)


@dataclass
class Attribution:
    """A window's counted samples by owner and by site (see the module docstring)."""

    ticks: int = 0
    counted: int = 0
    waiting: int = 0
    """Samples of a strategy thread waiting in threading or queue (a stall in the trading loop)."""
    other_threads: int = 0
    owners: Counter[str] = field(default_factory=Counter)
    sites: dict[tuple[str, int, str], _Site] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        ranked = sorted(self.sites.items(), key=lambda item: item[1].samples, reverse=True)[:SITES_KEPT]
        return {
            "ticks": self.ticks,
            "threads_counted": THREADS_COUNTED,
            "counted_samples": self.counted,
            "waiting_samples": self.waiting,
            "other_thread_samples": self.other_threads,
            "owners": dict(self.owners),
            "sites": [
                {
                    "function": name, "file": file, "first_line": first, "owner": _owner_name(file, name),
                    "samples": site.samples,
                    "lines": [[line, n] for line, n in site.lines.most_common(LINES_KEPT)],
                    "paths": [{"anchor": anchor, "samples": n, "steps": [list(s) for s in steps]}
                              for (anchor, steps), n in site.paths.most_common(PATHS_KEPT)],
                    "spent_in": dict(site.spent_in),
                }
                for (file, first, name), site in ranked
            ],
        }  # fmt: skip


def _owner_name(file: str, name: str) -> str:
    owner = owner_of_frame(file, name)
    return str(owner) if owner is not None else str(Owner.OTHER)


def _nested(frame: Frame, parent: Frame) -> bool:
    return frame.name.rsplit(".", 1)[-1] in INLINE and frame.file == parent.file


def _anchor(chain: Sequence[Frame], strategy_thread: bool) -> tuple[str, int]:
    """Where this sample's call path starts, and the index of that frame in the chain."""
    for i, frame in enumerate(chain):
        if is_user_iteration(frame):
            return ITERATION, i
    if strategy_thread:
        start = next((i for i, f in enumerate(chain) if module_tail(f.file) == _EXECUTOR), 0)
        return LOOP, start
    analysis = next((i for i, f in enumerate(chain) if any(a in f.name for a in _ANALYSIS)), None)
    if analysis is not None:
        return ANALYSIS, analysis
    return SETUP, 0


def _path(chain: Sequence[Frame], start: int, end: int, hints: Hints | None) -> tuple[tuple[str, str, int, int], ...]:
    """Steps from the anchor to the site: (name, file, first line, line executing), the worker's
    own wrappers left out (they are not the user's, nor LumiBot's)."""
    steps = []
    for frame in chain[start : end + 1]:
        if owner_of_frame(frame.file, frame.name) is Owner.PROFILER or frame.file.startswith("<frozen importlib"):
            continue
        file, first, name = function_key(frame, hints)
        steps.append((name, file, first, frame.line))
    return tuple(steps)


def attribute(stacks: Iterable[Stack], hints: Hints | None = None) -> Attribution:
    """Sort a window's line-level samples by owner and by site (threads: see the module docstring).

    ``hints``: yappi's first lines of the same window, to key each site as yappi does."""
    stacks = list(stacks)
    main = {s.thread for s in stacks if any(_is_scope(f) for f in s.frames)}
    found = Attribution()
    for stack in stacks:
        chain = stack.frames
        in_main = stack.thread in main
        if in_main:
            cut = next((i for i, f in enumerate(chain) if _is_scope(f)), None)
            if cut is None:
                continue  # the main thread before or after the backtest
            chain = chain[cut:]
            found.ticks += stack.count
        elif any(f.file.replace("\\", "/").endswith(OUTSIDE_THREADS) for f in chain[:4]):
            continue
        strategy_thread = not in_main and any(module_tail(f.file) == _EXECUTOR for f in chain)
        if waiting(chain):  # the main thread's join on the strategy thread is not a stall; the strategy thread's waits are
            found.waiting += stack.count if strategy_thread else 0
            continue
        if not (in_main or strategy_thread):
            found.other_threads += stack.count
            continue
        found.counted += stack.count
        owner = str(owner_of_stack([(f.file, f.name) for f in chain]))
        found.owners[owner] += stack.count
        placed = place(chain, strategy_thread, hints)
        if placed is None:
            continue
        site = found.sites.setdefault(placed.key, _Site())
        site.samples += stack.count
        site.lines[placed.line] += stack.count
        site.paths[placed.path] += stack.count
        site.spent_in[owner] += stack.count
    return found


@dataclass(frozen=True)
class Placed:
    """Where one stack's cost goes: its site (yappi's key), the line of the site it ran, the path from its anchor."""

    key: tuple[str, int, str]
    line: int
    path: tuple[str, tuple[tuple[str, str, int, int], ...]]


def place(chain: Sequence[Frame], strategy_thread: bool, hints: Hints | None = None) -> Placed | None:
    """The site of a stack (outermost frame first): its innermost fixable frame, or None if it has none.

    Time (py-spy samples, here) and memory (memray's allocation stacks, :mod:`supervisor.memory`)
    place their costs by this one rule, so a memory finding and a time finding at one site agree.
    """
    index = next((i for i in range(len(chain) - 1, -1, -1) if fixable(chain[i])), None)
    if index is None:
        return None
    while index > 0 and _nested(chain[index], chain[index - 1]):
        index -= 1  # a comprehension or lambda is part of the function it is written in: same lines
    frame = chain[index]
    anchor, start = _anchor(chain, strategy_thread)
    return Placed(function_key(frame, hints), frame.line, (anchor, _path(chain, min(start, index), index, hints)))


def owner_table(attribution: Attribution, wall_seconds: float | None) -> dict[str, Any]:
    """``results[id].time_by_owner`` from the sampled pass: seconds and share of the unprofiled wall per class."""
    ticks = attribution.ticks
    seconds = {o: (n / ticks * wall_seconds if ticks and wall_seconds else None) for o, n in attribution.owners.items()}
    shares = {o: round(n / ticks, 4) if ticks else None for o, n in attribution.owners.items()}
    return {
        "source": "sampled",
        "measured": f"py-spy samples of the unprofiled pass; {THREADS_COUNTED}; seconds = share of the ticks x unprofiled wall",
        "wall_seconds": wall_seconds,
        "seconds": {o: None if s is None else round(s, 3) for o, s in seconds.items()},
        "shares": shares,
        "waiting_share": round(attribution.waiting / ticks, 4) if ticks else None,
        "other_threads_share": round(attribution.other_threads / ticks, 4) if ticks else None,
        "verdict": verdict({Owner(o): float(n) for o, n in attribution.owners.items()}),
    }


def owner_table_from_yappi(rows: Iterable[tuple[str, str, float]], wall_seconds: float | None) -> dict[str, Any]:
    """The same table from yappi's flat self times ``(module, name, self seconds)``, when no sampled pass ran.

    A function's self time goes to its own owner; generic code (stdlib, unknown packages) has no
    caller in a flat table, so it stays ``other``; thread waits (the offender tables' wrappers) are
    left out. Summed over every thread, so idle helper threads may add to LumiBot's share.
    """
    totals: dict[str, float] = {}
    for module, name, self_seconds in rows:
        if wrapped_function(module, name):
            continue
        owner = str(owner_of_frame(module, name) or Owner.OTHER)
        totals[owner] = totals.get(owner, 0.0) + self_seconds
    return {
        "source": "profiled",
        "measured": "yappi self time of the profiled pass, summed over all threads, thread waits left out; "
                    "generic code without an owner is 'other'",
        "wall_seconds": wall_seconds,
        "seconds": {o: round(s, 3) for o, s in totals.items()},
        "shares": {o: round(s / wall_seconds, 4) if wall_seconds else None for o, s in totals.items()},
        "waiting_share": None,
        "other_threads_share": None,
        "verdict": verdict({Owner(o): s for o, s in totals.items()}),
    }  # fmt: skip


# -- yappi's figures for the same sites (the pstat of the profiled pass) ------------------------
PStat = dict[tuple[str, int, str], tuple[Any, ...]]


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


@lru_cache(maxsize=65536)
def fixable_function(file: str, name: str) -> bool:
    """:func:`fixable` for a function (a comprehension or lambda is part of the function it is written in)."""
    if _short(name) in INLINE:
        return False
    return module_tail(file).startswith("lumibot/") or owner_of_frame(file, name) is Owner.STRATEGY


def yappi_attributed(stats: PStat) -> dict[tuple[str, int, str], float]:
    """Per site (fixable function): yappi's self time plus the cumulative time of the non-fixable
    functions it calls directly (the pstat's caller edges): yappi's figure for a site as defined above.
    Waits are left out as in the offender tables (:mod:`common.offenders`); a helper thread's loop
    that sleeps in C (``time.sleep``) still counts, since yappi books it as that loop's own time."""
    found: dict[tuple[str, int, str], float] = {}
    for key, value in stats.items():
        if wrapped_function(key[0], key[2]):
            continue  # thread waits (queue, threading, lock acquires) and entry points: nobody's work
        if fixable_function(key[0], key[2]):
            found[key] = found.get(key, 0.0) + float(value[2])
            continue
        for caller, edge in (value[4] or {}).items():
            if fixable_function(caller[0], caller[2]):
                found[caller] = found.get(caller, 0.0) + float(edge[3])
    return found


def pstat_index(stats: PStat) -> dict[tuple[str, int, str], tuple[str, int, str]]:
    """(file, first line, last part of the name) -> the pstat's own key (yappi and py-spy qualify names differently)."""
    return {(k[0], k[1], _short(k[2])): k for k in stats}


def step_calls(stats: PStat, index: dict[tuple[str, int, str], tuple[str, int, str]],
               steps: Sequence[Sequence[Any]]) -> list[int | None]:
    """yappi's calls along each step of a path: the first step's own calls, then each caller -> callee
    edge (through the worker's own wrappers, e.g. its bar counter, when the edge passes one)."""
    found: list[int | None] = []
    previous: tuple[str, int, str] | None = None
    for name, file, first, *_ in steps:
        key = index.get((file, int(first), _short(name)))
        calls: int | None = None
        if key is not None:
            value = stats[key]
            callers = value[4] or {}
            edge = callers.get(previous) if previous is not None else None
            if edge is None and previous is not None:
                wrapped = [e for c, e in callers.items() if owner_of_frame(c[0], c[2]) is Owner.PROFILER]
                edge = (0, sum(int(e[1]) for e in wrapped)) if wrapped else None
            calls = int(value[1]) if previous is None or edge is None else int(edge[1])
        found.append(calls)
        previous = key
    return found


def annotate(sites: dict[str, Any], stats: PStat) -> None:
    """Add yappi's figures to a window's sites (in place): ``yappi_seconds`` per site and each path
    step's call count, so the report never needs to load the pstat again."""
    attributed = yappi_attributed(stats)
    index = pstat_index(stats)
    for site in sites["sites"]:
        key = index.get((site["file"], int(site["first_line"]), _short(site["function"])))
        site["yappi_seconds"] = None if key is None else round(attributed.get(key, 0.0), 6)
        for path in site["paths"]:
            for step, calls in zip(path["steps"], step_calls(stats, index, path["steps"]), strict=True):
                step.append(calls)
