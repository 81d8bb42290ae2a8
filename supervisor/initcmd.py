"""``lumiprof init STRATEGY``: write a ready ``profiling_plan.json`` for the user's own strategy.

``STRATEGY`` is ``path/to/my_strategy.py:MyStrategy`` (the plan goes beside the file, which is
where a LumiBot user keeps and runs it) or ``package.module:MyStrategy`` (the plan goes into
the current folder, from which the package must import, as it must for the runs). ``--plan``
puts it anywhere else.

The strategy is imported in a fresh interpreter (``python -m worker.describe``) with a
time-out, never in this process: the user's module runs arbitrary code, and LumiBot's import
alone takes seconds. What comes back (the class's ``parameters``, its ``sleeptime``, the
symbols a static scan of its source found) becomes the plan: the template's windows and
settings (:mod:`supervisor.template`), the parameters with the invariants added, and a data
source the strategy can run on offline (:func:`choose_data_source`). The plan is checked by
the same schema as every plan and created atomically; an existing file is never replaced.

Refusals are one line on stderr and exit 2: a plan already there, a file that does not
import (with the import error's last line), a class that is not a LumiBot ``Strategy``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from common.atomicio import atomic_create_bytes
from common.sourcetree import PACKAGES_ROOT, child_env
from supervisor.plan import PlanError, encode, validate
from supervisor.template import INVARIANTS, WINDOW_SETS, build_plan
from worker.backtest import PARAMETER_INVARIANTS
from worker.symbols import is_daily

PLAN_NAME = "profiling_plan.json"
#: LumiBot's import alone took 3-9 s on a busy 2-core machine; a strategy module may import more.
IMPORT_TIMEOUT = 120.0
FUTURES = ("future", "cont_future")
#: The dataset LumiBot's DataBento source uses for CME futures, the one the local gateway serves.
FUTURES_DATASET = "GLBX.MDP3"
FALLBACK_ASSET = {"symbol": "SPY", "type": "stock"}


class InitError(Exception):
    """A refusal: one line on stderr, exit 2, nothing written."""


@dataclass
class Target:
    """The ``STRATEGY`` argument, resolved: what the plan names and where the plan goes."""

    spec: str
    """As written into ``meta.strategy`` (a file path relative to the plan's folder)."""
    plan: Path
    shown: str
    """How messages name the strategy: the file or module the user typed."""
    class_name: str


@dataclass
class DataChoice:
    """``meta.data_source``, the sentence saying why, and anything the user should check."""

    source: dict[str, Any]
    why: str
    notes: list[str] = field(default_factory=list)


def parse_target(raw: str, plan: Path | None) -> Target:
    """Split ``file.py:Class`` / ``package.module:Class`` and decide where the plan goes."""
    if plan is not None and plan.is_dir():
        plan = plan / PLAN_NAME
    where, sep, class_name = raw.rpartition(":")
    if not sep or not where or not class_name.isidentifier():
        raise InitError(f"STRATEGY must be path/to/file.py:ClassName or package.module:ClassName, got {raw!r}")
    if where.endswith(".py"):
        source = Path(where).resolve()
        if not source.is_file():
            raise InitError(f"{where}: no such file")
        plan_path = (plan or source.parent / PLAN_NAME).resolve()
        return Target(f"{os.path.relpath(source, plan_path.parent)}:{class_name}", plan_path, where, class_name)
    if not all(part.isidentifier() for part in where.split(".")):
        raise InitError(f"STRATEGY must be path/to/file.py:ClassName or package.module:ClassName, got {raw!r}")
    return Target(raw, (plan or Path.cwd() / PLAN_NAME).resolve(), where, class_name)


def describe(target: Target, timeout: float) -> dict[str, Any]:
    """The strategy as a fresh interpreter sees it (``worker.describe``), or :class:`InitError`."""
    search_path = [str(target.plan.parent), str(PACKAGES_ROOT)]  # as the worker's RunSpec.search_path
    command = [sys.executable, "-m", "worker.describe", target.spec, *search_path]
    with tempfile.TemporaryDirectory(prefix="lumiprof-init-") as scratch:  # LumiBot may write logs into its cwd
        process = subprocess.Popen(
            command, cwd=scratch, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise InitError(f"importing {target.shown} took more than {timeout:g} s: stopped (see --import-timeout)") from None
        except BaseException:
            _kill_group(process)
            raise
    try:
        answer = orjson.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        tail = next((line for line in reversed(err.decode(errors="replace").splitlines()) if line.strip()), "")
        how = f"signal {-process.returncode}" if process.returncode < 0 else f"exit {process.returncode}"
        raise InitError(f"importing {target.shown} ended the interpreter ({how}){': ' + tail.strip() if tail else ''}")
    if not answer.get("ok"):
        kind, error = answer.get("kind"), str(answer.get("error", "")).strip()
        raise InitError({
            "import": f"{target.shown} does not import: {error}",
            "class": f"{target.shown} has no class {target.class_name!r}",
            "not_strategy": f"{target.shown}:{target.class_name} is {error}",
        }.get(str(kind), f"{target.shown}: {error}"))
    return answer


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """The import's whole process group (it may have started children of its own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def choose_data_source(scan: dict[str, Any], sleeptime: Any, live: bool) -> DataChoice:
    """A data source that serves what the strategy trades, offline unless ``live``.

    * ``--live``: LumiBot's DataBento source against the real DataBento (needs DATABENTO_API_KEY).
    * Futures only: the same DataBento code path against the local gateway, which serves
      synthetic CME minute bars for any root (``mode: local``).
    * Otherwise: LumiBot's pandas source over the same synthetic bars for the symbols found,
      daily bars for a ``sleeptime = "1D"`` strategy (minute bars would iterate every minute).
    * Nothing found: SPY, and a note saying so.
    """
    assets = [{"symbol": a["symbol"], "type": a.get("type") or "stock"} for a in scan.get("assets", [])]
    unnamed = list(scan.get("types_without_symbol", []))
    origin = f"found in the strategy's {scan['from']}" if scan.get("from") else ""
    types = {a["type"] for a in assets} | set(unnamed)
    if live:
        notes = [] if not assets or types <= set(FUTURES) else [
            "LumiBot's DataBento source serves CME futures: stocks need another data source (meta.data_source)"]
        return DataChoice({"kind": "databento", "mode": "live", "dataset": FUTURES_DATASET},
                          "DataBento live (set DATABENTO_API_KEY; downloads are billed to your key)", notes)
    if types and types <= set(FUTURES):
        named = ", ".join(a["symbol"] for a in assets) or "futures"
        return DataChoice({"kind": "databento", "mode": "local", "dataset": FUTURES_DATASET},
                          f"LumiBot's DataBento path against the local gateway: synthetic CME minute bars for {named}"
                          f"{' (' + origin + ')' if origin else ''}")
    notes = []
    if not assets:
        assets = [dict(FALLBACK_ASSET)]
        notes.append("could not tell which symbols the strategy trades: using SPY; "
                     "list yours in meta.data_source.assets")
    elif any(kind in FUTURES for kind in unnamed):
        notes.append("the strategy also builds futures whose symbol the scan could not read: "
                     "add them to meta.data_source.assets")
    timestep = "day" if is_daily(sleeptime) else "minute"
    if timestep == "day":
        assets = [{**asset, "timestep": "day"} for asset in assets]
    named = ", ".join(f"{a['symbol']} ({a['type']})" for a in assets)
    return DataChoice({"kind": "pandas_synthetic", "assets": assets},
                      f"synthetic {timestep} bars for {named}{', ' + origin if origin else ''}", notes)


def with_invariants(parameters: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The class's parameters with the parameter invariants set, as the repository's plan has them."""
    applied = dict(parameters)
    notes = []
    for key in PARAMETER_INVARIANTS:
        wanted = INVARIANTS[key]
        if key in applied and applied[key] != wanted:
            notes.append(f"{key} is {applied[key]!r} in the class: the plan sets it to {wanted!r} (a profiling invariant)")
        applied[key] = wanted
    return applied, notes


def exists(target: Target) -> str:
    return f"{target.plan} already exists: not overwritten (remove it, or choose another --plan)"


def write(target: Target, plan: dict[str, Any]) -> None:
    try:
        validate(plan, "the new plan")
    except PlanError as exc:  # a bug here, or a parameter value the schema refuses
        raise InitError(str(exc)) from None
    try:
        atomic_create_bytes(target.plan, encode(plan))
    except FileExistsError:
        raise InitError(exists(target)) from None
    except OSError as exc:
        raise InitError(f"cannot write {target.plan}: {exc.strerror or exc}") from None


def next_command(prog: str, plan: Path) -> str:
    """What to type next, from the current folder."""
    shown = os.path.relpath(plan)
    if shown.startswith(".."):
        shown = str(plan)
    flag = "" if shown == PLAN_NAME else f" --plan {shown}"
    return f"{prog} run{flag} && {prog} report{flag}"


def summary(target: Target, plan: dict[str, Any], found: dict[str, Any], data: DataChoice, notes: list[str], prog: str,
            seconds: float) -> list[str]:
    """What was written and why, and the command to type next."""
    runs = plan["runs"]
    phase0 = sum(run["label"].startswith("cache_probe") for run in runs)
    labels = ", ".join(sorted({run["label"] for run in runs if not run["label"].startswith("cache_probe")}))
    class_name = found["class"].rsplit(".", 1)[-1]
    return [
        f"wrote {target.plan} for {found['class']} ({seconds:.1f} s to import it)",
        f"  windows: {len(runs)} ({f'{phase0} Phase 0 cache probe, ' if phase0 else 'no Phase 0, '}"
        f"{len(runs) - phase0} Phase 1: {labels})",
        f"  parameters: {len(found['parameters'])} from {class_name}.parameters"
        f" + the invariants {', '.join(PARAMETER_INVARIANTS)}",
        f"  data: {data.why}",
        *(f"  note: parameter {name} ({kind}) cannot be written in JSON: the class's own value applies"
          for name, kind in (found.get("skipped") or {}).items()),
        *(f"  note: {note}" for note in [*notes, *data.notes]),
        f"next: {next_command(prog, target.plan)}",
    ]


def build_parser(prog: str) -> argparse.ArgumentParser:
    from supervisor.cli import OneLineParser, checked
    from supervisor.schema import SECONDS

    parser = OneLineParser(
        prog=f"{prog} init",
        description="Write profiling_plan.json for your own LumiBot strategy: the spec's windows (or two short ones), "
        "its parameters with the profiling invariants, and offline data for the symbols it trades.",
    )
    parser.add_argument("strategy", metavar="STRATEGY",
                        help="path/to/my_strategy.py:MyStrategy (plan beside the file) or package.module:MyStrategy "
                             "(plan in the current folder)")
    parser.add_argument("--windows", choices=tuple(WINDOW_SETS), default="spec",
                        help="spec: Phase 0 and the spec's nine windows (default); short: two 2-day windows, "
                             "no Phase 0, for a first look in about a minute")
    parser.add_argument("--live", action="store_true",
                        help="DataBento live data (needs DATABENTO_API_KEY) instead of the offline synthetic bars")
    parser.add_argument("--plan", type=Path,
                        help=f"where to write the plan, a file or a folder (default: {PLAN_NAME} as above)")
    parser.add_argument("--import-timeout", type=checked(SECONDS), default=IMPORT_TIMEOUT, metavar="S",
                        help="seconds the strategy's import may take (default %(default)g)")
    return parser


def main(argv: list[str], prog: str) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        target = parse_target(args.strategy, args.plan)
        if target.plan.exists():  # checked again, race-free, when the file is created
            raise InitError(exists(target))
        if not target.plan.parent.is_dir():
            raise InitError(f"{target.plan.parent}: no such folder")
        started = time.monotonic()
        found = describe(target, args.import_timeout)
        seconds = time.monotonic() - started
        parameters, notes = with_invariants(found["parameters"])
        data = choose_data_source(found["scan"], found.get("sleeptime"), args.live)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        plan = build_plan(target.spec, parameters, data.source, windows=args.windows, created_utc=created)
        write(target, plan)
    except InitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from supervisor.cli import _print

    _print("\n".join(summary(target, plan, found, data, notes, prog, seconds)))
    return 0
