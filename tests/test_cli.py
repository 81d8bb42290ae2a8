"""The installed ``lumiprof`` command and its ``python -m supervisor`` twin: same parser, same answers.

Real processes: the console script the install put beside this interpreter, and ``-m``.
(``tests/test_wheel.py`` runs the command from a wheel installed in a fresh environment.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from supervisor.cli import DISTRIBUTION
from tests.conftest import REPO_PLAN

LUMIPROF = Path(sys.executable).parent / "lumiprof"


def forms() -> list[list[str]]:
    """Both ways to start the CLI; the console script exists wherever ``make install`` ran."""
    assert LUMIPROF.is_file(), f"{LUMIPROF} is missing: `pip install -e .` installs the console script"
    return [[str(LUMIPROF)], [sys.executable, "-m", "supervisor"]]


def cli(command: list[str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("form", [0, 1], ids=["lumiprof", "python -m supervisor"])
def test_version_comes_from_the_package_metadata(form: int) -> None:
    proc = cli(forms()[form], "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"lumiprof {version(DISTRIBUTION)} (LumiBot {version('lumibot')}, ")
    assert proc.stderr == ""


def test_help_names_the_program_as_it_was_started_and_lists_every_command() -> None:
    installed, module = (cli(form, "--help") for form in forms())
    assert installed.stdout.startswith("usage: lumiprof ")
    assert module.stdout.startswith("usage: python -m supervisor ")
    for command in ("run", "status", "reset", "report", "gateway", "init STRATEGY", "compare BEFORE AFTER"):
        assert command in installed.stdout


def test_status_is_the_same_through_both_forms(tmp_path: Path) -> None:
    plan = tmp_path / "profiling_plan.json"
    shutil.copyfile(REPO_PLAN, plan)
    installed, module = (cli(form, "status", "--plan", str(plan)) for form in forms())
    assert installed.returncode == module.returncode == 0
    assert installed.stdout == module.stdout and "wk-2025-01-20_01-26" in installed.stdout


def test_compare_takes_two_plans_or_their_folders(tmp_path: Path) -> None:
    """``compare BEFORE AFTER`` is ``report --plan AFTER --compare BEFORE``; a folder means its profiling_plan.json."""
    for name in ("before", "after"):
        (tmp_path / name).mkdir()
        shutil.copyfile(REPO_PLAN, tmp_path / name / "profiling_plan.json")
    proc = cli(forms()[0], "compare", "before", "after/profiling_plan.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    compare = tmp_path / "after" / "profiling" / "COMPARE.md"
    assert compare.is_file()
    assert f"before = {tmp_path / 'before' / 'profiling_plan.json'}" in proc.stdout
    assert not (tmp_path / "before" / "profiling").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [(("compare", "only-one"), "required: after"), (("compare", "missing", "."), "plan file does not exist")],
)
def test_compare_refuses_bad_input_in_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    shutil.copyfile(REPO_PLAN, tmp_path / "profiling_plan.json")
    proc = cli(forms()[0], *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "profiling").exists()


LANES = """
import sys, threading
from supervisor import cli
sys.setswitchinterval(1e-6)  # switch threads as often as possible: between a line and its newline
def lane(n):
    for i in range(300):
        cli._print(f"lane-{n} done line {i} " + "x" * 50)
threads = [threading.Thread(target=lane, args=(n,)) for n in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_result_lines_of_lanes_side_by_side_never_run_into_one_another() -> None:
    """Seen under --executor ray: 'ray-a done ...ray-b done ...' on one line, then an empty one."""
    out = subprocess.run([sys.executable, "-c", LANES], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == 1800
    assert all(re.fullmatch(r"lane-\d done line \d+ x{50}", line) for line in lines), [
        line for line in lines if not re.fullmatch(r"lane-\d done line \d+ x{50}", line)][:3]
