"""Judge selection (`relevance train --select`): which rung is kept, how the ladder is climbed, what is written."""

from __future__ import annotations

import json
import math

import pytest

from data_prep.cli import run_cli
from search_sim.relevance import selection
from search_sim.relevance.selection import LADDER, choose, select, selection_markdown, verdict
from search_sim.relevance.training import TrainResult

NAN = math.nan


def _rung(low: float, high: float, index: int = 0) -> dict:
    return {
        "rung": LADDER[index].name,
        "label": LADDER[index].label,
        "queries": 150,
        "ndcg@10_bm25": 0.68,
        "ndcg@10_model": 0.68 + (low + high) / 2,
        "ndcg@10_model_minus_bm25": (low + high) / 2,
        "ndcg@10_model_minus_bm25_ci95": [low, high],
        "model_beats_bm25_queries": 70,
        "bm25_beats_model_queries": 65,
        "train_seconds": 12.0,
        "grpo_batch": {"seconds": 0.004, "pairs": 320, "pairs_per_second": 80_000.0, "timed_batches": 3},
        "clearly_better": selection.clearly_better({"ndcg@10_model_minus_bm25_ci95": [low, high]}),
    }


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        ([(0.022, 0.064)], 0),  # trees win at once (the synthetic marketplace)
        ([(-0.009, 0.041), (0.006, 0.055)], 1),
        ([(-0.031, 0.014), (-0.009, 0.041), (0.006, 0.055)], 2),  # only the cross-encoder blend wins (ESCI)
        ([(0.003, 0.092), (0.060, 0.159), (0.070, 0.2)], 0),  # the cheapest winner, not the best one
        ([(-0.001, 0.007), (-0.001, 0.007), (-0.002, 0.01)], None),  # level with BM25 everywhere
        ([(-0.05, -0.01), (-0.04, -0.002), (-0.03, -0.001)], None),  # clearly worse is no win either
        ([(0.0, 0.02)], None),  # a lower bound of exactly 0 does not exclude 0
        ([(NAN, NAN), (0.001, 0.02)], 1),  # no finite difference is no evidence
        ([(NAN, NAN)], None),
    ],
)
def test_choose_keeps_the_cheapest_rung_whose_interval_is_above_zero(intervals, expected):
    ladder = [_rung(low, high, i) for i, (low, high) in enumerate(intervals)]
    assert choose(ladder) == expected


def test_verdict_when_none_wins_names_the_last_rung_and_what_it_means_for_the_reward():
    ladder = [_rung(-0.001, 0.007, i) for i in range(len(LADDER))]
    text = verdict(ladder, None, "artifacts/shop/relevance")
    assert text.startswith("No rung is clearly better than BM25")
    assert "BM25 agreement" in text and "GRPO" in text
    assert LADDER[-1].label in text and "artifacts/shop/relevance" in text


def test_verdict_of_a_winner_below_the_top_says_the_rest_was_not_tried():
    ladder = [_rung(-0.009, 0.041, 0), _rung(0.006, 0.055, 1)]
    text = verdict(ladder, 1, "out")
    assert text.startswith(f"Chosen: {LADDER[1].label}") and "+0.0060" in text and "not tried" in text
    top = [_rung(-0.01, 0.01, 0), _rung(-0.01, 0.01, 1), _rung(0.006, 0.055, 2)]
    assert "not tried" not in verdict(top, 2, "out")


def test_selection_markdown_holds_every_rung_and_marks_the_winner():
    ladder = [_rung(-0.009, 0.041, 0), _rung(0.006, 0.055, 1)]
    text = selection_markdown(
        {
            "folds": 5,
            "ladder": ladder,
            "verdict": verdict(ladder, 1, "out"),
            "grpo_batch": ladder[-1]["grpo_batch"],
        }
    )
    rows = [line for line in text.splitlines() if line.startswith("| trees")]
    assert len(rows) == 2
    assert "**wins**" not in rows[0] and "**wins**" in rows[1]
    assert "+0.0160 [-0.0090, +0.0410]" in rows[0] and "70 / 65" in rows[0] and "| 4.0 |" in rows[0]
    assert "5-fold" in text and "320 pairs" in text


def _write_judgments(path, queries: int) -> None:
    path.write_text(
        "".join(
            json.dumps({"query": f"query {q}", "item_id": f"i{q}", "grade": 2, "source": "human"}) + "\n"
            for q in range(queries)
        )
    )


@pytest.fixture
def fake_ladder(monkeypatch, tmp_path):
    """select() with train() replaced by a stub that writes a marker and reports a chosen CV interval per rung."""
    calls: list[dict] = []
    intervals: dict[str, tuple[float, float]] = {}

    def fake_train(catalog, judgments, index, out, embeddings, config, progress, cv_folds, cross_encoder):
        rung = "cross_encoder" if cross_encoder is not None else ("embeddings" if embeddings else "trees")
        calls.append({"rung": rung, "out": out, "cv_folds": cv_folds, "seed": config.seed})
        out.mkdir(parents=True, exist_ok=True)
        (out / "trained_rung").write_text(rung)
        low, high = intervals[rung]
        cv = {
            "queries": 6,
            "pairs": 6,
            "ndcg@10_bm25": 0.5,
            "ndcg@10_model": 0.5 + (low + high) / 2,
            "ndcg@10_model_minus_bm25": (low + high) / 2,
            "ndcg@10_model_minus_bm25_ci95": [low, high],
            "model_beats_bm25_queries": 3,
            "bm25_beats_model_queries": 2,
        }
        return TrainResult(str(out), {"cv": cv, "seconds": {"total": 1.0}})

    monkeypatch.setattr(selection, "train", fake_train)
    monkeypatch.setattr(
        selection,
        "grpo_batch_cost",
        lambda model_dir, index_dir, queries: {
            "seconds": 0.002,
            "pairs": 320,
            "pairs_per_second": 160_000.0,
            "timed_batches": 3,
        },
    )
    monkeypatch.setattr(selection, "report_markdown", lambda metrics: "# Relevance model\n")
    judgments = tmp_path / "judgments.jsonl"
    _write_judgments(judgments, 6)
    return calls, intervals, judgments


@pytest.mark.parametrize(
    ("intervals", "trained", "chosen"),
    [
        ({"trees": (0.01, 0.05)}, ["trees"], "trees"),
        ({"trees": (-0.01, 0.05), "embeddings": (0.002, 0.04)}, ["trees", "embeddings"], "embeddings"),
        (
            {"trees": (-0.01, 0.05), "embeddings": (-0.002, 0.04), "cross_encoder": (-0.001, 0.03)},
            ["trees", "embeddings", "cross_encoder"],
            None,
        ),
    ],
)
def test_the_ladder_stops_at_the_first_win_and_ships_the_last_rung_trained(
    fake_ladder, tmp_path, intervals, trained, chosen
):
    calls, rung_intervals, judgments = fake_ladder
    rung_intervals.update(intervals)
    out = tmp_path / "shop" / "relevance"
    result = select("catalog", judgments, "index", out, cv_folds=3)

    assert [c["rung"] for c in calls] == trained
    assert {c["cv_folds"] for c in calls} == {3} and len({c["seed"] for c in calls}) == 1  # the same folds
    assert len({c["out"] for c in calls}) == 1  # one scratch folder: the cross-encoder reuses the embeddings
    assert (out / "trained_rung").read_text() == trained[-1]  # the final model is the last rung trained
    on_disk = json.loads((out / "metrics.json").read_text())["selection"]
    assert on_disk == json.loads(json.dumps(result.metrics["selection"]))
    assert on_disk["chosen"] == chosen and on_disk["final_rung"] == trained[-1]
    assert [r["rung"] for r in on_disk["ladder"]] == trained
    assert on_disk["grpo_batch"]["pairs"] == 320
    report = (out / "report.md").read_text()
    assert report.startswith("# Judge selection") and "# Relevance model" in report
    assert ("No rung is clearly better" in report) == (chosen is None)
    assert [p.name for p in out.parent.iterdir()] == ["relevance"]  # no scratch folder left behind


def test_an_impossible_fold_count_fails_before_any_training(fake_ladder, tmp_path):
    calls, _, judgments = fake_ladder
    with pytest.raises(ValueError, match="--cv-folds must be in 2..6"):
        select("catalog", judgments, "index", tmp_path / "out", cv_folds=7)
    assert calls == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", [["--embeddings"], ["--cross-encoder"], ["--init-model", "old"]])
def test_select_with_a_fixed_variant_is_a_one_line_error(flag, capsys):
    from search_sim.relevance.cli import main

    argv = ["train", "--catalog", "c", "--judgments", "j", "--index", "i", "--out", "o", "--select", *flag]
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --select chooses") and err.count("\n") == 1


@pytest.mark.slow
def test_select_end_to_end_writes_the_ladder_and_a_model_that_loads_without_flags(
    small_synth_dir, small_index, tmp_path, capsys
):
    from search_sim.relevance import RelevanceModel
    from search_sim.relevance.cli import main

    out = tmp_path / "relevance"
    argv = [
        "train",
        "--catalog",
        str(small_synth_dir),
        "--judgments",
        str(small_synth_dir / "judgments.parquet"),
    ]
    argv += ["--index", str(small_index), "--out", str(out), "--select", "--cv-folds", "2"]
    assert run_cli(main, argv) == 0
    assert "# Judge selection" in capsys.readouterr().out

    metrics = json.loads((out / "metrics.json").read_text())
    chosen = metrics["selection"]
    # the trees clearly beat BM25 on the synthetic marketplace, so the ladder stops at its first rung
    assert chosen["chosen"] == "trees" and [r["rung"] for r in chosen["ladder"]] == ["trees"]
    rung = chosen["ladder"][0]
    assert rung["queries"] == 300 and rung["ndcg@10_model_minus_bm25_ci95"][0] > 0
    assert rung["ndcg@10_model"] == metrics["cv"]["ndcg@10_model"] and metrics["cv"]["folds"] == 2
    batch = chosen["grpo_batch"]
    assert batch["pairs"] == 320 and batch["seconds"] > 0
    report = (out / "report.md").read_text()
    assert report.startswith("# Judge selection") and "Chosen: trees" in report
    assert "2-fold cross-validation" in report and "# Relevance model" in report

    model = RelevanceModel.load(out, small_index)  # how the reward, the evaluation and leser.expand load it
    assert not model.uses_embeddings and model.cross_encoder is None
    query = "wireless mouse"
    scores = model.score(query, model.catalog.item_ids[:10].tolist())
    assert scores.shape == (10,) and ((scores >= 0) & (scores <= 1)).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relevance"]


def test_make_shop_imports_indexes_selects_the_judge_then_evaluates_the_model_free_systems():
    import subprocess

    from tests.fixtures_recipes import REPO_ROOT

    dry = subprocess.run(
        ["make", "-n", "shop", "MAPPING=my.yaml", "SHOP=/tmp/s", "SHOP_JUDGE=--cv-folds 10"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commands = [
        line for line in dry.replace("\\\n", " ").splitlines() if line.startswith((".venv/bin/", "cat "))
    ]
    steps = [
        ".venv/bin/python -m data_prep import jsonl --mapping my.yaml --out /tmp/s",
        ".venv/bin/python -m search_sim build --catalog /tmp/s --out /tmp/s/index",
        ".venv/bin/python -m search_sim relevance train --catalog /tmp/s --judgments /tmp/s/judgments.parquet",
        ".venv/bin/python -m leser.evaluation --dataset /tmp/s --index /tmp/s/index --relevance /tmp/s/relevance",
        "cat runs/eval/shop/results.md",
    ]
    found = [next(i for i, c in enumerate(commands) if c.startswith(step)) for step in steps]
    assert found == sorted(found)  # in this order
    judge, evaluation = commands[found[2]], commands[found[3]]
    assert "--out /tmp/s/relevance" in judge and judge.endswith("--select --cv-folds 10")
    assert "--systems none,rm3,ebqe,rules --runs 1 --out runs/eval/shop" in evaluation
