"""One supervisor session: recover, then claim, spawn, record, until the selection is done.

Data flows one way: plan -> claim -> spawn -> worker JSON -> result -> plan. Each run gets
a fresh worker process, its own working directory (LumiBot writes ``./logs``) and its own
cache folder, so nothing warm leaks from one window into the next.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.sourcetree import checkout
from supervisor import claims, crosscheck, sidecar, specs
from supervisor.claims import BLOCKED, Claim, Owner
from supervisor.eta import Estimator, check_after
from supervisor.executors import Executor, Job, Ran, cache_node, open_executor, plan_key
from supervisor.gitinfo import git_revision
from supervisor.lanes import run_lanes
from supervisor.owned import fresh_dir, remove_owned
from supervisor.phase0 import phase1_mode, summarize
from supervisor.plan import PHASE0_LABELS, Plan, PlanError, PlanStore, PlanWriteError, Run, phase_of
from supervisor.progress import (
    CHECK_PASS,
    FIRST_PASS,
    LiveDisplay,
    Monitor,
    PlainDisplay,
    Watched,
    choose_display,
    pass_name,
)
from supervisor.provider import ProviderError, Usage
from supervisor.repeats import INTERLEAVE, combine, pass_stem, repeats_for
from supervisor.results import build_result, error_result, relative_files
from supervisor.runner import Interrupted, Outcome
from supervisor.stopping import StopRequest
from worker.protocol import RunSpec

DEFAULT_TIMEOUT = 1800.0
TRANSIENT_RETRIES = 2
#: Exit code when nothing is left to claim but entries are still running under other supervisors.
OTHERS_RUNNING = 3
#: Why a cross-check cannot run when workers run on cluster nodes: py-spy attaches to a local pid.
REMOTE_CROSS_CHECK = "not supported with --executor ray (py-spy must run on the worker's node)"


@dataclass
class Options:
    selector: str | None = None
    timeout: float | None = None
    retry_errors: bool = False
    data_mode: str | None = None
    mode: str | None = None
    repeats: int | None = None
    grace: float = 10.0
    poll_seconds: float = 1.0
    quiet: bool = False
    progress_interval: float = 15.0
    executor: str = "local"
    address: str | None = None
    slots: int | None = None
    after_result: Callable[[], str] | None = None
    """Called after each recorded result (the CLI passes the report's live rewrite); returns a console line."""


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
    node: dict[str, Any] = field(default_factory=dict)
    """Where the pass ran (:class:`supervisor.executors.Ran`); empty for a pass that never started."""

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
                "cpu_seconds": answer.get("cpu_seconds"), "peak_rss_mb": answer.get("peak_rss_mb"), "profiled": bool(files),
                "files": files, **self.fields()}


class Session:
    """Runs the selected entries of one plan file; ``run`` returns the process exit code."""

    def __init__(
        self, store: PlanStore, options: Options, echo: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self.echo = echo or (lambda line: print(line, flush=True))
        """Progress and results: stdout."""
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        """Errors and warnings: stderr, so ``2>err.log`` catches them and a pipe of stdout stays clean."""
        self.owner = Owner()
        self.executor: Executor | None = None
        self.stop = StopRequest()
        self.unrecorded = 0  # finished runs whose result sits in a sidecar, not yet in the plan
        self.output_dir = Path()
        self.cross_check = crosscheck.CrossCheckConfig()
        self.py_spy: tuple[str | None, str | None] = (None, None)
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
        return specs.data_settings(plan, self.options.data_mode)

    def _output_dir(self, plan: Plan) -> Path:
        return specs.output_dir(self.store, plan)

    def _pending_in_selection(self, plan: Plan) -> bool:
        return any(r["status"] == "pending" for r in claims.select(plan, self.options.selector))

    def _others_running(self) -> int:
        """Selected entries still running under another supervisor: this one is done, the selection is not."""
        plan = self.store.read()
        return sum(
            1 for r in claims.select(plan, self.options.selector)
            if r["status"] == "running" and not claims.owned_by(r, self.owner)
        )

    def _merge_sidecars(self) -> None:
        merged, problems = sidecar.merge(self.store, self.output_dir, self.owner)
        for line in merged:
            self.echo(f"merged     {line}")
        for line in problems:
            self.warn(f"warning: {line}")

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> int:
        plan = self.store.read()
        claims.select(plan, self.options.selector)  # an unknown selector fails before any change
        self.cross_check = crosscheck.config_from_meta(plan["meta"])
        if self.cross_check.on and self.options.executor != "local":
            self.py_spy = (None, REMOTE_CROSS_CHECK)  # said in every result, never a crash
        elif self.cross_check.on:
            self.py_spy = crosscheck.locate_py_spy(self.cross_check, self.store.folder)
        self.output_dir = self._output_dir(plan)
        self.stop.install()  # from here a signal is a request, honoured between steps
        self._merge_sidecars()
        selected = {r["id"] for r in claims.select(plan, self.options.selector)}
        failures = 0  # entries of the selection that end in error (or unrecorded) in this session
        for item in claims.recover(self.store):
            self.echo(f"recovered  {item.run_id}: {item.message}")
            if item.gave_up and item.run_id in selected:
                failures += 1
        if self.options.retry_errors:
            self._requeue_errors()
        plan = self.store.read()
        if not self._pending_in_selection(plan):
            self.echo("nothing pending in this selection (see `python -m supervisor status`)")
            return self._final_code(1 if failures else 0)
        self._check_phase1_can_run(plan)
        settings = self._settings(plan)
        try:
            self.executor = self._open_executor(plan, settings)
            self.stop.install()  # again: ray.init replaces SIGTERM's handler with its own
            if self.executor.slots > 1 and isinstance(self.monitor.display, LiveDisplay):
                self.monitor = Monitor(PlainDisplay(self.echo, self.options.progress_interval))  # one bar at a time
            failures += run_lanes(lambda stop: self._lane(settings, stop), self.executor.slots, self.executor.interrupt)
        except KeyboardInterrupt:
            pass  # a worker was interrupted; its entry was given back (or the console said why not)
        except PlanWriteError as exc:
            self.warn(f"error: {exc}; stopping (finished results are kept in sidecars and merged at the next start)")
            return 1
        except ProviderError as exc:
            self.warn(f"error: {exc}")
            return 1
        finally:
            if self.executor is not None:
                self.executor.close()
        if self.stop.requested:
            self.echo(f"interrupted by {self.stop.signal.name if self.stop.signal else 'a signal'}: "
                      "rerun the same command to continue")
            return 130
        return self._final_code(1 if failures or self.unrecorded else 0)

    def _final_code(self, code: int) -> int:
        """0/1 tell done from failed only when nothing in the selection still runs elsewhere."""
        others = self._others_running()
        if others and code == 0:
            self.echo(f"{others} selected entr{'y is' if others == 1 else 'ies are'} still running under another "
                      "supervisor (see `python -m supervisor status`)")
            return OTHERS_RUNNING
        return code

    def _give_back(self, run_id: str, when: str) -> None:
        """Release an entry after a stop signal, and say truthfully where it was left."""
        note = f"interrupted {claims.utc_now()}: supervisor stopped by a signal {when}"
        try:
            released = claims.release(self.store, run_id, self.owner, note)
        except PlanError as exc:
            self.warn(f"{run_id:<24} still running in the plan: could not give it back ({exc}); "
                      "the next start recovers it")
            return
        if released:
            self.echo(f"{run_id:<24} pending (interrupted {when})")
        else:
            self.warn(f"{run_id:<24} not ours any more (another supervisor recovered it)")

    def _run_safely(self, group: list[Claim], settings: dict[str, Any]) -> list[str]:
        """Run claimed entries; whatever fails after the claim ends them, none stays ``running``.

        An invalid plan (a hand edit) gives the entries back and stops with exit 2; any other
        failure records each entry still ours as ``error`` with the reason, so it cannot block the queue.
        """
        try:
            return self._run_group(group, settings)
        except (KeyboardInterrupt, PlanWriteError):
            raise
        except PlanError:
            self._give_back_held(group, "because the plan became unreadable")
            raise
        except Exception as exc:
            reason = f"supervisor failed running this entry: {type(exc).__name__}: {exc}".splitlines()[0]
            for run_id in self._still_ours(group):
                self.warn(f"{run_id:<24} error  {reason}")
                self._record(run_id, "error", error_result(claims.find(self.store.read(), run_id), reason))
            return ["error"] * len(group)

    def _still_ours(self, group: list[Claim]) -> list[str]:
        """The held entries this supervisor still owns; all of them while the plan cannot be read
        (a hand edit): each later write then says for itself that it could not be made."""
        try:
            plan = self.store.read()
        except PlanError:
            return [c.run["id"] for c in group]
        return [c.run["id"] for c in group if claims.owned_by(claims.find(plan, c.run["id"]), self.owner)]

    def _give_back_held(self, group: list[Claim], when: str) -> None:
        for run_id in self._still_ours(group):
            self._give_back(run_id, when)

    def _record(self, run_id: str, status: str, result: dict[str, Any]) -> str:
        """Write the final state; if the plan cannot take it, keep the result in a sidecar.

        A plan that cannot be written (full disk) and one that cannot be read (a hand edit left
        a typo) are the same to a finished run: its result waits beside the plan and is merged
        at the next start, so the entry never runs again because of the edit.
        Returns ``recorded``, ``sidecar`` or ``lost`` (another supervisor took the entry over).
        """
        try:
            if claims.finish(self.store, run_id, self.owner, status, result):
                return "recorded"
            self.warn(f"{run_id:<24} lost ownership; result not written (another supervisor recovered it)")
            return "lost"
        except PlanError as exc:
            try:
                path = sidecar.save(self.output_dir, run_id, self.owner, status, result)
            except OSError as side:
                self.warn(f"{run_id:<24} {status} but NOT recorded: plan ({exc}) and sidecar ({side.strerror or side}) "
                          "both unwritable; the entry stays running and runs again after the next start")
                raise PlanWriteError(str(exc)) from None
            self.unrecorded += 1
            if isinstance(exc, PlanWriteError):
                self.warn(f"{run_id} {status}, but the plan could not be written ({exc}); result kept in {path}, "
                          "merged at the next start")
            else:
                self.warn(f"{run_id} {status}; result kept beside the plan until it parses again ({path.name}; {exc})")
            return "sidecar"

    def _open_executor(self, plan: Plan, settings: dict[str, Any]) -> Executor:
        return open_executor(
            self.options.executor, settings, self._output_dir(plan) / "gateway", int(plan["meta"]["random_seed_for_selection"]),
            self.owner.token, address=self.options.address, slots=self.options.slots,
            plan_key=plan_key(self.owner.host, self.store.path),
        )

    def _lane(self, settings: dict[str, Any], stop: threading.Event) -> int:
        """One claim loop: claim, run (with the claim's partners), record, until nothing is left,
        a stop signal was requested or ``stop`` is set (another lane failed, or Ctrl-C under
        lanes). Returns how many entries did not end ``done``. The local executor runs exactly
        one lane, in the main thread."""
        failures = 0
        while not (self.stop.requested or stop.is_set()):
            if self.unrecorded:
                self._merge_sidecars()
            claim = claims.claim_next(self.store, self.options.selector, self.owner)
            if claim is None:
                break
            if claim == BLOCKED:
                time.sleep(self.options.poll_seconds)
                continue
            assert isinstance(claim, Claim)
            if self.stop.requested or stop.is_set():
                self._give_back(claim.run["id"], "before its worker started")
                break
            group = [claim, *self._claim_partners(claim)]
            failures += sum(status != "done" for status in self._run_safely(group, settings))
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
                    run.pop("crashes", None)  # a given-up entry gets its full number of attempts again

    def _claim_partners(self, first: Claim) -> list[Claim]:
        """The warm probe goes with the cold one; with repeats, up to INTERLEAVE windows go together."""
        plan = self.store.read()
        if phase_of(first.run) == "phase0":
            limit = 1
        else:
            limit = INTERLEAVE - 1 if repeats_for(plan, first.run, self.options.repeats) > 1 else 0
        return claims.claim_beside(self.store, self.options.selector, self.owner, [first], limit) if limit else []

    def _run_group(self, group: list[Claim], settings: dict[str, Any]) -> list[str]:
        """Pass 1 of every held entry, then pass 2 of each, ...; then one result per entry.

        A failed pass ends its entry's passes (the next would most likely fail the same way),
        and a warm probe pass never runs on the cache of a cold pass that failed.
        """
        plan = self.store.read()
        counts = {c.run["id"]: repeats_for(plan, c.run, self.options.repeats) for c in group}
        passes: dict[str, list[dict[str, Any]]] = {c.run["id"]: [] for c in group}
        failed: set[str] = set()
        order = [(n, c) for n in range(1, max(counts.values()) + 1) for c in group if n <= counts[c.run["id"]]]
        try:
            for index, (number, claim) in enumerate(order):
                run_id = claim.run["id"]
                if run_id in failed:
                    continue
                if self.stop.requested:
                    raise KeyboardInterrupt
                later = [(c.run, n) for n, c in order[index + 1 :] if c.run["id"] not in failed]
                self._watching = self._estimates(plan, claim.run, number, counts[run_id], later)
                skip = self._cold_pass_failed(claim, group, passes, number)
                result = self._one_pass(plan, claim, settings, number, skip)
                passes[run_id].append(result)
                if result["status"] != "done":
                    failed.add(run_id)
        except KeyboardInterrupt:
            self._give_back_held(group, "between passes")
            raise
        statuses = [
            self._finish_entry(claim, crosscheck.with_cross_check(combine(passes[claim.run["id"]]), passes[claim.run["id"]][0]))
            for claim in group
        ]
        if any(phase_of(c.run) == "phase0" for c in group) and "sidecar" not in statuses:
            summary = summarize(self.store)
            if summary is not None:
                self.echo(f"phase0 decision: {summary['verdict']} -> {summary['decision']} ({summary['reason']})")
        return statuses

    @staticmethod
    def _cold_pass_failed(claim: Claim, group: list[Claim], passes: dict[str, list[dict[str, Any]]], number: int) -> str:
        """For a warm probe pass: why it must not run (its cold pass failed), else ''."""
        if claim.run["label"] != PHASE0_LABELS[1]:
            return ""
        for other in group:
            if other.run["label"] == PHASE0_LABELS[0]:
                mine = passes[other.run["id"]]
                if len(mine) < number or mine[number - 1]["status"] != "done":
                    return f"cold probe pass {number} failed, so its warm pass did not run"
        return ""

    def _one_pass(self, plan: Plan, claim: Claim, settings: dict[str, Any], number: int, skip: str) -> dict[str, Any]:
        """One pass of an entry (with its preload or warm-up pass in those modes), as a result record."""
        run = claim.run
        began = self._watching["began"]
        stem = pass_stem(run["id"], number)
        cache = specs.cache_folder(self.store, plan, run, number)
        sampled_cache = specs.cache_root(self.store, plan) / f"{run['id']}.sampled"
        # once per entry, beside the pass with the spec's files; never without a py-spy to sample it
        cross_check = self.cross_check.on and self.py_spy[0] is not None and number == 1
        if run["label"] != PHASE0_LABELS[1]:
            fresh_dir(cache)  # every pass but a warm probe pass starts cold
        mode = None if phase_of(run) == "phase0" else phase1_mode(plan, self.options.mode)
        extra: dict[str, Any] = {"attempt": claim.attempt, "data_source": dict(settings)}
        notes: list[str] = []
        first: Pass | None = None
        if mode in ("preload", "two_pass") and not skip:
            profiled_name = self._watching["pass_name"]
            self._watching["pass_name"] = FIRST_PASS[mode]
            first = self._pass(plan, run, settings, cache, claim, profile=mode == "two_pass",
                               stem=f"{stem}.{'preload' if mode == 'preload' else 'pass1'}")
            self._watching["pass_name"] = profiled_name
        if skip:
            main, status = Pass(stem, Outcome(None, None, 0.0, problem=skip), Usage(), "error", [skip], 0), "error"
        elif first is not None and first.status != "done":
            main, status = first, "error"
            notes.append(f"{mode} pass failed, profiled pass not run")
        else:
            if cross_check:  # the state the profiled pass starts from, for the sampled pass
                crosscheck.prepare_cache(cache, sampled_cache)
            main = self._pass(plan, run, settings, cache, claim, profile=True, stem=stem)
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
            stderr_log=specs.stderr_path(self._output_dir(plan), main.stem),
            notes=[*main.notes, *notes],
            extra={**extra, **main.fields(), "status": status},
        )
        if first is not None and first is not main:
            if mode == "preload":
                result["preload_seconds"] = (first.outcome.answer or {}).get("wall_seconds_total")
                if isinstance(result["wall_seconds_total"], float) and isinstance(result["preload_seconds"], float):
                    result["wall_seconds_no_download"] = result["wall_seconds_total"] - result["preload_seconds"]
            result["warmup"] = first.summary(self.store)
        if number == 1 and status == "done":
            fields, more_notes = self._cross_check_pass(plan, run, settings, claim, main, sampled_cache)
            result.update(fields)
            result["notes"] = "; ".join(n for n in [result["notes"], *more_notes] if n)
        result["entry_seconds"] = round(time.monotonic() - began, 3)  # this pass's (and its check's), start to result
        self._echo_line(stem, result, mode)
        return result

    def _finish_entry(self, claim: Claim, result: dict[str, Any]) -> str:
        """Write the entry's combined result (or keep it in a sidecar) and say the spread of its passes."""
        run_id = claim.run["id"]
        kept = self._record(run_id, result["status"], result)
        if kept != "recorded":
            return kept
        if self.options.after_result is not None:
            line = self.options.after_result()
            if not self.options.quiet:  # --quiet keeps the result lines only; the report is rewritten all the same
                self.echo(line)
        spread = result["repeats"]
        if spread["n"] > 1:
            walls = spread.get("wall_seconds_total") or {}
            figure = f"median {walls['median']:.2f} s ({walls['min']:.2f}-{walls['max']:.2f})" if walls else "no pass done"
            self.echo(f"{run_id:<24} {result['status']:<6} {figure} over {spread['done']} of {spread['n']} passes")
        return str(result["status"])

    def _echo_line(self, stem: str, result: dict[str, Any], mode: str | None) -> None:
        wall = result["wall_seconds_total"]
        wall_text = f"{wall:8.2f} s" if isinstance(wall, float) else "       - s"
        reason = f"  {result['notes']}" if result["status"] == "error" else ""
        overhead = result.get("profiler_overhead_ratio")
        cross = f"  {result['cross_check']}" if "cross_check" in result else ""
        cross = f"  yappi/plain {overhead:.2f}x" if overhead else cross
        self.echo(f"{stem:<24} {result['status']:<6} {wall_text}  {result['cache_state']:<5} {mode or ''}{reason}{cross}")

    def _cross_check_pass(
        self, plan: Plan, run: Run, settings: dict[str, Any], claim: Claim, main: Pass, cache: Path
    ) -> tuple[dict[str, Any], list[str]]:
        """Run the window again unprofiled under py-spy and compare; never changes the run's status."""
        if not self.cross_check.on:
            return crosscheck.not_run("off"), []
        py_spy, missing = self.py_spy
        if py_spy is None:
            return crosscheck.not_run(f"unavailable: {missing}"), [f"cross-check unavailable: {missing}"]
        paths = crosscheck.Paths.for_run(self._output_dir(plan), run["id"])
        for stale in paths.all:
            stale.unlink(missing_ok=True)
        sampler = crosscheck.Sampler(py_spy, self.cross_check.rate_hz, paths.lines, paths.log)
        self._watch_check(main)
        sampled = self._pass(plan, run, settings, cache, claim, profile=False, stem=f"{run['id']}.sampled", sampler=sampler)
        remove_owned(cache)
        log = specs.stderr_path(self._output_dir(plan), sampled.stem)
        summary = {**sampled.summary(self.store), "outcome": crosscheck.outcome_of(sampled.outcome.answer or {}),
                   "stderr_log": self.store.relative(log), "py_spy_log": self.store.relative(paths.log),
                   "worker_process_seconds": round(sampled.outcome.seconds, 3)}
        if sampler.problem or not paths.lines.exists() or not paths.lines.stat().st_size:
            why = sampler.problem or crosscheck.py_spy_complaint(paths.log) or "py-spy wrote no samples"
            return {**crosscheck.not_run(f"unavailable: {why}"), "sampled_pass": summary}, [f"cross-check unavailable: {why}"]
        if sampled.status != "done":
            why = "; ".join(sampled.notes) or "sampled pass failed"
            return {**crosscheck.not_run(f"failed: {why}"), "sampled_pass": summary}, [f"sampled pass failed: {why}"]
        answer = main.outcome.answer or {}
        t0 = time.perf_counter()
        fields, notes = crosscheck.compare_passes(
            profiled=answer, sampled=sampled.outcome.answer or {}, funcs_csv=Path(answer["files"]["top_functions_csv"]),
            paths=paths, rate_hz=self.cross_check.rate_hz, run_id=run["id"],
        )
        files = {k: self.store.relative(v) if isinstance(v, Path) else v for k, v in fields.items()}
        return {**files, "sampled_pass": {**summary, "compare_seconds": round(time.perf_counter() - t0, 3)}}, notes

    def _estimates(self, plan: Plan, run: Run, number: int, count: int, later: list[tuple[Run, int]]) -> dict[str, Any]:
        """What the progress display needs before the worker says anything: this pass's name and
        estimate, and that of every pass after it (this pass's unprofiled check, the held
        entries' ``later`` passes, then each of the selection's other pending entries once per
        repeat, with its check)."""
        estimator = Estimator.from_plan(plan)
        checked = self.cross_check.on and self.py_spy[0] is not None  # the check runs beside pass 1
        held = {r["id"] for r in (run, *(r for r, _ in later))}
        pending = [r for r in claims.select(plan, self.options.selector) if r["status"] == "pending" and r["id"] not in held]
        rest = [(r, checked and n == 1) for r, n in later]
        rest += [(r, checked and n == 1) for r in pending for n in range(1, repeats_for(plan, r, self.options.repeats) + 1)]
        rest_seconds, rest_unknown = estimator.total(rest)
        check = estimator.check(run) if checked and number == 1 else 0.0
        cold = run["label"] == PHASE0_LABELS[0] if phase_of(run) == "phase0" else None
        estimate = estimator.entry(run)
        return {"estimate": estimate, "rest_seconds": rest_seconds + (check or 0.0),
                "rest_unknown": rest_unknown + (check is None), "began": time.monotonic(),
                "pass_name": pass_name(cold, number, count), "tail": estimator.tail(run), "check": check,
                "overhead": estimator.overhead}

    def _watch_check(self, main: Pass) -> None:
        """The unprofiled check is next: estimate it from the profiled pass just measured (its
        worker without yappi's overhead) and take it out of what remains after it."""
        watching = self._watching
        planned = watching["check"]
        estimate = check_after(main.outcome.answer or {}, main.outcome.seconds, watching["overhead"]) or planned
        tail = watching["tail"] / watching["overhead"] if watching["tail"] is not None else None  # LumiBot's analysis, unprofiled
        self._watching = {**watching, "estimate": estimate, "pass_name": CHECK_PASS, "began": time.monotonic(), "tail": tail,
                          "rest_seconds": max(watching["rest_seconds"] - (planned or 0.0), 0.0),
                          "rest_unknown": watching["rest_unknown"] - (planned is None)}

    def _pass(
        self, plan: Plan, run: Run, settings: dict[str, Any], cache: Path, claim: Claim, *, profile: bool, stem: str,
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
            spec = specs.run_spec(self.store, plan, run, settings, cache, profile=profile, stem=stem)
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

    # -- per-run plumbing -----------------------------------------------------------------
    def _timeout(self, plan: Plan, run: Run) -> float:
        if self.options.timeout:
            return self.options.timeout
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
