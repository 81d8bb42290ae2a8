"""How close the supervisor's ETAs are when a finished plan is run again, through both passes of
each window (the profiled pass and the cross-check's unprofiled one).

Runs a small plan (four week windows and one month, pandas_synthetic, cross-check on as in the
repo plan) once, resets it (the results move to ``history``), then runs it again with a plain
progress line every second, stamping each line as it arrives. Two figures:

* the whole-selection ETA before the first worker reported anything (the estimator the display
  uses, built from round one) against the real duration of round two;
* every progress line's ``selection ~X left`` against the time that really remained from that
  line to the end of round two, grouped by the pass the line was about (pass 1: profiled,
  pass 2: the unprofiled check; a pass is recognised by the pass name on the line, or, on
  older code without names, by its window restarting from 0 %). Lines with under 5 s to go
  are left out: a relative error there says little.

Goal from the issue: within 25 % on a quiet machine. A busy machine makes round two slower or
faster than round one, and the ETA cannot know that: the load average is printed with it.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import _common as c
import orjson

RUNS = [
    ("wk1", "2025-01-20", "2025-01-27", "week"),
    ("wk2", "2025-03-10", "2025-03-17", "week"),
    ("wk3", "2025-07-14", "2025-07-21", "week"),
    ("wk4", "2025-10-13", "2025-10-20", "week"),
    ("mo", "2025-02-01", "2025-03-01", "month"),
]
GOAL = 0.25
MIN_LEFT = 5.0
LINE = re.compile(r"^  (?P<id>\S+)\s+(?:(?P<name>[^:;]+): )?(?P<where>[^;]*); (?P<elapsed>.+?) elapsed, "
                  r"~(?P<left>.+?) left; selection ~(?:at least )?(?P<selection>.+?) left$")
FRACTION = re.compile(r"\((\d+)% of window\)")


def seconds_of(text: str) -> float | None:
    """The inverse of :func:`supervisor.eta.duration`: ``42 s``, ``3 min 10 s``, ``1 h 05 min``; None for ``?``."""
    total, found = 0.0, False
    for value, unit in re.findall(r"(\d+) (h|min|s)\b", text):
        total += int(value) * {"h": 3600, "min": 60, "s": 1}[unit]
        found = True
    return total if found else None


@dataclass
class Seen:
    """One progress line: when it arrived, which pass of which window it was about, what it predicted."""

    at: float
    run_id: str
    pass_number: int
    selection_left: float | None


def supervise(plan: object, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor", *args, "--plan", str(plan)],
        capture_output=True, text=True, env=c.child_env(), check=True,
    )
    return time.perf_counter() - t0, proc.stdout


def watch(plan: object) -> tuple[float, list[Seen], list[str]]:
    """Round two with a progress line a second; every line stamped on arrival. Its wall time too."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "supervisor", "--progress-interval", "1", "--plan", str(plan)],
                            stdout=subprocess.PIPE, text=True, env=c.child_env(), bufsize=1)
    assert proc.stdout is not None
    seen: list[Seen] = []
    console: list[str] = []
    passes: dict[str, tuple[int, str | None, float]] = {}  # run id -> (pass number, name, last fraction)
    for raw in proc.stdout:
        at = time.perf_counter() - t0
        line = raw.rstrip("\n")
        console.append(line)
        m = LINE.match(line)
        if not m:
            continue
        found = FRACTION.search(m["where"])
        fraction = float(found.group(1)) if found else (0.0 if m["where"].startswith("starting") else None)
        if m["id"] not in passes:
            passes[m["id"]] = (1, m["name"], 0.0)
        number, name, high = passes[m["id"]]
        restarted = m["name"] != name if m["name"] else fraction is not None and fraction + 20 < high
        if restarted:
            number, high = number + 1, 0.0
        passes[m["id"]] = (number, m["name"], high if fraction is None else max(high, fraction))
        seen.append(Seen(at, m["id"], number, seconds_of(m["selection"])))
    if proc.wait() != 0:
        raise RuntimeError(f"round two exited {proc.returncode}:\n" + "\n".join(console[-20:]))
    return time.perf_counter() - t0, seen, console


def errors(seen: list[Seen], end: float, number: int, speed: float = 1.0) -> list[float]:
    """Relative errors of the selection ETA on the lines about pass ``number`` (2 and up: the check),
    each predicted time multiplied by ``speed`` first."""
    out = []
    for s in seen:
        real = end - s.at
        if s.selection_left is not None and real >= MIN_LEFT and min(s.pass_number, 2) == number:
            out.append(s.selection_left * speed / real - 1.0)
    return out


def main() -> int:
    p = c.parser(__doc__)
    args = p.parse_args()
    c.header("eta_accuracy", "4 week windows + 1 month, MesMomentum sleeptime 30M, pandas_synthetic, cross-check on; "
                             "run, reset, run again with a progress line a second")
    from supervisor.eta import Estimator, duration
    from supervisor.plan import PlanStore

    with c.temp_dir("eta") as tmp:
        plan = c.make_plan(tmp, [c.short_run(*r) for r in RUNS], meta={"strategy_parameters": {"sleeptime": "30M"},
                                                                        "phase1_mode": "single", "cross_check": "sampled"})
        if c.smoke_stop(args, f"a {len(RUNS)}-window plan; estimator {Estimator.__name__}, {duration(0)}"):
            return 0
        first, _ = supervise(plan, "--quiet")
        supervise(plan, "reset")
        document = orjson.loads(plan.read_bytes())
        estimator = Estimator.from_plan(document)
        try:  # each window's profiled pass and its check (older code: a whole entry per run)
            estimate, unknown = estimator.total([(r, True) for r in document["runs"]])
        except (TypeError, ValueError):
            estimate, unknown = estimator.total(document["runs"])
        load_before = os.getloadavg()[0]
        second, seen, console = watch(plan)
        load_after = os.getloadavg()[0]
        done = sum(1 for r in PlanStore(plan).read()["runs"] if r["status"] == "done")
    print("\n".join(console))
    print()
    error = estimate / second - 1.0
    c.table(
        ["round 1 s", "ETA for round 2", "round 2 s", "ETA error", "no estimate", "load 1 min before/after"],
        [[f"{first:.1f}", duration(estimate), f"{second:.1f}", f"{100 * error:+.1f} %", str(unknown),
          f"{load_before:.2f} / {load_after:.2f}"]],
    )
    rows, all_errors = [], []
    speed = second / estimate if estimate else 1.0  # round two against round one: the load the ETA cannot see
    for number, kind in ((1, "profiled pass"), (2, "unprofiled check")):
        found = errors(seen, second, number)
        scaled = errors(seen, second, number, speed)
        all_errors += found
        if found:
            rows.append([kind, str(len(found)), f"{100 * statistics.median(found):+.1f} %",
                         f"{100 * statistics.median(abs(e) for e in found):.1f} %", f"{100 * max(found, key=abs):+.1f} %",
                         f"{100 * statistics.median(abs(e) for e in scaled):.1f} %"])
    print(f"selection ETA on each progress line vs the time really left (lines with >= {MIN_LEFT:.0f} s to go); "
          f"the last column scales every ETA by round two's speed against the start ETA ({speed:.2f}x), "
          "so it shows how the ETA moves within the round, apart from load that changed between rounds")
    c.table(["lines about", "lines", "median error", "median |error|", "worst", "median |error| scaled"], rows)
    ok = c.goal(
        "eta_accuracy rerun",
        f"ETA {estimate:.1f} s vs real {second:.1f} s ({100 * error:+.1f} %), {done}/{len(RUNS)} done, "
        f"load {load_before:.2f}->{load_after:.2f}",
        f"within {100 * GOAL:.0f} %",
        abs(error) <= GOAL and unknown == 0,
    )
    middle = statistics.median(abs(e) for e in all_errors) if all_errors else float("inf")
    ok &= c.goal(
        "eta_accuracy every line, both passes",
        f"median |error| {100 * middle:.1f} % over {len(all_errors)} lines "
        f"(worst {100 * max(all_errors, key=abs) if all_errors else float('nan'):+.1f} %)",
        f"within {100 * GOAL:.0f} %",
        middle <= GOAL,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
