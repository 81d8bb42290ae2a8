"""One supervisor session: recover, then claim, spawn, record, until the selection is done.

Data flows one way: plan -> claim -> spawn -> worker JSON -> result -> plan. Each run gets
a fresh worker process, its own working directory (LumiBot writes ``./logs``) and its own
cache folder, so nothing warm leaks from one window into the next.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from supervisor import claims
from supervisor.claims import BLOCKED, Claim, Owner
from supervisor.eta import Estimator
from supervisor.executors import Executor, Job, Ran, cache_node, open_executor, plan_key
from supervisor.gitinfo import git_revision
from supervisor.lanes import run_lanes
from supervisor.phase0 import phase1_mode, summarize
from supervisor.plan import PHASE0_LABELS, Plan, PlanStore, Run, phase_of
from supervisor.progress import LiveDisplay, Monitor, PlainDisplay, Watched, choose_display
from supervisor.provider import ProviderError, Usage
from supervisor.results import build_result, relative_files
from supervisor.runner import Interrupted, Outcome
from worker.protocol import RunSpec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 1800.0
TRANSIENT_RETRIES = 2


@dataclass
class Options:
    selector: str | None = None
    timeout: float | None = None
    retry_errors: bool = False
    data_mode: str | None = None
    mode: str | None = None
    grace: float = 10.0
    poll_seconds: float = 1.0
    quiet: bool = False
    progress_interval: float = 15.0
    executor: str = "local"
    address: str | None = None
    slots: int | None = None


def cache_state(usage: Usage, before: int | None, after: int | None) -> str:
    """``cold``: everything downloaded into an empty cache; ``warm``: nothing downloaded;
    ``mixed``: downloads on top of an existing cache; ``n/a`` when nothing can tell.

    The local gateway counts downloads; for the real DataBento, new cache files stand in.
    """
    if usage.requests is not None:
        downloads = usage.by_schema.get("ohlcv-1m", 0)
    elif before is None or after is None or not (before or after):
        return "n/a"
    else:
        downloads = after - before
    if downloads == 0:
        return "warm"
    return "cold" if not before else "mixed"


@dataclass
class Pass:
    """One worker process's part of an entry (the profiled run, or a preload/warm-up pass)."""

    stem: str
    outcome: Outcome
    usage: Usage
    status: str
    notes: list[str]
    transient_retries: int
    node: dict[str, Any]

    def fields(self) -> dict[str, Any]:
        answer = self.outcome.answer or {}
        return {
            **self.node,
            "cache_state": cache_state(self.usage, answer.get("cache_files_before"), answer.get("cache_files_after")),
            "gateway_requests": self.usage.requests,
            "gateway_bytes": self.usage.bytes,
            "gateway_requests_by_schema": self.usage.by_schema,
            "transient_retries": self.transient_retries,
        }

    def summary(self, store: PlanStore) -> dict[str, Any]:
        """What the result records about a warm-up or preload pass."""
        answer = self.outcome.answer or {}
        files = relative_files(store, answer)
        return {"stem": self.stem, "status": self.status, "wall_seconds_total": answer.get("wall_seconds_total"),
                "cpu_seconds": answer.get("cpu_seconds"), "profiled": bool(files), "files": files, **self.fields()}


class Session:
    """Runs the selected entries of one plan file; ``run`` returns the process exit code."""

    def __init__(self, store: PlanStore, options: Options, echo: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.options = options
        self.echo = echo or (lambda line: print(line, flush=True))
        self.owner = Owner()
        self.executor: Executor | None = None
        self.monitor = Monitor(choose_display(options.quiet, options.progress_interval, self.echo))
        self._lane_state = threading.local()

    @property
    def _watching(self) -> dict[str, Any]:
        """The running entry's estimates; one per lane, since lanes run entries side by side."""
        watching: dict[str, Any] = self._lane_state.watching
        return watching

    @_watching.setter
    def _watching(self, value: dict[str, Any]) -> None:
        self._lane_state.watching = value

    # -- set-up ---------------------------------------------------------------------------
    def _settings(self, plan: Plan) -> dict[str, Any]:
        settings = dict(plan["meta"]["data_source"])
        if self.options.data_mode:
            settings["mode"] = self.options.data_mode
        return settings

    def _output_dir(self, plan: Plan) -> Path:
        return self.store.resolve(plan["meta"]["output_dir"])

    def _cache_root(self, plan: Plan) -> Path:
        cache = plan["meta"].get("cache") or {}
        return self.store.resolve(cache.get("folder", Path(plan["meta"]["output_dir"]) / "cache"))

    def _pending_in_selection(self, plan: Plan) -> bool:
        return any(r["status"] == "pending" for r in claims.select(plan, self.options.selector))

    def _install_signals(self) -> None:
        """SIGTERM behaves like Ctrl-C: stop the current worker tree, give its entry back."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> int:
        plan = self.store.read()
        claims.select(plan, self.options.selector)  # an unknown selector fails before any change
        for line in claims.recover(self.store):
            self.echo(f"recovered  {line}")
        if self.options.retry_errors:
            self._requeue_errors()
        plan = self.store.read()
        if not self._pending_in_selection(plan):
            self.echo("nothing pending in this selection (see `python -m supervisor status`)")
            return 0
        self._check_phase1_can_run(plan)
        self._install_signals()
        settings = self._settings(plan)
        try:
            self.executor = self._open_executor(plan, settings)
            self._install_signals()  # again: ray.init replaces SIGTERM's handler with its own
            if self.executor.slots > 1 and isinstance(self.monitor.display, LiveDisplay):
                self.monitor = Monitor(PlainDisplay(self.echo, self.options.progress_interval))  # one bar at a time
            failures = run_lanes(lambda stop: self._lane(settings, stop), self.executor.slots, self.executor.interrupt)
        except KeyboardInterrupt:
            self.echo("interrupted: no entry left running; rerun the same command to continue")
            return 130
        except ProviderError as exc:
            self.echo(f"error: {exc}")
            return 1
        finally:
            if self.executor is not None:
                self.executor.close()
        return 1 if failures else 0

    def _open_executor(self, plan: Plan, settings: dict[str, Any]) -> Executor:
        return open_executor(
            self.options.executor, settings, self._output_dir(plan) / "gateway", int(plan["meta"]["random_seed_for_selection"]),
            self.owner.token, address=self.options.address, slots=self.options.slots,
            plan_key=plan_key(self.owner.host, self.store.path),
        )

    def _lane(self, settings: dict[str, Any], stop: threading.Event) -> int:
        """Claim and run entries until none is left (or ``stop``); returns how many did not end ``done``."""
        failures = 0
        while not stop.is_set():
            claim = claims.claim_next(self.store, self.options.selector, self.owner)
            if claim is None:
                break
            if claim == BLOCKED:
                time.sleep(self.options.poll_seconds)
                continue
            assert isinstance(claim, Claim)
            if self._run_claim(claim, settings) != "done":
                failures += 1
        return failures

    def _check_phase1_can_run(self, plan: Plan) -> None:
        """Fail before any change when Phase 1 would wait on a Phase 0 that is not going to run."""
        selected = claims.select(plan, self.options.selector)
        if self.options.mode or not any(r["status"] == "pending" and phase_of(r) == "phase1" for r in selected):
            return
        phase0_will_run = any(
            phase_of(r) == "phase0" and (r["status"] == "running" or (r["status"] == "pending" and r in selected))
            for r in plan["runs"]
        )
        if not phase0_will_run:
            phase1_mode(plan, None)  # raises with the reason unless a mode is configured or decided

    def _requeue_errors(self) -> None:
        with self.store.update() as plan:
            for run in claims.select(plan, self.options.selector):
                if run["status"] == "error":
                    run["status"] = "pending"
                    run["note"] = f"requeued by --retry-errors {claims.utc_now()}"

    def _run_claim(self, claim: Claim, settings: dict[str, Any]) -> str:
        """Run one claimed entry to a final state, in the Phase 1 mode if it is a Phase 1 entry."""
        plan = self.store.read()
        run = claim.run
        self._watching = self._estimates(plan, run)
        cache = self._cache_folder(plan, run)
        if run["label"] != PHASE0_LABELS[1]:
            shutil.rmtree(cache, ignore_errors=True)  # every run but the warm probe starts cold
        mode = None if phase_of(run) == "phase0" else phase1_mode(plan, self.options.mode)
        extra: dict[str, Any] = {"attempt": claim.attempt, "data_source": dict(settings)}
        notes: list[str] = []
        first: Pass | None = None
        if mode in ("preload", "two_pass"):
            first = self._pass(plan, run, settings, cache, claim, profile=mode == "two_pass",
                               stem=f"{run['id']}.{'preload' if mode == 'preload' else 'pass1'}")
        if first is not None and first.status != "done":
            main, status = first, "error"
            notes.append(f"{mode} pass failed, profiled pass not run")
        else:
            main = self._pass(plan, run, settings, cache, claim, profile=True, stem=run["id"])
            status = main.status
        if mode is not None:
            extra["phase1_mode"] = mode
            notes.append({"single": "", "preload": "preloaded", "two_pass": "cache-warm pass (second of two)"}[mode])
        result = build_result(
            self.store,
            run,
            main.outcome,
            invariants=plan["invariants"],
            git=git_revision(PROJECT_ROOT, (self.store.path,)),
            stderr_log=self._stderr_path(self._output_dir(plan), main.stem),
            notes=[*main.notes, *notes],
            extra={**extra, **main.fields(), "status": status},
        )
        if first is not None and first is not main:
            if mode == "preload":
                result["preload_seconds"] = (first.outcome.answer or {}).get("wall_seconds_total")
                if isinstance(result["wall_seconds_total"], float) and isinstance(result["preload_seconds"], float):
                    result["wall_seconds_no_download"] = result["wall_seconds_total"] - result["preload_seconds"]
            result["warmup"] = first.summary(self.store)
        result["entry_seconds"] = round(time.monotonic() - self._watching["began"], 3)
        if not claims.finish(self.store, run["id"], self.owner, status, result):
            self.echo(f"{run['id']:<24} lost ownership; result not written (another supervisor recovered it)")
            return "lost"
        wall = result["wall_seconds_total"]
        wall_text = f"{wall:8.2f} s" if isinstance(wall, float) else "       - s"
        reason = f"  {result['notes']}" if status == "error" else ""
        self.echo(f"{run['id']:<24} {status:<6} {wall_text}  {result['cache_state']:<5} {mode or ''}{reason}")
        if phase_of(run) == "phase0":
            summary = summarize(self.store)
            if summary is not None:
                self.echo(f"phase0 decision: {summary['decision']} ({summary['reason']})")
        return status

    def _estimates(self, plan: Plan, run: Run) -> dict[str, Any]:
        """What the progress display needs before the worker says anything: this entry's
        estimate and that of the selection's other pending entries."""
        estimator = Estimator.from_plan(plan)
        rest = [r for r in claims.select(plan, self.options.selector) if r["status"] == "pending" and r["id"] != run["id"]]
        rest_seconds, rest_unknown = estimator.total(rest)
        return {"estimate": estimator.entry(run), "rest_seconds": rest_seconds, "rest_unknown": rest_unknown,
                "began": time.monotonic()}

    def _pass(
        self, plan: Plan, run: Run, settings: dict[str, Any], cache: Path, claim: Claim, *, profile: bool, stem: str
    ) -> Pass:
        """One worker pass over the entry's dates; transient failures are retried, bounded."""
        assert self.executor is not None
        try:
            self.executor.check()
        except ProviderError as exc:
            return Pass(stem, Outcome(None, None, 0.0, problem=str(exc)), Usage(), "error", [str(exc)], 0, {})
        retries: list[str] = []
        for attempt in range(1, TRANSIENT_RETRIES + 2):
            token = f"{stem}.{self.owner.token}.{claim.attempt}.{attempt}"
            spec = self._spec(plan, run, settings, cache, profile, stem)
            ran = self._spawn(plan, run, spec, token)
            if (ran.outcome.answer or {}).get("error_kind") == "transient" and attempt <= TRANSIENT_RETRIES:
                retries.append(f"attempt {attempt}: {ran.outcome.problem}")
                continue
            break
        status, notes = self._judge(ran.outcome, ran.usage, settings)
        moved = [f"node failure: {line}" for line in ran.node.get("node_failures", [])]
        return Pass(stem, ran.outcome, ran.usage, status, [*notes, *retries, *moved], len(retries), ran.node)

    def _judge(self, outcome: Outcome, usage: Usage, settings: dict[str, Any]) -> tuple[str, list[str]]:
        """Final status and notes. Data must have really arrived: LumiBot exits 0 without it."""
        notes: list[str] = []
        refused = sorted(set(usage.refused) | set((outcome.answer or {}).get("network_refused") or []))
        if refused:
            notes.append(f"network guard refused: {', '.join(refused)}")
        if outcome.problem:
            return "error", [outcome.problem, *notes]
        answer = outcome.answer or {}
        if settings.get("kind") == "databento" and usage.requests is not None:
            downloads = usage.by_schema.get("ohlcv-1m", 0)
            if downloads == 0 and not answer.get("cache_files_before"):
                return "error", ["no data arrived: the gateway served no bars and the cache was empty", *notes]
        return "done", notes

    # -- per-run plumbing -----------------------------------------------------------------
    def _cache_folder(self, plan: Plan, run: Run) -> Path:
        """Phase 0's two probes share one folder (that is the point); every other run has its own."""
        key = "phase0" if run["label"] in PHASE0_LABELS else run["id"]
        return self._cache_root(plan) / key

    @staticmethod
    def _stderr_path(output_dir: Path, run_id: str) -> Path:
        return output_dir / f"{run_id}.stderr.log"

    def _spec(self, plan: Plan, run: Run, settings: dict[str, Any], cache: Path, profile: bool, stem: str) -> RunSpec:
        meta = plan["meta"]
        output_dir = self._output_dir(plan)
        return RunSpec(
            id=run["id"],
            start=run["start"],
            end=run["end"],
            label=run["label"],
            strategy=meta["strategy"],
            parameters=dict(meta.get("strategy_parameters") or {}),
            invariants=dict(plan["invariants"]),
            data_source=settings,
            output_dir=str(output_dir),
            work_dir=str(output_dir / "work" / stem),
            output_stem=stem,
            cache_folder=str(cache),
            search_path=[str(self.store.folder), str(PROJECT_ROOT)],
            budget=float(meta.get("budget", 100_000)),
            seed=int(meta["random_seed_for_selection"]),
            profile=profile,
            supervisor_pid=os.getpid(),
        )

    def _timeout(self, plan: Plan, run: Run) -> float:
        if self.options.timeout:
            return self.options.timeout
        return float(run.get("timeout_seconds") or plan["meta"].get("timeout_seconds") or DEFAULT_TIMEOUT)

    def _spawn(self, plan: Plan, run: Run, spec: RunSpec, token: str) -> Ran:
        assert self.executor is not None

        def on_spawn(pid: int, create_time: float | None) -> None:
            claims.record_worker(self.store, run["id"], self.owner, pid, create_time)

        job = Job(spec, token, self._timeout(plan, run), self.options.grace, self._stderr_path(Path(spec.output_dir), spec.stem),
                  on_spawn, cache_key=Path(spec.cache_folder).name, cache_node=cache_node(plan, run))
        watched = Watched(run["id"], run["start"], run["end"], Path(spec.work_dir), **self._watching)
        try:
            with self.monitor.watch(watched):
                ran = self.executor.run(job)
        except Interrupted:
            note = f"interrupted {claims.utc_now()}: supervisor stopped by a signal; worker tree stopped"
            claims.release(self.store, run["id"], self.owner, note)
            self.echo(f"{run['id']:<24} pending (interrupted, worker stopped)")
            raise KeyboardInterrupt from None
        return ran
