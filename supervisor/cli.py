"""``lumiprof`` (or ``python -m supervisor``): write a plan, run it, show the queue, reset it, report on it.

``lumiprof init`` and ``lumiprof compare`` take positional arguments of their own, so they are
dispatched before the main parser; every other command shares its flags.

Exit codes: 0 all selected runs done, 1 some run ended in ``error``, 2 bad input (plan file
or command line), 3 nothing left to claim but entries still running under another
supervisor, 130 interrupted. Bad input is always one line on stderr and an untouched file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from supervisor.plan import PlanError, PlanStore
from supervisor.schema import GRACE, SECONDS, Check, SchemaError

COMMANDS = ("run", "status", "reset", "report", "gateway")
#: The distribution name in the package metadata (``pyproject.toml``'s ``[project] name``).
DISTRIBUTION = "lumibot-yappi-profiler"
EPILOG = """other commands:
  init STRATEGY [--windows short] [--live]   write profiling_plan.json for your strategy
                                             (path/to/file.py:Class or package.module:Class; see init --help)
  compare BEFORE AFTER                       write COMPARE.md of two plans (same as report --compare)"""


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage block before an error; a bad flag is one line like any bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def checked(check: Check) -> Callable[[str], float]:
    """An argparse type that applies the same schema check as the plan's own field."""

    def convert(raw: str) -> float:
        try:
            value = float(raw)
            check(value)
        except ValueError as exc:  # SchemaError is a ValueError
            message = str(exc) if isinstance(exc, SchemaError) else f"not a number: {raw!r}"  # argparse names the flag
            raise argparse.ArgumentTypeError(message) from None
        return value

    return convert


def program_name() -> str:
    """``lumiprof`` when started by the installed command, else the module form it was started as."""
    return "lumiprof" if Path(sys.argv[0]).name == "lumiprof" else "python -m supervisor"


def version_line() -> str:
    """This project's version and the measured libraries', from the installed package metadata.

    Read lazily (only for ``--version``): scanning the metadata of a large environment is not free.
    """
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"lumiprof {of(DISTRIBUTION)} (LumiBot {of('lumibot')}, yappi {of('yappi')})"


class VersionAction(argparse.Action):
    """``--version``: print :func:`version_line` and exit 0."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        _print(version_line())  # stdout, as `--version` everywhere (parser.exit would write to stderr)
        parser.exit(0)


def build_parser(prog: str = "python -m supervisor") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Profile LumiBot backtests with yappi wall-clock timing, one fresh worker per run.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    parser.add_argument("command", nargs="?", default="run", choices=COMMANDS, help="default: run")
    parser.add_argument("--plan", type=Path, default=Path("profiling_plan.json"), help="plan file (default: %(default)s)")
    parser.add_argument("--only", metavar="SELECTOR", help="phase0, phase1, a label (week, month, ...) or a run id")
    parser.add_argument(
        "--timeout", type=checked(SECONDS), help="wall-time limit per run in seconds (overrides the plan)"
    )
    parser.add_argument("--retry-errors", action="store_true", help="put entries in 'error' back in the queue first")
    parser.add_argument("--data-mode", choices=("local", "live"), help="DataBento mode (overrides meta.data_source.mode)")
    parser.add_argument("--mode", choices=("single", "preload", "two_pass"), help="Phase 1 mode (overrides Phase 0's decision)")
    parser.add_argument(
        "--repeats", type=int, metavar="N", help="fresh worker passes per entry (overrides meta.repeats, meta.phase0_repeats)"
    )
    parser.add_argument("--compare", type=Path, metavar="OTHER_PLAN", help="report: compare with another plan's results")
    parser.add_argument(
        "--grace", type=checked(GRACE), default=10.0, help="seconds a stopped worker gets to save (default 10)"
    )
    parser.add_argument("--quiet", action="store_true", help="one line per run, no progress display")
    parser.add_argument(
        "--progress-interval",
        type=checked(SECONDS),
        default=15.0,
        metavar="S",
        help="seconds between progress lines when stdout is not a terminal (default 15)",
    )
    parser.add_argument(
        "--force", metavar="ID", action="append",
        help="reset: take over this running entry although its owner cannot be proven dead (another host, no create time)",
    )
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local",
        help="where workers run: 'local' child processes (default) or tasks on a Ray cluster (needs .[cluster])",
    )
    parser.add_argument(
        "--address", metavar="ADDR", help="Ray cluster to join (host:port of its head); default: start a local one"
    )
    parser.add_argument(
        "--slots", type=int, metavar="N",
        help="profiling slots of the local Ray cluster started without --address (default 1: one run at a time)",
    )
    return parser


_CONSOLE = threading.Lock()
"""One line at a time: lanes (``--executor ray``) finish side by side, and ``print`` writes the
text and its newline separately, so two result lines could run into one."""


def _print(text: str) -> None:
    """Console output that survives a closed pipe (``status | head -1``) or a hung-up terminal (EIO
    after SIGHUP): the rest of the output is dropped, the work goes on."""
    try:
        with _CONSOLE:
            print(text, flush=True)
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail too


def _warn(text: str) -> None:
    """Errors and warnings: stderr, one line each (progress and results stay on stdout)."""
    with contextlib.suppress(OSError), _CONSOLE:  # a closed stderr must not stop the queue either
        print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = program_name()
    if argv[:1] == ["init"]:
        from supervisor.initcmd import main as init_main

        return init_main(argv[1:], prog)
    if argv[:1] == ["compare"]:
        return _compare(argv[1:], prog)
    args = build_parser(prog).parse_args(argv)
    if args.force and args.command != "reset":
        print("error: --force is only for `reset`", file=sys.stderr)
        return 2
    if args.repeats is not None and args.repeats < 1:
        print("error: --repeats must be a whole number >= 1", file=sys.stderr)
        return 2
    try:
        from supervisor.executors import check_options

        check_options(args.executor, args.address, args.slots)
        store = PlanStore(args.plan)
        plan = store.read()  # every command rejects a bad plan first, before anything is imported or changed
        if args.command == "status":
            from supervisor.status import render_status

            _print(render_status(plan, store.resolve(plan["meta"]["output_dir"])))
            return 0
        if args.command == "reset":
            from supervisor.status import reset

            for line in reset(store, args.only, force=args.force or ()):
                _print(line)
            return 0
        if args.command == "gateway":
            from supervisor.gatewaycmd import serve_foreground

            return serve_foreground(store)
        if args.command == "report":
            return _report(store, args.compare)
        from supervisor.session import Options, Session

        options = Options(
            selector=args.only,
            timeout=args.timeout,
            retry_errors=args.retry_errors,
            data_mode=args.data_mode,
            mode=args.mode,
            repeats=args.repeats,
            grace=args.grace,
            quiet=args.quiet,
            progress_interval=args.progress_interval,
            executor=args.executor,
            address=args.address,
            slots=args.slots,
            after_result=_live_report(store),
        )
        return Session(store, options, echo=_print, warn=_warn).run()
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def plan_path(given: Path) -> Path:
    """A plan file, or a folder holding ``profiling_plan.json``."""
    return given / "profiling_plan.json" if given.is_dir() else given


def _compare(argv: list[str], prog: str) -> int:
    """``compare BEFORE AFTER``: ``report --plan AFTER --compare BEFORE``; COMPARE.md lands beside AFTER's report."""
    parser = OneLineParser(
        prog=f"{prog} compare",
        description="Compare two profiled plans: which windows changed beyond their noise, and which functions moved. "
        "Writes COMPARE.md into AFTER's output folder.",
    )
    parser.add_argument("before", type=Path, help="the baseline plan (a plan file, or a folder holding profiling_plan.json)")
    parser.add_argument("after", type=Path, help="the plan to compare with it")
    args = parser.parse_args(argv)
    try:
        store = PlanStore(plan_path(args.after))
        store.read()
        return _report(store, args.before)
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _live_report(store: PlanStore) -> Callable[[], str]:
    """REPORT.md rewritten after every finished run (the CLI is where the queue may reach the report)."""
    from report.live import rewriter

    return rewriter(store)


def _report(store: PlanStore, compare: Path | None) -> int:
    other = PlanStore(plan_path(compare)) if compare else None
    if other is not None:
        other.read()
    from report.write import write_comparison, write_report

    try:
        _print(write_comparison(store, other) if other is not None else write_report(store))
    except OSError as exc:
        print(f"error: cannot write the report: {exc}", file=sys.stderr)
        return 1
    return 0
