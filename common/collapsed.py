"""Reading py-spy's collapsed stacks (``--format raw``) into threads, frames and sample counts.

One line per distinct stack: ``frame;frame;...;frame COUNT``, outermost frame first. With
``--threads`` the first frame names the thread (``thread (TID)`` or ``thread (TID): NAME``;
py-spy learns the name once ``threading`` has it, so one thread can appear under both forms and
is keyed by its id). With ``--function`` a frame is ``name (file:firstline)``: the function's
first line, which is what yappi records as ``lineno``, so the two profiles join on it.
This is the format flamegraph.pl, inferno and speedscope read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_THREAD = re.compile(r"^thread \((?P<tid>[^)]*)\)(?:: (?P<name>.*))?$")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>.*):(?P<line>\d+)\)$")


@dataclass(frozen=True)
class Frame:
    """One Python function as py-spy names it: qualified name, file, first line."""

    name: str
    file: str
    line: int

    @property
    def short_name(self) -> str:
        """The last dotted part: py-spy says ``JSONEncoder.iterencode`` where yappi may say ``iterencode``."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Stack:
    """``count`` samples of one thread with these frames, outermost first."""

    thread: str
    frames: tuple[Frame, ...]
    count: int


@lru_cache(maxsize=65536)
def parse_frame(text: str) -> Frame:
    """Cached: a run's few thousand distinct frames repeat across its stacks."""
    found = _FRAME.match(text)
    if found is None:
        return Frame(text, "", 0)  # e.g. a frame py-spy could not name; kept so the stack stays whole
    return Frame(found["name"], found["file"], int(found["line"]))


def parse_line(line: str) -> Stack | None:
    """One collapsed line, or None for a blank or malformed one."""
    body, _, count = line.rstrip("\n").rpartition(" ")
    if not body or not count.isdigit():
        return None
    parts = body.split(";")
    thread = ""
    found = _THREAD.match(parts[0])
    if found is not None:
        thread, parts = found["tid"], parts[1:]
    return Stack(thread, tuple(parse_frame(p) for p in parts if p), int(count))


def read_stacks(path: Path) -> list[Stack]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return [stack for stack in map(parse_line, fh) if stack is not None]

