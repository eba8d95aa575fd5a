"""The evaluation loop: the paper's offline protocol (Table 2) plus truth-based metrics, for any expansion system.

For each query q and each run: R_orig = recall set of q, R_exp = union of the recall sets of q and its expansions;
dRet = |R_exp| - |R_orig|; AvgRel = mean relevance-model score against q of the top `top_k` (100) items of the
engine's merged ranking; dRel = AvgRel_exp - AvgRel_orig. A run's headline numbers are the % of queries with
dRet > 0 and with dRel > 0; the table reports mean +- std over runs. NDCG@10, new relevant items and the
relevance model's agreement use true grades: the synthetic oracle, or a dataset's judgments (unjudged = grade 0).
Off-target recall (a reward-hacking audit) is the share of R_exp minus R_orig, the items Ret pays for, that are
off the query's target (:func:`off_target_share`).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from leser.evaluation import metrics
from leser.evaluation.systems import EvalQuery, Expansion, System

logger = logging.getLogger(__name__)

# Query levels of the synthetic oracle where the paper expects no expansion (specific) vs expansion (broad).
ABSTAIN_LEVELS = ("specific", "broad")


class OracleJudge:
    """True grades from the synthetic generator: every (query, item) pair is graded, so NDCG's ideal ranking is
    the best `k` grades over the whole catalog (computed once per query)."""

    def __init__(self, oracle, all_item_ids: list[str]):
        self.oracle, self.all_item_ids = oracle, list(all_item_ids)
        self.name = "synthetic oracle (every item graded)"
        self._ideal: dict[str, np.ndarray] = {}

    def grades(self, query: str, item_ids: list[str]) -> np.ndarray:
        return (
            np.asarray(self.oracle.grade(query, list(item_ids)), dtype=np.int64)
            if item_ids
            else np.zeros(0, int)
        )

    def ideal(self, query: str, k: int) -> np.ndarray:
        if query not in self._ideal:
            self._ideal[query] = np.sort(self.grades(query, self.all_item_ids))[::-1][:k]
        return self._ideal[query]

    def level(self, query: str) -> str | None:
        return self.oracle.query_level(query)

    def judged(self, query: str, item_ids: list[str]) -> np.ndarray:
        return np.ones(len(item_ids), dtype=bool)  # the oracle grades every pair


class TrueCategoryOffTarget:
    """Off target by synthetic truth: the item's true category is none of the target categories of the query's
    intent (``Oracle.in_target_category``; the intent's related categories are off target too)."""

    kind = "truth"
    description = "truth: the item's true category is none of the target categories of the query's intent"

    def __init__(self, oracle):
        self.oracle = oracle

    def off_target(self, engine, query: str, rows: np.ndarray) -> np.ndarray | None:
        return ~self.oracle.in_target_category(query, engine.item_ids_at(rows))


class HeadNounOffTarget:
    """Off target by a lexical proxy, for catalogs without truth: the item lacks the query's head noun.

    Heuristic (:meth:`head_noun`): the query is cut at "without" (what follows is excluded, not wanted); the head noun
    is the LAST analysed term of the rest that is a LEAF term of the catalog, else the last that is a term of any
    category-path element (numbers excluded). A leaf term is a term of category-path elements that more items carry as the last
    element of their path (a product kind: "Slippers", "Mouse Pads") than above it (an audience or a department:
    "Women", "Home"). Shopper queries put the product noun last, so "ugg slippers women" gives ``slipper`` and
    "ergonomic wireless mouse" ``mous``. An item lacks the noun when none of its indexed fields (title, attribute
    values, brand, category path) holds that term: a read of the term's posting list. A query without any category
    term has no head noun; its answers are not measured (they enter neither the mean nor its count). Known misses:
    a noun whose stem differs between query and categories ("mouse" vs "Mice", "bandsaw" vs "Band Saws") falls
    back to another term, and an item that names the noun as a part or accessory ("mouse pad") counts as on target.
    """

    kind = "proxy"
    description = (
        "proxy: the item lacks the query's head noun (its last term that names a product kind in the catalog's "
        "category leaves, else any category term; see HeadNounOffTarget) in title, attributes, brand and category"
    )

    def __init__(self, analyzer, leaf_terms: set[str], category_terms: set[str]):
        self.analyzer = analyzer
        self.leaf_terms = set(leaf_terms)
        self.category_terms = self.leaf_terms | set(category_terms)
        self._nouns: dict[str, str | None] = {}

    @classmethod
    def from_catalog(cls, analyzer, catalog) -> HeadNounOffTarget:
        """From a catalog table (its ``category`` column: a list of path elements per item, root first)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        paths = catalog.column("category").combine_chunks()
        elements = pc.list_flatten(paths)
        lengths = pc.list_value_length(paths).fill_null(0).to_numpy(zero_copy_only=False)
        is_leaf = np.zeros(len(elements), dtype=bool)
        is_leaf[np.cumsum(lengths)[lengths > 0] - 1] = True  # the last element of each non-empty path
        leaf_items: dict[str, int] = {}
        inner_items: dict[str, int] = {}
        for mask, counts in ((is_leaf, leaf_items), (~is_leaf, inner_items)):
            tally = pc.value_counts(elements.filter(pa.array(mask)))
            for name, n in zip(
                tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True
            ):
                for term in set(analyzer.analyze(name or "")):
                    counts[term] = counts.get(term, 0) + n
        # numbers ("2") name no product kind
        nouns = {t for t in set(leaf_items) | set(inner_items) if not t.isdigit()}
        return cls(analyzer, {t for t in nouns if leaf_items.get(t, 0) > inner_items.get(t, 0)}, nouns)

    def head_noun(self, query: str) -> str | None:
        if query not in self._nouns:
            terms = self.analyzer.analyze(re.split(r"\bwithout\b", query, maxsplit=1, flags=re.I)[0])
            found = [t for t in terms if t in self.leaf_terms]
            found = found or [t for t in terms if t in self.category_terms]
            self._nouns[query] = found[-1] if found else None
        return self._nouns[query]

    def off_target(self, engine, query: str, rows: np.ndarray) -> np.ndarray | None:
        noun = self.head_noun(query)
        if noun is None:
            return None
        return ~np.isin(rows, engine.term_rows(noun))


class JudgmentsJudge:
    """True grades from a dataset's judgments (e.g. ESCI); unjudged items count as grade 0, so NDCG and new
    relevant items are lower bounds when systems surface relevant items nobody judged."""

    def __init__(self, judgments_table, source: str):
        self.name = f"{source} judgments (unjudged = 0)"
        self._grades: dict[str, dict[str, int]] = {}
        for q, item, g in zip(
            judgments_table.column("query").to_pylist(),
            judgments_table.column("item_id").to_pylist(),
            judgments_table.column("grade").to_pylist(),
            strict=True,
        ):
            self._grades.setdefault(q, {})[item] = max(g, self._grades.get(q, {}).get(item, 0))

    def grades(self, query: str, item_ids: list[str]) -> np.ndarray:
        known = self._grades.get(query, {})
        return np.asarray([known.get(i, 0) for i in item_ids], dtype=np.int64)

    def ideal(self, query: str, k: int) -> np.ndarray:
        return np.sort(np.asarray(list(self._grades.get(query, {}).values()), dtype=np.int64))[::-1][:k]

    def level(self, query: str) -> str | None:
        return None

    def judged(self, query: str, item_ids: list[str]) -> np.ndarray:
        known = self._grades.get(query, {})
        return np.asarray([i in known for i in item_ids], dtype=bool)


@dataclass
class EvalContext:
    engine: object
    relevance: object
    judge: object
    queries: list[EvalQuery]
    top_k: int = 100  # AvgRel over the top 100 of the merged ranking (the paper's protocol)
    ndcg_k: int = 10
    merge_policy: str = "rrf"
    new_items_depth: int = 2000  # recall sets deeper than this are truncated when counting new relevant items
    min_relevant_grade: int = 3  # Excellent or Perfect
    # off-target recall: TrueCategoryOffTarget, HeadNounOffTarget, or None (not measured)
    off_target: object | None = None
    off_target_sample: int = 1000  # new items examined per answer at most (uniform sample, fixed seed)
    _reference: dict[str, RankingScore] = field(default_factory=dict)


class RankingScore(NamedTuple):
    recall: int
    item_ids: list[str]
    avg_rel: float
    ndcg: float
    ndcg_condensed: float  # unjudged items removed before the cut (equals ndcg when every item is judged)
    judged10: float  # share of the top 10 with a judgment
    rm_pairwise_acc: float
    rm_spearman: float


@dataclass
class QueryEval:
    """One (system, run, query) row, written to generations/<system>.jsonl."""

    query: str
    run: int
    level: str | None
    expansions: list[str]
    valid: bool
    reason: str
    completion: str | None
    recall_orig: int
    recall_exp: int
    d_ret: int
    avg_rel_orig: float
    avg_rel_exp: float
    d_rel: float
    ndcg_orig: float
    ndcg_exp: float
    ndcg_condensed_orig: float
    ndcg_condensed_exp: float
    judged10_orig: float
    judged10_exp: float
    new_relevant: int
    new_items_truncated: bool
    rm_pairwise_acc: float
    rm_spearman: float
    # share of the new items (R_exp minus R_orig) examined that are off target; NaN when not measured
    off_target_share: float = math.nan
    off_target_examined: int = 0  # new items examined (all of them, or a sample of off_target_sample)


def score_rankings(ctx: EvalContext, query_sets: list[list[str]], desc: str) -> list[RankingScore]:
    """Recall-set union size, merged top-k, AvgRel, NDCG@k and relevance-model agreement for each query set
    Y = [q, y1, ..., yM] (Y[0] is the original query all relevance is judged against)."""
    rankings = []
    for y in tqdm(query_sets, desc=f"{desc}: search", unit="query", leave=False):
        merged = ctx.engine.merged(y, k=ctx.top_k, policy=ctx.merge_policy)  # recall_size: |union of recalls|
        rankings.append((merged.recall_size, list(merged.item_ids)))
    scores = ctx.relevance.score_many([y[0] for y in query_sets], [ids for _, ids in rankings])
    out = []
    for y, (recall, ids), rel in zip(query_sets, rankings, scores, strict=True):
        grades = ctx.judge.grades(y[0], ids)
        judged = ctx.judge.judged(y[0], ids)
        ideal = ctx.judge.ideal(y[0], ctx.ndcg_k)
        ndcg = metrics.ndcg_at_k(grades, ideal, ctx.ndcg_k)
        condensed = metrics.condensed_ndcg_at_k(grades, judged, ideal, ctx.ndcg_k)
        acc, _ = metrics.pairwise_accuracy(rel, grades)
        out.append(
            RankingScore(
                recall,
                ids,
                metrics.average_relevance(rel),
                ndcg,
                condensed,
                metrics.judged_at_k(judged, ctx.ndcg_k),
                acc,
                metrics.spearman(rel, grades),
            )
        )
    return out


def reference(ctx: EvalContext) -> dict[str, RankingScore]:
    """The no-expansion ranking of every query, computed once and shared by all systems."""
    missing = [q.query for q in ctx.queries if q.query not in ctx._reference]
    if missing:
        for q, score in zip(missing, score_rankings(ctx, [[q] for q in missing], "reference"), strict=True):
            ctx._reference[q] = score
    return ctx._reference


def new_relevant_items(ctx: EvalContext, query: str, expansions: list[str]) -> tuple[int, bool]:
    """|{d in R_exp minus R_orig : grade(q, d) >= 3}| and whether a recall set was cut at `new_items_depth`.

    Exact when every recall set is at most `new_items_depth` items; otherwise a lower bound."""
    sets = ctx.engine.search_many([query, *expansions], k=ctx.new_items_depth)
    truncated = any(r.recall_size > ctx.new_items_depth for r in sets)
    original = set(sets[0].item_ids)
    new = sorted({i for r in sets[1:] for i in r.item_ids} - original)
    return metrics.count_relevant(ctx.judge.grades(query, new), ctx.min_relevant_grade), truncated


def new_recall_rows(engine, query: str, expansions: list[str]) -> np.ndarray:
    """R_exp minus R_orig as catalog rows of the index (ascending): the items the expansions recall that q does not,
    i.e. what dRet counts and Ret(Y) rewards. Exact, from the engine's recall sets (``match``, the call behind
    ``recall_size``; cached by the engine, so the searches of the other metrics are not repeated)."""
    parts = [engine.match(y)[0] for y in dict.fromkeys(expansions) if y != query]
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    union = np.unique(np.concatenate(parts))
    return np.setdiff1d(union, engine.match(query)[0], assume_unique=True)


def off_target_share(ctx: EvalContext, query: str, expansions: list[str]) -> tuple[float, int]:
    """Reward-hacking audit: the share of R_exp minus R_orig that is off target (``ctx.off_target``), and how many
    new items it examined.

    Ret(Y) pays for every new item while Rel(Y) judges only the top of the merged ranking, so a loose expansion
    (with the default recall rule, 5 to 8 terms may miss two words: ``search_sim/README.md``) can buy reward with
    items that are not what q asks for. Truth (synthetic): the item's true category is not a target category of the
    query's intent; proxy (other catalogs): the item lacks the query's head noun (:class:`HeadNounOffTarget`).
    A recall increment larger than ``ctx.off_target_sample`` is estimated on a uniform random sample of that many
    new items (seed 0, so reruns agree; standard error <= 1.6 points at 1,000). Returns (NaN, 0) when nothing new
    is recalled, when no definition is configured or the engine has no recall sets (``match``: a search service),
    and when the proxy finds no head noun in q.
    """
    if ctx.off_target is None or not hasattr(ctx.engine, "match") or not expansions:
        return math.nan, 0
    rows = new_recall_rows(ctx.engine, query, expansions)
    if len(rows) == 0:
        return math.nan, 0
    if len(rows) > ctx.off_target_sample:
        rows = np.sort(np.random.default_rng(0).choice(rows, ctx.off_target_sample, replace=False))
    off = ctx.off_target.off_target(ctx.engine, query, rows)
    if off is None:
        return math.nan, 0
    return float(np.mean(off)), len(rows)


def evaluate_run(ctx: EvalContext, expansions: list[Expansion], run: int, desc: str) -> list[QueryEval]:
    ref = reference(ctx)
    to_score = [i for i, e in enumerate(expansions) if e.expansions]
    scored = score_rankings(ctx, [[ctx.queries[i].query, *expansions[i].expansions] for i in to_score], desc)
    by_index = dict(zip(to_score, scored, strict=True))
    rows = []
    for i, (q, e) in enumerate(zip(ctx.queries, expansions, strict=True)):
        orig = ref[q.query]
        exp = by_index.get(i, orig)
        d_ret = metrics.retrieval_gain(orig.recall, exp.recall)
        new_rel, truncated = new_relevant_items(ctx, q.query, e.expansions) if d_ret > 0 else (0, False)
        off_share, off_examined = off_target_share(ctx, q.query, e.expansions) if d_ret > 0 else (math.nan, 0)
        rows.append(
            QueryEval(
                query=q.query,
                run=run,
                level=ctx.judge.level(q.query),
                expansions=e.expansions,
                valid=e.valid,
                reason=e.reason,
                completion=e.completion,
                recall_orig=orig.recall,
                recall_exp=exp.recall,
                d_ret=d_ret,
                avg_rel_orig=orig.avg_rel,
                avg_rel_exp=exp.avg_rel,
                d_rel=metrics.relevance_gain(exp.avg_rel, orig.avg_rel),
                ndcg_orig=orig.ndcg,
                ndcg_exp=exp.ndcg,
                ndcg_condensed_orig=orig.ndcg_condensed,
                ndcg_condensed_exp=exp.ndcg_condensed,
                judged10_orig=orig.judged10,
                judged10_exp=exp.judged10,
                new_relevant=new_rel,
                new_items_truncated=truncated,
                rm_pairwise_acc=exp.rm_pairwise_acc,
                rm_spearman=exp.rm_spearman,
                off_target_share=off_share,
                off_target_examined=off_examined,
            )
        )
    return rows


# Column key -> (header, unit). The first two are the paper's Table 2; the rest are ours.
RUN_METRICS = {
    "pct_d_ret_pos": "dRet (%)",
    "pct_d_rel_pos": "dRel (%)",
    "mean_d_ret": "mean dRet (items)",
    "mean_d_rel": "mean dRel",
    "ndcg10": "NDCG@10",
    "d_ndcg10": "dNDCG@10",
    "ndcg10_condensed": "condensed NDCG@10",
    "d_ndcg10_condensed": "d condensed NDCG@10",
    "judged10": "judged@10 (%)",
    "validity": "valid (%)",
    "mean_n_expansions": "# exp",
    "abstain_specific": "abstain specific (%)",
    "abstain_broad": "abstain broad (%)",
    "new_relevant": "new relevant / query",
    "off_target_recall": "off-target recall (%)",
    "off_target_answers": "answers with new items",
    "queries_per_s": "queries/s",
    "rm_pairwise_acc": "RM pairwise acc",
}


def summarize_run(rows: list[QueryEval], seconds: float) -> dict[str, float]:
    """One run's numbers (each a mean over queries, or a % of queries)."""
    levels = {lvl: [r for r in rows if r.level == lvl] for lvl in ABSTAIN_LEVELS}
    measured = [r.off_target_share for r in rows if not math.isnan(r.off_target_share)]
    return {
        "pct_d_ret_pos": metrics.percent_positive([r.d_ret for r in rows]),
        "pct_d_rel_pos": metrics.percent_positive([r.d_rel for r in rows], metrics.RELEVANCE_TOLERANCE),
        "mean_d_ret": float(np.mean([r.d_ret for r in rows])),
        "mean_d_rel": float(np.mean([r.d_rel for r in rows])),
        "ndcg10": float(np.mean([r.ndcg_exp for r in rows])),
        "d_ndcg10": float(np.mean([r.ndcg_exp - r.ndcg_orig for r in rows])),
        "ndcg10_condensed": float(np.mean([r.ndcg_condensed_exp for r in rows])),
        "d_ndcg10_condensed": float(np.mean([r.ndcg_condensed_exp - r.ndcg_condensed_orig for r in rows])),
        "judged10": 100.0 * float(np.nanmean([r.judged10_exp for r in rows]))
        if any(not math.isnan(r.judged10_exp) for r in rows)
        else math.nan,
        # Systems that emit lists directly (RM3, EBQE) have no completion for the gate to judge.
        "validity": metrics.rate([r.valid for r in rows if r.completion is not None]),
        "mean_n_expansions": float(np.mean([len(r.expansions) for r in rows])),
        **{
            f"abstain_{lvl}": metrics.rate([r.valid and not r.expansions for r in group])
            for lvl, group in levels.items()
        },
        "new_relevant": float(np.mean([r.new_relevant for r in rows])),
        # over the answers whose expansions recalled a new item (and, for the proxy, whose query has a head noun)
        "off_target_recall": 100.0 * float(np.mean(measured)) if measured else math.nan,
        "off_target_answers": float(len(measured)),
        "queries_per_s": len(rows) / seconds if seconds > 0 else math.nan,
        "rm_pairwise_acc": float(np.nanmean([r.rm_pairwise_acc for r in rows]))
        if any(not math.isnan(r.rm_pairwise_acc) for r in rows)
        else math.nan,
    }


@dataclass
class SystemReport:
    name: str
    backbone: str
    runs: list[dict[str, float]]
    stochastic: bool
    n_queries: int
    invalid_reasons: dict[str, int]
    truncated_new_item_counts: int
    # query -> NDCG@10 change vs no expansion, averaged over the runs: the unit of the paired comparisons
    per_query_d_ndcg10: dict[str, float] = field(default_factory=dict)
    aggregate: dict[str, metrics.MeanStd] = field(default_factory=dict)

    def __post_init__(self):
        # .get: a report saved before a column existed (reused from an older results.json) shows "-" there
        self.aggregate = {
            k: metrics.mean_std([run.get(k, math.nan) for run in self.runs]) for k in RUN_METRICS
        }

    def to_json(self) -> dict:
        d = asdict(self)
        d["aggregate"] = {k: {"mean": v.mean, "std": v.std} for k, v in self.aggregate.items()}
        return d


def evaluate_system(ctx: EvalContext, system: System, runs: int, write_rows=None) -> SystemReport:
    """All runs of one system; a deterministic system is evaluated once and that run stands for all `runs`
    (std 0, as the paper's EBQE row). `write_rows(system, rows)` receives each run's per-query rows."""
    n_distinct = runs if system.stochastic else 1
    summaries, reasons, truncated = [], {}, 0
    d_ndcg_by_query: dict[str, list[float]] = {}
    for run in range(n_distinct):
        output = system.expand(ctx.queries, run)
        rows = evaluate_run(ctx, output.expansions, run, f"{system.name} run {run + 1}/{n_distinct}")
        for r in rows:
            if not r.valid:
                reasons[r.reason] = reasons.get(r.reason, 0) + 1
        truncated += sum(r.new_items_truncated for r in rows)
        for r in rows:
            d_ndcg_by_query.setdefault(r.query, []).append(r.ndcg_exp - r.ndcg_orig)
        if write_rows is not None:
            write_rows(system, rows)
        summaries.append(summarize_run(rows, output.seconds))
        logger.info(
            "%s run %d: dRet>0 %.1f%%, dRel>0 %.1f%%, %.2f queries/s",
            system.name,
            run + 1,
            summaries[-1]["pct_d_ret_pos"],
            summaries[-1]["pct_d_rel_pos"],
            summaries[-1]["queries_per_s"],
        )
    return SystemReport(
        name=system.name,
        backbone=system.backbone,
        runs=summaries * (runs // n_distinct),
        stochastic=system.stochastic,
        n_queries=len(ctx.queries),
        invalid_reasons=reasons,
        truncated_new_item_counts=truncated,
        per_query_d_ndcg10={q: float(np.mean(v)) for q, v in d_ndcg_by_query.items()},
    )
