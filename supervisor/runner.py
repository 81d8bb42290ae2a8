"""The child process: spawn one worker, feed it its spec, enforce the time limit, read its answer.

Like asv, a time-out ends the whole process group; unlike a plain kill, the worker first
gets SIGTERM and a grace period so it can stop yappi and save a partial profile. Whatever
happens, no process of the worker's tree outlives this call.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from supervisor.machine import MachineWatch
from worker.protocol import ERROR_KINDS, PROTOCOL_VERSION, REQUIRED_ANSWER_FIELDS, RunSpec


@dataclass
class Outcome:
    """What happened to one worker process; ``problem`` is a one-line reason or None."""

    answer: dict[str, Any] | None
    returncode: int | None
    seconds: float
    pid: int | None = None
    timed_out: bool = False
    problem: str | None = None
    machine: dict[str, Any] | None = None


class Interrupted(Exception):
    """Ctrl-C or SIGTERM reached the supervisor while a worker ran; the tree is already gone."""


@retry(
    retry=retry_if_exception_type(OSError),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.2, max=2),
    reraise=True,
)
def _spawn(cmd: list[str], env: dict[str, str], cwd: Path, stderr: Any) -> subprocess.Popen[bytes]:
    """Start the worker in its own session, so its whole tree can be signalled as a group."""
    return subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )


def kill_tree(proc: subprocess.Popen[bytes], grace: float, first: signal.Signals = signal.SIGTERM) -> None:
    """Signal the worker, give it ``grace`` seconds, then SIGKILL every process of its tree.

    Children are collected before anything dies (an orphan is reparented and lost to
    ``children()``), and the process group catches any we could not see.
    """
    tree: list[psutil.Process] = []
    if proc.returncode is None:  # once reaped, the pid may belong to someone else
        try:
            root = psutil.Process(proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    if tree and grace > 0:
        with contextlib.suppress(psutil.NoSuchProcess):
            tree[0].send_signal(first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    # The worker itself is reaped by Popen, never by psutil: a child reaped elsewhere reads as
    # exit code 0 to Popen, which would record a timed-out worker as a clean exit.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    psutil.wait_procs(tree[1:], timeout=5)


def parse_answer(stdout: bytes, run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The worker's JSON document, or a one-line reason why there is none we can trust."""
    text = stdout.strip()
    if not text:
        return None, "worker printed nothing on stdout"
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        preview = text[:60].decode("utf-8", "replace").replace("\n", "\\n")
        return None, f"worker printed garbage instead of one JSON document ({len(text)} bytes, starts {preview!r})"
    if not isinstance(answer, dict):
        return None, "worker answer is JSON but not an object"
    missing = [f for f in REQUIRED_ANSWER_FIELDS if f not in answer]
    if missing:
        return None, f"worker answer is missing field(s): {', '.join(missing)}"
    if answer.get("error_kind") not in (None, *ERROR_KINDS):
        return None, f"worker answer has unknown error_kind {answer['error_kind']!r}"
    if answer["protocol"] != PROTOCOL_VERSION:
        return None, f"worker speaks protocol {answer['protocol']}, supervisor {PROTOCOL_VERSION}"
    if answer["id"] not in (run_id, "?"):
        return None, f"worker answered for run {answer['id']!r}, not {run_id!r}"
    return answer, None


def run_worker(
    spec: RunSpec,
    env: dict[str, str],
    timeout: float,
    stderr_path: Path,
    on_spawn: Callable[[int, float | None], None],
    grace: float = 10.0,
    command: list[str] | None = None,
) -> Outcome:
    """Run one worker to the end, a time-out or an interruption (then :class:`Interrupted`)."""
    cmd = command or [sys.executable, "-m", "worker"]
    work_dir = Path(spec.work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)  # LumiBot's ./logs of an earlier attempt would mislead
    work_dir.mkdir(parents=True)
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    watch = MachineWatch()
    t0 = time.perf_counter()
    with stderr_path.open("wb") as stderr:
        proc = _spawn(cmd, env, work_dir, stderr)
        try:
            on_spawn(proc.pid, psutil.Process(proc.pid).create_time())
        except psutil.NoSuchProcess:
            on_spawn(proc.pid, None)
        stdin = orjson.dumps(spec.to_json())
        timed_out = False
        try:
            try:
                stdout, _ = proc.communicate(stdin, timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_tree(proc, grace)
                stdout, _ = proc.communicate()
        except KeyboardInterrupt:
            _stop_on_interrupt(proc, grace)
            raise Interrupted(f"worker {proc.pid} stopped after {time.perf_counter() - t0:.1f} s") from None
        finally:
            kill_tree(proc, 0)  # also reaps anything the worker left in its process group
    seconds = time.perf_counter() - t0
    answer, problem = parse_answer(stdout, spec.id)
    outcome = Outcome(answer, proc.returncode, seconds, pid=proc.pid, timed_out=timed_out, problem=problem,
                      machine=watch.finish())
    if timed_out:
        outcome.problem = f"timeout after {timeout:g} s"
    elif problem is None and answer is not None and not answer.get("ok"):
        outcome.problem = answer.get("error") or "worker reported failure without a reason"
    elif problem is not None and proc.returncode is not None and proc.returncode < 0:
        outcome.problem = f"worker killed by {signal.Signals(-proc.returncode).name}; {problem}"
    elif problem is not None and proc.returncode:
        outcome.problem = f"worker exited with code {proc.returncode}; {problem}"
    return outcome


def _stop_on_interrupt(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop the tree gracefully; a second Ctrl-C during the grace period kills at once."""
    try:
        kill_tree(proc, grace)
    except KeyboardInterrupt:
        kill_tree(proc, 0)
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
        proc.communicate(timeout=5)
