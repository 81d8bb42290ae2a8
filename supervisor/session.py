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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor import claims, crosscheck, memory, sidecar, specs
from supervisor.claims import BLOCKED, Claim, Owner
from supervisor.eta import Estimator
from supervisor.executors import Executor, open_executor, plan_key
from supervisor.lanes import run_lanes
from supervisor.passes import EntryPasses
from supervisor.phase0 import phase1_mode, summarize
from supervisor.plan import PHASE0_LABELS, Plan, PlanError, PlanStore, PlanWriteError, Run, phase_of
from supervisor.progress import LiveDisplay, Monitor, PlainDisplay, choose_display, pass_name
from supervisor.provider import ProviderError
from supervisor.repeats import INTERLEAVE, combine, repeats_for
from supervisor.results import error_result
from supervisor.stopping import StopRequest

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


class Session(EntryPasses):
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
        statuses = [self._finish_entry(claim, self._entry_result(claim.run, passes[claim.run["id"]])) for claim in group]
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

    @staticmethod
    def _entry_result(run: Run, passes: list[dict[str, Any]]) -> dict[str, Any]:
        """One result from an entry's passes: the median pass's, the cross-check beside pass 1, the memory passes'."""
        result = crosscheck.with_cross_check(combine(passes), passes[0])
        result["memory"] = memory.combine(passes, result.get("unprofiled_wall_seconds"), run) or memory.not_run(
            "no pass of this entry reached its memory pass")
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

    def _estimates(self, plan: Plan, run: Run, number: int, count: int, later: list[tuple[Run, int]]) -> dict[str, Any]:
        """What the progress display needs before the worker says anything: this pass's name and
        estimate, and that of every pass after it (this pass's unprofiled check and memory pass,
        the held entries' ``later`` passes, then each of the selection's other pending entries
        once per repeat, with its checks)."""
        estimator = Estimator.from_plan(plan)
        checked = self.cross_check.on and self.py_spy[0] is not None  # the check runs beside pass 1

        def step(r: Run, n: int) -> tuple[Run, bool, bool]:
            return r, checked and n == 1, not memory.covers(plan, r)

        held = {r["id"] for r in (run, *(r for r, _ in later))}
        pending = [r for r in claims.select(plan, self.options.selector) if r["status"] == "pending" and r["id"] not in held]
        rest = [step(r, n) for r, n in later]
        rest += [step(r, n) for r in pending for n in range(1, repeats_for(plan, r, self.options.repeats) + 1)]
        rest_seconds, rest_unknown = estimator.total(rest)
        check = estimator.check(run) if checked and number == 1 else 0.0
        held_memory = estimator.memory(run) if not memory.covers(plan, run) else 0.0
        cold = run["label"] == PHASE0_LABELS[0] if phase_of(run) == "phase0" else None
        return {"estimate": estimator.entry(run), "rest_seconds": rest_seconds + (check or 0.0) + (held_memory or 0.0),
                "rest_unknown": rest_unknown + (check is None) + (held_memory is None), "began": time.monotonic(),
                "pass_name": pass_name(cold, number, count), "tail": estimator.tail(run), "check": check,
                "memory": held_memory, "memory_cost": estimator.memory_cost, "overhead": estimator.overhead}
