"""The passes of one entry: one mechanism for every way a worker runs the window.

An entry's window runs as up to four fresh workers: a preload or cache-warming pass (Phase 1's
``preload`` and ``two_pass`` modes), the **profiled** pass (yappi inside the worker), the
cross-check's **sampled** pass (no yappi; py-spy attached from outside) and the **memory** pass
(memray inside the worker). They differ only in how the worker is wrapped (:class:`PassKind`,
plus an outside sampler) and in what comes back; spawning, retries, the time-out, the progress
display and the judgement of a pass are the same code (:meth:`EntryPasses._pass`). The checks
(sampled, memory) start from the cache state the profiled pass started from, and each must be
the same backtest (fingerprint).

:class:`EntryPasses` is the session's half that runs passes; :class:`supervisor.session.Session`
keeps the queue (claim, group, record).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.sourcetree import checkout
from supervisor import claims, crosscheck, memory, specs
from supervisor.claims import Claim, Owner
from supervisor.eta import check_after
from supervisor.executors import Executor, Job, Ran, cache_node
from supervisor.gitinfo import git_revision
from supervisor.owned import fresh_dir, remove_owned
from supervisor.phase0 import phase1_mode
from supervisor.plan import PHASE0_LABELS, Plan, PlanError, PlanStore, Run, phase_of
from supervisor.progress import CHECK_PASS, FIRST_PASS, MEMORY_PASS, Monitor, Watched
from supervisor.provider import ProviderError, Usage
from supervisor.repeats import pass_stem
from supervisor.results import build_result, relative_files
from supervisor.runner import Interrupted, Outcome
from supervisor.stopping import StopRequest
from worker.protocol import RunSpec

DEFAULT_TIMEOUT = 1800.0
TRANSIENT_RETRIES = 2


@dataclass(frozen=True)
class PassKind:
    """How the worker of a pass is wrapped: yappi inside it, memray inside it, or neither."""

    profile: bool
    memory: str = ""


PROFILED = PassKind(profile=True)
UNPROFILED = PassKind(profile=False)
"""A preload pass, and the cross-check's pass (py-spy watches it from outside)."""
MEMORY = PassKind(profile=False, memory="memray")


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
    """One worker process's part of an entry (the profiled run, a preload/warm-up pass, or a check)."""

    stem: str
    outcome: Outcome
    usage: Usage
    status: str
    notes: list[str]
    transient_retries: int
    node: dict[str, Any] = field(default_factory=dict)
    """Where the pass ran (:class:`supervisor.executors.Ran`); empty for a pass that never started."""

    @property
    def answer(self) -> dict[str, Any]:
        return self.outcome.answer or {}

    def fields(self) -> dict[str, Any]:
        answer = self.answer
        return {
            **self.node,
            "cache_state": cache_state(self.usage, answer.get("cache_files_before"), answer.get("cache_files_after")),
            "gateway_requests": self.usage.requests,
            "gateway_bytes": self.usage.bytes,
            "gateway_requests_by_schema": self.usage.by_schema,
            "transient_retries": self.transient_retries,
        }

    def summary(self, store: PlanStore) -> dict[str, Any]:
        """What the result records about a pass other than the profiled one."""
        answer = self.answer
        files = relative_files(store, answer)
        return {"stem": self.stem, "status": self.status, "wall_seconds_total": answer.get("wall_seconds_total"),
                "cpu_seconds": answer.get("cpu_seconds"), "peak_rss_mb": answer.get("peak_rss_mb"),
                "profiled": "top_functions_csv" in files,
                "files": files, **self.fields()}


class EntryPasses:
    """Runs the passes of one entry; mixed into :class:`supervisor.session.Session`, which sets these."""

    store: PlanStore
    options: Any
    owner: Owner
    executor: Executor | None
    stop: StopRequest
    monitor: Monitor
    cross_check: crosscheck.CrossCheckConfig
    py_spy: tuple[str | None, str | None]
    echo: Callable[[str], None]
    warn: Callable[[str], None]
    _watching: dict[str, Any]

    def _give_back(self, run_id: str, when: str) -> None:
        raise NotImplementedError

    def _one_pass(self, plan: Plan, claim: Claim, settings: dict[str, Any], number: int, skip: str) -> dict[str, Any]:
        """One pass of an entry (with its preload or warm-up pass in those modes, and the checks
        beside it), as a result record."""
        run = claim.run
        began = self._watching["began"]
        stem = pass_stem(run["id"], number)
        out = specs.output_dir(self.store, plan)
        cache = specs.cache_folder(self.store, plan, run, number)
        sampled_cache = specs.cache_root(self.store, plan) / f"{run['id']}.sampled"
        memory_cache = specs.cache_root(self.store, plan) / f"{stem}.memory"
        # once per entry, beside the pass with the spec's files; never without a py-spy to sample it
        cross_check = self.cross_check.on and self.py_spy[0] is not None and number == 1
        uncovered = memory.covers(plan, run)
        if run["label"] != PHASE0_LABELS[1]:
            fresh_dir(cache)  # every pass but a warm probe pass starts cold
        mode = None if phase_of(run) == "phase0" else phase1_mode(plan, self.options.mode)
        extra: dict[str, Any] = {"attempt": claim.attempt, "data_source": dict(settings)}
        notes: list[str] = []
        first: Pass | None = None
        if mode in ("preload", "two_pass") and not skip:
            profiled = self._watching
            self._watching, after = self._first_pass_watch(profiled, unprofiled=mode == "preload")
            first = self._pass(plan, run, settings, cache, claim, PROFILED if mode == "two_pass" else UNPROFILED,
                               stem=f"{stem}.{'preload' if mode == 'preload' else 'pass1'}")
            self._watching = {**profiled, "estimate": after, "began": time.monotonic()}  # the profiled pass's own time
        if skip:
            main, status = Pass(stem, Outcome(None, None, 0.0, problem=skip), Usage(), "error", [skip], 0), "error"
        elif first is not None and first.status != "done":
            main, status = first, "error"
            notes.append(f"{mode} pass failed, profiled pass not run")
        else:
            for wanted, folder in ((cross_check, sampled_cache), (not uncovered, memory_cache)):
                if wanted:  # the state the profiled pass starts from, for each check
                    crosscheck.prepare_cache(cache, folder)
            main = self._pass(plan, run, settings, cache, claim, PROFILED, stem=stem)
            status = main.status
        if mode is not None:
            extra["phase1_mode"] = mode
            notes.append({"single": "", "preload": "preloaded", "two_pass": "cache-warm pass (second of two)"}[mode])
        result = build_result(
            self.store,
            run,
            main.outcome,
            invariants=plan["invariants"],
            # The code measured: this checkout, or (installed from a wheel) the plan's own project.
            git=git_revision(checkout() or self.store.folder, (self.store.path,)),
            stderr_log=specs.stderr_path(out, main.stem),
            notes=[*main.notes, *notes],
            extra={**extra, **main.fields(), "status": status},
        )
        if first is not None and first is not main:
            if mode == "preload":
                result["preload_seconds"] = first.answer.get("wall_seconds_total")
                if isinstance(result["wall_seconds_total"], float) and isinstance(result["preload_seconds"], float):
                    result["wall_seconds_no_download"] = result["wall_seconds_total"] - result["preload_seconds"]
            result["warmup"] = first.summary(self.store)
        more_notes: list[str] = []
        if number == 1 and status == "done":
            fields, more_notes = self._cross_check_pass(plan, run, settings, claim, main, sampled_cache)
            result.update(fields)
        if uncovered or status != "done":
            result["memory"] = memory.not_run(uncovered or "the profiled pass failed")
            remove_owned(memory_cache)  # prepared for a memory pass that is not going to run
        else:
            result["memory"], memory_notes = self._memory_pass(plan, run, settings, claim, main, memory_cache)
            more_notes += memory_notes
        result["notes"] = "; ".join(n for n in [result["notes"], *more_notes] if n)
        result["entry_seconds"] = round(time.monotonic() - began, 3)  # this pass's (and its checks'), start to result
        self._echo_line(stem, result, mode)
        return result

    def _echo_line(self, stem: str, result: dict[str, Any], mode: str | None) -> None:
        wall = result["wall_seconds_total"]
        wall_text = f"{wall:8.2f} s" if isinstance(wall, float) else "       - s"
        reason = f"  {result['notes']}" if result["status"] == "error" else ""
        overhead = result.get("profiler_overhead_ratio")
        cross = f"  {result['cross_check']}" if "cross_check" in result else ""
        cross = f"  yappi/plain {overhead:.2f}x" if overhead else cross
        held = result.get("memory") or {}
        heap = held.get("peak_heap_bytes")
        mem = f"  peak heap {heap / 2**20:,.0f} MB ({held.get('tool')})" if isinstance(heap, int) else ""
        self.echo(f"{stem:<24} {result['status']:<6} {wall_text}  {result['cache_state']:<5} {mode or ''}{reason}{cross}{mem}")

    def _cross_check_pass(
        self, plan: Plan, run: Run, settings: dict[str, Any], claim: Claim, main: Pass, cache: Path
    ) -> tuple[dict[str, Any], list[str]]:
        """Run the window again unprofiled under py-spy and compare; never changes the run's status."""
        if not self.cross_check.on:
            return crosscheck.not_run("off"), []
        py_spy, missing = self.py_spy
        if py_spy is None:
            return crosscheck.not_run(f"unavailable: {missing}"), [f"cross-check unavailable: {missing}"]
        out = specs.output_dir(self.store, plan)
        paths = crosscheck.Paths.for_run(out, run["id"])
        for stale in paths.all:
            stale.unlink(missing_ok=True)
        sampler = crosscheck.Sampler(py_spy, self.cross_check.rate_hz, paths.lines, paths.log)
        self._watch_next(main, CHECK_PASS, self._watching["check"])
        sampled = self._pass(plan, run, settings, cache, claim, UNPROFILED, stem=f"{run['id']}.sampled", sampler=sampler)
        remove_owned(cache)
        log = specs.stderr_path(out, sampled.stem)
        summary = {**sampled.summary(self.store), "outcome": crosscheck.outcome_of(sampled.answer),
                   "stderr_log": self.store.relative(log), "py_spy_log": self.store.relative(paths.log),
                   "worker_process_seconds": round(sampled.outcome.seconds, 3)}
        if sampler.problem or not paths.lines.exists() or not paths.lines.stat().st_size:
            why = sampler.problem or crosscheck.py_spy_complaint(paths.log) or "py-spy wrote no samples"
            return {**crosscheck.not_run(f"unavailable: {why}"), "sampled_pass": summary}, [f"cross-check unavailable: {why}"]
        if sampled.status != "done":
            why = "; ".join(sampled.notes) or "sampled pass failed"
            return {**crosscheck.not_run(f"failed: {why}"), "sampled_pass": summary}, [f"sampled pass failed: {why}"]
        t0 = time.perf_counter()
        fields, notes = crosscheck.compare_passes(
            profiled=main.answer, sampled=sampled.answer, funcs_csv=Path(main.answer["files"]["top_functions_csv"]),
            paths=paths, rate_hz=self.cross_check.rate_hz, run_id=run["id"],
        )
        files = {k: self.store.relative(v) if isinstance(v, Path) else v for k, v in fields.items()}
        return {**files, "sampled_pass": {**summary, "compare_seconds": round(time.perf_counter() - t0, 3)}}, notes

    def _memory_pass(
        self, plan: Plan, run: Run, settings: dict[str, Any], claim: Claim, main: Pass, cache: Path
    ) -> tuple[dict[str, Any], list[str]]:
        """Run the window again under memray and read its capture; never changes the run's status."""
        self._watch_next(main, MEMORY_PASS, self._watching.get("memory"))
        ran = self._pass(plan, run, settings, cache, claim, MEMORY, stem=f"{main.stem}.memory")
        remove_owned(cache)
        out = specs.output_dir(self.store, plan)
        record = {**ran.summary(self.store), "stderr_log": self.store.relative(specs.stderr_path(out, ran.stem)),
                  "worker_process_seconds": round(ran.outcome.seconds, 3)}
        if ran.status != "done":
            why = "; ".join(ran.notes) or "memory pass failed"
            return {**record, "status": "error", "reason": why}, [f"memory pass failed: {why}"]
        figures, notes = memory.summarize(ran.answer, out, run["id"], ran.stem)
        for key in ("capture", "sites", "flamegraph"):
            if figures.get(key):
                figures[key] = self.store.relative(Path(figures[key]))
        same, differ = memory.same_backtest(main.answer.get("fingerprint"), ran.answer.get("fingerprint"))
        if differ:
            notes.append(f"memory pass's backtest differs from the profiled one: {', '.join(differ)}")
        return {**record, **figures, "outcome": ran.answer.get("fingerprint"), "outcome_matches": same}, notes

    @staticmethod
    def _first_pass_watch(profiled: dict[str, Any], *, unprofiled: bool) -> tuple[dict[str, Any], float | None]:
        """What to show during the preload (unprofiled) or cache-warming (profiled) pass, and the
        profiled pass's own estimate after it.

        An entry's estimate in these modes is its measured ``entry_seconds``: both passes. It is
        split by yappi's measured overhead (a preload is an unprofiled pass) or in halves.
        """
        estimate, tail = profiled["estimate"], profiled["tail"]
        share = 1 / (profiled["overhead"] + 1) if unprofiled else 0.5
        first = None if estimate is None else estimate * share
        after = None if estimate is None or first is None else estimate - first
        scale = 1 / profiled["overhead"] if unprofiled else 1.0
        watch = {**profiled, "pass_name": FIRST_PASS["preload" if unprofiled else "two_pass"], "estimate": first,
                 "tail": None if tail is None else tail * scale, "rest_seconds": profiled["rest_seconds"] + (after or 0.0),
                 "rest_unknown": profiled["rest_unknown"] + (after is None)}
        return watch, after

    def _watch_next(self, main: Pass, name: str, planned: float | None) -> None:
        """A check is next: estimate it from the profiled pass just measured (its worker without
        yappi's overhead; the memory pass at the plan's measured memory cost) and take it out of
        what remains after it."""
        watching = self._watching
        plain = check_after(main.answer, main.outcome.seconds, watching["overhead"])
        estimate = (plain * watching["memory_cost"] if name == MEMORY_PASS else plain) if plain is not None else planned
        profiled_tail = watching.get("profiled_tail", watching["tail"])  # once a check ran, "tail" is already unprofiled
        tail = profiled_tail / watching["overhead"] if profiled_tail is not None else None  # LumiBot's analysis, unprofiled
        self._watching = {**watching, "estimate": estimate, "pass_name": name, "began": time.monotonic(), "tail": tail,
                          "profiled_tail": profiled_tail,
                          "rest_seconds": max(watching["rest_seconds"] - (planned or 0.0), 0.0),
                          "rest_unknown": watching["rest_unknown"] - (planned is None)}

    def _pass(
        self, plan: Plan, run: Run, settings: dict[str, Any], cache: Path, claim: Claim, kind: PassKind, *, stem: str,
        sampler: crosscheck.Sampler | None = None,
    ) -> Pass:
        """One worker pass over the entry's dates; transient failures are retried, bounded."""
        assert self.executor is not None
        try:
            self.executor.check()
        except ProviderError as exc:
            return Pass(stem, Outcome(None, None, 0.0, problem=str(exc)), Usage(), "error", [str(exc)], 0)
        retries: list[str] = []
        for attempt in range(1, TRANSIENT_RETRIES + 2):
            token = f"{stem}.{self.owner.token}.{claim.attempt}.{attempt}"
            spec = specs.run_spec(self.store, plan, run, settings, cache, profile=kind.profile, stem=stem, memory=kind.memory)
            ran = self._spawn(plan, run, spec, token, sampler)
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

    def _timeout(self, plan: Plan, run: Run) -> float:
        if self.options.timeout:
            return float(self.options.timeout)
        return float(run.get("timeout_seconds") or plan["meta"].get("timeout_seconds") or DEFAULT_TIMEOUT)

    def _spawn(
        self, plan: Plan, run: Run, spec: RunSpec, token: str, sampler: crosscheck.Sampler | None = None
    ) -> Ran:
        assert self.executor is not None

        def on_spawn(pid: int, create_time: float | None) -> None:
            try:
                claims.record_worker(self.store, run["id"], self.owner, pid, create_time)
            except PlanError as exc:  # a hand edit mid-entry: the run goes on, its result waits in a sidecar
                self.warn(f"warning: {spec.stem}: worker {pid} not recorded in the plan ({exc}); the run goes on")
            if sampler is not None:
                sampler.attach(pid)

        job = Job(spec, token, self._timeout(plan, run), self.options.grace, specs.stderr_path(Path(spec.output_dir), spec.stem),
                  on_spawn, cache_key=Path(spec.cache_folder).name, cache_node=cache_node(plan, run),
                  marker=self.owner.token, interruptible=self.stop.interruptible, stops=lambda: self.stop.count)
        w = self._watching
        watched = Watched(run["id"], run["start"], run["end"], Path(spec.work_dir), w["estimate"], w["rest_seconds"],
                          w["rest_unknown"], w["began"], w["pass_name"], w["tail"])
        try:
            with self.monitor.watch(watched):
                ran = self.executor.run(job)
        except Interrupted as exc:
            self._give_back(run["id"], f"during its pass ({exc}); nothing of it runs any more")
            raise KeyboardInterrupt from None
        finally:
            if sampler is not None:
                sampler.finish()
        return ran
