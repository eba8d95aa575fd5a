"""PAPER.md's line references point at what they name, so an edit that moves code makes this test fail instead of
leaving the mapping stale.

Two forms are checked, each inside one table cell or paragraph:
- `path:line`: the nearest backticked span before it in the same cell is the name it cites (`combined_reward`
  (`leser/reward.py:76`)); the line must hold that name: a dotted name by its last part as a whole word (the `def`,
  the key), anything else (a code snippet) verbatim;
- `path` lines A-B (`name`, `name`, ...): one name per line, in order.
For YAML files a name is a key: the line must start with `name:`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PAPER = REPO_ROOT / "PAPER.md"

SPAN = re.compile(r"`([^`]+)`")
LINE_REF = re.compile(r"^(?P<path>[\w./-]+\.\w+):(?P<line>\d+)$")
RANGE_REF = re.compile(r"`(?P<path>[\w./-]+\.\w+)` lines (?P<first>\d+)-(?P<last>\d+) \((?P<names>[^)]*)\)")
DOTTED = re.compile(r"[A-Za-z_][\w.]*")


def cells(text: str) -> list[tuple[int, str]]:
    """(line number, cell) for every table cell and every other line of the document; `\\|` is not a border."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("|"):
            out += [(number, cell) for cell in re.split(r"(?<!\\)\|", line)]
        else:
            out.append((number, line))
    return out


def references(text: str) -> list[tuple[int, str, int, str]]:
    """(PAPER.md line, referenced path, referenced line, cited name) for every reference of both forms."""
    refs = []
    for number, cell in cells(text):
        spans = SPAN.findall(cell)
        for i, span in enumerate(spans):
            m = LINE_REF.match(span)
            if not m:
                continue
            cited = next((s for s in reversed(spans[:i]) if not LINE_REF.match(s)), None)
            assert cited is not None, f"PAPER.md:{number}: `{span}` cites no name before it in its cell"
            refs.append((number, m["path"], int(m["line"]), cited))
        for m in RANGE_REF.finditer(cell):
            names = SPAN.findall(m["names"])
            first, last = int(m["first"]), int(m["last"])
            assert len(names) == last - first + 1, f"PAPER.md:{number}: lines {first}-{last} name {names}"
            refs += [(number, m["path"], first + k, name) for k, name in enumerate(names)]
    return refs


def holds(line: str, name: str, path: str) -> bool:
    if path.endswith((".yaml", ".yml")):
        return line.lstrip().startswith(f"{name.split(':')[0]}:")
    if DOTTED.fullmatch(name):
        return re.search(rf"\b{re.escape(name.split('.')[-1])}\b", line) is not None
    return name in line


REFS = references(PAPER.read_text())


def test_paper_has_line_references():
    assert len(REFS) >= 15  # the reward, gate and settings rows; fewer means the parser lost them


@pytest.mark.parametrize(("paper_line", "path", "line", "name"), REFS, ids=[f"{r[1]}:{r[2]}" for r in REFS])
def test_paper_line_reference_holds_the_cited_name(paper_line, path, line, name):
    target = REPO_ROOT / path
    assert target.is_file(), f"PAPER.md:{paper_line}: {path} does not exist"
    lines = target.read_text().splitlines()
    assert line <= len(lines), f"PAPER.md:{paper_line}: {path} has {len(lines)} lines, not {line}"
    found = [n for n, text in enumerate(lines, 1) if holds(text, name, path)]
    assert holds(lines[line - 1], name, path), (
        f"PAPER.md:{paper_line}: {path}:{line} does not hold `{name}` (found on lines {found[:5]}): "
        f"{lines[line - 1].strip()!r}"
    )


COMBINED_REWARD_LINE = next(
    n
    for n, line in enumerate((REPO_ROOT / "leser/reward.py").read_text().splitlines(), 1)
    if line.startswith("def combined_reward(")
)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (f"| Eq. 1 | `combined_reward` (`leser/reward.py:{COMBINED_REWARD_LINE}`) | |", True),
        (f"| Eq. 1 | `combined_reward` (`leser/reward.py:{COMBINED_REWARD_LINE + 1}`) | |", False),  # moved
        (
            f"| Eq. 1 | `relevance_ratio` (`leser/reward.py:{COMBINED_REWARD_LINE}`) | |",
            False,
        ),  # another's line
    ],
)
def test_a_stale_reference_fails(text, ok):
    ((_, path, line, name),) = references(text)
    assert holds((REPO_ROOT / path).read_text().splitlines()[line - 1], name, path) is ok
