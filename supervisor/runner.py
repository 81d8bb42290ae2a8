"""The child process: spawn one worker, feed it its spec, enforce the time limit, read its answer.

Like asv, a time-out ends the whole process group; unlike a plain kill, the worker first
gets SIGTERM and a grace period so it can stop yappi and save a partial profile. Whatever
happens, no process of the worker's tree outlives this call.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from supervisor import reaper
from supervisor.machine import MachineWatch
from supervisor.owned import fresh_dir
from supervisor.schema import WORKER_ANSWER, SchemaError
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
def _spawn(cmd: list[str], env: dict[str, str], cwd: Path, stdout: Any, stderr: Any) -> subprocess.Popen[bytes]:
    """Start the worker in its own session, so its whole tree can be signalled as a group."""
    return subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=stdout,
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


def parse_answer(stdout: bytes, size: int | None = None, *, run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The worker's JSON document, or a one-line reason why there is none we can trust.

    ``size`` is the whole output's size when ``stdout`` is only its head (a flood of garbage).
    """
    text = stdout.strip()
    if not text:
        return None, "worker printed nothing on stdout"
    try:
        if size is not None and size > len(stdout):
            raise ValueError("only the head was read: too large to be an answer")
        answer = orjson.loads(text)
    except ValueError:  # orjson.JSONDecodeError is one
        preview = text[:60].decode("utf-8", "replace").replace("\n", "\\n")
        shown = size if size is not None else len(text)
        return None, f"worker printed garbage instead of one JSON document ({shown} bytes, starts {preview!r})"
    if not isinstance(answer, dict):
        return None, "worker answer is JSON but not an object"
    missing = [f for f in REQUIRED_ANSWER_FIELDS if f not in answer]
    if missing:
        return None, f"worker answer is missing field(s): {', '.join(missing)}"
    try:
        WORKER_ANSWER(answer)
    except SchemaError as exc:
        return None, f"worker answer is malformed: {exc.within('answer')}"
    if answer.get("error_kind") not in (None, *ERROR_KINDS):
        return None, f"worker answer has unknown error_kind {answer['error_kind']!r}"
    if answer["protocol"] != PROTOCOL_VERSION:
        return None, f"worker speaks protocol {answer['protocol']}, supervisor {PROTOCOL_VERSION}"
    if answer["id"] not in (run_id, "?"):
        return None, f"worker answered for run {answer['id']!r}, not {run_id!r}"
    return answer, None


#: The answer is a few KB; anything beyond this is garbage and is not read into memory.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


def _read_answer(path: Path) -> tuple[bytes, int]:
    """The first :data:`MAX_ANSWER_BYTES` of the worker's stdout (kept in a file, not in memory) and its size."""
    with path.open("rb") as fh:
        return fh.read(MAX_ANSWER_BYTES), os.fstat(fh.fileno()).st_size


def run_worker(
    spec: RunSpec,
    env: dict[str, str],
    timeout: float,
    stderr_path: Path,
    on_spawn: Callable[[int, float | None], None],
    grace: float = 10.0,
    command: list[str] | None = None,
    interruptible: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> Outcome:
    """Run one worker to the end, a time-out or an interruption (then :class:`Interrupted`).

    A stop signal interrupts only inside ``interruptible()``: while the worker runs and while
    it is being stopped, never while its answer is read. Afterwards every process carrying
    the worker's marker (``reaper.MARKER`` in ``env``) is killed, even one in its own session.
    """
    cmd = command or [sys.executable, "-m", "worker"]
    work_dir = fresh_dir(Path(spec.work_dir))  # LumiBot's ./logs of an earlier attempt would mislead
    stdout_path = work_dir / "worker.stdout"
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    watch = MachineWatch()
    t0 = time.perf_counter()
    with stderr_path.open("wb") as stderr, stdout_path.open("wb") as stdout:
        proc = _spawn(cmd, env, work_dir, stdout, stderr)
        stdin = orjson.dumps(spec.to_json())
        timed_out = False
        try:
            try:  # inside the try: if recording the worker fails (plan unwritable), the tree still ends
                on_spawn(proc.pid, psutil.Process(proc.pid).create_time())
            except psutil.NoSuchProcess:
                on_spawn(proc.pid, None)
            with interruptible():
                try:
                    proc.communicate(stdin, timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    kill_tree(proc, grace)
                    proc.wait()
        except KeyboardInterrupt:
            _stop_on_interrupt(proc, grace, interruptible)
            raise Interrupted(f"worker {proc.pid} stopped after {time.perf_counter() - t0:.1f} s") from None
        finally:
            kill_tree(proc, 0)  # also reaps anything the worker left in its process group
            if reaper.MARKER in env:
                reaper.kill_marked(env[reaper.MARKER])  # and anything that left the group
    seconds = time.perf_counter() - t0
    answer, problem = parse_answer(*_read_answer(stdout_path), run_id=spec.id)
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


def _stop_on_interrupt(
    proc: subprocess.Popen[bytes], grace: float, interruptible: Callable[[], AbstractContextManager[None]]
) -> None:
    """Stop the tree gracefully; a second Ctrl-C during the grace period kills at once."""
    try:
        with interruptible():
            kill_tree(proc, grace)
    except KeyboardInterrupt:
        kill_tree(proc, 0)
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
        proc.communicate(timeout=5)
