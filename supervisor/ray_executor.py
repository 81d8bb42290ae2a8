"""``--executor ray``: each worker pass as a Ray task on some node of a cluster.

Ray gives what one machine lacks without a distributed system of our own: a task runs in a
Ray worker process on some node, and a custom resource (``profiling_slot``, advertised once
per node by default) caps how many passes share a machine, since a busy machine inflates
wall times. The Ray process is only a launcher and never imports LumiBot: the profiled
process is always a fresh ``python -m worker`` child of it, so the launcher is reused across
tasks (``max_calls=1`` would start a new one per pass: measured 1.36 s added per run against
0.80 s reused, ``bench/ray_overhead.py``). The task runs the very same
:func:`supervisor.runner.run_worker` on its node (own session, time-out, grace, tree kill),
with a node-local gateway, cache and work folder, and sends back the answer with the profile
files as bytes; the supervisor writes them into the plan's ``profiling/`` so results look as
with the local executor. The plan file is only ever written by the supervisor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common.sourcetree import PACKAGES_ROOT
from supervisor import reaper
from supervisor.executors import Job, Ran, describe_host, worker_env
from supervisor.plan import PlanError
from supervisor.provider import LIVE_KEY, ProviderError, Usage, open_provider
from supervisor.runner import Interrupted, Outcome, run_worker
from supervisor.stopping import StopRequest
from worker.protocol import RunSpec

SLOT = "profiling_slot"
NODE_RETRIES = 1
"""A pass whose node died is submitted once more; the dead node has left the cluster by then."""
SCHEDULE_SECONDS = 600.0
"""How long a pass may wait for a node to take it before the entry ends ``error``."""
END_MARGIN = 120.0
"""Beyond the pass's own time-out and grace: start-up, gateway, file transfer on a busy node."""
POLL_SECONDS = 0.25
STOP_MARGIN = 15.0
"""After a stop, beyond the grace period: how long the node may take to stop its worker tree
(kill, reaping, a busy node) before the task is cancelled by force."""
FORCE_SECONDS = 3.0
"""How long a second stop, then a forced cancel, may take to end the task before the supervisor
stops waiting for it (Ray ends a task whose owner has exited)."""
NODE_DIR_ENV = "LUMIPROF_NODE_DIR"
LOOPBACK = ("127.0.0.1", "localhost")


def node_root(key: str) -> Path:
    """Where a node keeps a plan's work, cache and gateway folders (``$LUMIPROF_NODE_DIR`` or the temp dir)."""
    return Path(os.environ.get(NODE_DIR_ENV) or tempfile.gettempdir()) / "lumiprof-node" / key


def relocate(spec: RunSpec, root: Path) -> RunSpec:
    """The supervisor's spec with this node's folders, project and process as the worker's parent."""
    here = str(PACKAGES_ROOT)
    search = [here if p == spec.search_path[-1] else p for p in spec.search_path]
    return dataclasses.replace(
        spec,
        output_dir=str(root / "out"),
        work_dir=str(root / "work" / spec.stem),
        cache_folder=str(root / "cache" / Path(spec.cache_folder).name),
        search_path=search,
        supervisor_pid=os.getpid(),
    )


def _collect(outcome: Outcome, stderr_path: Path) -> dict[str, bytes]:
    """The files the worker wrote on this node, read into memory and removed from the node."""
    paths = {name: Path(p) for name, p in ((outcome.answer or {}).get("files") or {}).items()}
    paths["stderr_log"] = stderr_path
    blobs: dict[str, bytes] = {}
    for name, path in paths.items():
        try:
            blobs[name] = path.read_bytes()
            path.unlink()
        except OSError:
            continue
    return blobs


class Inbox:
    """The nodes' spawn events, kept until the supervisor takes them (a Ray actor on its node).

    Not ``ray.util.queue.Queue``: reading that blocks in ``ray.get`` until its actor process
    has started, seconds on a busy machine, and a lane blocked there does not see a stop.
    The supervisor keeps one :meth:`take` in flight and only looks whether it has answered.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def put(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def take(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events


def node_task(payload: dict[str, Any], events: Any, secrets: dict[str, str]) -> dict[str, Any]:
    """Runs on a node, in a fresh Ray worker process: one worker pass, start to end.

    ``ray.cancel`` reaches a running task as a SIGINT in its main thread (``interrupt_main``),
    so the task handles it with a :class:`StopRequest` as the local supervisor handles Ctrl-C:
    the first cancel stops the worker with its grace period, a second one kills it at once,
    and a cancel outside the worker's run only stops the task before it starts a worker.
    Either way the task returns ``interrupted`` once nothing of its pass runs any more.
    ``secrets`` (the live DataBento key) go into this process's environment only: not into
    the spec, the plan file or any log.
    """
    stop = StopRequest()
    with stop.installed((signal.SIGINT,)):
        return _node_pass(payload, events, secrets, stop)


def _node_pass(payload: dict[str, Any], events: Any, secrets: dict[str, str], stop: StopRequest) -> dict[str, Any]:
    import ray

    node = describe_host("ray", ray.get_runtime_context().get_node_id())
    token = payload["token"]
    os.environ.update(secrets)
    root = node_root(payload["plan_key"])
    spec = relocate(RunSpec.from_json(payload["spec"]), root)
    if payload["fresh_cache"]:
        shutil.rmtree(spec.cache_folder, ignore_errors=True)
    stderr_path = Path(spec.output_dir) / f"{spec.stem}.stderr.log"
    try:
        provider = open_provider(payload["settings"], root / "gateway", payload["seed"], token)
    except (ProviderError, PlanError) as exc:
        return {"node": node, "problem": str(exc)}
    try:
        provider.check()
        if stop.requested:
            return {"node": node, "interrupted": "cancelled before its worker started"}
        env = worker_env({**provider.env_for(token), reaper.MARKER: payload["marker"]})

        def on_spawn(pid: int, create_time: float | None) -> None:
            events.put.remote({"token": token, "pid": pid, "create_time": create_time, **node})  # never waits

        outcome = run_worker(spec, env, payload["timeout"], stderr_path, on_spawn, grace=payload["grace"],
                             interruptible=stop.interruptible)
        usage = provider.usage(token)
    except ProviderError as exc:
        return {"node": node, "problem": str(exc)}
    except Interrupted as exc:
        return {"node": node, "interrupted": str(exc)}
    finally:
        provider.close()
    return {"node": node, "outcome": dataclasses.asdict(outcome), "usage": dataclasses.asdict(usage),
            "files": _collect(outcome, stderr_path)}


class _NodeLost(Exception):
    """The node (or the Ray worker) running a pass died; the pass may go to another node."""


class RayExecutor:
    """Submits passes to a Ray cluster: the one at ``address``, or a local one started here."""

    name = "ray"

    def __init__(self, settings: dict[str, Any], seed: int, *, address: str | None, slots: int | None,
                 plan_key: str) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"  # a Ray call after shutdown must fail, not start a cluster
        if address is None or address.split(":")[0] in LOOPBACK:
            # A one-machine cluster stays on loopback: unless told so, Ray swaps 127.0.0.1 for the
            # machine's network address, binds there and then cannot reach a loopback-only head.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray = ray
        self.affinity = NodeAffinitySchedulingStrategy
        if settings.get("kind") == "databento" and settings.get("mode") == "live" and not os.environ.get(LIVE_KEY):
            raise PlanError(f"data mode 'live' needs {LIVE_KEY} in the environment (or use --data-mode local)")
        self.secrets = {LIVE_KEY: os.environ[LIVE_KEY]} if settings.get("mode") == "live" else {}
        self.settings, self.seed, self.plan_key = settings, seed, plan_key
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
        try:
            if address:
                ray.init(address=address, **quiet)
            else:  # a private one-machine cluster, gone when we disconnect; loopback only
                ray.init(resources={SLOT: slots or 1}, include_dashboard=False, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise PlanError(f"cannot connect to the Ray cluster at {address or 'a new local cluster'}: {exc}") from None
        self.slots = int(ray.cluster_resources().get(SLOT, 0))
        if self.slots < 1:
            ray.shutdown()
            raise PlanError(f"no node of the Ray cluster advertises {SLOT!r}: start nodes with --resources '{{\"{SLOT}\": 1}}'")
        here = ray.get_runtime_context().get_node_id()
        on_this_node = NodeAffinitySchedulingStrategy(here, soft=False)  # dies only with the supervisor's node
        self.events: Any = ray.remote(num_cpus=0)(Inbox).options(scheduling_strategy=on_this_node).remote()
        self._taking: Any = None  # the inbox's take() in flight
        self.task = ray.remote(max_retries=0, num_cpus=0, resources={SLOT: 1})(node_task)
        self.pins: dict[str, str] = {}
        self._lock = threading.Lock()
        self._spawned: dict[str, dict[str, Any]] = {}
        self._stopping = 0  # 1 once interrupt() asked every lane's pass to stop

    # -- the session's side ---------------------------------------------------------------
    def check(self) -> None:
        """Each node checks its own gateway at the start of the task."""

    def run(self, job: Job) -> Ran:
        pin = self.pins.get(job.cache_key) or job.cache_node
        failures: list[str] = []
        for _ in range(NODE_RETRIES + 1):
            try:
                reply = self._run_once(job, pin)
            except _NodeLost as exc:
                failures.append(str(exc))
                if pin is None:
                    continue
                failures.append("the pass needs that node's cache, so it was not moved")
                break
            return self._land(job, reply, failures)
        node = {**self._node_of(job), "node_failures": failures}
        return Ran(Outcome(None, None, 0.0, problem="; ".join(failures)), Usage(), node)

    def interrupt(self) -> None:
        self._stopping = 1  # each lane's wait sees it within POLL_SECONDS and cancels its own task

    def close(self) -> None:
        if self.ray.is_initialized():
            self.ray.shutdown()

    # -- one submission ---------------------------------------------------------------------
    def _run_once(self, job: Job, pin: str | None) -> dict[str, Any]:
        payload = {
            "spec": job.spec.to_json(), "token": job.token, "timeout": job.timeout, "grace": job.grace,
            "settings": self.settings, "seed": self.seed, "plan_key": self.plan_key, "fresh_cache": pin is None,
            # The pass's own token, not the owner's alone: run_worker kills every process carrying the
            # marker once its pass ends, and two lanes' passes may share a machine.
            "marker": f"{job.marker}.{job.token}",
        }
        options = {"scheduling_strategy": self.affinity(pin, soft=False)} if pin else {}
        ref = self.task.options(**options).remote(payload, self.events, self.secrets)
        with self._lock:
            self._spawned.pop(job.token, None)
        try:
            return self._wait(ref, job)
        except (Interrupted, _NodeLost):
            raise
        except BaseException:  # a bug or a lost cluster connection: the task must not run on unowned
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
            raise

    def _wait(self, ref: Any, job: Job) -> dict[str, Any]:
        """Until the task answers, reporting its worker's pid to the session once it starts.

        The wait is the task's own result, which Ray resolves whatever the task was doing when
        cancelled: dropped while queued or while its Ray worker started, or returned once the
        node stopped the worker. A stop (the session's signals, or :meth:`interrupt`) is passed
        on as a cancel, a second one as another cancel (the node then kills at once); a node that
        does not answer in time is cancelled by force, and after that the wait is bounded too.
        """
        ray = self.ray
        submitted = time.monotonic()
        started: float | None = None
        stops = 0  # stops passed on to the task; 3 once it was cancelled by force
        deadline = 0.0  # while stopping: when to escalate
        while True:
            done, _ = ray.wait([ref], timeout=POLL_SECONDS)
            self._drain()
            if started is None and job.token in self._spawned:
                started = time.monotonic()
                event = self._spawned[job.token]
                job.on_spawn(int(event["pid"]), event.get("create_time"))
            if done:
                break
            now = time.monotonic()
            wanted = min(max(job.stops(), self._stopping), 2)
            if wanted > stops:  # graceful first (the node gives its worker the grace period), then at once
                ray.cancel(ref)
                deadline = now + (job.grace + STOP_MARGIN if wanted == 1 else FORCE_SECONDS)
                stops = wanted
            elif stops and now > deadline:
                if stops == 3:
                    raise Interrupted(f"Ray task of {job.spec.stem} did not end when cancelled by force; "
                                      "Ray ends it with this supervisor")
                ray.cancel(ref, force=True)  # kills the task's Ray worker; the worker follows its parent
                deadline, stops = now + FORCE_SECONDS, 3
            elif not stops:
                waited = now - (started or submitted)
                limit = job.timeout + job.grace + END_MARGIN if started else SCHEDULE_SECONDS
                if waited > limit:
                    ray.cancel(ref, force=True)
                    what = "no answer from the node" if started else "no node took the task"
                    raise _NodeLost(f"{what} within {limit:.0f} s (node or cluster connection lost?)")
        try:
            reply: dict[str, Any] = ray.get(ref)
        except ray.exceptions.RayError as exc:
            if stops:  # cancelled before it ran, or ended by force: either way nothing of it runs now
                raise Interrupted(f"Ray task of {job.spec.stem} cancelled ({type(exc).__name__})") from None
            if isinstance(exc, ray.exceptions.TaskUnschedulableError):
                raise _NodeLost(f"the node holding this entry's cache is gone ({_first_line(exc)})") from None
            if isinstance(exc, ray.exceptions.RayTaskError):  # our task code raised on the node: a bug, not a lost node
                return {"node": self._node_of(job), "problem": f"the Ray task failed on its node: {_first_line(exc)}"}
            node = self._node_of(job)
            raise _NodeLost(f"node {str(node['node_id'])[:12]} ({node['host']}) lost mid-run: {type(exc).__name__}") from None
        if "interrupted" in reply:
            raise Interrupted(f"Ray task of {job.spec.stem}: {reply['interrupted']}")
        return reply  # finished before the cancel reached it: a whole result, kept like the local executor's

    def _node_of(self, job: Job) -> dict[str, Any]:
        """The node a pass started on, as its spawn event named it (``None`` fields if it never started)."""
        event = self._spawned.get(job.token, {})
        return {key: event.get(key) for key in describe_host("ray")}

    def _drain(self) -> None:
        """Move the nodes' spawn events into a per-token table (several lanes share one inbox),
        without waiting: the events that have arrived, if the inbox answered already."""
        with self._lock:
            if self._taking is None:
                self._taking = self.events.take.remote()
            ready, _ = self.ray.wait([self._taking], timeout=0)
            if not ready:
                return
            taken, self._taking = self._taking, None
            for event in self.ray.get(taken):
                self._spawned[event["token"]] = event

    def _land(self, job: Job, reply: dict[str, Any], failures: list[str]) -> Ran:
        """Write the node's files into the plan's folder and point the answer at them."""
        node = {**reply["node"], "node_failures": failures}
        if "problem" in reply:
            return Ran(Outcome(None, None, 0.0, problem=reply["problem"]), Usage(), node)
        self.pins[job.cache_key] = node["node_id"]
        outcome = Outcome(**reply["outcome"])
        files: dict[str, bytes] = reply["files"]
        out = Path(job.spec.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        job.stderr_path.write_bytes(files.pop("stderr_log", b""))
        if outcome.answer is not None:
            landed = {}
            for name, path in (outcome.answer.get("files") or {}).items():
                if name in files:
                    target = out / Path(path).name
                    target.write_bytes(files[name])
                    landed[name] = str(target)
            outcome.answer["files"] = landed
        return Ran(outcome, Usage(**reply["usage"]), node)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__
