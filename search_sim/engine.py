"""SearchEngine: recall by term matching with minimum_should_match, ranking by precomputed BM25 impacts.

Query evaluation (one query, ``n`` distinct terms, ``m = minimum_should_match(spec, n)``):

1. Seeds: an item with at least ``m`` of the ``n`` terms contains at least one of ANY ``n - m + 1`` terms
   (pigeonhole). The engine takes the ``n - m + 1`` rarest terms (out-of-vocabulary terms count as the rarest,
   with no postings), so the candidate set is the union of a few short posting lists.
2. For every query term, binary search of the candidates in its (item-sorted) posting list gives a hit mask and
   the precomputed BM25 impact; hits are counted and impacts summed (times the term's count in the query).
3. Recall set = candidates with at least ``m`` hits; its size is ``recall_size`` (exact, whatever ``k``);
   ranking = descending score, ties broken by catalog order, top ``k`` by partial sort.

No dense per-item accumulator is touched per query, so the cost follows the posting lists involved, not the
catalog size, and processes share the read-only memory-mapped index.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, OrderedDict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from search_sim import kernels
from search_sim.analyzer import Analyzer
from search_sim.bm25 import minimum_should_match as msm_required
from search_sim.bm25 import validate_minimum_should_match
from search_sim.index import IndexConfig, open_arrays, open_items, stable_hash64

log = logging.getLogger(__name__)

MERGE_POLICIES = ("rrf", "interleave")
BACKENDS = ("auto", "numba", "numpy")
RRF_K = 60  # Cormack et al. (2009); also Elasticsearch's default rank_constant


class SearchResult(NamedTuple):
    """Top-k of one search. ``scores`` are BM25 (or fused) scores aligned with ``item_ids``, best first;
    ``recall_size`` counts every item the query(ies) retrieved, not only the ``k`` returned."""

    item_ids: list[str]
    scores: np.ndarray
    recall_size: int


_EMPTY_DOCS = np.zeros(0, dtype=np.int64)
_EMPTY_SCORES = np.zeros(0, dtype=np.float64)


class SearchEngine:
    """A loaded, read-only index. Thread-safe; open it once per process with :meth:`load`."""

    def __init__(
        self,
        index_dir: Path,
        manifest: dict,
        arrays: dict[str, np.ndarray],
        backend: str = "auto",
        cache_mb: float = 64,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if backend == "numba" and not kernels.HAVE_NUMBA:
            raise ImportError("backend='numba' needs the numba package (pip install numba)")
        self.backend = "numpy" if backend == "numpy" or not kernels.HAVE_NUMBA else "numba"
        self.index_dir = Path(index_dir)
        self.manifest = manifest
        self.config = IndexConfig.from_dict(manifest["config"])
        self.analyzer = Analyzer(self.config.analyzer)
        self.minimum_should_match = self.config.minimum_should_match
        # plain ndarray views of the memmaps: same pages, without np.memmap's per-operation overhead
        a = {name: arr.view(np.ndarray) for name, arr in arrays.items()}
        self._indptr = a["postings_indptr"]
        self._docs = a["postings_docs"]
        self._impacts = a["postings_impacts"]
        self.term_df = a["term_df"]
        self.term_idf = a["term_idf"]
        self._terms_blob, self._terms_offsets = a["terms_blob"], a["terms_offsets"]
        self._term_hash, self._term_order = a["term_hash_sorted"], a["term_hash_order"]
        self._ids_blob, self._ids_offsets = a["ids_blob"], a["ids_offsets"]
        self._id_hash, self._id_order = a["id_hash_sorted"], a["id_hash_order"]
        self._items_table = None  # catalog as Arrow, memory-mapped on first use of items()
        self.doc_len = a["doc_len"]
        self._dense_slot, self._dense_words, self._dense_rank = (
            a["dense_slot"],
            a["dense_words"],
            a["dense_rank"],
        )
        self.num_items = len(self._ids_offsets) - 1
        self.num_terms = len(self._indptr) - 1
        self._term_cache: dict[str, int] = {}
        self._local = threading.local()
        self.cache_mb = cache_mb
        self._cache: OrderedDict = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()
        self.cache_hits = self.cache_misses = 0

    @classmethod
    def load(
        cls,
        index_dir: str | os.PathLike,
        verify_checksums: bool = True,
        backend: str = "auto",
        cache_mb: float = 64,
    ) -> SearchEngine:
        """Open an index directory (memory-mapped). Raises ``IndexCorruptError`` for a missing, partial, corrupt
        or version-mismatched index. ``backend``: "numba" (compiled matching), "numpy", or "auto" (numba when
        installed); both return the same recall sets and rankings. ``cache_mb``: LRU cache of recall sets
        (0 disables it)."""
        manifest, arrays = open_arrays(index_dir, verify_checksums=verify_checksums)
        return cls(Path(index_dir), manifest, arrays, backend, cache_mb)

    def __repr__(self) -> str:
        return f"SearchEngine({str(self.index_dir)!r}, items={self.num_items}, terms={self.num_terms})"

    # ------------------------------------------------------------------------------------------- lookups

    def _term_text(self, term_id: int) -> str:
        return (
            self._terms_blob[self._terms_offsets[term_id] : self._terms_offsets[term_id + 1]]
            .tobytes()
            .decode()
        )

    def term_ids(self, terms: list[str]) -> np.ndarray:
        """Term id of each analysed term, -1 when the index does not contain it."""
        out = np.empty(len(terms), dtype=np.int64)
        cache = self._term_cache
        todo = []
        for i, t in enumerate(terms):
            tid = cache.get(t)
            if tid is None:
                todo.append(i)
            else:
                out[i] = tid
        if todo:
            hashes = stable_hash64([terms[i] for i in todo])
            pos = np.searchsorted(self._term_hash, hashes)
            if len(cache) > 1_000_000:  # bound the memory of a long-running service
                cache.clear()
            for i, p, h in zip(todo, pos, hashes, strict=True):
                tid = -1
                if p < len(self._term_hash) and self._term_hash[p] == h:
                    candidate = int(self._term_order[p])
                    if self._term_text(candidate) == terms[i]:
                        tid = candidate
                cache[terms[i]] = out[i] = tid
        return out

    def vocabulary_contains(self, text: str) -> bool:
        """True when ``text`` analyses to at least one term and every one of its terms occurs in the index."""
        terms = self.analyzer.analyze(text)
        return bool(terms) and bool((self.term_ids(terms) >= 0).all())

    def document_frequency(self, text: str) -> dict[str, int]:
        """Analysed terms of ``text`` -> number of items containing them (0 when unknown)."""
        terms = list(dict.fromkeys(self.analyzer.analyze(text)))
        ids = self.term_ids(terms)
        return {t: int(self.term_df[i]) if i >= 0 else 0 for t, i in zip(terms, ids, strict=True)}

    def term_rows(self, term: str) -> np.ndarray:
        """Catalog rows (int64, ascending) of the items whose indexed fields hold the ANALYSED term ``term`` (one
        entry of ``analyzer.analyze(...)``); empty when the index does not know it. A read of one posting list."""
        tid = int(self.term_ids([term])[0])
        if tid < 0:
            return _EMPTY_DOCS
        return self._docs[self._indptr[tid] : self._indptr[tid + 1]].astype(np.int64)

    def item_indices(self, item_ids: list[str]) -> np.ndarray:
        """Catalog row of each item id; ``KeyError`` naming the first unknown id."""
        hashes = stable_hash64(item_ids)
        pos = np.minimum(np.searchsorted(self._id_hash, hashes), len(self._id_hash) - 1)
        rows = self._id_order[pos].astype(np.int64)
        ok = self._id_hash[pos] == hashes
        for i in np.flatnonzero(ok):
            ok[i] = self.item_ids_at([rows[i]])[0] == item_ids[i]
        if not ok.all():
            raise KeyError(
                f"unknown item id {item_ids[int(np.flatnonzero(~ok)[0])]!r} (not in {self.index_dir})"
            )
        return rows

    def item_ids_at(self, rows) -> list[str]:
        """Item ids of catalog rows."""
        blob, off = self._ids_blob, self._ids_offsets
        return [blob[off[r] : off[r + 1]].tobytes().decode() for r in rows]

    def items(self, item_ids: list[str]) -> list[dict]:
        """Items in catalog schema (item_id, title, category, attributes, brand, description), in the given order."""
        import pyarrow as pa

        rows = self.item_indices(list(item_ids))
        if self._items_table is None:
            self._items_table = open_items(self.index_dir)
        return self._items_table.take(pa.array(rows, type=pa.int64())).to_pylist()

    # ------------------------------------------------------------------------------------------- matching

    def _owner(self) -> np.ndarray:
        owner = getattr(self._local, "owner", None)
        if owner is None:
            owner = self._local.owner = np.empty(self.num_items, dtype=np.int64)
        return owner

    def _unique(self, docs: np.ndarray) -> np.ndarray:
        """Distinct values of ``docs`` (item rows) in O(len) without sorting: every row records the position
        of one of its occurrences (whichever write lands), and exactly that occurrence is kept. Stale entries from
        earlier calls are harmless because only rows written by this call are read back."""
        owner = self._owner()
        positions = np.arange(len(docs), dtype=np.int64)
        owner[docs] = positions
        return docs[owner[docs] == positions]

    def match(
        self, query: str, minimum_should_match: str | int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The recall set of ``query``: item rows (int64) and their BM25 scores (float64), unordered.

        Results are kept in a small LRU cache (``cache_mb``, default 64): during GRPO the original query is
        executed for every sampled completion, and expansions recur across completions. Returned arrays are
        read-only views shared with the cache."""
        if self.cache_mb <= 0:
            return self._match(query, minimum_should_match)
        key = (query, minimum_should_match)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return hit
        docs, scores = self._match(query, minimum_should_match)
        docs.flags.writeable = False
        scores.flags.writeable = False
        with self._cache_lock:
            self.cache_misses += 1
            if key not in self._cache:
                self._cache[key] = (docs, scores)
                self._cache_bytes += docs.nbytes + scores.nbytes + 200
                while self._cache_bytes > self.cache_mb * 1e6 and self._cache:
                    _, (d, sc) = self._cache.popitem(last=False)
                    self._cache_bytes -= d.nbytes + sc.nbytes + 200
        return docs, scores

    def _match(self, query: str, minimum_should_match: str | int | None) -> tuple[np.ndarray, np.ndarray]:
        terms = self.analyzer.analyze(query)
        if not terms:
            return _EMPTY_DOCS, _EMPTY_SCORES
        counts = Counter(terms)
        unique_terms = list(counts)
        n_terms = len(unique_terms)
        required = msm_required(
            self.minimum_should_match if minimum_should_match is None else minimum_should_match, n_terms
        )
        tids = self.term_ids(unique_terms)
        found = np.flatnonzero(tids >= 0)
        if len(found) < required:
            return _EMPTY_DOCS, _EMPTY_SCORES
        indptr, all_docs, all_impacts = self._indptr, self._docs, self._impacts
        spans = [(int(indptr[tids[i]]), int(indptr[tids[i] + 1]), counts[unique_terms[i]]) for i in found]
        if len(spans) == 1:
            lo, hi, qtf = spans[0]
            return all_docs[lo:hi].astype(np.int64), all_impacts[lo:hi].astype(np.float64) * qtf
        n_missing = n_terms - len(found)
        n_seeds = n_terms - required + 1 - n_missing  # >= 1 because len(found) >= required
        by_rarity = sorted(range(len(spans)), key=lambda j: spans[j][1] - spans[j][0])
        if self.backend == "numba":
            return self._match_compiled(
                tids[found], [spans[j] for j in by_rarity], by_rarity, n_seeds, required
            )
        seeds = by_rarity[:n_seeds]
        if n_seeds == 1:
            lo, hi, _ = spans[seeds[0]]
            cand = all_docs[lo:hi].astype(np.int64)
        else:
            cand = self._unique(
                np.concatenate([all_docs[spans[j][0] : spans[j][1]] for j in seeds]).astype(np.int64)
            )
        hits = np.zeros(len(cand), dtype=np.int32)
        scores = np.zeros(len(cand), dtype=np.float64)
        for j, (lo, hi, qtf) in enumerate(spans):  # query order, so sums add up like a term-at-a-time scorer
            if n_seeds == 1 and j == seeds[0]:
                hits += 1
                scores += all_impacts[lo:hi] * float(qtf)
                continue
            postings = all_docs[lo:hi]
            pos = np.searchsorted(postings, cand)
            np.minimum(pos, hi - lo - 1, out=pos)
            hit = postings[pos] == cand
            hits += hit
            scores[hit] += all_impacts[lo + pos[hit]] * float(qtf)
        keep = hits >= required
        return cand[keep], scores[keep]

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the matching kernel now rather than on the first request."""
        if self.backend == "numba" and self.num_terms:
            tids = np.array([0, min(1, self.num_terms - 1)], dtype=np.int64)
            spans = [(int(self._indptr[t]), int(self._indptr[t + 1]), 1) for t in tids]
            self._match_compiled(tids, spans, [0, 1], 1, 1)

    def _match_compiled(self, found_tids, spans_by_rarity, by_rarity, n_seeds, required):
        term_ids = found_tids[by_rarity]
        weights = np.array([qtf for _, _, qtf in spans_by_rarity], dtype=np.float64)
        bound = sum(hi - lo for lo, hi, _ in spans_by_rarity[:n_seeds])
        out_docs = np.empty(bound, dtype=np.int64)
        out_scores = np.empty(bound, dtype=np.float64)
        n = kernels.compiled("match_postings")(
            self._indptr,
            self._docs,
            self._impacts,
            term_ids,
            weights,
            self._dense_slot[term_ids],
            self._dense_words,
            self._dense_rank,
            n_seeds,
            required,
            out_docs,
            out_scores,
        )
        return out_docs[:n], out_scores[:n]

    @staticmethod
    def _top_k(docs: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` by descending score, ties by ascending catalog row (deterministic)."""
        if k <= 0 or len(docs) == 0:
            return _EMPTY_DOCS, _EMPTY_SCORES
        if len(docs) > k:
            part = np.argpartition(-scores, k - 1)[:k]
            sel = np.flatnonzero(scores >= scores[part].min())  # keep every tie at the cut-off
            docs, scores = docs[sel], scores[sel]
        order = np.lexsort((docs, -scores))[:k]
        return docs[order], scores[order]

    # ------------------------------------------------------------------------------------------- public API

    def search(self, query: str, k: int = 10, minimum_should_match: str | int | None = None) -> SearchResult:
        """Top ``k`` items of ``query`` by BM25 among the items it recalls, and the exact recall size."""
        docs, scores = self.match(query, minimum_should_match)
        top_docs, top_scores = self._top_k(docs, scores, k)
        return SearchResult(self.item_ids_at(top_docs), top_scores, len(docs))

    def search_many(
        self, queries: list[str], k: int = 10, minimum_should_match: str | int | None = None
    ) -> list[SearchResult]:
        """:meth:`search` for each query (duplicates evaluated once)."""
        done: dict[str, SearchResult] = {}
        for q in queries:
            if q not in done:
                done[q] = self.search(q, k, minimum_should_match)
        return [done[q] for q in queries]

    def recall_size(self, queries: list[str], minimum_should_match: str | int | None = None) -> int:
        """Size of the UNION of the recall sets of ``queries`` (Ret(Y) of the LESER reward)."""
        if isinstance(queries, str):
            raise TypeError("recall_size takes a list of queries; wrap a single query in a list")
        sets = [self.match(q, minimum_should_match)[0] for q in dict.fromkeys(queries)]
        sets = [s for s in sets if len(s)]
        if len(sets) <= 1:
            return len(sets[0]) if sets else 0
        return len(self._unique(np.concatenate(sets)))

    def recall_size_many(
        self, query_sets: list[list[str]], minimum_should_match: str | int | None = None
    ) -> list[int]:
        return [self.recall_size(qs, minimum_should_match) for qs in query_sets]

    def merged(
        self,
        queries: list[str],
        k: int = 10,
        policy: str = "rrf",
        rank_window: int = 100,
        rrf_k: int = RRF_K,
        minimum_should_match: str | int | None = None,
    ) -> SearchResult:
        """One ranking for a set of queries; ``recall_size`` is the size of the union of their recall sets.

        ``policy="rrf"`` (default): reciprocal rank fusion, ``score(d) = sum_q 1 / (rrf_k + rank_q(d))`` over the
        top ``max(k, rank_window)`` of each query (rank from 1); ties by best single rank, then by the
        earlier query, then catalog order.
        ``policy="interleave"``: round-robin over the queries' rankings in the given order (the original query
        first), skipping items already taken; score = 1 / output position. Duplicate query strings count once.
        """
        if isinstance(queries, str):
            raise TypeError("merged takes a list of queries; wrap a single query in a list")
        if policy not in MERGE_POLICIES:
            raise ValueError(f"unknown merge policy {policy!r}; expected one of {MERGE_POLICIES}")
        window = max(k, rank_window)
        matched = [self.match(q, minimum_should_match) for q in dict.fromkeys(queries)]
        sets = [d for d, _ in matched if len(d)]
        recall = len(sets[0]) if len(sets) == 1 else (len(self._unique(np.concatenate(sets))) if sets else 0)
        rankings = [self._top_k(d, s, window)[0] for d, s in matched]
        if policy == "rrf":
            docs, fused = self._fuse_rrf(rankings, rrf_k, k)
        else:
            docs, fused = self._interleave(rankings, k)
        return SearchResult(self.item_ids_at(docs), fused, recall)

    def merged_many(
        self, query_sets: list[list[str]], k: int = 10, policy: str = "rrf", **kwargs
    ) -> list[SearchResult]:
        return [self.merged(qs, k, policy, **kwargs) for qs in query_sets]

    @staticmethod
    def _fuse_rrf(rankings: list[np.ndarray], rrf_k: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        rankings = [r for r in rankings if len(r)]
        if not rankings or k <= 0:
            return _EMPTY_DOCS, _EMPTY_SCORES
        docs = np.concatenate(rankings)
        ranks = np.concatenate([np.arange(1, len(r) + 1) for r in rankings])
        list_ids = np.concatenate([np.full(len(r), i) for i, r in enumerate(rankings)])
        uniq, inverse = np.unique(docs, return_inverse=True)
        fused = np.bincount(inverse, weights=1.0 / (rrf_k + ranks), minlength=len(uniq))
        # ties: the better single rank wins, then the earlier query (the original query comes first)
        best = np.full(len(uniq), np.iinfo(np.int64).max)
        np.minimum.at(best, inverse, ranks * len(rankings) + list_ids)
        order = np.lexsort((uniq, best, -fused))[:k]
        return uniq[order], fused[order]

    @staticmethod
    def _interleave(rankings: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        taken: list[int] = []
        seen: set[int] = set()
        depth = max((len(r) for r in rankings), default=0)
        for pos in range(depth):
            for r in rankings:
                if pos < len(r) and int(r[pos]) not in seen:
                    seen.add(int(r[pos]))
                    taken.append(int(r[pos]))
                    if len(taken) == k:
                        break
            if len(taken) == k:
                break
        docs = np.asarray(taken, dtype=np.int64)
        return docs, 1.0 / np.arange(1, len(docs) + 1, dtype=np.float64)

    def check_minimum_should_match(self, spec: str | int) -> str:
        return validate_minimum_should_match(spec)
