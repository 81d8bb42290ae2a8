"""``git_dirty`` says whether the code measured differs from the commit, not whether a round wrote results."""

from __future__ import annotations

import subprocess
from pathlib import Path

from supervisor.gitinfo import git_revision


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_plan_files_and_profiling_outputs_do_not_make_the_tree_dirty(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "profiling").mkdir(parents=True)
    (repo / "profiling_plan.json").write_text("{}\n")
    (repo / "profiling" / ".gitkeep").write_text("")
    (repo / "code.py").write_text("x = 1\n")
    (repo / "copy").mkdir()
    (repo / "copy" / "plan.json").write_text("{}\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")

    # A round ran a copied plan (tests, bench) after `make profile` filled the repo's own plan.
    (repo / "profiling_plan.json").write_text('{"results": {"x": 1}}\n')
    (repo / "profiling" / ".gitkeep").write_text("touched")
    (repo / "copy" / "plan.json").write_text('{"results": {}}\n')
    sha, dirty = git_revision(repo, (repo / "copy" / "plan.json",))
    assert len(sha) == 40 and dirty is False

    (repo / "code.py").write_text("x = 2\n")
    assert git_revision(repo, (repo / "copy" / "plan.json", repo / "code.py.unrelated")) == (sha, True)
