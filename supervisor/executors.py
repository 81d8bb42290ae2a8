"""Where a worker process runs: here, as a child of the supervisor (default), or on a Ray node.

The session stays the only writer of the plan and knows nothing of clusters: it hands an
:class:`Executor` one :class:`Job` at a time per lane and gets back a :class:`Ran` (the
worker's outcome, what the data provider served it, and which machine ran it). The local
executor is today's path unchanged: :func:`supervisor.runner.run_worker` plus the provider
the session used to own. ``ray`` is imported only when ``--executor ray`` is chosen.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import platform
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from common.sourcetree import child_env
from supervisor import reaper
from supervisor.plan import PHASE0_LABELS, Plan, PlanError, Run
from supervisor.provider import DataProvider, Usage, open_provider
from supervisor.runner import Outcome, run_worker
from worker.protocol import RunSpec

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    """One worker pass to run somewhere, with everything the session decided about it."""

    spec: RunSpec
    token: str
    """The data provider's accounting token for this pass."""
    timeout: float
    grace: float
    stderr_path: Path
    on_spawn: Callable[[int, float | None], None]
    cache_key: str
    """Name of the cache folder the pass uses (passes sharing one must share a machine)."""
    cache_node: str | None = None
    """The cluster node whose cache this pass must reuse, when another pass filled it."""
    marker: str = ""
    """The owner token every process of the worker's tree carries (``reaper.MARKER``), so its
    leftovers can be found and killed by proof of identity."""
    interruptible: Callable[[], AbstractContextManager[None]] = nullcontext
    """Where a stop signal may interrupt the wait for the worker (``StopRequest.interruptible``)."""
    stops: Callable[[], int] = int
    """How many stop signals the supervisor has had (``StopRequest.count``; ``int()`` is 0): an
    executor that waits by polling stops the pass gracefully at 1, at once from 2."""


@dataclass
class Ran:
    """What one pass produced, wherever it ran."""

    outcome: Outcome
    usage: Usage
    node: dict[str, Any] = field(default_factory=dict)
    """``host``, ``cpu_model``, ``executor``, ``node_id`` and ``node_failures``: recorded in the result."""


class Executor(Protocol):
    name: str
    slots: int
    """How many passes may run at once (lanes of the session)."""

    def check(self) -> None:
        """Raise :class:`supervisor.provider.ProviderError` if runs cannot get data right now."""

    def run(self, job: Job) -> Ran:
        """Run one pass to its end; raises :class:`supervisor.runner.Interrupted` on Ctrl-C."""

    def interrupt(self) -> None:
        """Stop every pass in flight, gracefully: a lane failed (called from its thread)."""

    def close(self) -> None:
        """Release what the executor started (gateway, cluster connection)."""


@functools.cache
def cpu_model() -> str:
    """The CPU's model name: wall times are comparable only between runs on the same one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe_host(executor: str, node_id: str | None = None) -> dict[str, Any]:
    """The machine a pass ran on, as every result records it."""
    return {"host": socket.gethostname(), "cpu_model": cpu_model(), "executor": executor, "node_id": node_id,
            "node_failures": []}


def worker_env(extra: dict[str, str]) -> dict[str, str]:
    """A worker's environment: ours, this project importable (:mod:`common.sourcetree`), the provider's variables."""
    return child_env(extra)


def cache_node(plan: Plan, run: Run) -> str | None:
    """The node that filled the cache this run must reuse: the warm probe reuses the cold probe's."""
    if run["label"] != PHASE0_LABELS[1]:
        return None
    for other in plan["runs"]:
        result = plan["results"].get(other["id"])
        if other["label"] == PHASE0_LABELS[0] and isinstance(result, dict) and result.get("node_id"):
            return str(result["node_id"])
    return None


def plan_key(host: str, plan_path: Path) -> str:
    """Names a plan's folder on the nodes, so two plans never share a node's cache or work folders."""
    return hashlib.sha1(f"{host}:{plan_path}".encode()).hexdigest()[:12]


def check_options(executor: str, address: str | None, slots: int | None) -> None:
    """Refuse contradictory cluster options with a one-line reason (exit 2)."""
    if executor not in EXECUTORS:
        raise PlanError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "local" and (address or slots is not None):
        raise PlanError("--address and --slots only apply to --executor ray")
    if slots is not None and slots < 1:
        raise PlanError("--slots must be a whole number of at least 1")
    if slots is not None and address:
        raise PlanError("--slots sets the slots of the local cluster; nodes of a cluster at --address advertise their own")


class LocalExecutor:
    """Today's path: one child process of this supervisor at a time, the provider opened here."""

    name = "local"
    slots = 1

    def __init__(self, provider: DataProvider) -> None:
        self.provider = provider
        self.node = describe_host(self.name)

    def check(self) -> None:
        self.provider.check()

    def run(self, job: Job) -> Ran:
        env = worker_env({**self.provider.env_for(job.token), reaper.MARKER: job.marker})
        outcome = run_worker(job.spec, env, job.timeout, job.stderr_path, job.on_spawn, grace=job.grace,
                             interruptible=job.interruptible)
        return Ran(outcome, self.provider.usage(job.token), dict(self.node))

    def interrupt(self) -> None:
        """One lane only, in the main thread: Ctrl-C reaches :func:`run_worker` directly."""

    def close(self) -> None:
        self.provider.close()


def open_executor(
    kind: str, settings: dict[str, Any], gateway_root: Path, seed: int, owner_token: str, *,
    address: str | None = None, slots: int | None = None, plan_key: str = "",
) -> Executor:
    """The executor the command line chose; ``ray`` is imported only on this path."""
    if kind == "ray":
        if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its settings at import
            raise PlanError("--executor ray needs Ray: pip install -e '.[cluster]' (or make install)")
        from supervisor.ray_executor import RayExecutor

        return RayExecutor(settings, seed, address=address, slots=slots, plan_key=plan_key)
    return LocalExecutor(open_provider(settings, gateway_root, seed, owner_token))
