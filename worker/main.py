"""``python -m worker``: read one run spec on stdin, run it, print one JSON answer on stdout.

The order of operations matters and is the point of this module: protect stdout, tie the
process to its supervisor, neutralise the environment, and only then import LumiBot.
A SIGTERM (time-out, supervisor shutdown) stops yappi and saves a partial profile, because
a hang is exactly what a user wants to see profiled.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import signal
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from common.lifetime import tie_to_parent
from worker.browser import BrowserSuppressor
from worker.fingerprint import fingerprint
from worker.isolation import StdoutGuard, prepare_environment
from worker.netguard import NetworkGuard
from worker.progress import ProgressWriter, instrument
from worker.protocol import Answer, RunSpec
from worker.subreaper import become_subreaper, end_descendants

_VERSIONED = ("lumibot", "yappi", "databento", "pandas", "polars", "numpy")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def count_cache_files(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.parquet")) if folder.exists() else 0


class Run:
    """State of the one run this process exists for, finishable from a signal handler."""

    def __init__(self, spec: RunSpec, guard: StdoutGuard) -> None:
        from worker.memory import MemoryCapture
        from worker.profiler import WallProfile

        self.spec = spec
        self.guard = guard
        self.t_process = time.perf_counter()
        self.answer = Answer(id=spec.id, versions=versions())
        self.netguard = NetworkGuard()
        self.browser = BrowserSuppressor()
        self.profile = WallProfile(enabled=spec.profile)
        self.memory = MemoryCapture(spec.memory, Path(spec.output_dir), spec.stem)
        self.progress = ProgressWriter(Path(spec.work_dir), enabled=spec.progress)
        self.prepared: Any = None
        self.started = False
        self.strategy: Any = None
        self._finishing = threading.Lock()

    @property
    def cache_folder(self) -> Path:
        return Path(self.spec.cache_folder)

    def execute(self) -> None:
        from worker import backtest

        spec, answer = self.spec, self.answer
        self.progress.phase("starting")
        answer.environment = prepare_environment(self.cache_folder)
        self.memory.prepare()
        self.browser.install()
        if spec.data_source.get("mode", "local") == "local":
            self.netguard.arm()
        answer.cache_files_before = count_cache_files(self.cache_folder)
        prepared = self.prepared = backtest.prepare(spec)
        answer.parameters_hash = backtest.parameters_hash(prepared.parameters)
        answer.backtest_options = backtest.backtest_kwargs(prepared, spec)
        if spec.progress:
            instrument(prepared.strategy_class, self.progress)
        self.progress.phase("backtest")
        self.started = True
        self.profile.start()
        self.memory.start()
        try:
            strategy = backtest.run(prepared, spec)
        finally:
            self.memory.stop()
            self.profile.stop()
        self.strategy = strategy
        answer.invariants_in_effect = backtest.invariants_in_effect(strategy, prepared, Path(spec.work_dir))
        answer.sleeptime, answer.sleeptime_seconds = backtest.sleeptime_seconds(strategy)
        answer.ok = True
        counter = prepared.counter
        if counter.any_calls and not counter.any_bars:
            answer.ok = False
            answer.error_kind = "no_data"
            answer.error = (
                f"backtest finished but no bars reached the strategy ({counter.any_calls} history requests came back empty)"
            )

    def finish(self, partial: bool = False) -> None:
        """Stop the clock, save the profile, emit the answer. Runs once, whoever calls it."""
        if not self._finishing.acquire(blocking=False):
            return
        spec, answer = self.spec, self.answer
        if self.started:
            from worker.profiler import ProfileFiles

            self.memory.stop()
            self.profile.stop()
            self.progress.phase("finishing")
            answer.wall_seconds_total = self.profile.wall_seconds
            answer.cpu_seconds = self.profile.cpu_seconds
            prepared = self.prepared
            try:
                answer.files = self.profile.save(ProfileFiles.for_stem(Path(spec.output_dir), spec.stem))
                if self.profile.func_stats is not None:
                    from worker import phases

                    answer.iterations = self.profile.call_count(prepared.iteration_method)
                    answer.phases = phases.split(self.profile.func_stats, answer.wall_seconds_total, partial)
                    if not partial:
                        from common.attribution import owner_table_from_yappi

                        answer.time_by_owner = owner_table_from_yappi(
                            ((st.module, st.name, float(st.tsub)) for st in self.profile.func_stats), answer.wall_seconds_total)
            except Exception as exc:  # a failed save must not swallow the answer itself
                answer.ok = False
                answer.error_kind = answer.error_kind or "backtest"
                answer.error = answer.error or f"saving the profile failed: {type(exc).__name__}: {exc}"
            if self.strategy is not None:  # a finished backtest; a partial one has no final state
                # The progress counter counts iterations the same way with and without yappi, so a
                # profiled and an unprofiled pass of one window fingerprint alike.
                counted = self.progress.iterations if spec.progress else answer.iterations
                answer.fingerprint = fingerprint(self.strategy, Path(spec.work_dir), counted)
            counter = prepared.counter
            answer.bars_served, answer.history_calls = counter.bars_served, counter.history_calls
            answer.internal_bars_served = counter.internal_bars_served
            answer.internal_history_calls = counter.internal_history_calls
            from worker.backtest import lumibot_outputs

            answer.lumibot_outputs = lumibot_outputs(Path(spec.work_dir))
            answer.memory = self.memory.record()
            if answer.memory is not None and answer.memory["capture"]:
                answer.files["memory_capture"] = answer.memory["capture"]  # so an executor on another node brings it back
        answer.browser = self.browser.record()
        answer.partial = partial
        answer.network_refused = list(self.netguard.refused)
        answer.cache_files_after = count_cache_files(self.cache_folder)
        answer.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
        answer.worker_seconds = time.perf_counter() - self.t_process
        self.guard.emit(orjson.dumps(answer.to_json(), default=str))

    def on_sigterm(self, signum: int, _frame: FrameType | None) -> None:
        elapsed = time.perf_counter() - self.t_process
        self.answer.ok = False
        self.answer.error_kind = "terminated"
        self.answer.error = f"terminated by {signal.Signals(signum).name} after {elapsed:.1f} s"
        self.finish(partial=self.started)
        end_descendants()
        os._exit(128 + signum)


#: Exception types (by name, so no client library is imported) that mean "try again later".
_TRANSIENT_NAMES = frozenset(
    {"ConnectTimeout", "ReadTimeout", "ChunkedEncodingError", "RemoteDisconnected", "BentoServerError", "ProxyError"}
)


def classify(exc: BaseException) -> str:
    """``transient`` for network and provider-side failures anywhere in the cause chain, else ``backtest``.

    Only transient failures are retried by the supervisor; a strategy bug is not retried silently.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionError | TimeoutError) or type(seen).__name__ in _TRANSIENT_NAMES:
            return "transient"
        seen = seen.__cause__ or seen.__context__
    return "backtest"


def read_spec(source: str) -> RunSpec:
    raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    try:
        return RunSpec.from_json(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"run spec is not valid JSON: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    guard = StdoutGuard()
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--spec", default="-", help="run spec JSON file, '-' for stdin (default)")
    args = parser.parse_args(argv)
    try:
        spec = read_spec(args.spec)
    except (OSError, ValueError) as exc:
        answer = Answer(id="?", error_kind="config", error=str(exc))
        guard.emit(orjson.dumps(answer.to_json()))
        return 2
    tie_to_parent(spec.supervisor_pid)
    become_subreaper()
    Path(spec.work_dir).mkdir(parents=True, exist_ok=True)
    os.chdir(spec.work_dir)
    run = Run(spec, guard)
    signal.signal(signal.SIGTERM, run.on_sigterm)
    signal.signal(signal.SIGINT, run.on_sigterm)
    from worker.backtest import WorkerFailure

    try:
        run.execute()
    except WorkerFailure as exc:
        run.answer.error_kind, run.answer.error = exc.kind, str(exc)
    except Exception as exc:
        run.answer.error_kind = classify(exc)
        run.answer.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        import traceback

        traceback.print_exc()
    run.finish()
    # LumiBot can leave non-daemon threads behind; the answer is out, so do not wait on them.
    sys.stderr.flush()
    end_descendants()
    os._exit(0 if run.answer.ok else 1)
