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
from worker.protocol import RunSpec

SLOT = "profiling_slot"
NODE_RETRIES = 1
"""A pass whose node died is submitted once more; the dead node has left the cluster by then."""
SCHEDULE_SECONDS = 600.0
"""How long a pass may wait for a node to take it before the entry ends ``error``."""
END_MARGIN = 120.0
"""Beyond the pass's own time-out and grace: start-up, gateway, file transfer on a busy node."""
POLL_SECONDS = 0.25
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


def node_task(payload: dict[str, Any], events: Any, secrets: dict[str, str]) -> dict[str, Any]:
    """Runs on a node, in a fresh Ray worker process: one worker pass, start to end.

    ``secrets`` (the live DataBento key) go into this process's environment only: not into
    the spec, the plan file or any log.
    """
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
        try:
            provider = open_provider(payload["settings"], root / "gateway", payload["seed"], token)
        except (ProviderError, PlanError) as exc:
            return {"node": node, "problem": str(exc)}
        try:
            provider.check()
            env = worker_env({**provider.env_for(token), reaper.MARKER: payload["marker"]})

            def on_spawn(pid: int, create_time: float | None) -> None:
                events.put({"token": token, "pid": pid, "create_time": create_time, **node})

            outcome = run_worker(spec, env, payload["timeout"], stderr_path, on_spawn, grace=payload["grace"])
            usage = provider.usage(token)
        except ProviderError as exc:
            return {"node": node, "problem": str(exc)}
        finally:
            provider.close()
        return {"node": node, "outcome": dataclasses.asdict(outcome), "usage": dataclasses.asdict(usage),
                "files": _collect(outcome, stderr_path)}
    finally:
        events.put({"token": token, "ended": True})


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
        from ray.util.queue import Queue
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
        self.events = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": on_this_node})
        self.task = ray.remote(max_retries=0, num_cpus=0, resources={SLOT: 1})(node_task)
        self.pins: dict[str, str] = {}
        self._lock = threading.Lock()
        self._spawned: dict[str, dict[str, Any]] = {}
        self._ended: set[str] = set()
        self._inflight: dict[str, Any] = {}
        self._interrupting = False

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

    def interrupt(self, force: bool = False) -> None:
        self._interrupting = True
        with self._lock:
            refs = list(self._inflight.values())
        for ref in refs:
            self.ray.cancel(ref, force=force)

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
            self._inflight[job.token] = ref
            self._spawned.pop(job.token, None)
            self._ended.discard(job.token)
        try:
            with job.interruptible():  # one lane: the stop signal interrupts this wait in the main thread
                return self._wait(ref, job)
        except BaseException as exc:
            # Ctrl-C: a KeyboardInterrupt in the main thread (one lane); in a lane thread after
            # interrupt(), whatever Ray's calls raise once the driver saw the signal (SystemExit,
            # a closed connection). Either way: stop this pass and give the entry back.
            if not (self._interrupting or isinstance(exc, KeyboardInterrupt | SystemExit)):
                raise
            self._cancel(ref, job)
            raise Interrupted(f"Ray task of {job.spec.stem} cancelled") from None
        finally:
            with self._lock:
                self._inflight.pop(job.token, None)

    def _wait(self, ref: Any, job: Job) -> dict[str, Any]:
        """Until the task answers, reporting its worker's pid to the session once it starts."""
        ray = self.ray
        submitted = time.monotonic()
        started: float | None = None
        while True:
            done, _ = ray.wait([ref], timeout=POLL_SECONDS)
            self._drain()
            if started is None and job.token in self._spawned:
                started = time.monotonic()
                event = self._spawned[job.token]
                job.on_spawn(int(event["pid"]), event.get("create_time"))
            if done:
                break
            waited = time.monotonic() - (started or submitted)
            limit = job.timeout + job.grace + END_MARGIN if started else SCHEDULE_SECONDS
            if waited > limit:
                ray.cancel(ref, force=True)
                what = "no answer from the node" if started else "no node took the task"
                raise _NodeLost(f"{what} within {limit:.0f} s (node or cluster connection lost?)")
        try:
            reply: dict[str, Any] = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            self._await_end(job)
            raise Interrupted(f"Ray task of {job.spec.stem} cancelled") from None
        except ray.exceptions.TaskUnschedulableError as exc:
            raise _NodeLost(f"the node holding this entry's cache is gone ({_first_line(exc)})") from None
        except ray.exceptions.RayTaskError as exc:  # our task code raised on the node: a bug, not a lost node
            if self._interrupting:  # ...unless we cancelled it: then it is the worker's Interrupted
                raise Interrupted(f"Ray task of {job.spec.stem} cancelled") from None
            return {"node": self._node_of(job), "problem": f"the Ray task failed on its node: {_first_line(exc)}"}
        except ray.exceptions.RayError as exc:
            node = self._node_of(job)
            raise _NodeLost(f"node {str(node['node_id'])[:12]} ({node['host']}) lost mid-run: {type(exc).__name__}") from None
        return reply

    def _node_of(self, job: Job) -> dict[str, Any]:
        """The node a pass started on, as its spawn event named it (``None`` fields if it never started)."""
        event = self._spawned.get(job.token, {})
        return {key: event.get(key) for key in describe_host("ray")}

    def _drain(self) -> None:
        """Move the nodes' events into per-token tables (several lanes share one queue)."""
        with self._lock:
            size = self.events.qsize()
            for event in self.events.get_nowait_batch(size) if size else []:
                if event.get("ended"):
                    self._ended.add(event["token"])
                else:
                    self._spawned[event["token"]] = event

    def _await_end(self, job: Job) -> None:
        """After a cancel: wait until the task says it has stopped its worker, then kill it."""
        deadline = time.monotonic() + job.grace + 30
        try:
            while job.token not in self._ended and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
                self._drain()
        except (KeyboardInterrupt, SystemExit, self.ray.exceptions.RayError):
            pass  # a second Ctrl-C, or the cluster is gone: the caller kills the task at once

    def _cancel(self, ref: Any, job: Job) -> None:
        """Graceful first (the task's run_worker stops its worker tree), then by force.

        Should the cluster connection be gone as well, Ray ends the task when its owner (this
        supervisor) exits, and the worker follows its parent (parent-death signal).
        """
        with contextlib.suppress(Exception):
            self.ray.cancel(ref)
            self._await_end(job)
            if job.token not in self._ended:
                self.ray.cancel(ref, force=True)

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
