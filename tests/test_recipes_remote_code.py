"""No recipe, model folder or loader of ours runs code shipped inside a model folder.

ms-swift 4.6 passes `trust_remote_code=True` to transformers for every model it loads (swift/model/register.py,
ModelLoader.default_trust_remote_code) and has no argument to turn it off, so the guard is three-fold: no recipe may
switch remote code on (should a later ms-swift add an argument, the first test says so), `python -m data_prep model`
refuses folders that carry code, and our own transformers calls never pass True.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re

import pytest

from data_prep.base_model import build_base_model
from tests.fixtures_recipes import RECIPES, REPO_ROOT, load_recipe

RECIPE_IDS = [str(p.relative_to(REPO_ROOT / "recipes")) for p in RECIPES]
SOURCE_DIRS = ("data_prep", "search_sim", "leser", "swift_plugins", "scripts", "bench")


def test_ms_swift_has_no_remote_code_argument():
    from swift.arguments import RLHFArguments, SftArguments

    for cls in (SftArguments, RLHFArguments):
        names = [f.name for f in dataclasses.fields(cls) if "remote_code" in f.name]
        # when this fails, ms-swift grew the switch: set it to false in every recipe and here assert that instead
        assert names == [], f"{cls.__name__} now has {names}: add `{names[0]}: false` to every recipe"


def _remote_code_settings(node, where=""):
    """(path, value) of every key or inline string that mentions remote code, anywhere in a recipe."""
    if isinstance(node, dict):
        for key, value in node.items():
            if "remote_code" in str(key):
                yield f"{where}{key}", value
            yield from _remote_code_settings(value, f"{where}{key}.")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _remote_code_settings(value, f"{where}{i}.")
    elif isinstance(node, str) and "remote_code" in node:  # e.g. model_kwargs given as a JSON string
        yield where.rstrip("."), node


@pytest.mark.parametrize("path", RECIPES, ids=RECIPE_IDS)
def test_no_recipe_enables_remote_code(path):
    config, env = load_recipe(path)
    found = list(_remote_code_settings({**config, "ENV": env}))
    enabled = [(k, v) for k, v in found if v is True or re.search(r"(?i)remote_code\W*[:=]\W*true", str(v))]
    assert not enabled, f"{path}: enables remote code: {enabled}"


def test_our_loaders_never_trust_remote_code():
    offenders = []
    for folder in SOURCE_DIRS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                is_setting = isinstance(node, ast.keyword) and node.arg == "trust_remote_code"
                if is_setting and not (isinstance(node.value, ast.Constant) and node.value.value is False):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offenders == [], "pass trust_remote_code=False (a literal), never True or a variable"


@pytest.mark.parametrize("kind", ["auto_map", "python_file"])
def test_model_folder_with_code_is_refused(tmp_path, kind):
    source = tmp_path / "src"
    source.mkdir()
    config = {"model_type": "llama"}
    if kind == "auto_map":
        config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    else:
        (source / "modeling_evil.py").write_text("raise SystemExit('ran code from a model folder')\n")
    (source / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    with pytest.raises(
        ValueError, match="config.json: field 'auto_map'" if kind == "auto_map" else "modeling_evil.py"
    ):
        build_base_model(out, source=str(source), check=False)
    assert not out.exists()
