"""The revision a run was measured at, so results from different code are never mixed up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=8)
def git_revision(folder: Path, ignore: tuple[Path, ...] = ()) -> tuple[str, bool]:
    """(commit sha, dirty) of the repository holding ``folder``; ('unknown', False) outside git.

    Files in ``ignore`` (the plan file, which every run rewrites) do not make the tree dirty.
    """
    try:
        import git

        repo = git.Repo(folder, search_parent_directories=True)
        sha = repo.head.commit.hexsha
        root = Path(repo.working_tree_dir or folder).resolve()
        skip = {str(p.resolve().relative_to(root)) for p in ignore if p.resolve().is_relative_to(root)}
        changed = {d.a_path for d in repo.index.diff(None)} | {d.a_path for d in repo.index.diff("HEAD")}
        return sha, bool(changed - skip)
    except Exception:
        return "unknown", False
