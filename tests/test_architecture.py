"""The import order of the project's packages (ARCHITECTURE.md, "Layout and import direction").

data_prep < search_sim < leser < swift_plugins: a module imports its own package or lower ones, never a higher one,
and it does so at module level, so that each file's header shows what it depends on. Heavy optional libraries
(torch, transformers, ...) are the only imports that belong inside functions; they are not project packages and
this test does not look at them. scripts/, bench/ and tests/ sit on top and may import anything.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ORDER = ("data_prep", "search_sim", "leser", "swift_plugins")
RANK = {name: rank for rank, name in enumerate(ORDER)}


def project_modules() -> list[Path]:
    return sorted(p for package in ORDER for p in (REPO / package).rglob("*.py"))


def project_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level project package, line, at module level) of every import of a project package in the file,
    at any nesting level (functions, classes, if/try blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_level = {id(node) for node in tree.body}
    # module level also covers `if TYPE_CHECKING:` / `try:` blocks directly under the module
    for node in tree.body:
        if isinstance(node, ast.If | ast.Try):
            module_level |= {
                id(child) for child in ast.walk(node) if isinstance(child, ast.Import | ast.ImportFrom)
            }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in RANK:
                found.append((top, node.lineno, id(node) in module_level))
    return found


def test_every_project_module_is_checked():
    modules = project_modules()
    assert len(modules) > 40
    assert all(any(p.is_relative_to(REPO / package) for package in ORDER) for p in modules)


@pytest.mark.parametrize("path", project_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_go_one_way(path):
    own = path.relative_to(REPO).parts[0]
    upward = [
        f"{path.relative_to(REPO)}:{line}: imports {top}"
        for top, line, _ in project_imports(path)
        if RANK[top] > RANK[own]
    ]
    assert not upward, f"{own} may import only {ORDER[: RANK[own] + 1]}: {upward}"


@pytest.mark.parametrize("path", project_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_project_imports_are_at_module_level(path):
    inside = [
        f"{path.relative_to(REPO)}:{line}: imports {top} inside a function or class"
        for top, line, module_level in project_imports(path)
        if not module_level
    ]
    assert not inside


def test_importing_the_packages_leaves_out_the_heavy_libraries():
    code = (
        "import sys, data_prep, search_sim, search_sim.relevance, leser, leser.reward, leser.distill.splits, "
        "leser.evaluation.cli, leser.expand\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'lightgbm', 'sentence_transformers', 'swift') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
