"""Checkpoint resolution and the EBQE baseline (leser/generation.py, leser/evaluation/systems.py)."""

import pytest

from leser.generation import resolve_checkpoint


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (["config.json"], "."),  # a plain model folder
        (["adapter_config.json"], "."),  # a LoRA adapter folder
        (
            ["v0-2026/checkpoint-50/config.json", "v0-2026/checkpoint-100/config.json"],
            "v0-2026/checkpoint-100",
        ),
        # ms-swift output dir: the highest step wins, not the lexically last name (checkpoint-50 > checkpoint-100)
        (
            ["v0/checkpoint-9/config.json", "v1/checkpoint-12/config.json"],
            "v1/checkpoint-12",
        ),  # across versions
        (
            ["v0/checkpoint-3-merged/config.json", "v0/checkpoint-2/config.json"],
            "v0/checkpoint-2",
        ),  # not a step
    ],
)
def test_resolve_checkpoint(tmp_path, layout, expected):
    for rel in layout:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    assert resolve_checkpoint(tmp_path).samefile(tmp_path / expected)


def test_resolve_checkpoint_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json and no checkpoint"):
        resolve_checkpoint(tmp_path)


def test_ebqe_picks_nearest_logged_queries(small_engine):
    from leser.evaluation.systems import EBQE, EvalQuery

    logged = ["wireless mouse", "cordless mouse", "mouse wireless", "garden hose", "vertical ergonomic mouse"]
    system = EBQE(logged, small_engine.analyzer, top_n=2, min_cosine=0.5)
    out = system.expand([EvalQuery("wireless mouse", None), EvalQuery("zzqx", None)], run=0).expansions
    # the query itself and its reordering ("mouse wireless": same analyzer terms) are skipped; a garden hose is far
    assert out[0].expansions[0] in {"cordless mouse", "vertical ergonomic mouse"}
    assert "mouse wireless" not in out[0].expansions and "garden hose" not in out[0].expansions
    assert out[1].expansions == []  # nothing near a nonsense token
