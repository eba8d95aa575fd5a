"""How good a ranking is: the project's one NDCG, and the relevance judge's quality report.

`ndcg_at_k` is the NDCG of every report in the project: the judge's held-out quality here (`evaluate`, written
by `python -m search_sim relevance train` to report.md / metrics.json) and the evaluation harness's truth columns
(`leser.evaluation.metrics`). One convention for "nothing relevant": a query none of whose known grades is above 0
scores 0.0 (nothing to find). The judge's report leaves such queries out of its means (`mean_ndcg`: a pool with
nothing relevant cannot tell two orderings apart), so they carry NaN in its per-query tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from search_sim.engine import SearchEngine
from search_sim.relevance.features import hash40

log = logging.getLogger(__name__)

MAX_GRADE = 4
NDCG_K = 10
BOOTSTRAP_RESAMPLES = 2000


def dcg(grades: Sequence[int] | np.ndarray, k: int) -> float:
    """DCG@k = sum_{i=1..k} (2^g_i - 1) / log2(i + 1) (exponential gain, Jarvelin & Kekalainen 2002).

    Range: >= 0. Example: dcg([3, 0, 1], 3) == 7 + 0 + 1 / 2 == 7.5.
    """
    top = np.asarray(grades, dtype=np.float64)[:k]
    discounts = np.log2(np.arange(2, top.size + 2))
    return float(np.sum((np.power(2.0, top) - 1.0) / discounts))


def ndcg_at_k(
    ranked_grades: Sequence[int] | np.ndarray, ideal_grades: Sequence[int] | np.ndarray, k: int = NDCG_K
) -> float:
    """NDCG@k = DCG@k(ranking) / DCG@k(ideal), the ideal being the k best grades known for the query.

    Args:
        ranked_grades: true grades (0-4) of the ranking, best-ranked first; unjudged items count as 0.
        ideal_grades: every known grade for the query (any order); sorted descending here.

    Range: [0, 1]; 0.0 when the query has no item with grade > 0 (nothing to find).
    Example: ndcg_at_k([0, 3], [3, 0], k=2) == (7 / log2(3)) / 7 == 0.631.
    """
    ideal = dcg(np.sort(np.asarray(ideal_grades, dtype=np.float64))[::-1], k)
    return dcg(ranked_grades, k) / ideal if ideal > 0 else 0.0


def item_tiebreak(item_ids: list[str]) -> np.ndarray:
    """A fixed pseudo-random order of items, unrelated to their grades (the judgments' file order may not be)."""
    return np.asarray([hash40(i) for i in item_ids], dtype=np.int64)


def engine_scores(
    engine, queries: list[str], item_ids: list[list[str]], minimum_should_match
) -> list[np.ndarray]:
    """The engine's BM25 score of each judged item (its ranking of the judged pool); -inf when not recalled.

    With ``minimum_should_match=1`` every item sharing a term with the query gets its BM25 score (pure BM25
    order); with None the engine's default recall rule applies, as a shopper would see it.
    """
    out = []
    for query, ids in zip(queries, item_ids, strict=True):
        docs, scores = engine.match(query, minimum_should_match)
        score_of = dict(zip(docs.tolist(), scores.tolist(), strict=True))
        rows = engine.item_indices(list(ids)).tolist()
        out.append(np.asarray([score_of.get(r, -np.inf) for r in rows], dtype=np.float64))
    return out


def rmse(pred_grade: np.ndarray, grades: np.ndarray) -> float:
    return (
        float(np.sqrt(np.mean((pred_grade - grades.astype(np.float64)) ** 2)))
        if len(grades)
        else float("nan")
    )


def query_groups(queries: list[str]) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        groups.setdefault(q, []).append(i)
    return {q: np.asarray(ix) for q, ix in groups.items()}


def mean_ndcg(queries, item_ids, grades, scores, per_query: dict | None = None) -> float:
    """Mean NDCG@10 over queries of the judged pools ordered by ``scores`` (ties broken by `item_tiebreak`); a
    query whose pool has nothing relevant gets NaN and is left out of the mean (`finite_mean`)."""
    tiebreak = item_tiebreak(item_ids)
    scores = np.asarray(scores)
    values = []
    for q, ix in query_groups(queries).items():
        order = np.lexsort((tiebreak[ix], -scores[ix]))
        v = ndcg_at_k(grades[ix][order], grades[ix]) if grades[ix].max() > 0 else float("nan")
        if per_query is not None:
            per_query[q] = v
        values.append(v)
    return finite_mean(values)


def finite_mean(values) -> float:
    """Mean over the finite values (queries with an NDCG); nan, without a warning, when there are none."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def paired_bootstrap_ci(
    diffs: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(diffs), resampling queries with replacement (paired: one difference
    model - BM25 per query). The model is *clearly* better than BM25 when the lower bound is above 0.
    Returns (nan, nan) for no differences."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if len(diffs) == 0:
        return float("nan"), float("nan")
    picks = np.random.default_rng(seed).integers(0, len(diffs), size=(resamples, len(diffs)))
    means = diffs[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    return float(np.percentile(means, tail)), float(np.percentile(means, 100.0 - tail))


def _ci_sentence(result: dict) -> str:
    low, high = result["ndcg@10_model_minus_bm25_ci95"]
    if low > 0:
        verdict = "clearly better than BM25 (the interval excludes 0)"
    elif high < 0:
        verdict = "clearly worse than BM25"
    else:
        verdict = "not clearly different from BM25 (the interval holds 0)"
    return (
        f"Model - BM25: {result['ndcg@10_model_minus_bm25']:+.4f} NDCG@10, 95% paired bootstrap interval over "
        f"queries [{low:+.4f}, {high:+.4f}]: {verdict}."
    )


def evaluate(pred: np.ndarray, queries, item_ids, grades, index_dir: Path, oracle=None) -> dict:
    """NDCG@10 of BM25 (the engine's order), the model's predictions ``pred`` (grade / 4) and (synthetic) the
    oracle on held-out queries; RMSE against the grades."""
    groups = query_groups(queries)
    distinct = list(groups)
    engine = SearchEngine.load(index_dir)
    pools = [[item_ids[i] for i in groups[q]] for q in distinct]
    bm25 = np.zeros(len(queries))
    engine_default = np.zeros(len(queries))
    for q, s in zip(distinct, engine_scores(engine, distinct, pools, 1), strict=True):
        bm25[groups[q]] = s
    for q, s in zip(distinct, engine_scores(engine, distinct, pools, None), strict=True):
        engine_default[groups[q]] = s
    model_per_query: dict = {}
    bm25_per_query: dict = {}
    result = {
        "queries": len(distinct),
        "pairs": len(queries),
        "ndcg@10_bm25": mean_ndcg(queries, item_ids, grades, bm25, bm25_per_query),
        "ndcg@10_engine_default_msm": mean_ndcg(queries, item_ids, grades, engine_default),
        "ndcg@10_model": mean_ndcg(queries, item_ids, grades, pred, model_per_query),
        "rmse_grade": rmse(pred * MAX_GRADE, grades),
        "rmse_unit": rmse(pred * MAX_GRADE, grades) / MAX_GRADE,
        "rmse_grade_constant_mean": rmse(np.full(len(grades), grades.mean()), grades),
        "model_beats_bm25_queries": int(
            sum(model_per_query[q] > bm25_per_query[q] for q in distinct if np.isfinite(model_per_query[q]))
        ),
        "bm25_beats_model_queries": int(
            sum(model_per_query[q] < bm25_per_query[q] for q in distinct if np.isfinite(model_per_query[q]))
        ),
    }
    diffs = np.asarray([model_per_query[q] - bm25_per_query[q] for q in distinct])
    diffs = diffs[np.isfinite(diffs)]
    result["ndcg@10_model_minus_bm25"] = float(diffs.mean()) if len(diffs) else float("nan")
    result["ndcg@10_model_minus_bm25_ci95"] = list(paired_bootstrap_ci(diffs))
    if oracle is not None:
        # judgments may hold queries outside the generator's log (added by hand): the oracle cannot grade those,
        # so its NDCG and the per-level table cover the known ones, and the report says how many
        known = [q for q in distinct if q in oracle.query_to_intent]
        result["oracle_unknown_queries"] = len(distinct) - len(known)
        if result["oracle_unknown_queries"]:
            log.warning(
                "oracle: %d of %d evaluated queries are not in its query log",
                len(distinct) - len(known),
                len(distinct),
            )
        oracle_grades = np.full(len(queries), np.nan)
        for q in known:
            oracle_grades[groups[q]] = oracle.grade(q, [item_ids[i] for i in groups[q]])
        keep = ~np.isnan(oracle_grades)
        kept_queries = [q for q, k in zip(queries, keep, strict=True) if k]
        kept_items = [i for i, k in zip(item_ids, keep, strict=True) if k]
        result["ndcg@10_oracle"] = mean_ndcg(kept_queries, kept_items, grades[keep], oracle_grades[keep])
        by_level: dict[str, dict] = {}
        for q in known:
            level = oracle.query_level(q)
            by_level.setdefault(level, {"queries": 0, "model": [], "bm25": []})
            by_level[level]["queries"] += 1
            by_level[level]["model"].append(model_per_query[q])
            by_level[level]["bm25"].append(bm25_per_query[q])
        result["ndcg@10_by_query_level"] = {
            level: {
                "queries": v["queries"],
                "bm25": finite_mean(v["bm25"]),
                "model": finite_mean(v["model"]),
            }
            for level, v in sorted(by_level.items())
        }
    return result


def report_markdown(metrics: dict) -> str:
    t = metrics["test"]
    lines = [
        "# Relevance model: quality on held-out queries",
        "",
        f"Judgments `{metrics['judgments']}`, index `{metrics['index']}`; split by query (seed {metrics['seed']}): "
        f"train {metrics['queries']['train']} / valid {metrics['queries']['valid']} (early stopping) / "
        f"test {metrics['queries']['test']} queries ({t['pairs']} judged pairs). "
        f"{metrics['trees']} trees"
        + (
            f" ({metrics['trees_from_init_model']} from {metrics['init_model']})"
            if metrics["init_model"]
            else ""
        )
        + f"; embeddings: {'yes' if metrics['embeddings'] else 'no'}; "
        + (
            f"cross-encoder: fine-tuned on {metrics['cross_encoder']['pairs']} pairs "
            f"({metrics['cross_encoder']['seconds']:.0f} s), blended with the trees; "
            if metrics.get("cross_encoder")
            else ""
        )
        + f"{metrics['unknown_item_judgments_skipped']} judgments with unknown item ids skipped.",
        "",
        "| order of the judged pool | NDCG@10 |",
        "|---|---|",
        f"| BM25 (the engine's BM25 scores, every item sharing a term) | {t['ndcg@10_bm25']:.4f} |",
        f"| engine (default minimum_should_match; items it does not recall last) | {t['ndcg@10_engine_default_msm']:.4f} |",
        f"| relevance model | {t['ndcg@10_model']:.4f} |",
    ]
    if "ndcg@10_trees_only" in t:
        lines.append(f"| relevance model, trees only (no cross-encoder) | {t['ndcg@10_trees_only']:.4f} |")
    if "ndcg@10_oracle" in t:
        lines.append(f"| oracle (synthetic truth) | {t['ndcg@10_oracle']:.4f} |")
    if "init_model_ndcg@10" in t:
        lines.append(f"| init model before the update | {t['init_model_ndcg@10']:.4f} |")
    lines += [
        "",
        f"RMSE against grades (0-4 scale): model {t['rmse_grade']:.4f}, constant mean {t['rmse_grade_constant_mean']:.4f}. "
        f"Per query the model beats BM25 on {t['model_beats_bm25_queries']} and loses on {t['bm25_beats_model_queries']}.",
        "",
        _ci_sentence(t),
    ]
    if "ndcg@10_by_query_level" in t:
        lines += ["", "| query level | queries | BM25 | model |", "|---|---|---|---|"]
        for level, v in t["ndcg@10_by_query_level"].items():
            lines.append(f"| {level} | {v['queries']} | {v['bm25']:.4f} | {v['model']:.4f} |")
    if "cv" in metrics:
        cv = metrics["cv"]
        lines += [
            "",
            f"{cv['folds']}-fold cross-validation by query over all {cv['queries']} judged queries ({cv['pairs']} pairs; "
            "every query held out once):",
            "",
            "| order of the judged pool | NDCG@10 |",
            "|---|---|",
            f"| BM25 | {cv['ndcg@10_bm25']:.4f} |",
            f"| engine (default minimum_should_match) | {cv['ndcg@10_engine_default_msm']:.4f} |",
            f"| relevance model | {cv['ndcg@10_model']:.4f} |",
        ]
        if "ndcg@10_trees_only" in cv:
            lines.append(
                f"| trees only / cross-encoder only | {cv['ndcg@10_trees_only']:.4f} / "
                f"{cv['ndcg@10_cross_encoder_only']:.4f} |"
            )
        if "ndcg@10_oracle" in cv:
            lines.append(f"| oracle | {cv['ndcg@10_oracle']:.4f} |")
        lines += [
            "",
            f"RMSE (0-4): model {cv['rmse_grade']:.4f}, constant mean {cv['rmse_grade_constant_mean']:.4f}; the model "
            f"beats BM25 on {cv['model_beats_bm25_queries']} queries and loses on {cv['bm25_beats_model_queries']}.",
            "",
            _ci_sentence(cv),
        ]
    top = list(metrics["feature_gain_share"].items())[:8]
    lines += ["", "Top features by gain: " + ", ".join(f"{n} {s:.2f}" for n, s in top), ""]
    return "\n".join(lines)


def metrics_summary(metrics: dict) -> str:
    return json.dumps(
        {k: v for k, v in metrics["test"].items() if k.startswith(("ndcg", "rmse", "init"))}, indent=2
    )
