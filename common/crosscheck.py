"""yappi's shares against py-spy's, function by function: the numbers behind "how far to trust".

Both sides are put on the same footing, the one the report's "% of wall" columns already use:
a function's **inclusive share** is the time spent in it or below it, summed over threads, as
a fraction of the backtest's wall time; its **self share** counts only the time it was the
innermost Python frame. For yappi that is ``cumulative_seconds`` (``self_seconds``) over the
run's wall seconds. For py-spy it is the number of samples whose stack contains the function
(has it as the leaf) over the number of sampling ticks in the backtest: the main thread's
samples inside the worker's backtest call, since py-spy samples every thread once per tick.
py-spy frames above that call (start-up, imports, the worker's own set-up) are dropped because
yappi never sees them, and so are the two ``threading`` frames every other thread starts with,
which yappi's per-thread hook never sees either.

Functions join on (file, first line, last part of the name): ``py-spy --function`` reports a
function's first line, which is yappi's ``lineno``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.collapsed import Frame, Stack
from common.offenders import is_wrapper
from common.profiles import FuncRow, file_name

#: The frame that is yappi's scope: the worker's own call of LumiBot's ``run_backtest``.
SCOPE_FILE = "worker/backtest.py"
SCOPE_NAME = "run"
_THREAD_START = frozenset({"Thread._bootstrap", "Thread._bootstrap_inner"})
OUTSIDE_THREADS = ("common/lifetime.py",)
"""Files whose threads the worker starts before the backtest (its watch on the supervisor): the
profiler's own, left out of yappi's files (:func:`common.lifetime.is_own_thread`) and so of the samples too."""

NOISE_FLOOR_PP = 2.0
"""A share difference under 2 percentage points is never a disagreement: a single py-spy run
of one month differed from the pool of eight by 0.56-1.51 pp (truth-facts)."""

NOISE_SIGMAS = 2.0
"""Short windows have few samples: a difference must also exceed two binomial standard errors
of a share estimated from that many ticks, sqrt(p(1-p)/n), p the mean of the two shares."""

RATIO_LIMIT = 1.5
"""And the two shares must differ by a factor of at least 1.5 (over-stated: yappi >= 1.5x the
sampled share; under-stated: yappi <= 1/1.5 of it), so a large function off by a few percent
of itself is not flagged."""

AGREES, OVER, UNDER = "agrees", "over-stated by yappi", "under-stated by yappi"
NOT_IN_YAPPI = "not in yappi profile"
UNTIMED = "untimed by yappi"
"""yappi adds a function's time when it returns, so a function still running when the profile
stops (an idle helper thread's loop) has calls but 0 s. Such rows say nothing about yappi's
accuracy and are left out of the rank agreement and the misstated lists."""
VERDICTS = (AGREES, OVER, UNDER, NOT_IN_YAPPI, UNTIMED)
COMPARED = (AGREES, OVER, UNDER)

Key = tuple[str, int, str]

CSV_COLUMNS = (
    "function",
    "module",
    "lineno",
    "ncall",
    "yappi_inclusive_pct",
    "sampled_inclusive_pct",
    "inclusive_ratio",
    "yappi_self_pct",
    "sampled_self_pct",
    "self_ratio",
    "sampled_inclusive_samples",
    "verdict",
    "left_out_of_tables",
)


def frame_key(file: str, line: int, name: str) -> Key:
    return (file, line, name.rsplit(".", 1)[-1])


@dataclass
class Sampled:
    """Per-function sample counts inside the backtest, and the ticks they are fractions of."""

    ticks: int
    inclusive: dict[Key, int]
    leaf: dict[Key, int]
    frames: dict[Key, Frame]


def _is_scope(frame: Frame) -> bool:
    return frame.name == SCOPE_NAME and frame.file.replace("\\", "/").endswith(SCOPE_FILE)


def _outside(chain: tuple[Frame, ...]) -> bool:
    return any(f.file.replace("\\", "/").endswith(OUTSIDE_THREADS) for f in chain[:4])


def in_scope(stacks: Iterable[Stack]) -> Sampled:
    """Count each function once per sample (recursion counted once, as yappi's cumulative time is)."""
    stacks = list(stacks)
    main = {s.thread for s in stacks if any(_is_scope(f) for f in s.frames)}
    ticks = 0
    inclusive: dict[Key, int] = {}
    leaf: dict[Key, int] = {}
    frames: dict[Key, Frame] = {}
    for stack in stacks:
        chain = stack.frames
        if stack.thread in main:
            cut = next((i for i, f in enumerate(chain) if _is_scope(f)), None)
            if cut is None:
                continue  # the main thread before or after the backtest
            chain = chain[cut:]
            ticks += stack.count
        else:
            while chain and chain[0].name in _THREAD_START:
                chain = chain[1:]
            if _outside(chain):
                continue
        keys = [frame_key(f.file, f.line, f.name) for f in chain]
        for key, frame in zip(keys, chain, strict=True):
            frames.setdefault(key, frame)
        for key in set(keys):
            inclusive[key] = inclusive.get(key, 0) + stack.count
        if keys:
            leaf[keys[-1]] = leaf.get(keys[-1], 0) + stack.count
    return Sampled(ticks, inclusive, leaf, frames)


@dataclass(frozen=True)
class CrossRow:
    """One function's shares (fractions of the backtest's wall time) under both measures."""

    function: str
    module: str
    lineno: int
    ncall: int | None
    yappi_inclusive: float | None
    sampled_inclusive: float
    yappi_self: float | None
    sampled_self: float
    sampled_samples: int
    verdict: str
    wrapper: bool

    @property
    def inclusive_ratio(self) -> float | None:
        return ratio(self.yappi_inclusive, self.sampled_inclusive)

    @property
    def self_ratio(self) -> float | None:
        return ratio(self.yappi_self, self.sampled_self)

    @property
    def short(self) -> str:
        """Same form as :attr:`common.profiles.FuncRow.short`."""
        return f"{file_name(self.module)}:{self.lineno} {self.function}"


def ratio(yappi: float | None, sampled: float) -> float | None:
    """yappi share / sampled share; None when either is unknown or the sampled share is zero."""
    if yappi is None or sampled <= 0:
        return None
    return yappi / sampled


def verdict(yappi: float | None, sampled: float, ticks: int, calls: int | None = None) -> str:
    """``agrees`` within the noise, else which way yappi is off (thresholds above, in docs/crosscheck.md)."""
    if yappi is None:
        return NOT_IN_YAPPI
    mean = (yappi + sampled) / 2
    noise = max(NOISE_FLOOR_PP / 100, NOISE_SIGMAS * math.sqrt(max(mean * (1 - mean), 0.0) / max(ticks, 1)))
    if abs(yappi - sampled) <= noise:
        return AGREES
    if yappi == 0 and calls:
        return UNTIMED
    if yappi > sampled and (sampled == 0 or yappi / sampled >= RATIO_LIMIT):
        return OVER
    if yappi < sampled and yappi * RATIO_LIMIT <= sampled:
        return UNDER
    return AGREES


def compare(funcs: Sequence[FuncRow], wall_seconds: float, sampled: Sampled) -> list[CrossRow]:
    """One row per function yappi or py-spy saw in the backtest, heaviest sampled share first."""
    ticks = max(sampled.ticks, 1)
    rows: list[CrossRow] = []
    seen: set[Key] = set()
    for f in funcs:
        key = frame_key(f.module, f.lineno, f.name)
        seen.add(key)
        incl, leaf = sampled.inclusive.get(key, 0), sampled.leaf.get(key, 0)
        y_incl, y_self = f.cumulative / wall_seconds, f.self_time / wall_seconds
        rows.append(
            CrossRow(f.name, f.module, f.lineno, f.ncall, y_incl, incl / ticks, y_self, leaf / ticks, incl,
                     verdict(y_incl, incl / ticks, ticks, f.ncall), is_wrapper(f))
        )
    for key, count in sampled.inclusive.items():
        if key in seen:
            continue
        frame = sampled.frames[key]
        probe = FuncRow("", frame.name, frame.file, frame.line, 0, 0.0, 0.0)
        rows.append(
            CrossRow(frame.name, frame.file, frame.line, None, None, count / ticks, None, sampled.leaf.get(key, 0) / ticks,
                     count, NOT_IN_YAPPI, is_wrapper(probe))
        )
    rows.sort(key=lambda r: (r.sampled_inclusive, r.yappi_inclusive or 0.0), reverse=True)
    return rows


# -- rank agreement -------------------------------------------------------------------------
def _ranks(values: dict[Key, float]) -> dict[Key, float]:
    """1 = largest; ties share their average rank."""
    ordered = sorted(values, key=lambda k: values[k], reverse=True)
    ranks: dict[Key, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and values[ordered[j + 1]] == values[ordered[i]]:
            j += 1
        for k in ordered[i : j + 1]:
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation of two rank vectors; None when either does not vary."""
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def agreement(rows: Sequence[CrossRow], by: str, sizes: Sequence[int] = (10, 20)) -> dict[str, dict[str, float | int | None]]:
    """Top-N overlap and Spearman's rho over the union of both top-N sets, wrappers left out.

    ``by`` is ``inclusive`` or ``self``. The union's functions are ranked within the union by each
    measure (ties share their average rank), so a function one side puts far down the list
    counts as last in the union, not with the weight of its rank among thousands.
    """
    kept = [r for r in rows if not r.wrapper and r.verdict in COMPARED]
    yappi = {(r.module, r.lineno, r.function): (getattr(r, f"yappi_{by}") or 0.0) for r in kept}
    sampled = {(r.module, r.lineno, r.function): getattr(r, f"sampled_{by}") for r in kept}
    found: dict[str, dict[str, float | int | None]] = {}
    for n in sizes:
        top_y = set(sorted(yappi, key=lambda k: yappi[k], reverse=True)[:n])
        top_s = set(sorted(sampled, key=lambda k: sampled[k], reverse=True)[:n])
        union = sorted(top_y | top_s)
        y_rank = _ranks({k: yappi[k] for k in union})
        s_rank = _ranks({k: sampled[k] for k in union})
        rho = spearman([y_rank[k] for k in union], [s_rank[k] for k in union])
        found[f"top{n}"] = {"overlap": len(top_y & top_s), "of": min(n, len(kept)),
                            "spearman": None if rho is None else round(rho, 3)}
    return found


def misstated(rows: Sequence[CrossRow], direction: str, n: int = 3) -> list[CrossRow]:
    """The ``n`` functions yappi gets most wrong one way, by the gap between the two shares
    (a ratio would favour tiny functions just past the noise), wrappers left out."""
    picked = [r for r in rows if r.verdict == direction and not r.wrapper]
    return sorted(picked, key=lambda r: abs((r.yappi_inclusive or 0.0) - r.sampled_inclusive), reverse=True)[:n]


# -- the per-run CSV ------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.4f}"


def _ratio_text(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def write_csv(rows: Sequence[CrossRow], path: Path) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(CSV_COLUMNS)
        for r in rows:
            out.writerow(
                (r.function, r.module, r.lineno, "" if r.ncall is None else r.ncall, _pct(r.yappi_inclusive),
                 _pct(r.sampled_inclusive), _ratio_text(r.inclusive_ratio), _pct(r.yappi_self), _pct(r.sampled_self),
                 _ratio_text(r.self_ratio), r.sampled_samples, r.verdict, int(r.wrapper))
            )


def _share(text: str) -> float | None:
    return float(text) / 100 if text else None


def read_csv(path: Path) -> list[CrossRow]:
    with path.open(newline="") as fh:
        return [
            CrossRow(
                row["function"], row["module"], int(row["lineno"]), int(row["ncall"]) if row["ncall"] else None,
                _share(row["yappi_inclusive_pct"]), _share(row["sampled_inclusive_pct"]) or 0.0,
                _share(row["yappi_self_pct"]), _share(row["sampled_self_pct"]) or 0.0,
                int(row["sampled_inclusive_samples"]), row["verdict"], row["left_out_of_tables"] == "1",
            )
            for row in csv.DictReader(fh)
        ]
