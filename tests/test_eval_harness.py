"""The evaluation harness end to end on the small synthetic marketplace (leser/evaluation/)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from leser.evaluation.cli import main
from leser.evaluation.harness import RUN_METRICS, EvalContext, OracleJudge, evaluate_run, evaluate_system
from leser.evaluation.systems import RM3, EvalQuery, Expansion, NoExpansion, SystemOutput, rm3_term_weights

RULES = Path(__file__).resolve().parent.parent / "configs" / "rules.yaml"


@pytest.fixture(scope="module")
def eval_ctx(small_synth_dir, small_engine, small_relevance):
    from data_prep.formats import load_dataset
    from data_prep.synth import Oracle

    dataset = load_dataset(small_synth_dir)
    judge = OracleJudge(Oracle.load(small_synth_dir), dataset.catalog.column("item_id").to_pylist())
    queries = [EvalQuery(q, None) for q in dataset.queries.column("query").to_pylist()[:25]]
    return EvalContext(small_engine, small_relevance, judge, queries)


class CyclingSystem:
    """A stochastic system whose run r expands each query with RM3's term number r (a different list per run)."""

    name, backbone, stochastic = "cycling", "-", True

    def __init__(self, engine):
        self.rm3 = RM3(engine, fb_terms=5)
        self.calls = 0

    def expand(self, queries, run):
        self.calls += 1
        full = self.rm3.expand(queries, run).expansions
        return SystemOutput([Expansion(e.expansions[run : run + 1], None, True, "ok") for e in full], 1.0)


def test_rm3_term_weights_hand_computed():
    # Two feedback documents with scores 3 and 1 -> P(d|q) = 0.75, 0.25.
    # P(w|R): red = 0.75 * 1/2; blue = 0.25 * 1/2; mouse is a query term; "new" is in every doc of the catalog.
    weights = rm3_term_weights(
        [["red", "mouse"], ["blue", "new"]],
        np.array([3.0, 1.0]),
        {"mouse"},
        {"red": 5, "mouse": 50, "blue": 3, "new": 100},
        n_docs=100,
    )
    assert weights == [("red", pytest.approx(0.375)), ("blue", pytest.approx(0.125))]


def test_evaluate_run_matches_direct_computation(eval_ctx, small_engine, small_relevance):
    system = RM3(small_engine)
    expansions = system.expand(eval_ctx.queries, 0).expansions
    rows = evaluate_run(eval_ctx, expansions, 0, "rm3")
    expanded = [r for r in rows if r.expansions]
    assert expanded, "RM3 expands some queries of the small marketplace"
    for r in expanded[:5]:
        y = [r.query, *r.expansions]
        ids = small_engine.merged(y, k=100).item_ids
        assert r.avg_rel_exp == pytest.approx(float(np.mean(small_relevance.score(r.query, ids))), abs=1e-6)
        assert r.recall_exp == small_engine.recall_size(y)
        assert r.recall_orig == small_engine.recall_size([r.query])
        assert r.d_ret == r.recall_exp - r.recall_orig >= 0
    for r in rows:
        if not r.expansions:  # no expansion: nothing changes
            assert (r.d_ret, r.d_rel, r.ndcg_exp) == (0, 0.0, r.ndcg_orig)


def test_five_run_aggregation(eval_ctx, small_engine):
    stochastic = CyclingSystem(small_engine)
    report = evaluate_system(eval_ctx, stochastic, runs=5)
    assert stochastic.calls == 5 and len(report.runs) == 5
    for key in RUN_METRICS:
        # by hand: mean and sample std (ddof 1) over the five runs, a run where the metric is undefined left out
        values = [run[key] for run in report.runs if not math.isnan(run[key])]
        got = report.aggregate[key]
        if not values:
            assert math.isnan(got.mean) and math.isnan(got.std)
            continue
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        assert (got.mean, got.std) == (pytest.approx(mean), pytest.approx(std))
    assert report.aggregate["queries_per_s"].mean == pytest.approx(len(eval_ctx.queries))  # 1 s per run

    deterministic = evaluate_system(eval_ctx, NoExpansion(), runs=5)
    assert len(deterministic.runs) == 5  # computed once, stands for every run
    assert deterministic.aggregate["pct_d_ret_pos"] == (0.0, 0.0)
    assert deterministic.aggregate["d_ndcg10"] == (0.0, 0.0)


def test_cli_baselines_end_to_end(small_synth_dir, small_index, small_relevance_dir, tmp_path):
    out = tmp_path / "eval"
    args = [
        "--dataset",
        str(small_synth_dir),
        "--index",
        str(small_index),
        "--relevance",
        str(small_relevance_dir),
    ]
    main(
        [
            *args,
            "--systems",
            "none,rm3,rules",
            "--runs",
            "3",
            "--limit",
            "30",
            "--rules",
            str(RULES),
            "--out",
            str(out),
        ]
    )
    table = (out / "results.md").read_text()
    for label in ("No expansion", "RM3", "Rules teacher"):
        assert label in table
    assert (out / "results.png").stat().st_size > 1000
    systems = {s["name"]: s for s in json.loads((out / "results.json").read_text())["systems"]}
    assert systems["none"]["aggregate"]["pct_d_ret_pos"] == {"mean": 0.0, "std": 0.0}
    for name in ("rm3", "rules"):
        assert systems[name]["aggregate"]["pct_d_ret_pos"]["std"] == 0.0  # deterministic: std 0 over runs
        assert len(systems[name]["runs"]) == 3
    assert systems["rules"]["aggregate"]["mean_n_expansions"]["mean"] > 0
    assert systems["rules"]["aggregate"]["validity"]["mean"] == 100.0  # the teacher writes gate-valid output
    rows = [json.loads(line) for line in (out / "generations" / "rules.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and all(r["completion"].startswith("<think>") for r in rows)
    assert all(r["recall_exp"] - r["recall_orig"] == r["d_ret"] for r in rows)
    # the reward-hacking audit: off-target recall by synthetic truth, "-" where nothing new is recalled
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["off_target_recall"]["definition"] == "truth"
    assert "off-target recall (%)" in table and "truth: the item's true category" in table
    assert math.isnan(systems["none"]["aggregate"]["off_target_recall"]["mean"])
    for name in ("rm3", "rules"):
        measured = [r for r in systems[name]["runs"] if r["off_target_answers"] > 0]
        assert measured and all(0 <= r["off_target_recall"] <= 100 for r in measured)
    grown = [r for r in rows if r["d_ret"] > 0]
    assert grown and all(0 < r["off_target_examined"] <= min(r["d_ret"], 1000) for r in grown)


def test_cli_rejects_unknown_system(small_synth_dir, small_index, small_relevance_dir, tmp_path):
    args = [
        "--dataset",
        str(small_synth_dir),
        "--index",
        str(small_index),
        "--relevance",
        str(small_relevance_dir),
    ]
    with pytest.raises(ValueError, match="unknown system 'bm42'"):
        main([*args, "--systems", "bm42", "--limit", "2", "--rules", str(RULES), "--out", str(tmp_path)])


@pytest.mark.slow
def test_fewshot_generation_on_cpu(training_world, small_splits, base_model_dir, tmp_path):
    """The base model, 3 in-context examples, 2 queries x 2 runs on CPU: the full model path of the harness."""
    out = tmp_path / "eval"
    w = training_world
    main(
        [
            *["--dataset", str(w["dataset"]), "--index", str(w["index"]), "--relevance", str(w["relevance"])],
            *["--split", str(small_splits / "eval.jsonl"), "--systems", f"none,fewshot:{base_model_dir}"],
            *[
                "--runs",
                "2",
                "--limit",
                "2",
                "--max-new-tokens",
                "24",
                "--rules",
                str(RULES),
                "--out",
                str(out),
            ],
        ]
    )
    files = sorted((out / "generations").glob("fewshot*.jsonl"))
    assert len(files) == 1
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert sorted(r["run"] for r in rows) == [0, 0, 1, 1]  # 2 queries x 2 runs
    assert len({r["query"] for r in rows}) == 2 and all(
        isinstance(r["completion"], str) and r["completion"] for r in rows
    )
    fewshot = json.loads((out / "results.json").read_text())["systems"][1]
    assert fewshot["stochastic"] and len(fewshot["runs"]) == 2
    assert 0.0 <= fewshot["aggregate"]["validity"]["mean"] <= 100.0
    assert fewshot["aggregate"]["queries_per_s"]["mean"] > 0
