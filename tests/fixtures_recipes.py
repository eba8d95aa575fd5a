"""Shared pytest fixtures for the recipes area (session-scoped, built once per test run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((REPO_ROOT / "recipes").glob("*/*/*.yaml"))


def load_recipe(path: Path) -> tuple[dict, dict]:
    """(arguments, ENV block) of one recipe, as `swift sft|rlhf file.yaml` splits them."""
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    env = config.pop("ENV", {}) or {}
    return config, env


def recipe_argv(config: dict) -> list[str]:
    """The argv ms-swift builds from a YAML config (swift/cli/main.py: parse_yaml_args): lists are spread."""
    argv = []
    for key, value in config.items():
        argv.append(f"--{key}")
        argv += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return argv


@pytest.fixture(scope="session")
def swift_plugin_orms():
    """ms-swift's `orms` registry after loading swift_plugins/leser_reward.py the way `external_plugins` does."""
    from swift.rewards import orms
    from swift.utils import import_external_file

    import_external_file(str(REPO_ROOT / "swift_plugins" / "leser_reward.py"))
    return orms
