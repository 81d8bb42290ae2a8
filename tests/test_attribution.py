"""The pieces under the findings, on small hand-made inputs: first lines, sites, threads, ranking."""

from __future__ import annotations

from pathlib import Path

import pandas

from common.attribution import attribute, owner_table
from common.collapsed import parse_line, read_stacks, write_function_level
from common.deflines import first_line, hints_from
from report.findings import Finding, rank

SITE = Path(pandas.__file__).parent.parent
LUMIBOT = str(SITE / "lumibot/strategies/strategy_executor.py")
PANDAS = str(SITE / "pandas/core/reshape/concat.py")
SCOPE = "run (/x/worker/backtest.py:40)"
SOURCE = '''import functools


def plain(x):
    return x + 1


@functools.lru_cache
@functools.wraps(plain)
def decorated(x):
    y = x * 2
    return [i for i in range(y)]


class Holder:
    def method(self):
        return sum(i for i in range(3))
'''


def test_first_lines_from_yappi_rows_then_from_the_source(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(SOURCE)
    file = str(source)
    assert first_line(file, "plain", 5) == 4
    assert first_line(file, "decorated", 12) == 8  # the first decorator's line, as co_firstlineno
    assert first_line(file, "Holder.method", 17) == 16
    assert first_line(file, "<module>", 7) == 1
    assert first_line(file, "<genexpr>", 17) is None  # the source scan does not guess comprehensions
    hints = hints_from([(file, "Holder.method.<locals>.<genexpr>", 17)])
    assert first_line(file, "<genexpr>", 17, hints) == 17
    assert first_line(str(tmp_path / "gone.py"), "plain", 5) is None


def test_function_level_file_merges_stacks_that_differ_only_in_lines(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(SOURCE)
    lines = tmp_path / "lines.txt"
    lines.write_text(f"thread (1);plain ({source}:5) 3\nthread (1);plain ({source}:4) 2\nthread (1);nowhere (/no/file.py:9) 1\n")
    out = tmp_path / "funcs.txt"
    assert write_function_level(lines, out) == (6, 1)
    stacks = {(s.frames[-1].name, s.frames[-1].line): s.count for s in read_stacks(out)}
    assert stacks == {("plain", 4): 5, ("nowhere", 9): 1}


def test_samples_go_to_the_innermost_strategy_or_lumibot_frame_and_waits_are_left_out(tmp_path: Path) -> None:
    strategy = tmp_path / "my_strategy.py"
    strategy.write_text("class S:\n    def on_trading_iteration(self):\n        self.build()\n    def build(self):\n"
                        "        return concat(rows)\n        pass\n")
    s = str(strategy)
    executor = f"StrategyExecutor.run ({LUMIBOT}:2760)"
    iteration = f"S.on_trading_iteration ({s}:3)"
    text = [
        f"thread (1);{SCOPE};_wait_for_tstate_lock (/usr/lib/python3.11/threading.py:1132) 90",  # main waits: ticks only
        f"thread (1);{SCOPE};setup (/usr/lib/python3.11/site-packages/lumibot/x.py:5) 10",
        f"thread (2);{executor};{iteration};S.build ({s}:5);concat ({PANDAS}:380) 60",
        f"thread (2);{executor};{iteration};S.build ({s}:5);S.build.<locals>.<genexpr> ({s}:5) 5",
        f"thread (2);{executor};Event.wait (/usr/lib/python3.11/threading.py:600) 4",  # a stall of the strategy thread
        "thread (3);helper (/usr/lib/python3.11/site-packages/lumibot/h.py:9) 50",  # another thread: left out
    ]
    found = attribute([st for st in map(parse_line, text) if st is not None])
    assert (found.ticks, found.counted, found.waiting, found.other_threads) == (100, 75, 4, 50)
    build = found.sites[(s, 4, "S.build")]
    assert build.samples == 65 and build.lines[5] == 65  # the genexpr is part of the function it is written in
    assert build.spent_in == {"data layer": 60, "strategy": 5}
    ((anchor, steps), _), = build.paths.items()
    assert anchor == "on_trading_iteration" and [step[0] for step in steps] == ["S.on_trading_iteration", "S.build"]
    table = owner_table(found, 2.0)
    assert table["seconds"]["data layer"] == 1.2 and table["shares"]["lumibot"] == 0.1
    assert table["verdict"] == "data-layer-bound" and table["waiting_share"] == 0.04


def test_memory_findings_keep_their_places_beside_time_findings() -> None:
    times = [Finding("time", f"f{i}", float(i), "s", "sampled", "strategy") for i in range(8)]
    memory = [Finding("memory", f"m{i}", 1e6 * (4 - i), "B", "memray", "strategy") for i in range(4)]
    ranked = rank([*memory, *times], limit=5, memory_limit=3)
    assert [f.subject for f in ranked] == ["f7", "f6", "f5", "f4", "f3", "m0", "m1", "m2"]
    assert [f.subject for f in rank(times, limit=3)] == ["f7", "f6", "f5"]
