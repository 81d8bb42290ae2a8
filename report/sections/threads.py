"""Wall time per thread, with the warning that thread times overlap."""

from __future__ import annotations

from common.profiles import ThreadRow, module_tail
from report import markdown as md
from report.analysis import Analysis
from report.resultset import RunRecord

THREAD_FOLD_SHARE = 0.01
"""Threads under 1 % of the run's wall time (pyarrow's short-lived converters) are folded
into one line: a dozen 5 ms rows would bury the three threads that matter."""



class Threads:
    """Wall time per thread per run, with the warning that the threads overlap in time."""

    def render(self, analysis: Analysis) -> str:
        head = "## Wall time per thread"
        runs = [r for r in analysis.results.done if r.threads]
        if not runs:
            return f"{head}\n\nNo done run has a thread profile."
        rows: list[list[str]] = []
        for run in runs:
            rows.extend(self._rows(run))
        return "\n\n".join(
            [
                head,
                "Thread times overlap and must not be summed: `MainThread` sits in `Thread.join` for as long as the "
                "strategy thread works, and LumiBot's helper threads live (mostly waiting) for the whole "
                "backtest, so each of them shows close to the run's full wall time. Threads carry their `threading` "
                "names: LumiBot names the strategy thread after the strategy (its line is the backtest loop itself), "
                "the broker's is `broker_backtesting_thread`, and a thread the strategy starts shows under the name "
                "it was given. The main thread's own work is before the join and after it (LumiBot's analysis: "
                "tearsheet, plots and CSV output). A thread still running when yappi stopped shows only what had "
                "returned by then. "
                f"Threads under {THREAD_FOLD_SHARE:.0%} of the run's wall time are folded into one line.",
                md.table(["run", "thread", "wall s", "% of run wall", "top function by self time", "self s"], rows, [2, 3, 5]),
            ]
        )

    @staticmethod
    def _rows(run: RunRecord) -> list[list[str]]:
        wall = run.wall or 0.0
        threads = sorted(run.threads or [], key=lambda t: t.wall, reverse=True)
        big = [t for t in threads if t.wall >= THREAD_FOLD_SHARE * wall]
        small = [t for t in threads if t.wall < THREAD_FOLD_SHARE * wall]
        rows = [
            [
                run.id,
                f"{t.name} (#{t.ident})",
                md.wall(t.wall),
                md.percent(t.wall, wall),
                _thread_top(t),
                md.func_seconds(t.top_self_seconds),
            ]
            for t in big
        ]
        if small:
            total = sum(t.wall for t in small)
            rows.append([run.id, f"{len(small)} short-lived threads", md.wall(total), md.percent(total, wall), "", ""])
        return rows



def _thread_top(thread: ThreadRow) -> str:
    """``/path/mod.py:315:Class.fn`` as written by the worker -> ``mod.py:315 Class.fn``."""
    if not thread.top_self_function:
        return "–"
    module, _, rest = thread.top_self_function.rpartition(":")
    module, _, line = module.rpartition(":")
    return md.code(f"{module_tail(module).rsplit('/', 1)[-1]}:{line} {rest}") if module else md.code(thread.top_self_function)
