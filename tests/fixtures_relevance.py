"""Shared pytest fixtures for the relevance area (session-scoped, built once per test run)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_relevance_dir(small_synth_dir, small_index, tmp_path_factory) -> Path:
    """Relevance model directory trained (default settings, seed 7) on ``small_synth_dir``'s judgments."""
    from search_sim.relevance.training import train

    out = tmp_path_factory.mktemp("small_relevance") / "relevance"
    train(small_synth_dir, small_synth_dir / "judgments.parquet", small_index, out, progress=False)
    return out


@pytest.fixture(scope="session")
def small_relevance(small_relevance_dir, small_index):
    """A loaded RelevanceModel over ``small_index``: ``.score(query, item_ids)``, ``.score_many(...)``."""
    from search_sim.relevance import RelevanceModel

    return RelevanceModel.load(small_relevance_dir, small_index)
