"""Features of (query, item) pairs for the relevance model, computed in batches with numpy.

The catalog side is built once (`CatalogFeatures.build`) and persisted in the model directory: per field, the
(row, term) pairs of the analysed text as sorted int64 keys ``row * V + term`` with their term frequencies, plus
sets of hashed strings per item (title bigrams, identifiers, quantities, attribute-value phrases, brand and
category phrases) as sorted keys ``row << 40 | hash40``. A batch of P pairs expands every pair into one entry per
query term (or query n-gram, identifier, quantity); one ``np.searchsorted`` per field answers all entries at once and
``np.bincount`` sums them back per pair. No Python loop runs per pair.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Analyze = Callable[[str], list[str]]

# Bump when a feature's definition changes: a model trained on another version refuses to load.
FEATURE_SCHEMA_VERSION = 1

TERM_FIELDS = ("title", "attributes", "category", "brand", "description", "all")
BM25_K1 = 1.2
BM25_B = 0.75
MAX_QUERY_NGRAM = 4
_HASH_BITS = 40
_HASH_MASK = (1 << _HASH_BITS) - 1

FEATURE_NAMES: tuple[str, ...] = (
    *(f"bm25_{f}" for f in TERM_FIELDS),
    *(f"cover_{f}" for f in TERM_FIELDS),
    *(f"bm25n_{f}" for f in TERM_FIELDS),
    "idf_cover_all",
    "max_idf_missing_all",
    "title_bigram_share",
    "title_phrase_match",
    "ident_query_count",
    "ident_match_share",
    "numeric_query_count",
    "numeric_match_share",
    "numeric_conflict_share",
    "attr_value_match_count",
    "attr_value_cover",
    "brand_in_query",
    "query_mentions_brand",
    "brand_conflict",
    "category_phrase_in_query",
    "query_terms",
    "title_terms",
    "attribute_count",
    "description_terms_log",
)
EMBEDDING_FEATURE = "embedding_cosine"


def feature_names(embeddings: bool) -> list[str]:
    return [*FEATURE_NAMES, *([EMBEDDING_FEATURE] if embeddings else [])]


# ---------------------------------------------------------------------------------------------- raw text parsing

_UNIT_FAMILIES = {
    # unit -> (dimension, factor to the dimension's base unit)
    "kb": ("storage", 1e-6),
    "mb": ("storage", 1e-3),
    "gb": ("storage", 1.0),
    "tb": ("storage", 1e3),
    "mah": ("charge", 1.0),
    "w": ("power", 1.0),
    "watt": ("power", 1.0),
    "watts": ("power", 1.0),
    "kw": ("power", 1e3),
    "v": ("voltage", 1.0),
    "volt": ("voltage", 1.0),
    "ml": ("volume", 1.0),
    "l": ("volume", 1e3),
    "liter": ("volume", 1e3),
    "oz": ("ounce", 1.0),  # fluid and weight ounces are not told apart in listings
    "lb": ("weight", 453.6),
    "lbs": ("weight", 453.6),
    "kg": ("weight", 1e3),
    "g": ("weight", 1.0),
    "mm": ("length", 0.1),
    "cm": ("length", 1.0),
    "in": ("length", 2.54),
    "inch": ("length", 2.54),
    "inches": ("length", 2.54),
    '"': ("length", 2.54),
    "ft": ("length", 30.48),
    "feet": ("length", 30.48),
    "hz": ("frequency", 1.0),
    "ghz": ("frequency", 1e9),
    "mhz": ("frequency", 1e6),
    "pack": ("count", 1.0),
    "pk": ("count", 1.0),
    "count": ("count", 1.0),
    "ct": ("count", 1.0),
    "pcs": ("count", 1.0),
    "pieces": ("count", 1.0),
    "piece": ("count", 1.0),
    "gal": ("volume", 3785.0),
    "gallon": ("volume", 3785.0),
    "qt": ("volume", 946.0),
}
_UNIT_ALTERNATION = "|".join(sorted((re.escape(u) for u in _UNIT_FAMILIES), key=len, reverse=True))
_QUANTITY_RE = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)?)\s*-?\s*({_UNIT_ALTERNATION})(?![a-z0-9])")
_PACK_OF_RE = re.compile(r"\b(?:pack|set|box|case) of (\d+)\b")
_APPAREL_SIZES = {
    "xxs": "xxs",
    "xs": "xs",
    "small": "s",
    "medium": "m",
    "large": "l",
    "xl": "xl",
    "x-large": "xl",
    "xxl": "xxl",
    "2xl": "xxl",
    "xx-large": "xxl",
    "xxxl": "xxxl",
    "3xl": "xxxl",
    "4xl": "4xl",
    "5xl": "5xl",
}
_RAW_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9\-./_]*[a-z0-9]|[a-z0-9]")


def quantities(text: str) -> list[tuple[str, str]]:
    """(dimension, normalised value) pairs in raw text: "2TB" -> ("storage", "2000"), "2XL" -> ("size", "xxl").

    Values are converted to the dimension's base unit and written with 4 significant digits, so "1 TB" and
    "1000gb" compare equal; apparel sizes are folded ("2xl" = "xxl").
    """
    lowered = text.lower()
    found = []
    for number, unit in _QUANTITY_RE.findall(lowered):
        dimension, factor = _UNIT_FAMILIES[unit]
        found.append((dimension, f"{float(number) * factor:.4g}"))
    found.extend(("count", f"{float(n):.4g}") for n in _PACK_OF_RE.findall(lowered))
    for token in _RAW_TOKEN_RE.findall(lowered):
        if token in _APPAREL_SIZES:
            found.append(("size", _APPAREL_SIZES[token]))
    return found


def identifiers(text: str) -> list[str]:
    """Model numbers and SKUs in raw text, normalised: "WD-19TB", "wd19 tb" -> "wd19tb".

    A candidate has at least one letter and one digit, length >= 3 once '-', '.', '/' and '_' are dropped, and is
    not a plain quantity ("16gb"). Adjacent token pairs are joined too, so "WD19 TB" also yields "wd19tb".
    """
    singles, joins = _identifier_candidates(text)
    return singles + joins


def _identifier_candidates(text: str) -> tuple[list[str], list[str]]:
    tokens = [re.sub(r"[\-./_]", "", t) for t in _RAW_TOKEN_RE.findall(text.lower())]
    # join "wd19" + "tb" or "sm" + "991", but not two model numbers in a row nor a quantity with a word
    joins = [
        a + b
        for a, b in zip(tokens, tokens[1:], strict=False)
        if not (_is_mixed(a) and _is_mixed(b))
        and not _QUANTITY_RE.fullmatch(a)
        and not _QUANTITY_RE.fullmatch(b)
    ]

    def keep(c: str) -> bool:
        return len(c) >= 3 and _is_mixed(c) and not _QUANTITY_RE.fullmatch(c)

    return [c for c in tokens if keep(c)], [c for c in joins if keep(c)]


def _is_mixed(token: str) -> bool:
    return any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token)


def hash40(text: str) -> int:
    """Stable 40-bit hash (blake2b): the same in every process, so persisted keys stay valid."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=5).digest(), "little")


def ngrams(terms: Sequence[str], max_n: int) -> list[tuple[str, int]]:
    """All contiguous n-grams (n = 1..max_n) as (space-joined text, n)."""
    return [(" ".join(terms[i : i + n]), n) for n in range(1, max_n + 1) for i in range(len(terms) - n + 1)]


# ---------------------------------------------------------------------------------------------- catalog side


def _sorted_keys(rows: list[int], values: list[int], shift_or_width: int, is_hash: bool) -> np.ndarray:
    rows_a = np.asarray(rows, dtype=np.int64)
    values_a = np.asarray(values, dtype=np.int64)
    keys = (rows_a << _HASH_BITS) | values_a if is_hash else rows_a * shift_or_width + values_a
    return np.unique(keys)


@dataclass
class CatalogFeatures:
    """Everything the featuriser needs from the catalog, as flat numpy arrays (persisted as one .npz)."""

    item_ids: np.ndarray  # (N,) str
    vocab: np.ndarray  # (V,) str
    term_keys: dict[str, np.ndarray]  # field -> sorted int64 row * V + term
    term_tf: dict[str, np.ndarray]  # field -> float32 aligned with term_keys
    field_len: dict[str, np.ndarray]  # field -> (N,) float32 analysed length
    idf: dict[str, np.ndarray]  # field -> (V,) float32 BM25 idf
    set_keys: dict[str, np.ndarray]  # name -> sorted int64 row << 40 | hash40
    attribute_count: np.ndarray  # (N,) float32

    def __post_init__(self):
        # query-side filters: a query key absent from the whole catalog cannot match any item, so it is dropped
        # once per query instead of being looked up once per pair
        self.vocab_index = {term: tid for tid, term in enumerate(self.vocab.tolist())}
        self.set_value_sets = {
            name: frozenset((keys & _HASH_MASK).tolist()) for name, keys in self.set_keys.items()
        }
        n_vocab = max(len(self.vocab), 1)
        self.field_has_term = {}
        for field, keys in self.term_keys.items():
            has = np.zeros(n_vocab, dtype=bool)
            has[keys % n_vocab] = True
            self.field_has_term[field] = has

    @property
    def vocab_size(self) -> int:
        return max(len(self.vocab), 1)

    @classmethod
    def build(cls, catalog: dict[str, list], analyze: Analyze, progress: bool = True) -> CatalogFeatures:
        """Analyse every item once. ``catalog`` holds the canonical columns as Python lists (``to_pylist``)."""
        from tqdm import tqdm

        item_ids = catalog["item_id"]
        n_items = len(item_ids)
        vocab: dict[str, int] = {}
        term_rows: dict[str, list[int]] = {f: [] for f in TERM_FIELDS}
        term_ids: dict[str, list[int]] = {f: [] for f in TERM_FIELDS}
        field_len = {f: np.zeros(n_items, dtype=np.float32) for f in TERM_FIELDS}
        set_rows: dict[str, list[int]] = {
            k: []
            for k in ("title_bigram", "ident", "quantity", "quantity_dim", "attr_value", "brand", "category")
        }
        set_values: dict[str, list[int]] = {k: [] for k in set_rows}
        attribute_count = np.zeros(n_items, dtype=np.float32)

        def add_terms(field: str, row: int, terms: list[str]) -> None:
            for t in terms:
                tid = vocab.setdefault(t, len(vocab))
                term_rows[field].append(row)
                term_ids[field].append(tid)
            field_len[field][row] += len(terms)

        def add_set(name: str, row: int, text: str) -> None:
            set_rows[name].append(row)
            set_values[name].append(hash40(text))

        rows = range(n_items)
        for row in tqdm(rows, desc="relevance: analysing catalog", disable=not progress, mininterval=2):
            title = catalog["title"][row]
            attrs = catalog["attributes"][row] or []
            category = catalog["category"][row] or []
            brand = catalog["brand"][row] or ""
            description = catalog["description"][row] or ""
            title_terms = analyze(title)
            add_terms("title", row, title_terms)
            add_terms("all", row, title_terms)
            for a, b in zip(title_terms, title_terms[1:], strict=False):
                add_set("title_bigram", row, f"{a} {b}")
            attribute_count[row] = len(attrs)
            raw_numeric_text = [title]
            for attr in attrs:
                value_terms = analyze(attr["value"])
                add_terms("attributes", row, value_terms)
                add_terms("all", row, value_terms)
                if value_terms:
                    add_set("attr_value", row, " ".join(value_terms))
                raw_numeric_text.append(attr["value"])
            for node in category:
                node_terms = analyze(node)
                add_terms("category", row, node_terms)
                add_terms("all", row, node_terms)
                if node_terms:
                    add_set("category", row, " ".join(node_terms))
            brand_terms = analyze(brand) if brand else []
            add_terms("brand", row, brand_terms)
            add_terms("all", row, brand_terms)
            if brand_terms:
                add_set("brand", row, " ".join(brand_terms))
            add_terms("description", row, analyze(description) if description else [])
            raw = " ; ".join(raw_numeric_text)
            for ident in identifiers(raw):
                add_set("ident", row, ident)
            for dimension, value in quantities(raw):
                add_set("quantity", row, f"{dimension}={value}")
                add_set("quantity_dim", row, dimension)

        n_vocab = max(len(vocab), 1)
        term_keys, term_tf, idf = {}, {}, {}
        for field in TERM_FIELDS:
            keys = np.asarray(term_rows[field], dtype=np.int64) * n_vocab + np.asarray(
                term_ids[field], np.int64
            )
            unique_keys, tf = np.unique(keys, return_counts=True)
            term_keys[field] = unique_keys
            term_tf[field] = tf.astype(np.float32)
            df = np.bincount(unique_keys % n_vocab, minlength=n_vocab).astype(np.float64)
            # BM25 idf as in Lucene: log(1 + (N - df + 0.5) / (df + 0.5)), always > 0
            idf[field] = np.log1p((n_items - df + 0.5) / (df + 0.5)).astype(np.float32)
        set_keys = {name: _sorted_keys(set_rows[name], set_values[name], 0, True) for name in set_rows}
        vocab_list = [""] * len(vocab)
        for term, tid in vocab.items():
            vocab_list[tid] = term
        return cls(
            item_ids=np.asarray(item_ids, dtype=str),
            vocab=np.asarray(vocab_list, dtype=str),
            term_keys=term_keys,
            term_tf=term_tf,
            field_len=field_len,
            idf=idf,
            set_keys=set_keys,
            attribute_count=attribute_count,
        )

    def save(self, path: Path) -> None:
        arrays = {"item_ids": self.item_ids, "vocab": self.vocab}
        arrays["attribute_count"] = self.attribute_count
        for field in TERM_FIELDS:
            arrays[f"term_keys.{field}"] = self.term_keys[field]
            arrays[f"term_tf.{field}"] = self.term_tf[field]
            arrays[f"field_len.{field}"] = self.field_len[field]
            arrays[f"idf.{field}"] = self.idf[field]
        for name, keys in self.set_keys.items():
            arrays[f"set_keys.{name}"] = keys
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> CatalogFeatures:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}

        def group(prefix: str) -> dict[str, np.ndarray]:
            return {k.split(".", 1)[1]: v for k, v in data.items() if k.startswith(prefix + ".")}

        return cls(
            item_ids=data["item_ids"],
            vocab=data["vocab"],
            term_keys=group("term_keys"),
            term_tf=group("term_tf"),
            field_len=group("field_len"),
            idf=group("idf"),
            set_keys=group("set_keys"),
            attribute_count=data["attribute_count"],
        )


# ---------------------------------------------------------------------------------------------- query side


@dataclass
class ParsedQuery:
    """The query-side keys, computed once per distinct query string (hash40 values unless noted)."""

    term_ids: np.ndarray  # unique analysed terms (-1 = not in the catalog vocabulary)
    n_terms: int  # unique analysed terms
    n_title_bigrams: int  # distinct adjacent analysed term pairs of the query
    title_bigrams: np.ndarray  # those of them that occur in some title
    attr_ngrams: np.ndarray  # query n-grams (n = 1..MAX_QUERY_NGRAM) equal to some attribute value
    attr_ngram_len: np.ndarray  # int64 n of each attr_ngrams entry
    brand_ngrams: np.ndarray  # query n-grams equal to some brand
    category_ngrams: np.ndarray  # query n-grams equal to some category path element
    idents: np.ndarray  # identifiers found in some item
    n_single_idents: int  # raw query tokens that are identifiers
    quantities: np.ndarray  # "dim=value"
    quantity_dims: np.ndarray  # "dim", aligned with quantities
    mentions_brand: bool


def parse_query(query: str, analyze: Analyze, catalog: CatalogFeatures) -> ParsedQuery:
    """Query-side keys, each list restricted to keys that occur somewhere in the catalog."""
    terms = analyze(query)
    unique_terms = list(dict.fromkeys(terms))
    grams = [(hash40(g), n) for g, n in ngrams(terms, MAX_QUERY_NGRAM)]
    single_idents, joined_idents = _identifier_candidates(query)
    qty = list(dict.fromkeys(quantities(query)))
    bigrams = list(dict.fromkeys(hash40(f"{a} {b}") for a, b in zip(terms, terms[1:], strict=False)))
    idents = list(dict.fromkeys(hash40(i) for i in single_idents + joined_idents))
    values = catalog.set_value_sets

    def in_catalog(name: str, hashes: list[int]) -> np.ndarray:
        return np.asarray([h for h in hashes if h in values[name]], dtype=np.int64)

    attr_grams = [(h, n) for h, n in grams if h in values["attr_value"]]
    gram_hashes = [h for h, _ in grams]
    return ParsedQuery(
        term_ids=np.asarray([catalog.vocab_index.get(t, -1) for t in unique_terms], dtype=np.int64),
        n_terms=len(unique_terms),
        n_title_bigrams=len(bigrams),
        title_bigrams=in_catalog("title_bigram", bigrams),
        attr_ngrams=np.asarray([h for h, _ in attr_grams], dtype=np.int64),
        attr_ngram_len=np.asarray([n for _, n in attr_grams], dtype=np.int64),
        brand_ngrams=in_catalog("brand", gram_hashes),
        category_ngrams=in_catalog("category", gram_hashes),
        idents=in_catalog("ident", idents),
        n_single_idents=len(single_idents),
        quantities=np.asarray([hash40(f"{d}={v}") for d, v in qty], dtype=np.int64),
        quantity_dims=np.asarray([hash40(d) for d, _ in qty], dtype=np.int64),
        mentions_brand=any(h in values["brand"] for h in gram_hashes),
    )


# ---------------------------------------------------------------------------------------------- batched features


def _ragged(values: list[np.ndarray], pair_query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand per-query arrays to per-pair entries: (entry_pair, entry_value) for every pair's query values."""
    lengths = np.asarray([len(v) for v in values], dtype=np.int64)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(values) if len(values) else np.zeros(0, np.int64)
    counts = lengths[pair_query]
    entry_pair = np.repeat(np.arange(len(pair_query), dtype=np.int64), counts)
    starts = np.repeat(offsets[pair_query], counts)
    within = np.arange(len(entry_pair), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return entry_pair, flat[starts + within] if len(entry_pair) else flat[:0]


def _lookup(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``wanted`` in the sorted ``keys`` and whether each was found."""
    if len(keys) == 0:
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    pos = np.searchsorted(keys, wanted)
    np.minimum(pos, len(keys) - 1, out=pos)
    return pos, keys[pos] == wanted


def featurise(
    catalog: CatalogFeatures, parsed: list[ParsedQuery], pair_query: np.ndarray, pair_row: np.ndarray
) -> np.ndarray:
    """Feature matrix (P, len(FEATURE_NAMES)) float32 for pairs (parsed[pair_query[i]], catalog row pair_row[i]).

    BM25 per field f: sum over unique query terms t of idf_f(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len)),
    k1 = 1.2, b = 0.75. cover_f: share of unique query terms with tf > 0 in f. idf_cover_all: the idf-weighted share.
    """
    n_pairs = len(pair_row)
    pair_query = np.asarray(pair_query, dtype=np.int64)
    pair_row = np.asarray(pair_row, dtype=np.int64)
    out = np.zeros((n_pairs, len(FEATURE_NAMES)), dtype=np.float32)
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    n_terms = np.asarray([p.n_terms for p in parsed], dtype=np.float32)[pair_query]
    safe_terms = np.maximum(n_terms, 1.0)

    # idf-weighted coverage needs every query term's weight, matched or not; unknown terms weigh the max idf
    all_idf = catalog.idf["all"]
    max_idf = float(all_idf.max(initial=1.0))
    query_idf_total = np.asarray(
        [float(np.where(p.term_ids >= 0, all_idf[np.maximum(p.term_ids, 0)], max_idf).sum()) for p in parsed]
    )[pair_query]
    known_terms = [p.term_ids[p.term_ids >= 0] for p in parsed]
    all_pair, all_term = _ragged(known_terms, pair_query)
    all_row = pair_row[all_pair]
    for field in TERM_FIELDS:
        in_field = catalog.field_has_term[field][all_term]
        entry_pair, entry_term, entry_row = all_pair[in_field], all_term[in_field], all_row[in_field]
        pos, found = _lookup(catalog.term_keys[field], entry_row * catalog.vocab_size + entry_term)
        tf = np.where(found, catalog.term_tf[field][pos], 0.0) if len(pos) else np.zeros(0)
        lengths = catalog.field_len[field]
        avg_len = max(float(lengths.mean()) if len(lengths) else 1.0, 1e-6)
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths[entry_row] / avg_len)
        idf = catalog.idf[field][entry_term]
        contribution = idf * tf * (BM25_K1 + 1.0) / (tf + norm)
        bm25 = np.bincount(entry_pair, contribution, minlength=n_pairs)
        out[:, col[f"bm25_{field}"]] = bm25
        # normalised by the query's ceiling sum_t idf_f(t) * (k1 + 1) (tf -> infinity): comparable across queries,
        # which a pointwise model needs (raw BM25 grows with the query's length and rarity)
        field_idf = catalog.idf[field]
        ceiling = np.asarray(
            [float(field_idf[p.term_ids[p.term_ids >= 0]].sum()) * (BM25_K1 + 1.0) for p in parsed]
        )[pair_query]
        out[:, col[f"bm25n_{field}"]] = bm25 / np.maximum(ceiling, 1e-6)
        hits = np.bincount(entry_pair, found.astype(np.float64), minlength=n_pairs)
        out[:, col[f"cover_{field}"]] = hits / safe_terms
        if field == "all":
            matched_idf = np.bincount(entry_pair, idf * found, minlength=n_pairs)
            out[:, col["idf_cover_all"]] = matched_idf / np.maximum(query_idf_total, 1e-6)
            # the rarest catalog term of the query that this item lacks (missing a brand or model name hurts most)
            if len(entry_pair):  # entries are grouped by pair (ascending), so a segmented max does it
                starts = np.flatnonzero(np.r_[True, entry_pair[1:] != entry_pair[:-1]])
                missing = np.maximum.reduceat(np.where(found, 0.0, idf), starts)
                out[entry_pair[starts], col["max_idf_missing_all"]] = missing

    def set_hits(name: str, per_query: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        e_pair, e_hash = _ragged(per_query, pair_query)
        _, found = _lookup(catalog.set_keys[name], (pair_row[e_pair] << _HASH_BITS) | e_hash)
        return e_pair, found

    n_bigrams = np.asarray([p.n_title_bigrams for p in parsed], dtype=np.float32)[pair_query]
    e_pair, found = set_hits("title_bigram", [p.title_bigrams for p in parsed])
    bigram_hits = np.bincount(e_pair, found.astype(np.float64), minlength=n_pairs)
    out[:, col["title_bigram_share"]] = np.where(n_bigrams > 0, bigram_hits / np.maximum(n_bigrams, 1), 0.0)
    out[:, col["title_phrase_match"]] = (n_bigrams > 0) & (bigram_hits >= n_bigrams)

    n_idents = np.asarray([p.n_single_idents for p in parsed], dtype=np.float32)[pair_query]
    e_pair, found = set_hits("ident", [p.idents for p in parsed])
    ident_hits = np.bincount(e_pair, found.astype(np.float64), minlength=n_pairs)
    out[:, col["ident_query_count"]] = n_idents
    out[:, col["ident_match_share"]] = np.minimum(ident_hits / np.maximum(n_idents, 1.0), 1.0)

    n_qty = np.asarray([len(p.quantities) for p in parsed], dtype=np.float32)[pair_query]
    e_pair, value_found = set_hits("quantity", [p.quantities for p in parsed])
    _, dim_found = set_hits("quantity_dim", [p.quantity_dims for p in parsed])
    safe_qty = np.maximum(n_qty, 1.0)
    out[:, col["numeric_query_count"]] = n_qty
    out[:, col["numeric_match_share"]] = (
        np.bincount(e_pair, value_found.astype(np.float64), minlength=n_pairs) / safe_qty
    )
    # the item states the same dimension (capacity, size, ...) but never the value the query asks for
    conflict = dim_found & ~value_found
    out[:, col["numeric_conflict_share"]] = (
        np.bincount(e_pair, conflict.astype(np.float64), minlength=n_pairs) / safe_qty
    )

    e_pair, found = set_hits("attr_value", [p.attr_ngrams for p in parsed])
    _, e_len = _ragged([p.attr_ngram_len for p in parsed], pair_query)
    out[:, col["attr_value_match_count"]] = np.bincount(e_pair, found.astype(np.float64), minlength=n_pairs)
    covered = np.bincount(e_pair, (e_len * found).astype(np.float64), minlength=n_pairs)
    out[:, col["attr_value_cover"]] = np.minimum(covered / safe_terms, 1.0)

    e_pair, found = set_hits("brand", [p.brand_ngrams for p in parsed])
    brand_in_query = np.bincount(e_pair, found.astype(np.float64), minlength=n_pairs) > 0
    mentions = np.asarray([p.mentions_brand for p in parsed], dtype=bool)[pair_query]
    out[:, col["brand_in_query"]] = brand_in_query
    out[:, col["query_mentions_brand"]] = mentions
    out[:, col["brand_conflict"]] = mentions & ~brand_in_query

    e_pair, found = set_hits("category", [p.category_ngrams for p in parsed])
    out[:, col["category_phrase_in_query"]] = (
        np.bincount(e_pair, found.astype(np.float64), minlength=n_pairs) > 0
    )

    out[:, col["query_terms"]] = n_terms
    out[:, col["title_terms"]] = catalog.field_len["title"][pair_row]
    out[:, col["attribute_count"]] = catalog.attribute_count[pair_row]
    out[:, col["description_terms_log"]] = np.log1p(catalog.field_len["description"][pair_row])
    return out
