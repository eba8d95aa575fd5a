"""Evaluation metrics: the paper's Table 2 quantities and the extra ones a synthetic marketplace allows.

Every function is pure (numbers in, numbers out) so that each one can be checked on hand-computed cases.
Notation (LESER, arXiv 2509.05570, Sec. "Offline evaluation"): q the original query, Y = {q, y1, ..., yM} the
query plus its expansions, R_orig the items retrieved by q, R_exp the union of the items retrieved by every
query of Y (so R_orig is a subset of R_exp).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# the project's one NDCG (0.0 when nothing is relevant), shared with the relevance judge's report
from search_sim.relevance.report import dcg, ndcg_at_k  # noqa: F401  (dcg: part of the metrics API)

# Two AvgRel values that differ by less than this are the same ranking scored twice (float noise), not a gain.
RELEVANCE_TOLERANCE = 1e-6


class MeanStd(NamedTuple):
    mean: float
    std: float

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f}"


def retrieval_gain(recall_orig: int, recall_union: int) -> int:
    """dRet = |R_exp minus R_orig| = |R_exp| - |R_orig| because R_orig is a subset of R_exp.

    Args:
        recall_orig: |R_orig|, the recall-set size of q alone.
        recall_union: |R_exp|, the size of the union of the recall sets of q and its expansions.

    Range: integer >= 0. Raises ValueError when recall_union < recall_orig (the union cannot shrink).
    Example: retrieval_gain(120, 150) == 30.
    """
    if recall_union < recall_orig:
        raise ValueError(
            f"union recall {recall_union} < original recall {recall_orig}: R_orig must be in R_exp"
        )
    return recall_union - recall_orig


def average_relevance(scores: Sequence[float] | np.ndarray) -> float:
    """AvgRel = (1/n) * sum_i Rel(q, d_i) over the top-n items (n <= 100) of a ranking, scored against q.

    Range: the relevance model's range (about [0, 1]); 0.0 for an empty ranking (nothing retrieved, nothing
    relevant), so that a query that retrieves nothing and then something counts as a gain.
    Example: average_relevance([0.2, 0.4]) == 0.3.
    """
    values = np.asarray(scores, dtype=np.float64)
    return float(values.mean()) if values.size else 0.0


def relevance_gain(avg_rel_exp: float, avg_rel_orig: float) -> float:
    """dRel = AvgRel_exp - AvgRel_orig. Range: about [-1, 1]. Example: relevance_gain(0.5, 0.4) == 0.1."""
    return avg_rel_exp - avg_rel_orig


def percent_positive(values: Sequence[float] | np.ndarray, tolerance: float = 0.0) -> float:
    """100 * |{i : v_i > tolerance}| / n, the "% of queries with dRet > 0" (or dRel > 0) of Table 2.

    Range: [0, 100]; 0.0 for an empty list. Example: percent_positive([0, 3, 1, 0]) == 50.0.
    """
    array = np.asarray(values, dtype=np.float64)
    return float(100.0 * np.mean(array > tolerance)) if array.size else 0.0


def condensed_ndcg_at_k(
    ranked_grades: Sequence[int] | np.ndarray,
    judged: Sequence[bool] | np.ndarray,
    ideal_grades: Sequence[int] | np.ndarray,
    k: int = 10,
) -> float:
    """Condensed-list NDCG@k (Sakai 2007): unjudged items are removed from the ranking before it is cut at k, so a
    system is neither punished nor rewarded for surfacing items nobody judged.

    Range: [0, 1]; 0.0 when the query has no judged item with grade > 0.
    Example: condensed_ndcg_at_k([0, 3], [False, True], [3], k=2) == 1.0 (the unjudged first item is skipped).
    """
    grades = np.asarray(ranked_grades)[np.asarray(judged, dtype=bool)]
    return ndcg_at_k(grades, ideal_grades, k)


def judged_at_k(judged: Sequence[bool] | np.ndarray, k: int = 10) -> float:
    """judged@k = share of the top k (or of the whole ranking when shorter) that carries a judgment.

    Range: [0, 1]; NaN for an empty ranking (undefined). Example: judged_at_k([True, False, True, True], 2) == 0.5.
    """
    top = np.asarray(judged, dtype=bool)[:k]
    return float(top.mean()) if top.size else math.nan


def count_relevant(grades: Sequence[int] | np.ndarray, min_grade: int = 3) -> int:
    """|{d : grade(d) >= min_grade}|: new relevant items when applied to R_exp minus R_orig (3 = Excellent)."""
    return int(np.sum(np.asarray(grades) >= min_grade))


def mean_std(values: Sequence[float] | np.ndarray) -> MeanStd:
    """Mean and sample standard deviation (ddof = 1) over runs; std is 0.0 for a single run.

    Example: mean_std([1, 2, 3]) == MeanStd(2.0, 1.0). NaN values (a metric undefined in a run) are ignored.
    """
    array = np.asarray(values, dtype=np.float64)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return MeanStd(math.nan, math.nan)
    std = float(np.std(array, ddof=1)) if array.size > 1 else 0.0
    return MeanStd(float(array.mean()), std)


def rate(flags: Sequence[bool] | np.ndarray) -> float:
    """100 * mean(flags): validity rate, abstention rate. Range [0, 100]; NaN for an empty list (undefined)."""
    array = np.asarray(flags, dtype=bool)
    return float(100.0 * array.mean()) if array.size else math.nan


def pairwise_accuracy(
    scores: Sequence[float] | np.ndarray, grades: Sequence[int] | np.ndarray
) -> tuple[float, int]:
    """Share of item pairs with different true grades that the scores order the same way (ties count 1/2).

    acc = (|{(i, j) : g_i > g_j, s_i > s_j}| + 0.5 * |{(i, j) : g_i > g_j, s_i = s_j}|) / |{(i, j) : g_i > g_j}|

    Returns (accuracy, number of pairs). Range [0, 1]; 0.5 is chance; NaN when no pair has different grades.
    Example: pairwise_accuracy([0.9, 0.1, 0.5], [2, 0, 0]) == (1.0, 2).
    """
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(grades, dtype=np.float64)
    higher = g[:, None] > g[None, :]
    n_pairs = int(higher.sum())
    if n_pairs == 0:
        return math.nan, 0
    diff = s[:, None] - s[None, :]
    agree = np.sum(higher & (diff > 0)) + 0.5 * np.sum(higher & (diff == 0))
    return float(agree / n_pairs), n_pairs


def spearman(scores: Sequence[float] | np.ndarray, grades: Sequence[int] | np.ndarray) -> float:
    """Spearman rank correlation between relevance-model scores and true grades (average ranks for ties).

    rho = Pearson(rank(scores), rank(grades)). Range [-1, 1]; NaN when either side is constant or n < 2.
    Example: spearman([0.1, 0.5, 0.9], [0, 1, 4]) == 1.0.
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(grades, dtype=np.float64)
    if s.size < 2 or np.all(s == s[0]) or np.all(g == g[0]):
        return math.nan
    return float(np.corrcoef(rankdata(s), rankdata(g))[0, 1])
