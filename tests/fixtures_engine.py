"""Shared pytest fixtures for the engine area (session-scoped, built once per test run)."""

from __future__ import annotations

from pathlib import Path

import pytest

ENGINE_CATALOG_DIR = Path(__file__).parent / "fixtures" / "engine_catalog"


@pytest.fixture(scope="session")
def engine_catalog_index(tmp_path_factory) -> Path:
    """Index of the 30 hand-written items in tests/fixtures/engine_catalog (default settings)."""
    from search_sim.index import build_index

    out = tmp_path_factory.mktemp("engine_catalog") / "index"
    build_index(ENGINE_CATALOG_DIR, out)
    return out


@pytest.fixture(scope="session")
def small_index(small_synth_dir, tmp_path_factory) -> Path:
    """Index (default settings) of the data area's small synthetic marketplace ``small_synth_dir``."""
    from search_sim.index import build_index

    out = tmp_path_factory.mktemp("small_index") / "index"
    build_index(small_synth_dir, out)
    return out


@pytest.fixture(scope="session")
def small_engine(small_index):
    """A loaded SearchEngine over ``small_index``."""
    from search_sim import SearchEngine

    return SearchEngine.load(small_index)
