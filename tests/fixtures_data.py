"""Shared pytest fixtures for the data area (session-scoped, built once per test run)."""

from pathlib import Path

import pytest

from data_prep import synth


@pytest.fixture(scope="session")
def small_synth_dir(tmp_path_factory) -> Path:
    """A small synthetic dataset directory (3000 items, 300 queries, seed 1): catalog, queries, judgments, truth/."""
    out = tmp_path_factory.mktemp("synth") / "small"
    synth.generate(n_items=3000, n_queries=300, seed=1, out=out, progress=False)
    return out
