"""BM25 formulas and Elasticsearch ``minimum_should_match`` semantics (pure functions, numpy only)."""

from __future__ import annotations

import functools
import math
import re

import numpy as np

DEFAULT_MINIMUM_SHOULD_MATCH = "3<75%"
"""Default recall rule: queries of up to 3 distinct (analysed) terms need every term; longer ones need 75% of their
terms (rounded down, Elasticsearch-style): 4 -> 3, 5 -> 3, 6 -> 4, 7 -> 5, 8 -> 6, 9 -> 6. Short shopper queries then
behave like AND (as most e-commerce engines do); a long query may miss one term at 4 terms, two at 5 to 8 terms and
three at 9 to 11, so a long expansion can recall items without its product noun (worked table: search_sim/README.md)."""


def idf_lucene(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Lucene / Elasticsearch BM25 idf: ``ln(1 + (N - df + 0.5) / (df + 0.5))``, always > 0."""
    df = np.asarray(df, dtype=np.float64)
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


def idf_okapi(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """rank_bm25's BM25Okapi idf: ``ln(N - df + 0.5) - ln(df + 0.5)``; negative values (terms in more than half
    the documents) are replaced by ``epsilon * mean(idf)`` over the whole vocabulary (Trotman et al., ATIRE)."""
    df = np.asarray(df, dtype=np.float64)
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    floor = epsilon * (idf.sum() / len(idf)) if len(idf) else 0.0
    return np.where(idf < 0, floor, idf)


IDF_VARIANTS = {"lucene": idf_lucene, "okapi": idf_okapi}


def bm25_impacts(
    tf: np.ndarray, doc_len: np.ndarray, avg_doc_len: float, idf: np.ndarray, k1: float, b: float
) -> np.ndarray:
    """Per-posting BM25 contribution ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))``.

    Robertson's form with the ``(k1 + 1)`` factor (as in rank_bm25 and Lucene before 8.0; newer Lucene drops the
    constant factor, which changes no ranking). ``tf`` and ``doc_len`` may be field-weighted (BM25F-style:
    ``tf = sum_f w_f tf_f``, ``dl = sum_f w_f len_f``). All arrays are aligned per posting; float64 maths.
    """
    tf = np.asarray(tf, dtype=np.float64)
    norm = k1 * (1.0 - b + b * np.asarray(doc_len, dtype=np.float64) / avg_doc_len)
    return idf * tf * (k1 + 1.0) / (tf + norm)


_MSM_CONDITION_RE = re.compile(r"^(\d+)<(.+)$")


def _msm_simple(spec: str, n_terms: int) -> int:
    """One clause without a condition: "3", "-2", "75%", "-25%"."""
    if spec.endswith("%"):
        pct = float(spec[:-1])
        if pct < 0:
            return n_terms - math.floor(n_terms * -pct / 100.0)
        return math.floor(n_terms * pct / 100.0)
    value = int(spec)
    return n_terms + value if value < 0 else value


@functools.lru_cache(maxsize=4096)
def minimum_should_match(spec: str | int, n_terms: int) -> int:
    """Number of distinct query terms an item must contain to be recalled, with Elasticsearch semantics.

    ``spec`` forms: integer ``"3"``; negative ``"-2"`` (all but two); percentage ``"75%"`` (rounded down);
    negative percentage ``"-25%"``; conditional ``"3<75%"`` (up to 3 terms: all; more: 75%); several conditions
    ``"2<-1 5<75%"`` (the one with the largest threshold below ``n_terms`` applies). As in Elasticsearch, the
    result is clamped to ``[1, n_terms]`` (0 when the query has no terms).

    >>> [minimum_should_match("3<75%", n) for n in range(1, 10)]
    [1, 2, 3, 3, 3, 4, 5, 6, 6]
    """
    if n_terms <= 0:
        return 0
    spec = str(spec).strip()
    if not spec:
        raise ValueError("empty minimum_should_match")
    try:
        if "<" in spec:
            chosen = None
            for clause in spec.split():
                m = _MSM_CONDITION_RE.match(clause)
                if not m:
                    raise ValueError(clause)
                threshold = int(m.group(1))
                if n_terms > threshold and (chosen is None or threshold > chosen[0]):
                    chosen = (threshold, m.group(2))
            required = n_terms if chosen is None else _msm_simple(chosen[1], n_terms)
        else:
            required = _msm_simple(spec, n_terms)
    except ValueError:
        raise ValueError(
            f"invalid minimum_should_match {spec!r}: expected forms like '3', '-1', '75%', '-25%', '3<75%'"
        ) from None
    return min(max(required, 1), n_terms)


def validate_minimum_should_match(spec: str | int) -> str:
    """Parse ``spec`` once (raising ``ValueError`` with the accepted forms) and return it as a string."""
    for n in (1, 2, 5, 20):
        minimum_should_match(spec, n)
    return str(spec).strip()
