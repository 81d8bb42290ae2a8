"""The README is a front page a newcomer reads in five minutes; the reference lives in docs/.

Every relative link in README.md and docs/*.md must resolve: the file exists, and an
``#anchor`` names a heading of that file (GitHub's slugs: lower case, punctuation dropped,
spaces to hyphens, ``-1``, ``-2`` for repeats). Every docs page is reachable from the README.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 150

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_INLINE_CODE = re.compile(r"`[^`]*`")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks (a ``# comment`` in a shell block is not a heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, only word characters, spaces and hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path.read_text()):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    found = []
    for line in prose(path.read_text()):
        found.extend(_LINK.findall(_INLINE_CODE.sub("", line)))
    return found


def test_the_readme_is_a_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) < MAX_README_LINES, f"README.md has {len(lines)} lines; reference material goes into docs/"
    assert DOCS, "docs/ holds the reference pages"


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check offline
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / unquote(file_part)).resolve() if file_part else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
            broken.append(f"{target}: no heading with this anchor in {resolved.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README) if t.partition("#")[0]}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


def test_the_link_checker_finds_broken_links(tmp_path: Path) -> None:
    """The checks above can fail: a missing file and a missing anchor are both caught."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## A `code` heading: with punctuation\n\n```sh\n# not a heading\n```\n"
                    "[ok](#a-code-heading-with-punctuation) [bad](#not-a-heading) [gone](missing.md)\n")
    assert anchors(page) == {"title", "a-code-heading-with-punctuation"}
    assert broken_links(page) == ["#not-a-heading: no heading with this anchor in page.md", "missing.md: no such file"]
