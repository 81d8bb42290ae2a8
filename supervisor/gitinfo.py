"""The revision a run was measured at, so results from different code are never mixed up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

#: What a profiling round itself rewrites, relative to the repository root: the repo's own plan
#: (results land in it) and the output folder. Changes there say nothing about the code measured.
ROUND_OUTPUTS = ("profiling_plan.json", "profiling")


def _outside(path: str, skipped: set[str]) -> bool:
    return not any(path == s or path.startswith(s + "/") for s in skipped)


@lru_cache(maxsize=8)
def git_revision(folder: Path, ignore: tuple[Path, ...] = ()) -> tuple[str, bool]:
    """(commit sha, dirty) of the repository holding ``folder``; ('unknown', False) outside git.

    Changes to :data:`ROUND_OUTPUTS` and to ``ignore`` (files or folders, e.g. the plan being
    run) do not make the tree dirty: every run rewrites them.
    """
    try:
        import git

        repo = git.Repo(folder, search_parent_directories=True)
        sha = repo.head.commit.hexsha
        root = Path(repo.working_tree_dir or folder).resolve()
        skip = set(ROUND_OUTPUTS) | {
            p.resolve().relative_to(root).as_posix() for p in ignore if p.resolve().is_relative_to(root)
        }
        changed = {d.a_path for d in repo.index.diff(None)} | {d.a_path for d in repo.index.diff("HEAD")}
        return sha, any(_outside(path, skip) for path in changed if path)
    except Exception:
        return "unknown", False
