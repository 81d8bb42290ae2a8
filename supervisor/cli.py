"""``python -m supervisor``: run the plan, show the queue, reset it, report on it.

Exit codes: 0 all selected runs done, 1 some run ended in ``error``, 2 bad input (plan file
or command line), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from supervisor.plan import PlanError, PlanStore

COMMANDS = ("run", "status", "reset", "report", "gateway")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supervisor",
        description="Profile LumiBot backtests with yappi wall-clock timing, one fresh worker per run.",
    )
    parser.add_argument("command", nargs="?", default="run", choices=COMMANDS, help="default: run")
    parser.add_argument("--plan", type=Path, default=Path("profiling_plan.json"), help="plan file (default: %(default)s)")
    parser.add_argument("--only", metavar="SELECTOR", help="phase0, phase1, a label (week, month, ...) or a run id")
    parser.add_argument("--timeout", type=float, help="wall-time limit per run in seconds (overrides the plan)")
    parser.add_argument("--retry-errors", action="store_true", help="put entries in 'error' back in the queue first")
    parser.add_argument("--data-mode", choices=("local", "live"), help="DataBento mode (overrides meta.data_source.mode)")
    parser.add_argument("--mode", choices=("single", "preload", "two_pass"), help="Phase 1 mode (overrides Phase 0's decision)")
    parser.add_argument("--compare", type=Path, metavar="OTHER_PLAN", help="report: compare with another plan's results")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds a stopped worker gets to save (default 10)")
    parser.add_argument("--quiet", action="store_true", help="one line per run, no progress display")
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=15.0,
        metavar="S",
        help="seconds between progress lines when stdout is not a terminal (default 15)",
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.timeout is not None and args.timeout <= 0:
        print("error: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    if not args.progress_interval > 0:
        print("error: --progress-interval must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        from supervisor.executors import check_options

        check_options(args.executor, args.address, args.slots)
        store = PlanStore(args.plan)
        if args.command == "status":
            from supervisor.status import render_status

            plan = store.read()
            print(render_status(plan, store.resolve(plan["meta"]["output_dir"])))
            return 0
        if args.command == "reset":
            from supervisor.status import reset

            for line in reset(store, args.only):
                print(line)
            return 0
        if args.command == "gateway":
            from supervisor.gatewaycmd import serve_foreground

            return serve_foreground(store)
        if args.command == "report":
            from report.write import write_comparison, write_report

            print(write_comparison(store, PlanStore(args.compare)) if args.compare else write_report(store))
            return 0
        from supervisor.session import Options, Session

        options = Options(
            selector=args.only,
            timeout=args.timeout,
            retry_errors=args.retry_errors,
            data_mode=args.data_mode,
            mode=args.mode,
            grace=args.grace,
            quiet=args.quiet,
            progress_interval=args.progress_interval,
            executor=args.executor,
            address=args.address,
            slots=args.slots,
        )
        return Session(store, options).run()
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
