"""A flame graph (SVG) of collapsed stacks: the picture a user opens in a browser.

py-spy writes either collapsed stacks or an SVG in one run, not both, and no maintained
renderer of collapsed stacks is on PyPI (the packages named flamegraph or flameprof are old
and render cProfile output), so this module draws the classic layout itself: one box per
frame, root at the bottom, width proportional to samples, siblings merged and sorted by name
as flamegraph.pl does. Plain SVG with a ``<title>`` per box (the tooltip), no script, so it
opens anywhere. Boxes under ``MIN_WIDTH`` pixels are left out, like flamegraph.pl's default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from common.collapsed import Frame, Stack

WIDTH = 1200.0
FRAME_HEIGHT = 16
FONT_SIZE = 11
CHAR_WIDTH = 0.59 * FONT_SIZE
MIN_WIDTH = 0.1
PAD_TOP, PAD_BOTTOM, PAD_SIDE = 40, 24, 10


@dataclass
class Node:
    """A frame in the merged call tree with the samples at or below it."""

    label: str
    detail: str
    samples: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def _frame_text(frame: Frame) -> tuple[str, str]:
    where = f" ({frame.file}:{frame.line})" if frame.file else ""
    return frame.name, frame.name + where


def build_tree(stacks: Iterable[Stack]) -> Node:
    root = Node("all", "all samples")
    for stack in stacks:
        root.samples += stack.count
        node = root
        parts: list[tuple[str, str]] = []
        if stack.thread:
            parts.append((f"thread {stack.thread}", f"thread {stack.thread}"))
        parts.extend(_frame_text(f) for f in stack.frames)
        for label, detail in parts:
            node = node.children.setdefault(detail, Node(label, detail))
            node.samples += stack.count
    return root


def _depth(node: Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def _colour(label: str) -> str:
    """A warm colour fixed by the name, so one function has one colour across graphs."""
    digest = hashlib.blake2s(label.encode(), digest_size=3).digest()
    return f"rgb({205 + digest[0] % 50},{digest[1] % 230},{digest[2] % 55})"


def render(stacks: Iterable[Stack], title: str) -> str:
    root = build_tree(stacks)
    depth = _depth(root)
    height = PAD_TOP + depth * FRAME_HEIGHT + PAD_BOTTOM
    total = max(root.samples, 1)
    scale = (WIDTH - 2 * PAD_SIDE) / total
    boxes: list[str] = []

    def draw(node: Node, x: float, level: int) -> None:
        width = node.samples * scale
        if width < MIN_WIDTH:
            return
        y = height - PAD_BOTTOM - (level + 1) * FRAME_HEIGHT
        tip = f"{node.detail} ({node.samples} samples, {100 * node.samples / total:.2f} %)"
        chars = int((width - 6) / CHAR_WIDTH)
        label = node.label if len(node.label) <= chars else (node.label[: chars - 2] + ".." if chars > 3 else "")
        text = f'<text x="{x + 3:.1f}" y="{y + FRAME_HEIGHT - 4.5:.1f}">{escape(label)}</text>' if label else ""
        boxes.append(
            f'<g><title>{escape(tip)}</title><rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{FRAME_HEIGHT - 1}" '
            f'fill="{_colour(node.label)}" rx="2"/>{text}</g>'
        )
        offset = x
        for child in sorted(node.children.values(), key=lambda c: c.detail):
            draw(child, offset, level + 1)
            offset += child.samples * scale

    draw(root, PAD_SIDE, 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0f}" height="{height}" '
        f'viewBox="0 0 {WIDTH:.0f} {height}" font-family="Verdana, sans-serif" font-size="{FONT_SIZE}">\n'
        f'<rect width="100%" height="100%" fill="#f8f8f0"/>\n'
        f'<text x="{WIDTH / 2:.0f}" y="24" text-anchor="middle" font-size="16">{escape(title)}</text>\n'
        + "\n".join(boxes)
        + f'\n<text x="{PAD_SIDE}" y="{height - 6}" font-size="10">{root.samples} samples; '
        "hover a box for its function, file, line and share</text>\n</svg>\n"
    )


def write_svg(stacks: Iterable[Stack], path: Path, title: str) -> None:
    path.write_text(render(stacks, title), encoding="utf-8")
