"""``--executor ray`` on a real Ray cluster of several nodes on this machine (tests/raycluster.py).

Real nodes (separate raylets and temp folders), real tasks, real workers and backtests; a
node is killed with SIGKILL mid-run. One cluster serves the whole file (starting one costs
tens of seconds): a head that runs no pass, where the supervisors connect, and two nodes with
one profiling slot each. After each test no worker may be left; after the file no process of
the cluster: they all carry the cluster's ``RAY_TMPDIR`` in their environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from supervisor.reaper import MARKER
from tests.conftest import REPO, load, short_run, supervise
from tests.test_faults import gone, wait_for_file, wait_for_worker

FILES = ("top_functions_csv", "top_threads_csv", "pstat", "callgrind", "stderr_log")
SHORT = {"strategy_parameters": {"sleeptime": "60M"}}
FAULTY = "tests.strategies.faulty"
STOP_SECONDS = 10.0
"""A stop signal under ``--executor ray`` ends the supervisor within this, at every moment of a pass."""


@dataclass
class RayCluster:
    address: str
    nodes: list[dict]
    env: dict[str, str]
    node_dir: Path
    temp: Path
    helper: subprocess.Popen[str]
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def supervisor(self, plan: Path, *args: str) -> subprocess.Popen[str]:
        sup = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "--executor", "ray", "--address", self.address, *args, "--plan", str(plan)],
            cwd=plan.parent, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.started.append(sup)
        return sup

    def add_node(self, slots: int) -> dict:
        assert self.helper.stdin is not None and self.helper.stdout is not None
        self.helper.stdin.write(f"add {slots}\n")
        self.helper.stdin.flush()
        node = json.loads(self.helper.stdout.readline())
        self.nodes.append(node)
        return node

    def work_dir(self, stem: str) -> Path:
        """A pass's working folder on the nodes (they share ``LUMIPROF_NODE_DIR`` on this machine)."""
        deadline = time.monotonic() + 300
        while not (found := list(self.node_dir.glob(f"lumiprof-node/*/work/{stem}"))):
            assert time.monotonic() < deadline, f"no node made a work folder for {stem}"
            time.sleep(0.1)
        return found[0]

    @contextmanager
    def slots_held(self) -> Iterator[None]:
        """Another job holds every profiling slot: a pass submitted meanwhile waits for a node."""
        holder = subprocess.Popen([sys.executable, str(REPO / "tests" / "raycluster.py"), "hold", self.address],
                                  env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            yield
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=120)


def cluster_processes(temp: Path, marked: bool = False) -> list[psutil.Process]:
    """Live processes of the cluster or its workers (they inherit ``RAY_TMPDIR``); ``marked``:
    only those of our workers (they carry the owner marker, Ray's own processes do not)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            env = proc.environ()
            if env.get("RAY_TMPDIR") == str(temp) and (MARKER in env or not marked) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """The file's cluster: slots 0 (the head), 1 and 1. Stopped at the end; nothing of it may be left."""
    temp = Path(tempfile.mkdtemp(prefix="lp-ray-", dir="/tmp"))  # Ray's socket paths must stay under 108 bytes
    node_dir = tmp_path_factory.mktemp("nodes")
    env = {**os.environ, "RAY_TMPDIR": str(temp), "LUMIPROF_NODE_DIR": str(node_dir), "RAY_USAGE_STATS_ENABLED": "0"}
    helper = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "raycluster.py"), "0", "1", "1"],
        cwd=node_dir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert helper.stdout is not None
        line = helper.stdout.readline()  # the cluster is up when it prints
        assert line, "the Ray test cluster did not start"
        info = json.loads(line)
        yield RayCluster(info["address"], info["nodes"], env, node_dir, temp, helper)
    finally:
        assert helper.stdin is not None
        helper.stdin.close()
        helper.wait(timeout=180)
        left = cluster_processes(temp)
        for proc in left:
            proc.kill()
        shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"left running after the tests: {[(p.pid, p.name()) for p in left]}"


@pytest.fixture
def cluster(ray_cluster: RayCluster) -> Iterator[RayCluster]:
    """The shared cluster; after the test, no supervisor it started and no worker may be left."""
    yield ray_cluster
    running = [sup for sup in ray_cluster.started if sup.poll() is None]
    for sup in ray_cluster.started:
        if sup.poll() is None:
            sup.kill()
        sup.communicate()  # reaped: a test that failed leaves no zombie either
    ray_cluster.started.clear()
    deadline = time.monotonic() + 30
    while (workers := cluster_processes(ray_cluster.temp, marked=True)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in workers:
        proc.kill()
    assert not running, f"supervisors still running after the test: {[s.pid for s in running]}"
    assert not workers, f"workers left running after the test: {[(p.pid, p.name()) for p in workers]}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address", "127.0.0.1:1"], "only apply to --executor ray"),
        (["--executor", "ray", "--slots", "0"], "at least 1"),
        (["--executor", "ray", "--slots", "2", "--address", "127.0.0.1:1"], "advertise their own"),
    ],
)
def test_contradictory_cluster_options_are_refused_before_any_change(make_plan, args, message):
    plan = make_plan([short_run("opts")])
    before = plan.read_bytes()
    proc = supervise(plan, *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert plan.read_bytes() == before


@pytest.mark.slow
def test_a_plan_runs_once_per_entry_on_two_nodes(cluster, make_plan):
    runs = [short_run("ray-a", "2024-09-03", "2024-09-04"), short_run("ray-b", "2024-09-04", "2024-09-05")]
    # py-spy cannot reach a node (said, no crash); memray runs inside the worker, so its files come back
    plan = make_plan(runs, meta={**SHORT, "cross_check": "sampled", "memory": "all"})
    out, err = cluster.supervisor(plan).communicate(timeout=600)
    print(out)  # the two-node run's console output, for the record
    assert "ray-a" in out and "ray-b" in out, out + err
    final = load(plan)
    assert [(r["status"], r["attempts"]) for r in final["runs"]] == [("done", 1), ("done", 1)], out + err
    assert sorted(line.split()[0] for line in out.splitlines() if line.startswith("ray-")) == ["ray-a", "ray-b"]
    slot_nodes = {n["node_id"] for n in cluster.nodes if n["slots"]}
    used = set()
    for run in runs:
        result = final["results"][run["id"]]
        assert result["executor"] == "ray" and result["host"] == socket.gethostname() and result["cpu_model"]
        assert result["node_id"] in slot_nodes and result["node_failures"] == []
        used.add(result["node_id"])
        for name in FILES:
            assert (plan.parent / result[name]).stat().st_size > 0, name
        assert result["iterations"] > 0 and result["invariants_hold"] is True
        assert result["cross_check"] == "unavailable: not supported with --executor ray (py-spy must run on the worker's node)"
        assert "cross-check unavailable: not supported with --executor ray" in result["notes"]
        held = result["memory"]
        assert held["status"] == "done" and held["tool"] == "memray" and held["outcome_matches"] is True, held
        assert held["peak_heap_bytes"] > 10 * 2**20
        for name in ("capture", "sites", "flamegraph"):
            assert (plan.parent / held[name]).stat().st_size > 0, name
    assert used == slot_nodes  # one slot per node: the two entries ran side by side, one on each


def py_spy_dump(pid: int) -> str:
    """Where a process that should have ended is waiting (the evidence a hang needs)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    try:
        return subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(no py-spy dump: {exc})"


def stop(sup: subprocess.Popen[str], signum: signal.Signals) -> tuple[float, str, str]:
    """Send the signal; the seconds until the supervisor ended, and its output."""
    t0 = time.monotonic()
    sup.send_signal(signum)
    try:
        out, err = sup.communicate(timeout=STOP_SECONDS + 50)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"supervisor still running 60 s after {signum.name}:\n{py_spy_dump(sup.pid)}") from None
    return time.monotonic() - t0, out, err


def tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants, as they are now."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def still_there(procs: list[psutil.Process], seconds: float = 3.0) -> list[str]:
    """Those of ``procs`` that still exist after ``seconds``, zombies included (a zombie is an unreaped child)."""
    deadline = time.monotonic() + seconds
    while True:
        left = []
        for proc in procs:
            try:
                if proc.is_running():  # same pid and create time: not a reused pid
                    left.append(f"{proc.pid} {proc.name()} {proc.status()}")
            except psutil.NoSuchProcess:
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def wait_for_claim(plan: Path, run_id: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while next(r for r in load(plan)["runs"] if r["id"] == run_id)["status"] != "running":
        assert time.monotonic() < deadline, f"{run_id} was never claimed"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("moment", "signum"),
    [
        ("queued", signal.SIGINT),  # every slot held by another job: the task waits for a node
        ("just-claimed", signal.SIGINT),  # the node is (mostly) still starting the task's Ray worker
        ("worker-starting", signal.SIGTERM),  # the worker runs but is still importing (stuck_import)
        ("worker-hangs", signal.SIGINT),  # the worker is inside the strategy's iteration (Hang)
    ],
    ids=["queued-ctrl-c", "just-claimed-ctrl-c", "worker-starting-sigterm", "worker-hangs-ctrl-c"],
)
def test_a_stop_signal_at_any_moment_of_a_pass_exits_130_at_once_leaving_nothing(
    cluster, make_plan, moment, signum, record_property
):
    """Issue 18: the stop used to wait twice 40 s for an 'ended' message from a task that Ray
    had dropped before it ran (queued, or its Ray worker still starting). Now, wherever the pass
    is, the supervisor exits 130 within seconds, the entry is pending again and nothing of the
    pass is left: no worker, no zombie, no child of ours. SIGTERM at one of the moments:
    ``ray.init`` replaces its handler, and the session must have put its own back."""
    run_id = f"stop-{moment}"
    strategy = "tests.strategies.stuck_import:Never" if moment == "worker-starting" else f"{FAULTY}:Hang"
    plan = make_plan([short_run(run_id)], meta={"strategy": strategy})
    with cluster.slots_held() if moment == "queued" else nullcontext():
        sup = cluster.supervisor(plan)
        worker = None
        wait_for_claim(plan, run_id)
        if moment == "queued":
            time.sleep(1.0)  # submitted by now, and no node can take it
        elif moment != "just-claimed":
            worker = wait_for_worker(plan, run_id, seconds=300)
            marker = "import.started" if moment == "worker-starting" else "hang.started"
            wait_for_file(cluster.work_dir(run_id) / marker, seconds=300)
        ours = tree(sup.pid) + (tree(worker) if worker else [])
        took, out, err = stop(sup, signum)
    record_property("stop_seconds", round(took, 2))  # in --junitxml: the repeat counts of issue 18
    assert sup.returncode == 130, out + err
    assert took < STOP_SECONDS, f"{took:.1f} s from {signum.name} to exit\n{out}{err}"
    assert f"interrupted by {signum.name}" in out and "pending (interrupted" in out, out + err
    run = load(plan)["runs"][0]
    assert run["status"] == "pending" and "interrupted" in run["note"] and run["attempts"] == 0, run
    assert not still_there(ours), f"left after the stop: {still_there(ours, 0)}"
    if moment == "queued":
        assert not list(cluster.node_dir.glob(f"lumiprof-node/*/work/{run_id}")), "a node ran the pass"


@pytest.mark.slow
def test_a_second_ctrl_c_kills_the_pass_at_once_when_its_worker_does_not_answer(cluster, make_plan, record_property):
    """The first Ctrl-C gives the worker its grace period (120 s here) to save a partial profile;
    a worker stuck in C code never answers, and a second Ctrl-C then stops it at once, on the
    node, with SIGKILL, as the local executor does (test_faults)."""
    plan = make_plan([short_run("ray-hog")], meta={"strategy": f"{FAULTY}:GilHog"})
    sup = cluster.supervisor(plan, "--grace", "120")
    worker = wait_for_worker(plan, "ray-hog", seconds=300)
    wait_for_file(cluster.work_dir("ray-hog") / "hog.started", seconds=300)
    time.sleep(0.5)  # inside the regex by now
    ours = tree(sup.pid) + tree(worker)
    sup.send_signal(signal.SIGINT)
    time.sleep(2.0)
    assert sup.poll() is None, "the first Ctrl-C should wait for the worker's grace period"
    took, out, err = stop(sup, signal.SIGINT)
    record_property("stop_seconds", round(took, 2))
    assert sup.returncode == 130, out + err
    assert took < STOP_SECONDS, f"{took:.1f} s from the second Ctrl-C to exit\n{out}{err}"
    assert load(plan)["runs"][0]["status"] == "pending"
    assert not still_there(ours), f"left after the stop: {still_there(ours, 0)}"


def raylet_of(pid: int) -> psutil.Process:
    """The raylet above a worker process: the node that runs it."""
    for parent in psutil.Process(pid).parents():
        if parent.name() == "raylet":
            return parent
    raise AssertionError(f"worker {pid} runs under no raylet")


@pytest.mark.slow
def test_a_node_killed_mid_run_moves_the_pass_to_another_node_never_leaving_it_running(cluster, make_plan):
    """The head (where the supervisor connects) runs no pass; the killed node is replaced afterwards."""
    plan = make_plan([short_run("ray-kill")], meta={"strategy": f"{FAULTY}:Hang"})
    sup = cluster.supervisor(plan, "--timeout", "30", "--grace", "3")
    worker = wait_for_worker(plan, "ray-kill", seconds=300)
    wait_for_file(cluster.work_dir("ray-kill") / "hang.started")
    raylet = raylet_of(worker)
    killed = next(n for n in cluster.nodes if n["raylet_pid"] == raylet.pid)
    raylet.kill()
    try:
        out, err = sup.communicate(timeout=600)
    finally:
        cluster.nodes.remove(killed)
        cluster.add_node(killed["slots"])  # the next test finds two slot nodes again
    assert sup.returncode == 1, out + err
    run = load(plan)["runs"][0]
    result = load(plan)["results"]["ray-kill"]
    assert run["status"] == "error" and run["attempts"] == 1
    # The second node took the pass and ran it into its time-out: one line says both.
    assert result["node_id"] not in (None, killed["node_id"]) and len(result["node_failures"]) == 1
    assert killed["node_id"][:12] in result["notes"] and "timeout after 30 s" in result["notes"] and "\n" not in result["notes"]
    assert gone(worker, 30)
