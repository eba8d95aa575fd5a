"""Metric functions on hand-computed cases (leser/evaluation/metrics.py)."""

import math

import numpy as np
import pytest

from leser.evaluation import metrics


@pytest.mark.parametrize(
    ("recall_orig", "recall_union", "expected"),
    [
        (120, 150, 30),  # expansions add 30 items
        (10, 10, 0),  # expansions retrieve only what q already had
        (0, 5, 5),  # q retrieves nothing, expansions something
    ],
)
def test_retrieval_gain(recall_orig, recall_union, expected):
    assert metrics.retrieval_gain(recall_orig, recall_union) == expected


def test_retrieval_gain_rejects_shrinking_union():
    with pytest.raises(ValueError, match="R_orig must be in R_exp"):
        metrics.retrieval_gain(10, 9)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([0.2, 0.4], 0.3),  # plain mean
        ([], 0.0),  # nothing retrieved counts as no relevance
        (np.array([1.0, 0.0, 0.5, 0.5], dtype=np.float32), 0.5),  # float32 input
    ],
)
def test_average_relevance(scores, expected):
    assert metrics.average_relevance(scores) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "tolerance", "expected"),
    [
        ([0, 3, 1, 0], 0.0, 50.0),  # two of four positive
        ([0.0, 1e-9, 0.2], 1e-6, 100 / 3),  # float noise below the tolerance is not a gain
        ([-0.1, -0.2], 0.0, 0.0),  # losses are not gains
        ([], 0.0, 0.0),  # empty
    ],
)
def test_percent_positive(values, tolerance, expected):
    assert metrics.percent_positive(values, tolerance) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("grades", "k", "expected"),
    [
        ([3, 0, 1], 3, 7 + 0 + 1 / 2),  # gains 7, 0, 1 at discounts log2(2), log2(3), log2(4)
        ([3, 0, 1], 1, 7.0),  # cut at k
        ([], 10, 0.0),  # empty ranking
    ],
)
def test_dcg(grades, k, expected):
    assert metrics.dcg(grades, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ranked", "ideal", "k", "expected"),
    [
        ([3, 0], [3, 0], 2, 1.0),  # ideal order
        ([0, 3], [3, 0], 2, (7 / math.log2(3)) / 7),  # best item at rank 2
        ([0, 0], [0, 0], 2, 0.0),  # nothing relevant exists: defined as 0
        ([2], [4, 2, 2], 10, 3 / (15 + 3 / math.log2(3) + 3 / 2)),  # ideal from all known grades
    ],
)
def test_ndcg_at_k(ranked, ideal, k, expected):
    assert metrics.ndcg_at_k(ranked, ideal, k) == pytest.approx(expected)


def test_count_relevant():
    # grades 3 (Excellent) and 4 (Perfect) count, 2 (Good) does not
    assert metrics.count_relevant([4, 3, 2, 0, 3]) == 3


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3], (2.0, 1.0)),  # sample std (ddof 1)
        ([5.0], (5.0, 0.0)),  # one run: std 0
        ([8.99] * 5, (8.99, 0.0)),  # deterministic system over 5 runs
        ([1.0, float("nan"), 3.0], (2.0, math.sqrt(2))),  # undefined runs are skipped
    ],
)
def test_mean_std(values, expected):
    got = metrics.mean_std(values)
    assert got.mean == pytest.approx(expected[0])
    assert got.std == pytest.approx(expected[1])


def test_mean_std_all_nan_is_nan():
    assert math.isnan(metrics.mean_std([float("nan")]).mean)


@pytest.mark.parametrize(
    ("scores", "grades", "expected", "n_pairs"),
    [
        ([0.9, 0.1, 0.5], [2, 0, 0], 1.0, 2),  # the graded item is above both others
        ([0.1, 0.9], [2, 0], 0.0, 1),  # reversed
        ([0.5, 0.5], [2, 0], 0.5, 1),  # a tie counts half
        ([0.3, 0.6, 0.9], [1, 1, 1], float("nan"), 0),  # no pair with different grades
    ],
)
def test_pairwise_accuracy(scores, grades, expected, n_pairs):
    acc, n = metrics.pairwise_accuracy(scores, grades)
    assert n == n_pairs
    assert (math.isnan(acc) and math.isnan(expected)) or acc == pytest.approx(expected)


@pytest.mark.parametrize(
    ("scores", "grades", "expected"),
    [
        ([0.1, 0.5, 0.9], [0, 1, 4], 1.0),  # same order
        ([0.9, 0.5, 0.1], [0, 1, 4], -1.0),  # opposite order
        ([0.1, 0.2], [3, 3], float("nan")),  # constant grades: undefined
    ],
)
def test_spearman(scores, grades, expected):
    got = metrics.spearman(scores, grades)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [([True, False, True, True], 75.0), ([], float("nan"))],  # 3 of 4; empty group undefined
)
def test_rate(flags, expected):
    got = metrics.rate(flags)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("grades", "judged", "ideal", "expected"),
    [
        ([0, 3], [False, True], [3], 1.0),  # the unjudged first item is skipped: the judged one moves up
        ([0, 3], [True, True], [3], (7 / math.log2(3)) / 7),  # all judged: plain NDCG
        (
            [4, 0, 0],
            [True, False, False],
            [4, 2],
            15 / (15 + 3 / math.log2(3)),
        ),  # holes do not count as misses
        ([0, 0], [False, False], [3], 0.0),  # nothing judged in the ranking
        ([2], [True], [], 0.0),  # nothing relevant known for the query
    ],
)
def test_condensed_ndcg(grades, judged, ideal, expected):
    assert metrics.condensed_ndcg_at_k(grades, judged, ideal, k=10) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("judged", "k", "expected"),
    [
        ([True, False, True, True], 2, 0.5),
        ([True] * 12, 10, 1.0),
        ([False, True], 10, 0.5),
        ([], 10, math.nan),
    ],
)
def test_judged_at_k(judged, k, expected):
    value = metrics.judged_at_k(judged, k)
    assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


def test_judgments_judge_marks_unjudged_items():
    import pyarrow as pa

    from leser.evaluation.harness import JudgmentsJudge

    table = pa.table({"query": ["q", "q"], "item_id": ["a", "b"], "grade": [4, 0]})
    judge = JudgmentsJudge(table, "test")
    assert judge.judged("q", ["a", "x", "b"]).tolist() == [True, False, True]
    assert judge.grades("q", ["a", "x", "b"]).tolist() == [4, 0, 0]  # unjudged and judged-bad both grade 0
    assert judge.judged("other", ["a"]).tolist() == [False]
