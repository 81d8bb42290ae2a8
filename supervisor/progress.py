"""Live progress of the running entry while the supervisor waits for its worker.

A watcher thread reads the worker's ``progress.json`` (:mod:`common.progress`) twice a second
and hands a :class:`View` to a display: a live bar on a terminal (``rich``), a plain line every
``interval`` seconds when stdout is a file or a pipe, or nothing with ``--quiet``. The watcher
only reads files and prints: the worker's answer, time-out and signals stay with the runner.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from common.progress import Progress, read_progress
from supervisor.eta import duration, run_left

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Watched:
    """What the display needs to know about the entry before its worker says anything."""

    run_id: str
    start: str
    end: str
    work_dir: Path
    estimate: float | None
    """Seconds this pass should take (:class:`supervisor.eta.Estimator`), None if unknown."""
    rest_seconds: float
    """Estimated seconds of every pass still to run after this one: the entry's own unprofiled
    check and repeats, then the selection's other pending entries."""
    rest_unknown: int
    """How many of those have no estimate at all (the selection ETA is then a lower bound)."""
    began: float
    """``time.monotonic()`` when this pass began (elapsed and the next plain line count from it)."""
    pass_name: str = ""
    """Which pass of the entry runs (:func:`pass_name`): a second pass starts again from 0 %."""
    tail: float | None = None
    """Seconds this pass should spend after its window's last iteration (:meth:`Estimator.tail`)."""


@dataclass(frozen=True)
class View:
    """One moment of the running entry, with everything derived from it."""

    watched: Watched
    progress: Progress | None
    fraction: float | None
    elapsed: float
    left: float | None

    @classmethod
    def now(cls, watched: Watched) -> View:
        elapsed = time.monotonic() - watched.began
        progress = read_progress(watched.work_dir)
        if progress is not None and progress.written < time.time() - elapsed:
            progress = None  # left by an earlier attempt: the runner has not emptied the folder yet
        fraction = progress.fraction(watched.start, watched.end) if progress else None
        left = run_left(progress, fraction, watched.estimate, elapsed, watched.tail, time.time())
        return cls(watched, progress, fraction, elapsed, left)

    @property
    def selection_left(self) -> str:
        if self.left is None:
            return "?"
        text = duration(self.left + self.watched.rest_seconds)
        return f"at least {text}" if self.watched.rest_unknown else f"~{text}"

    def where(self) -> str:
        """``backtest at 2025-02-14 10:30 (46 % of window), 5,120 iterations``, or the phase alone."""
        p = self.progress
        if p is None:
            return "starting"
        if p.simulated is None or self.fraction is None:
            return p.phase
        return f"{p.phase} at {p.simulated[:16].replace('T', ' ')} ({self.fraction:.0%} of window), {p.iterations:,} iterations"

    def line(self) -> str:
        named = f"{self.watched.pass_name}: " if self.watched.pass_name else ""
        return (
            f"  {self.watched.run_id:<24} {named}{self.where()}; {duration(self.elapsed)} elapsed, "
            f"~{duration(self.left)} left; selection {self.selection_left} left"
        )


CHECK_PASS = "unprofiled check"
"""The cross-check's second run of the window, without yappi, under py-spy."""
MEMORY_PASS = "memory pass"
"""The memory pass: the window again, without yappi, under memray."""
FIRST_PASS = {"preload": "preload (unprofiled)", "two_pass": "cache-warming pass"}
"""The pass before the profiled one in Phase 1's ``preload`` and ``two_pass`` modes."""


def pass_name(phase0_cold: bool | None, number: int, count: int) -> str:
    """``profiled``, ``profiled, repeat 2 of 3``, ``cold-cache probe 1 of 3``, ``warm-cache probe 2 of 3``.

    ``phase0_cold`` is None for a Phase 1 entry, else whether it is Phase 0's cold probe.
    """
    if phase0_cold is not None:
        return f"{'cold' if phase0_cold else 'warm'}-cache probe {number} of {count}"
    return "profiled" if count == 1 else f"profiled, repeat {number} of {count}"


class Display(Protocol):
    def begin(self, watched: Watched) -> None: ...

    def update(self, view: View) -> None: ...

    def end(self) -> None: ...


class QuietDisplay:
    """``--quiet``: only the one result line per run that the session prints anyway."""

    def begin(self, watched: Watched) -> None:
        pass

    def update(self, view: View) -> None:
        pass

    def end(self) -> None:
        pass


class PlainDisplay:
    """A line every ``interval`` seconds of an entry, for logs, CI and pipes (no control codes)."""

    def __init__(self, echo: Callable[[str], None], interval: float) -> None:
        self.echo = echo
        self.interval = interval
        self._next = 0.0

    def begin(self, watched: Watched) -> None:
        self._next = time.monotonic() + self.interval

    def update(self, view: View) -> None:
        now = time.monotonic()
        if now >= self._next:  # from now, not from the last due time: a late watcher prints one line, not a burst
            self._next = now + self.interval
            self.echo(view.line())

    def end(self) -> None:
        pass


class LiveDisplay:
    """A bar that redraws in place on a terminal and vanishes when the entry ends.

    ``rich`` draws it (imported only here, and only on a terminal); the session's result line
    is printed after the bar is gone, so the two never interleave.
    """

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None

    def begin(self, watched: Watched) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._bar.add_task(f"{watched.run_id:<24} {watched.pass_name}", total=1.0, detail="starting")
        self._bar.start()

    def update(self, view: View) -> None:
        detail = (
            f"{view.where()} · {duration(view.elapsed)} · ~{duration(view.left)} left · "
            f"selection {view.selection_left}"
        )
        self._bar.update(self._task, completed=view.fraction or 0.0, detail=detail)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def choose_display(quiet: bool, interval: float, echo: Callable[[str], None]) -> Display:
    """Nothing with ``--quiet``, a live bar on a terminal, plain lines anywhere else."""
    if quiet:
        return QuietDisplay()
    if sys.stdout.isatty():
        return LiveDisplay()
    return PlainDisplay(echo, interval)


class Monitor:
    """Runs a display for one entry at a time, fed by a watcher thread."""

    def __init__(self, display: Display) -> None:
        self.display = display

    @contextlib.contextmanager
    def watch(self, watched: Watched) -> Iterator[None]:
        stop = threading.Event()

        def loop() -> None:
            while True:  # the first view at once: the ETA shows before the worker says anything
                with contextlib.suppress(Exception):  # a display problem must never stop the queue
                    self.display.update(View.now(watched))
                if stop.wait(POLL_SECONDS):
                    return

        self.display.begin(watched)
        thread = threading.Thread(target=loop, name="lumiprof-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=2.0)
            self.display.end()
