"""Relevance model: training, split by query, save/load, schema checks, incremental update, bad input."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_prep.formats import FormatError
from search_sim.relevance import RelevanceModel, SchemaMismatchError
from search_sim.relevance.cross_encoder import CrossEncoderConfig, blend_scores
from search_sim.relevance.report import mean_ndcg, paired_bootstrap_ci
from search_sim.relevance.training import split_by_query, train


@pytest.mark.parametrize(
    "queries",
    [
        ["a", "b", "c"],  # the minimum: one query per part
        [f"q{i}" for i in range(10) for _ in range(7)],  # many pairs per query
        [f"q{i % 97}" for i in range(1000)],  # interleaved repeats
    ],
)
def test_split_by_query_has_no_leakage(queries):
    split = split_by_query(queries, seed=7)
    assert set(split) == set(queries)  # every query in exactly one part (a dict cannot hold it twice)
    parts = {p: {q for q, v in split.items() if v == p} for p in ("train", "valid", "test")}
    assert all(parts.values())
    assert not (parts["train"] & parts["valid"]) and not (parts["train"] & parts["test"])
    assert not (parts["valid"] & parts["test"])
    assert split == split_by_query(list(reversed(queries)), seed=7)  # order of the input does not matter


def test_split_needs_three_queries():
    with pytest.raises(ValueError, match="at least 3"):
        split_by_query(["a", "b", "a"], seed=7)


@pytest.mark.parametrize(
    ("grades", "scores", "expected"),
    [
        ([3, 2, 0], [0.9, 0.5, 0.1], 1.0),  # ideal order
        ([0, 0, 0], [0.9, 0.5, 0.1], float("nan")),  # nothing relevant: no ordering is better, left out
        ([0, 4], [0.9, 0.1], (15 / np.log2(3)) / 15),  # the only relevant item ranked second
    ],
)
def test_mean_ndcg_orders_the_judged_pool_by_score(grades, scores, expected):
    per_query = {}
    items = [f"item{i}" for i in range(len(grades))]
    got = mean_ndcg(["q"] * len(grades), items, np.asarray(grades), np.asarray(scores), per_query)
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)
    assert (np.isnan(per_query["q"]) and np.isnan(expected)) or per_query["q"] == pytest.approx(expected)


def test_mean_ndcg_leaves_out_queries_with_nothing_relevant():
    queries = ["a", "a", "b", "b"]
    grades = np.asarray([0, 4, 0, 0])
    got = mean_ndcg(queries, ["i1", "i2", "i3", "i4"], grades, np.asarray([0.9, 0.1, 0.9, 0.1]))
    # query a alone: b (all grades 0) is left out, not counted as 0
    assert got == pytest.approx((15 / np.log2(3)) / 15)


@pytest.mark.parametrize(
    ("diffs", "low_above_zero", "high_below_zero"),
    [
        ([0.05] * 20, True, False),  # the same gain on every query: the interval is that one point
        ([0.2, -0.2] * 10, False, False),  # wins and losses cancel: the interval holds 0
        ([-0.1, -0.12, -0.08] * 10, False, True),  # consistently worse
        ([0.3] + [0.0] * 29, False, False),  # one big win alone is not a clear improvement
    ],
)
def test_paired_bootstrap_ci(diffs, low_above_zero, high_below_zero):
    low, high = paired_bootstrap_ci(np.asarray(diffs))
    assert low <= np.mean(diffs) <= high
    assert (low > 0) == low_above_zero and (high < 0) == high_below_zero
    assert paired_bootstrap_ci(np.asarray(diffs)) == (low, high)  # seeded: reproducible


def test_paired_bootstrap_ci_of_nothing_is_nan():
    assert all(np.isnan(v) for v in paired_bootstrap_ci(np.zeros(0)))


def test_trained_model_beats_bm25_and_reports(small_relevance_dir):
    metrics = json.loads((small_relevance_dir / "metrics.json").read_text())
    test = metrics["test"]
    assert test["ndcg@10_model"] > test["ndcg@10_bm25"]
    assert test["ndcg@10_oracle"] >= test["ndcg@10_model"]  # the oracle knows the truth behind the grades
    assert test["rmse_grade"] < test["rmse_grade_constant_mean"]
    assert (small_relevance_dir / "report.md").read_text().startswith("# Relevance model")
    low, high = test["ndcg@10_model_minus_bm25_ci95"]
    assert low <= test["ndcg@10_model_minus_bm25"] <= high
    assert "95% paired bootstrap interval" in (small_relevance_dir / "report.md").read_text()


def test_save_load_gives_identical_scores(small_relevance_dir, small_index, small_synth_dir):
    judgments = pq.read_table(small_synth_dir / "judgments.parquet").to_pydict()
    query = judgments["query"][0]
    ids = [i for q, i in zip(judgments["query"], judgments["item_id"], strict=True) if q == query]
    a = RelevanceModel.load(small_relevance_dir, small_index)
    b = RelevanceModel.load(small_relevance_dir, small_index)
    scores = a.score(query, ids)
    assert scores.dtype == np.float32 and scores.shape == (len(ids),)
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_array_equal(scores, b.score(query, ids))
    np.testing.assert_array_equal(scores, a.score(query, ids))  # cached query parse gives the same
    # batched: one call for several lists equals one call per list
    batch = a.score_many([query, "zzz unknown words", query], [ids, ids[:3], ids[::-1]])
    np.testing.assert_array_equal(batch[0], scores)
    np.testing.assert_array_equal(batch[2], scores[::-1])
    np.testing.assert_array_equal(batch[1], a.score("zzz unknown words", ids[:3]))
    assert a.score(query, []).shape == (0,)


def test_unknown_item_id_is_a_clear_error(small_relevance):
    with pytest.raises(KeyError, match="not in the relevance model's catalog.*no-such-item"):
        small_relevance.score("anything", ["no-such-item"])


def test_schema_mismatch_with_another_index(small_relevance_dir, small_synth_dir, tmp_path):
    from search_sim.analyzer import AnalyzerConfig
    from search_sim.index import IndexConfig, build_index

    other = tmp_path / "index_no_stem"
    build_index(small_synth_dir, other, IndexConfig(analyzer=AnalyzerConfig(stemmer="")))
    with pytest.raises(SchemaMismatchError, match="analyzer config"):
        RelevanceModel.load(small_relevance_dir, other)


def test_schema_version_mismatch(small_relevance_dir, small_index, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(small_relevance_dir, model)
    schema = json.loads((model / "schema.json").read_text())
    schema["schema_version"] = 0
    (model / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(SchemaMismatchError, match="feature schema version 0"):
        RelevanceModel.load(model, small_index)


def _write_judgments(path, rows):
    pq.write_table(
        pa.table(
            {
                "query": [r[0] for r in rows],
                "item_id": [r[1] for r in rows],
                "grade": pa.array([r[2] for r in rows], pa.int8()),
                "source": ["test"] * len(rows),
            }
        ),
        path,
    )


def test_incremental_update_changes_model_and_keeps_schema(
    small_relevance_dir, small_synth_dir, small_index, tmp_path
):
    # "new judgments": the pairs of a disjoint half of the queries, regraded one level down where possible
    table = pq.read_table(small_synth_dir / "judgments.parquet").to_pydict()
    queries = sorted(set(table["query"]))[::2]
    keep = set(queries)
    rows = [
        (q, i, max(g - 1, 0))
        for q, i, g in zip(table["query"], table["item_id"], table["grade"], strict=True)
        if q in keep
    ]
    new = tmp_path / "new_judgments.parquet"
    _write_judgments(new, rows)
    out = tmp_path / "updated"
    result = train(small_synth_dir, new, small_index, out, init_model=small_relevance_dir, progress=False)
    before = json.loads((small_relevance_dir / "schema.json").read_text())
    after = json.loads((out / "schema.json").read_text())
    assert after["feature_names"] == before["feature_names"]
    assert after["schema_version"] == before["schema_version"]
    assert result.metrics["trees_from_init_model"] > 0
    assert result.metrics["trees"] > result.metrics["trees_from_init_model"]
    ids = [r[1] for r in rows[:20]]
    old_scores = RelevanceModel.load(small_relevance_dir, small_index).score(rows[0][0], ids)
    new_scores = RelevanceModel.load(out, small_index).score(rows[0][0], ids)
    assert not np.array_equal(old_scores, new_scores)
    # regraded one level down: the updated model scores these pairs lower on average
    assert new_scores.mean() < old_scores.mean()


def test_training_is_deterministic(small_synth_dir, small_index, small_relevance_dir, tmp_path):
    out = tmp_path / "again"
    train(small_synth_dir, small_synth_dir / "judgments.parquet", small_index, out, progress=False)
    assert (out / "model.txt").read_bytes() == (small_relevance_dir / "model.txt").read_bytes()


def test_index_of_another_catalog_is_refused(small_synth_dir, tmp_path):
    from search_sim.index import build_index

    other = tmp_path / "other"
    shutil.copytree(small_synth_dir, other)
    table = pq.read_table(other / "catalog.parquet")
    pq.write_table(table.slice(0, table.num_rows - 1), other / "catalog.parquet")  # one listing fewer
    build_index(other, tmp_path / "other_index")
    with pytest.raises(SchemaMismatchError, match="built from another catalog"):
        train(
            small_synth_dir, small_synth_dir / "judgments.parquet", tmp_path / "other_index", tmp_path / "m"
        )


def test_grade_out_of_range_names_the_line(small_synth_dir, small_index, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"query": "q", "item_id": "x", "grade": 3, "source": "t"}\n'
        '{"query": "q", "item_id": "y", "grade": 7, "source": "t"}\n'
    )
    with pytest.raises(FormatError, match=r"bad.jsonl:2.*grade"):
        train(small_synth_dir, bad, small_index, tmp_path / "m", progress=False)


def test_unknown_item_ids_are_counted(small_synth_dir, small_index, tmp_path):
    table = pq.read_table(small_synth_dir / "judgments.parquet").to_pydict()
    rows = list(zip(table["query"], table["item_id"], table["grade"], strict=True))
    rows += [(rows[0][0], "no-such-item-1", 2), (rows[1][0], "no-such-item-2", 0)]
    path = tmp_path / "judgments.parquet"
    _write_judgments(path, rows)
    result = train(small_synth_dir, path, small_index, tmp_path / "m", progress=False)
    assert result.metrics["unknown_item_judgments_skipped"] == 2
    assert "2 judgments with unknown item ids skipped" in (tmp_path / "m" / "report.md").read_text()


@pytest.mark.slow
def test_embedding_variant_scores_reload_and_empty_lists(small_synth_dir, small_index, tmp_path):
    out = tmp_path / "relevance_emb"
    result = train(
        small_synth_dir,
        small_synth_dir / "judgments.parquet",
        small_index,
        out,
        embeddings=True,
        progress=False,
    )
    assert result.metrics["embeddings"] and "embedding_cosine" in result.metrics["feature_gain_share"]
    model = RelevanceModel.load(out, small_index)
    judged = pq.read_table(small_synth_dir / "judgments.parquet").slice(0, 5).to_pydict()
    query, items = judged["query"][0], judged["item_id"][:5]
    scores = model.score(query, items)
    assert scores.shape == (5,) and np.all((scores >= 0) & (scores <= 1))
    assert np.array_equal(RelevanceModel.load(out, small_index).score(query, items), scores)
    # a run where no query has results still scores (the evaluation of "no expansion" hits this)
    assert [len(s) for s in model.score_many([query, "other"], [[], []])] == [0, 0]
    assert len(model.score_many([], [])) == 0


@pytest.mark.slow
def test_cross_encoder_variant_blends_reloads_and_updates(small_synth_dir, small_index, tmp_path):
    config = CrossEncoderConfig(epochs=0.2, weight=0.5)  # a few steps: this checks the plumbing, not quality
    out = tmp_path / "relevance_ce"
    # 60 of the 300 queries: every fine-tuning and prediction of this test runs on CPU
    table = pq.read_table(small_synth_dir / "judgments.parquet").to_pydict()
    keep = set(sorted(set(table["query"]))[:60])
    judgments = tmp_path / "judgments.parquet"
    _write_judgments(
        judgments,
        [r for r in zip(table["query"], table["item_id"], table["grade"], strict=True) if r[0] in keep],
    )
    result = train(
        small_synth_dir, judgments, small_index, out, cross_encoder=config, cv_folds=2, progress=False
    )
    assert result.metrics["cross_encoder"]["steps"] >= 1
    assert {"ndcg@10_trees_only", "ndcg@10_cross_encoder_only"} <= result.metrics["cv"].keys()
    assert "trees only" in (out / "report.md").read_text()

    model = RelevanceModel.load(out, small_index)
    judged = pq.read_table(judgments).slice(0, 5).to_pydict()
    query, items = judged["query"][0], judged["item_id"][:5]
    scores = model.score(query, items)
    trees = model.predict(model.features([query], [items]))
    cross = model.cross_encoder.predict([query] * 5, model.rows(items))
    assert np.allclose(scores, 0.5 * trees + 0.5 * cross, atol=1e-6)
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.array_equal(RelevanceModel.load(out, small_index).score(query, items), scores)
    assert [len(s) for s in model.score_many([query, "other"], [[], []])] == [0, 0]

    # the incremental update keeps the cross-encoder and fine-tunes it further
    updated = train(
        small_synth_dir, judgments, small_index, tmp_path / "updated", init_model=out, progress=False
    )
    assert updated.metrics["cross_encoder"]["init"] == str(out / "cross_encoder")
    assert "init_model_ndcg@10" in updated.metrics["test"]


@pytest.mark.parametrize(
    ("trees", "cross", "weight", "expected"),
    [
        ([0.2, 0.8], [0.6, 0.0], 0.5, [0.4, 0.4]),  # the plain average
        ([0.2, 0.8], [0.6, 0.0], 0.0, [0.2, 0.8]),  # w = 0: the trees alone (the paper's judge)
        ([0.2, 0.8], [0.6, 0.0], 1.0, [0.6, 0.0]),  # w = 1: the cross-encoder alone
        ([1.0], [1.0], 0.3, [1.0]),  # both at the top of the scale stay there
        ([], [], 0.5, []),  # no pairs
    ],
)
def test_blend_scores(trees, cross, weight, expected):
    got = blend_scores(np.asarray(trees, np.float32), np.asarray(cross, np.float32), weight)
    assert got.dtype == np.float32 and np.allclose(got, expected)


@pytest.mark.parametrize("weight", [-0.1, 1.5])  # outside [0, 1]: not a blend
def test_blend_weight_out_of_range_is_an_error(weight):
    with pytest.raises(ValueError, match="weight"):
        blend_scores(np.zeros(1), np.zeros(1), weight)
