"""LESER reward (paper Sec. 3.3, Eq. 1-2): the search engine is the judge.

Y = {q, y1, ..., yM}, the original query plus the expansions that passed the gate (:mod:`leser.gate`)::

    r(Y)      = r_rel(Y) + lambda * r_size(Y)          if Y is valid, else 0        (Eq. 1)
    r_rel(Y)  = Rel(Y) / (max(Rel(q), rel_floor) + eps)                             (Eq. 2, guarded)
    r_size(Y) = min(Ret(Y) / (max(Ret(q), ret_floor) + eps), size_ratio_cap)         (Eq. 2, guarded)

Rel(Y) is the mean relevance, judged against the ORIGINAL query q, of the top k items of the engine's merged
ranking of all queries of Y; Ret(Y) is the number of unique items recalled by the queries of Y.

Option (ours, off by default: ``size_measure: relevance`` in LESER_CONFIG): Ret is replaced by
``Ret_rel(Y) = sum of clip(judge(q, i), 0, 1) over the union of the recall sets``, the expected number of relevant
items recalled, so recall that the judge finds irrelevant buys ~no reward (docs/experiment/gpu: with the paper's
count, Eq. 1 paid 60% of the specific-query expansions without true gain more than abstaining).

Option (ours, off by default: ``rel_measure: dcg`` in LESER_CONFIG): Rel is the judge's discounted cumulative gain
of the top k in the evaluation's own form, ``sum_i (2^(4 s_i) - 1) / log2(i + 1)`` over the k positions (s_i the
judge's score, i.e. its predicted grade / 4; an empty position gains 0), divided by that sum for k perfect items so
Rel stays in [0, 1]. The paper's mean treats the 1st and the 10th item alike and averages a short ranking over the
items it has, while the NDCG@10 we evaluate on weighs the top and counts an empty slot as a loss.

Option (ours, off by default: ``expansion_cost: c`` in LESER_CONFIG): a valid answer with at least one expansion
gets ``max(r(Y) - c, 0)``; abstaining (M = 0) keeps ``r(Y)``. Under Eq. 1 an expansion that recalls nothing new
and only reorders q's top k scores ``1 + lambda +- the judge's noise``, a tie with abstaining that group-scaled
advantages turn into full-size pushes either way; the cost breaks such ties towards abstaining, the paper's answer
for specific queries (docs/experiment/gpu/whatif.md: c = 0.05 halves the share of specific-query expansions paid
over abstaining, 58% -> 29%, and keeps 76% on broad queries, where Eq. 1 pays 87%).

Guard (our choice; the paper's Eq. 2 has none): with ``Rel(q) = 0`` (q finds nothing, or nothing relevant) or
``Ret(q) = 0`` the paper's ratios reach 1e4 and one lucky sample dominates the group's advantages. We floor the
denominators (rel_floor 0.05, ret_floor 1) and cap the size ratio (10, which also keeps an over-broad expansion
such as a bare colour from buying reward with recall alone). Where ``Rel(q) >= rel_floor`` and
``Ret(q) >= ret_floor`` and the cap is not reached the value is exactly the paper's. With judge scores clipped to
[0, 1] the reward lies in ``[0, 1 / (rel_floor + eps) + lambda * size_ratio_cap]`` (= [0, 20.96] by default).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from leser.gate import Gate, GateResult
from leser.settings import Settings
from search_sim.relevance.report import dcg

logger = logging.getLogger(__name__)


class RewardBackendError(RuntimeError):
    """The search engine or relevance model failed after all retries: training must stop, not score zeros."""


@dataclass(frozen=True)
class RewardBreakdown:
    reward: float
    valid: bool
    reason: str
    rel_ratio: float  # r_rel(Y); 0.0 when invalid
    size_ratio: float  # r_size(Y); 0.0 when invalid
    n_expansions: int  # M (0 when invalid)
    rel_y: float  # Rel(Y); 0.0 when invalid
    rel_q: float  # Rel(q)
    ret_y: int  # Ret(Y); 0 when invalid
    ret_q: int  # Ret(q)


def mean_top_k_relevance(scores: Sequence[float], k: int) -> float:
    """Rel: mean judge score of the first k items of a ranking (paper Sec. 3.3, k = 10 in training).

    Scores are clipped to [0, 1] (the GBDT regression can overshoot its label range). A ranking with fewer than
    k items is averaged over the items it has; an empty ranking has Rel = 0. Range [0, 1].
    """
    top = np.clip(np.asarray(scores, dtype=np.float64)[:k], 0.0, 1.0)
    return float(top.mean()) if top.size else 0.0


def dcg_top_k_relevance(scores: Sequence[float], k: int) -> float:
    """Rel as a judged DCG@k (ours, ``rel_measure: dcg``): sum_{i<=k} (2^(4 s_i) - 1) / log2(i + 1), over the same
    sum with every s_i = 1; s_i is the judge's score clipped to [0, 1] (its predicted grade / 4, so the gain is
    NDCG's exponential gain of the predicted grade), and positions past the ranking's end gain 0. Range [0, 1]."""
    predicted_grades = 4.0 * np.clip(np.asarray(scores, dtype=np.float64)[:k], 0.0, 1.0)
    return dcg(predicted_grades, k) / dcg(np.full(k, 4.0), k)


def relevance_ratio(rel_y: float, rel_q: float, eps: float, rel_floor: float) -> float:
    """r_rel(Y) = Rel(Y) / (max(Rel(q), rel_floor) + eps) (Eq. 2 with our floor). Range [0, 1/(rel_floor+eps)]."""
    return rel_y / (max(rel_q, rel_floor) + eps)


def size_ratio(ret_y: int, ret_q: int, eps: float, ret_floor: int, cap: float) -> float:
    """r_size(Y) = min(Ret(Y) / (max(Ret(q), ret_floor) + eps), cap) (Eq. 2 with floor and cap). Range [0, cap]."""
    return min(ret_y / (max(ret_q, ret_floor) + eps), cap)


def relevant_recall(scores: Sequence[float]) -> float:
    """Ret_rel: the judge's scores of every recalled item, clipped to [0, 1] and summed: the expected number of
    relevant items recalled (ours; the option ``size_measure: relevance``). Range [0, number of recalled items]."""
    return float(np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0).sum())


def combined_reward(rel_ratio: float, size_ratio: float, lambda_size: float) -> float:
    """r(Y) = r_rel(Y) + lambda * r_size(Y) for a valid Y (Eq. 1; lambda = 0.1 in the paper). Range [0, inf)."""
    return rel_ratio + lambda_size * size_ratio


def charge_expansion(reward: float, n_expansions: int, expansion_cost: float) -> float:
    """max(r(Y) - c, 0) when Y has at least one expansion (M >= 1), else r(Y) unchanged (ours, ``expansion_cost``
    = c, off at 0; the paper's Eq. 1 has no such term). An answer that expands must beat abstaining by c; the floor
    keeps it at or above a failed gate's 0. Range [0, inf)."""
    return max(reward - expansion_cost, 0.0) if n_expansions > 0 else reward


class GateStats:
    """Counts gate outcomes; logs one summary line per period instead of one line per sample."""

    def __init__(self, log_every_s: float):
        self.totals: Counter[str] = Counter()
        self._window: Counter[str] = Counter()
        self._log_every_s = log_every_s
        self._last_log = time.monotonic()

    def add(self, reason: str) -> None:
        self.totals[reason] += 1
        self._window[reason] += 1

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._last_log < self._log_every_s:
            return
        seen = sum(self._window.values())
        invalid = seen - self._window["ok"]
        if invalid:
            top = ", ".join(f"{r} {n}" for r, n in self._window.most_common() if r != "ok")
            logger.warning(
                "leser gate: %d of %d completions invalid in the last %.0f s (%s)",
                invalid,
                seen,
                now - self._last_log,
                top,
            )
        self._window.clear()
        self._last_log = now


class LeserScorer:
    """Scores GRPO batches: gate, then batched and deduplicated searches, then Eq. 1-2.

    ``engine`` needs ``search_many``, ``merged_many``, ``vocabulary_contains`` and ``analyzer`` (SearchEngine or
    SearchClient); ``judge`` needs ``score_many`` (RelevanceModel, or :class:`leser.settings.ServiceJudge`). Rel(q) and Ret(q) are cached per query across batches (the N completions of a group share q, and
    queries recur across epochs).
    """

    def __init__(self, engine, judge, settings: Settings, query_cache_size: int = 100_000):
        self.engine = engine
        self.judge = judge
        self.settings = settings
        lookup = partial(self._call, "vocabulary lookup", engine.vocabulary_contains)
        # the client fetches the analyzer config from the service, so even this can meet a backend that is down
        self._gate = Gate(settings.rules, lookup, self._call("analyzer", lambda: engine.analyzer))
        self.vocabulary, self.analyzer = self._gate.vocabulary, self._gate.analyzer
        self.stats = GateStats(settings.log_every_s)
        self._query_cache: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._relevant_recall_cache: OrderedDict[str, float] = OrderedDict()
        self._query_cache_size = query_cache_size

    def gate(self, completion: str, query: str) -> GateResult:
        return self._gate(completion, query)

    def _call(self, what: str, fn, *args, **kwargs):
        """Run a backend call, retrying connection failures with doubling waits, then raise RewardBackendError."""
        wait_s = self.settings.retry_wait_s
        for attempt in range(self.settings.retries + 1):
            try:
                return fn(*args, **kwargs)
            except (OSError, ConnectionError, TimeoutError) as exc:
                if attempt == self.settings.retries:
                    raise RewardBackendError(
                        f"{what} failed {attempt + 1} times against {self.settings.search!r}: {exc!r}; "
                        "is the index built / the service running?"
                    ) from exc
                logger.warning(
                    "leser reward: %s failed (%r); retry %d/%d in %.1f s",
                    what,
                    exc,
                    attempt + 1,
                    self.settings.retries,
                    wait_s,
                )
                time.sleep(wait_s)
                wait_s *= 2

    def _relevance(self, queries: list[str], item_lists: list[list[str]]) -> list[float]:
        if not queries:
            return []
        scores = self._call("relevance scoring", self.judge.score_many, queries, item_lists)
        top_k_relevance = dcg_top_k_relevance if self.settings.rel_measure == "dcg" else mean_top_k_relevance
        rels = [top_k_relevance(s, self.settings.k) for s in scores]
        if not all(math.isfinite(r) for r in rels):
            raise RewardBackendError(
                f"relevance model returned non-finite scores for queries {queries[:3]}..."
            )
        return rels

    def query_stats(self, queries: Sequence[str]) -> dict[str, tuple[float, int]]:
        """(Rel(q), Ret(q)) for each distinct query, from the cache or one batched search + one scoring call."""
        missing = [q for q in dict.fromkeys(queries) if q not in self._query_cache]
        if missing:
            results = self._call("search", self.engine.search_many, missing, k=self.settings.k)
            rels = self._relevance(missing, [list(r.item_ids[: self.settings.k]) for r in results])
            for q, r, rel in zip(missing, results, rels, strict=True):
                self._query_cache[q] = (rel, int(r.recall_size))
            while len(self._query_cache) > self._query_cache_size:
                self._query_cache.popitem(last=False)
        return {q: self._query_cache[q] for q in queries}

    def relevant_recall_many(self, query_sets: Sequence[Sequence[str]]) -> list[float]:
        """Ret_rel of each query set (``size_measure: relevance``): the judge's scores, against the set's first query,
        of every item in the union of the set's recall sets, summed (:func:`relevant_recall`).

        The sets of one original query (a GRPO group, and q alone) overlap heavily, so each distinct (q, item) pair
        is scored once: one judge call per batch over the union of all of q's sets, then a sum per set."""
        if not query_sets:
            return []
        unions = [
            np.unique(
                np.concatenate([self._call("search", self.engine.match, q)[0] for q in dict.fromkeys(qs)])
            )
            for qs in query_sets
        ]
        by_query: dict[str, list[int]] = {}
        for i, qs in enumerate(query_sets):
            by_query.setdefault(qs[0], []).append(i)
        pooled = {q: np.unique(np.concatenate([unions[i] for i in idx])) for q, idx in by_query.items()}
        scores = self._call(
            "relevance scoring",
            self.judge.score_many,
            list(pooled),
            [self.engine.item_ids_at(rows) for rows in pooled.values()],
        )
        scores_of = {q: np.asarray(x) for q, x in zip(pooled, scores, strict=True)}
        return [
            relevant_recall(scores_of[qs[0]][np.searchsorted(pooled[qs[0]], rows)])
            for qs, rows in zip(query_sets, unions, strict=True)
        ]

    def _relevant_recall_batch(
        self, queries: Sequence[str], sets: Sequence[tuple[str, tuple[str, ...]]]
    ) -> tuple[dict[str, float], dict]:
        """(Ret_rel(q) per query, Ret_rel(Y) per expansion set) in one pooled judge call; Ret_rel(q) is cached."""
        missing = [q for q in dict.fromkeys(queries) if q not in self._relevant_recall_cache]
        values = self.relevant_recall_many([[q] for q in missing] + [[q, *exps] for q, exps in sets])
        for q, value in zip(missing, values[: len(missing)], strict=True):
            self._relevant_recall_cache[q] = value
        of_q = {q: self._relevant_recall_cache[q] for q in queries}
        while len(self._relevant_recall_cache) > self._query_cache_size:
            self._relevant_recall_cache.popitem(last=False)
        return of_q, dict(zip(sets, values[len(missing) :], strict=True))

    def score_batch(self, queries: Sequence[str], completions: Sequence[str]) -> list[RewardBreakdown]:
        """One RewardBreakdown per completion; completion i answers queries[i]."""
        if len(queries) != len(completions):
            raise ValueError(f"{len(queries)} queries for {len(completions)} completions")
        s = self.settings
        gates = [self.gate(c, q) for q, c in zip(queries, completions, strict=True)]
        for g in gates:
            self.stats.add(g.reason)
        q_stats = self.query_stats(queries)

        # One merged search per distinct expansion set; groups often repeat a set verbatim.
        sets = list(
            dict.fromkeys(
                (q, tuple(g.expansions))
                for q, g in zip(queries, gates, strict=True)
                if g.valid and g.expansions
            )
        )
        merged = (
            self._call(
                "merged search",
                self.engine.merged_many,
                [[q, *exps] for q, exps in sets],
                k=s.k,
                policy=s.merge_policy,
            )
            if sets
            else []
        )
        rels = self._relevance([q for q, _ in sets], [list(m.item_ids[: s.k]) for m in merged])
        set_stats = {key: (rel, int(m.recall_size)) for key, m, rel in zip(sets, merged, rels, strict=True)}
        by_relevance = s.size_measure == "relevance"
        if by_relevance:  # the size term on the expected number of relevant items instead of all items
            size_of_q, size_of_set = self._relevant_recall_batch(queries, sets)

        out = []
        for q, g in zip(queries, gates, strict=True):
            rel_q, ret_q = q_stats[q]
            if not g.valid:
                out.append(RewardBreakdown(0.0, False, g.reason, 0.0, 0.0, 0, 0.0, rel_q, 0, ret_q))
                continue
            rel_y, ret_y = set_stats[(q, tuple(g.expansions))] if g.expansions else (rel_q, ret_q)
            r_rel = relevance_ratio(rel_y, rel_q, s.eps, s.rel_floor)
            if by_relevance:
                size_q = size_of_q[q]
                size_y = size_of_set[(q, tuple(g.expansions))] if g.expansions else size_q
                r_size = size_ratio(size_y, size_q, s.eps, s.ret_floor, s.size_ratio_cap)
            else:
                r_size = size_ratio(ret_y, ret_q, s.eps, s.ret_floor, s.size_ratio_cap)
            reward = charge_expansion(
                combined_reward(r_rel, r_size, s.lambda_size), len(g.expansions), s.expansion_cost
            )
            out.append(
                RewardBreakdown(
                    reward, True, g.reason, r_rel, r_size, len(g.expansions), rel_y, rel_q, ret_y, ret_q
                )
            )
        self.stats.maybe_log()
        return out
