"""Build, write and open the on-disk BM25 index (a versioned directory of .npy arrays + manifest.json).

Layout of ``INDEX/`` (every array is a plain ``.npy`` opened with ``np.load(mmap_mode="r")``, so processes that
open the same index share its pages through the OS page cache instead of each holding a copy):

============================  ===========================================================================
``manifest.json``             format version, build settings, counts, catalog checksum, per-file sha256 + bytes
``postings_indptr.npy``       int64 [n_terms + 1]: CSR row pointers (one row per term)
``postings_docs.npy``         int32 [n_postings]: item indices, ascending within a term
``postings_impacts.npy``      float32 (or float64) [n_postings]: precomputed BM25 contribution of the posting
``term_df.npy``               int32 [n_terms]: document frequency
``term_idf.npy``              float64 [n_terms]: idf used for the impacts
``terms_blob.npy`` / ``terms_offsets.npy``   UTF-8 terms, concatenated / int64 [n_terms + 1] offsets
``term_hash_sorted.npy`` / ``term_hash_order.npy``   uint64 term hashes, sorted / term id of each (lookup)
``ids_blob.npy`` / ``ids_offsets.npy``       UTF-8 item ids / offsets (item index -> id)
``id_hash_sorted.npy`` / ``id_hash_order.npy``       item id lookup (id -> item index)
``items.arrow``               the catalog as an uncompressed Arrow IPC file, memory-mapped by ``items()``
``doc_len.npy``               float32 [n_items]: field-weighted document length
``dense_slot/words/rank.npy`` bitsets + rank tables of terms in >= 1/16 of the items (see ``dense_bitsets``)
``catalog.parquet``           copy of the catalog the index was built from
============================  ===========================================================================

The directory is written under a temporary name and renamed into place once complete; manifest.json carries
checksums of every other file, so a partial, corrupt or foreign directory is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data_prep.cli import UserError
from data_prep.formats import FormatError, atomic_write_dir, load_catalog, write_table
from search_sim.analyzer import Analyzer, AnalyzerConfig
from search_sim.bm25 import (
    DEFAULT_MINIMUM_SHOULD_MATCH,
    IDF_VARIANTS,
    bm25_impacts,
    validate_minimum_should_match,
)

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

INDEX_FORMAT = "search_sim.index"
INDEX_FORMAT_VERSION = 2  # 2: items as Arrow IPC (items.arrow)
MANIFEST = "manifest.json"
ITEMS_FILE = "items.arrow"
FIELDS = ("title", "attributes", "category")
ARRAY_NAMES = (
    "postings_indptr",
    "postings_docs",
    "postings_impacts",
    "term_df",
    "term_idf",
    "terms_blob",
    "terms_offsets",
    "term_hash_sorted",
    "term_hash_order",
    "ids_blob",
    "ids_offsets",
    "id_hash_sorted",
    "id_hash_order",
    "doc_len",
    "dense_slot",
    "dense_words",
    "dense_rank",
)
DENSE_FRACTION = 16  # a term in at least 1/16 of the items also gets a bitset (see dense_bitsets)


class IndexCorruptError(UserError, RuntimeError):
    """The index directory is missing, partial, corrupt or of another format version. Rebuild it with
    ``python -m search_sim build --catalog DIR --out INDEX``."""


@dataclass(frozen=True)
class IndexConfig:
    """Build settings, all saved in the manifest.

    Attributes:
        analyzer: text analysis for items and queries.
        field_weights: BM25F-style weights: a term's frequency is ``sum_f w_f * tf_f`` and the document length
            ``sum_f w_f * len_f``. ``attributes`` covers attribute values and the brand; attribute names and the
            description are not indexed (the paper's engine matches titles and aspect values).
        k1, b: BM25 saturation and length normalisation (Lucene defaults).
        idf: "lucene" (``ln(1 + (N - df + .5) / (df + .5))``) or "okapi" (rank_bm25's BM25Okapi, for parity).
        okapi_epsilon: floor factor of the "okapi" idf.
        minimum_should_match: default recall rule (Elasticsearch syntax), overridable per query.
        impact_dtype: "float32" (half the memory) or "float64" (bit-for-bit comparison with rank_bm25).
    """

    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    field_weights: dict = field(default_factory=lambda: {"title": 2.0, "attributes": 1.0, "category": 0.5})
    k1: float = 1.2
    b: float = 0.75
    idf: str = "lucene"
    okapi_epsilon: float = 0.25
    minimum_should_match: str = DEFAULT_MINIMUM_SHOULD_MATCH
    impact_dtype: str = "float32"

    def __post_init__(self):
        if set(self.field_weights) - set(FIELDS) or any(w < 0 for w in self.field_weights.values()):
            raise ValueError(
                f"field_weights must map a subset of {FIELDS} to weights >= 0: {self.field_weights}"
            )
        if self.idf not in IDF_VARIANTS:
            raise ValueError(f"idf must be one of {sorted(IDF_VARIANTS)}, not {self.idf!r}")
        if self.impact_dtype not in ("float32", "float64"):
            raise ValueError(f"impact_dtype must be float32 or float64, not {self.impact_dtype!r}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1 (got k1={self.k1}, b={self.b})")
        validate_minimum_should_match(self.minimum_should_match)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["analyzer"] = self.analyzer.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> IndexConfig:
        d = dict(d)
        d["analyzer"] = AnalyzerConfig.from_dict(d["analyzer"])
        return cls(**d)


@dataclass
class BuildStats:
    num_items: int
    num_terms: int
    num_postings: int
    build_s: float
    index_bytes: int


def stable_hash64(strings) -> np.ndarray:
    """64-bit BLAKE2b of each string's UTF-8 bytes (stable across processes, unlike ``hash``)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in strings),
        dtype=np.uint64,
        count=len(strings),
    )


def _string_blob(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated UTF-8 bytes + int64 offsets of a pyarrow string array, without Python-level loops."""
    import pyarrow as pa

    arr = strings.cast(pa.large_string())
    if arr.offset:
        arr = pa.concat_arrays([arr])  # materialise a sliced array so buffers start at row 0
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[: len(arr) + 1].copy()
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]].copy()
        if data_buf
        else np.zeros(0, np.uint8)
    )
    return data, offsets - offsets[0]


class _TermCollector:
    """Analyses strings into term ids with ``Analyzer.analyze_batch``; each distinct string is analysed once
    (attribute values, brands and categories repeat across thousands of items)."""

    def __init__(self, analyzer: Analyzer):
        self.analyzer = analyzer
        self.vocab: dict[str, int] = {}

    def term_ids(self, strings: pa.Array, desc: str) -> tuple[np.ndarray, np.ndarray]:
        """For each string of ``strings``: its term ids, flattened, and the number of terms of each string."""
        import pyarrow as pa
        import pyarrow.compute as pc
        from tqdm import tqdm

        encoded = (
            pc.dictionary_encode(strings.fill_null("")).combine_chunks()
            if isinstance(strings, pa.ChunkedArray)
            else pc.dictionary_encode(strings.fill_null(""))
        )
        dictionary = encoded.dictionary
        vocab = self.vocab
        flat_parts, len_parts = [], []
        chunk = 100_000  # bounds the per-token Python strings of analyze_batch
        for lo in tqdm(
            range(0, len(dictionary), chunk), desc=desc, unit="chunk", disable=len(dictionary) < 4 * chunk
        ):
            terms, codes, lens_chunk = self.analyzer.analyze_batch(dictionary[lo : lo + chunk].to_pylist())
            global_ids = np.array([vocab.setdefault(t, len(vocab)) for t in terms], dtype=np.int32)
            flat_parts.append(global_ids[codes] if len(codes) else codes)
            len_parts.append(lens_chunk)
        flat = np.concatenate(flat_parts) if flat_parts else np.zeros(0, np.int32)
        lens = np.concatenate(len_parts) if len_parts else np.zeros(0, np.int64)
        flat_u = np.asarray(flat, dtype=np.int32)
        starts_u = np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(lens) else lens
        idx = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        occ_len = lens[idx]
        total = int(occ_len.sum())
        # position of every output term in flat_u: start of its string + rank inside the string
        rank = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(occ_len) - occ_len, occ_len)
        return flat_u[np.repeat(starts_u[idx], occ_len) + rank], occ_len


def _field_strings(catalog: pa.Table, field_name: str) -> list[tuple[pa.Array, np.ndarray]]:
    """(strings, item index of each string) pairs making up one indexed field."""
    import pyarrow.compute as pc

    n = catalog.num_rows
    if field_name == "title":
        return [(catalog.column("title").combine_chunks(), np.arange(n, dtype=np.int64))]
    if field_name == "category":
        col = catalog.column("category").combine_chunks()
        return [(pc.list_flatten(col), pc.list_parent_indices(col).to_numpy().astype(np.int64))]
    col = catalog.column("attributes").combine_chunks()
    values = pc.list_flatten(col).field("value")
    parents = pc.list_parent_indices(col).to_numpy().astype(np.int64)
    return [(values, parents), (catalog.column("brand").combine_chunks(), np.arange(n, dtype=np.int64))]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def load_catalog_table(catalog: str | os.PathLike) -> tuple[pa.Table, Path]:
    """The validated catalog table of a dataset directory (or of a catalog file) and the file it came from."""

    path = Path(catalog)
    if path.is_dir():
        candidates = [path / "catalog.parquet", path / "catalog.jsonl"]
        found = [p for p in candidates if p.exists()]
        if not found:
            raise FormatError(path / "catalog.parquet", None, None, "no such file (nor catalog.jsonl)")
        path = found[0]
    return load_catalog(path), path


def build_index(
    catalog: str | os.PathLike, out: str | os.PathLike, config: IndexConfig | None = None
) -> BuildStats:
    """Index the catalog of dataset directory ``catalog`` into the index directory ``out`` (atomically)."""
    # build-time dependencies, imported here so that query-only processes stay small
    import pyarrow as pa
    import scipy.sparse as sp

    config = config or IndexConfig()
    t0 = time.perf_counter()
    table, catalog_path = load_catalog_table(catalog)
    n_items = table.num_rows
    if n_items == 0:
        raise ValueError(f"{catalog_path}: the catalog is empty")
    collector = _TermCollector(Analyzer(config.analyzer))

    rows, cols, weights = [], [], []
    doc_len = np.zeros(n_items, dtype=np.float64)
    for field_name in FIELDS:
        weight = float(config.field_weights.get(field_name, 0.0))
        if weight == 0:
            continue
        for strings, parents in _field_strings(table, field_name):
            term_ids, lens = collector.term_ids(strings, desc=f"analyse {field_name}")
            docs = np.repeat(parents.astype(np.int32), lens)
            rows.append(term_ids)
            cols.append(docs)
            weights.append(np.full(len(term_ids), weight, dtype=np.float32))
            doc_len += weight * np.bincount(docs, minlength=n_items)
    n_terms = len(collector.vocab)
    if n_terms == 0:
        raise ValueError(f"{catalog_path}: no indexable terms in the catalog")

    # Sum duplicate (term, item) pairs: the weighted term frequency. CSR rows are terms, columns items.
    # Concatenate one list at a time, dropping its parts at once: the peak memory of a 1M-item build is here.
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    weights = np.concatenate(weights)
    tf = sp.coo_matrix((weights, (rows, cols)), shape=(n_terms, n_items)).tocsr()
    del rows, cols, weights
    tf.sum_duplicates()  # also sorts item indices within each term
    indptr = tf.indptr.astype(np.int64)
    docs = tf.indices.astype(np.int32)
    df = np.diff(indptr).astype(np.int32)
    if config.idf == "okapi":
        idf = IDF_VARIANTS["okapi"](df, n_items, config.okapi_epsilon)
    else:
        idf = IDF_VARIANTS[config.idf](df, n_items)
    avg_doc_len = float(doc_len.mean()) or 1.0
    impacts = np.empty(len(docs), dtype=np.dtype(config.impact_dtype))
    term_of_posting = np.repeat(np.arange(n_terms, dtype=np.int32), df)
    chunk = 4_000_000  # bounds the float64 temporaries at 1M items
    for lo in range(0, len(docs), chunk):
        hi = min(lo + chunk, len(docs))
        impacts[lo:hi] = bm25_impacts(
            tf.data[lo:hi],
            doc_len[docs[lo:hi]],
            avg_doc_len,
            idf[term_of_posting[lo:hi]],
            config.k1,
            config.b,
        )
    del tf, term_of_posting

    terms = list(collector.vocab)  # insertion order == term id
    terms_arr = pa.array(terms, type=pa.string())
    terms_blob, terms_offsets = _string_blob(terms_arr)
    term_hash = stable_hash64(terms)
    ids_col = table.column("item_id").combine_chunks()
    ids_blob, ids_offsets = _string_blob(ids_col)
    id_hash = stable_hash64(ids_col.to_pylist())
    for name, h in (("term", term_hash), ("item_id", id_hash)):
        # a 64-bit collision among distinct strings (~1e-8 at 1M): refuse, never guess
        if len(np.unique(h)) != len(h):
            raise RuntimeError(f"64-bit hash collision among {name}s; please report this catalog")
    term_order = np.argsort(term_hash, kind="stable")
    id_order = np.argsort(id_hash, kind="stable")
    dense_slot, dense_words, dense_rank = dense_bitsets(indptr, docs, n_items)

    arrays = {
        "postings_indptr": indptr,
        "postings_docs": docs,
        "postings_impacts": impacts,
        "term_df": df,
        "term_idf": idf.astype(np.float64),
        "terms_blob": terms_blob,
        "terms_offsets": terms_offsets,
        "term_hash_sorted": term_hash[term_order],
        "term_hash_order": term_order.astype(np.int32),
        "ids_blob": ids_blob,
        "ids_offsets": ids_offsets,
        "id_hash_sorted": id_hash[id_order],
        "id_hash_order": id_order.astype(np.int32),
        "dense_slot": dense_slot,
        "dense_words": dense_words,
        "dense_rank": dense_rank,
        "doc_len": doc_len.astype(np.float32),
    }
    counts = {"items": n_items, "terms": n_terms, "postings": int(len(docs))}
    index_bytes = _write_index_dir(Path(out), arrays, table, catalog_path, config, counts, avg_doc_len)
    stats = BuildStats(n_items, n_terms, int(len(docs)), time.perf_counter() - t0, index_bytes)
    log.info("built %s: %s", out, stats)
    return stats


def dense_bitsets(
    indptr: np.ndarray, docs: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bitsets of the terms found in at least 1/DENSE_FRACTION of the items.

    Returns ``slot`` (int32 per term, -1 when not dense), ``words`` (uint64 [n_dense, ceil(N / 64)], bit ``d`` set
    when item ``d`` holds the term) and ``rank`` (int32, same shape: postings before each word). The matching
    kernel then tests a candidate against a common term in O(1) and finds its posting at
    ``indptr[t] + rank[w] + popcount(word below the bit)`` instead of searching a long posting list. Memory:
    ``3N/16`` bytes per dense term, at most 75% more than the term's own posting list.
    """
    df = np.diff(indptr)
    dense = np.flatnonzero(df * DENSE_FRACTION >= n_items) if n_items >= 1024 else np.zeros(0, dtype=np.int64)
    slot = np.full(len(df), -1, dtype=np.int32)
    slot[dense] = np.arange(len(dense), dtype=np.int32)
    n_words = (n_items + 63) // 64
    words = np.zeros((len(dense), n_words), dtype=np.uint64)
    rank = np.zeros((len(dense), n_words), dtype=np.int32)
    for i, t in enumerate(dense):
        d = docs[indptr[t] : indptr[t + 1]].astype(np.uint64)
        word_of = (d >> np.uint64(6)).astype(np.int64)
        bits = np.left_shift(np.uint64(1), d & np.uint64(63))
        starts = np.flatnonzero(np.r_[True, word_of[1:] != word_of[:-1]])
        words[i, word_of[starts]] = np.add.reduceat(bits, starts)  # distinct bits: sum == bitwise or
        counts = np.bitwise_count(words[i]).astype(np.int64)
        rank[i, 1:] = np.cumsum(counts)[:-1]
    return slot, words, rank


def _write_arrow(table: pa.Table, path: Path) -> None:
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=1 << 20)


def open_items(index_dir: str | os.PathLike) -> pa.Table:
    """The catalog table of an index, memory-mapped (zero-copy; pages shared between processes)."""
    import pyarrow as pa

    return pa.ipc.open_file(pa.memory_map(str(Path(index_dir) / ITEMS_FILE), "r")).read_all()


def _write_index_dir(
    out: Path,
    arrays: dict,
    catalog_table: pa.Table,
    catalog_path: Path,
    config: IndexConfig,
    counts: dict,
    avgdl: float,
) -> int:
    with atomic_write_dir(out.resolve()) as tmp:
        files = {}
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
        write_table(catalog_table, tmp / "catalog.parquet")
        _write_arrow(catalog_table, tmp / ITEMS_FILE)
        for path in sorted(tmp.iterdir()):
            files[path.name] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
        manifest = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config": config.to_dict(),
            "counts": counts,
            "avg_doc_len": avgdl,
            "catalog": {
                "file": str(catalog_path),
                "sha256": _sha256(catalog_path),
                "rows": catalog_table.num_rows,
            },
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return sum(f["bytes"] for f in files.values())


def read_manifest(index_dir: str | os.PathLike) -> dict:
    """manifest.json of an index directory, checked for format and version."""
    index_dir = Path(index_dir)
    path = index_dir / MANIFEST
    if not index_dir.is_dir():
        raise IndexCorruptError(f"{index_dir}: no such index directory")
    if not path.exists():
        raise IndexCorruptError(
            f"{path}: missing (partial index, or not an index directory); rebuild the index"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IndexCorruptError(f"{path}: not valid JSON ({err}); rebuild the index") from err
    if manifest.get("format") != INDEX_FORMAT:
        raise IndexCorruptError(f"{path}: format {manifest.get('format')!r} is not {INDEX_FORMAT!r}")
    if manifest.get("format_version") != INDEX_FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path}: index format version {manifest.get('format_version')} but this code reads version "
            f"{INDEX_FORMAT_VERSION}; rebuild the index with this version"
        )
    return manifest


def open_arrays(
    index_dir: str | os.PathLike, verify_checksums: bool = True
) -> tuple[dict, dict[str, np.ndarray]]:
    """Manifest + memory-mapped arrays of an index directory. Sizes are always checked; sha256 too when
    ``verify_checksums`` (it reads every byte once, which also warms the shared page cache)."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    files = manifest["files"]
    for name, meta in files.items():
        path = index_dir / name
        if not path.exists():
            raise IndexCorruptError(f"{path}: missing file listed in the manifest; rebuild the index")
        if path.stat().st_size != meta["bytes"]:
            raise IndexCorruptError(
                f"{path}: {path.stat().st_size} bytes, manifest says {meta['bytes']} (truncated or replaced)"
            )
        if verify_checksums and _sha256(path) != meta["sha256"]:
            raise IndexCorruptError(
                f"{path}: sha256 does not match the manifest (corrupt); rebuild the index"
            )
    arrays = {}
    for name in ARRAY_NAMES:
        fname = f"{name}.npy"
        if fname not in files:
            raise IndexCorruptError(f"{index_dir / MANIFEST}: does not list {fname}; rebuild the index")
        try:
            arrays[name] = np.load(index_dir / fname, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise IndexCorruptError(f"{index_dir / fname}: unreadable ({err}); rebuild the index") from err
    return manifest, arrays
