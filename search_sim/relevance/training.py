"""Train the relevance judge: LightGBM, pointwise L2 regression on grade / 4, split by query, early stopping.

The paper's judge is a GBDT trained pointwise with Gaussian (L2) regression on five-level human labels and updated
incrementally for new listings (LESER, arXiv 2509.05570, section "Reward"); `--init-model` continues the trees of an
earlier model on new judgments. `--cross-encoder` adds a MiniLM cross-encoder fine-tuned on the same judgments and
target, averaged with the trees (cross_encoder.py): beyond the paper, for catalogs where features alone do not beat BM25.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data_prep.formats import atomic_write_dir, find_file, load_catalog, load_judgments
from data_prep.oracle import Oracle
from search_sim.analyzer import Analyzer, AnalyzerConfig
from search_sim.relevance.cross_encoder import (
    BASE_MODEL_NAME,
    CROSS_ENCODER_DIR,
    CrossEncoder,
    CrossEncoderConfig,
    blend_scores,
)
from search_sim.relevance.features import FEATURE_SCHEMA_VERSION, CatalogFeatures, feature_names
from search_sim.relevance.model import (
    CATALOG_FEATURES_FILE,
    EMBEDDING_MODEL_NAME,
    EMBEDDINGS_FILE,
    MODEL_FILE,
    SCHEMA_FILE,
    RelevanceModel,
    SchemaMismatchError,
    embedding_encoder,
    index_identity,
    index_manifest,
    item_texts,
)
from search_sim.relevance.report import MAX_GRADE, evaluate, mean_ndcg, report_markdown, rmse

log = logging.getLogger(__name__)

SPLIT_FRACTIONS = (0.70, 0.15, 0.15)  # train / valid (early stopping) / test (the report)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 7
    # small trees and few of them: prediction cost grows with trees x depth, and the judge is called on every
    # GRPO rollout; bench_relevance.py measures the rate these settings give
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_data_in_leaf: int = 20
    max_rounds: int = 200
    early_stopping_rounds: int = 30
    num_threads: int = 1  # one thread: deterministic, and the machine is shared

    def lgb_params(self) -> dict:
        return {
            "objective": "regression",  # L2 = Gaussian likelihood, as in the paper
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }


class QuerySplit(dict):
    """query -> "train" | "valid" | "test"."""


def split_by_query(queries: list[str], seed: int, fractions=SPLIT_FRACTIONS) -> QuerySplit:
    """Assign every distinct query to exactly one of train / valid / test (no query in two parts).

    Deterministic: the distinct queries are sorted, then permuted with ``np.random.default_rng(seed)``.
    Each part gets at least one query; needs >= 3 distinct queries.
    """
    distinct = sorted(set(queries))
    if len(distinct) < 3:
        raise ValueError(f"need at least 3 distinct judged queries to split by query, got {len(distinct)}")
    order = np.random.default_rng(seed).permutation(len(distinct))
    n_valid = max(1, round(fractions[1] * len(distinct)))
    n_test = max(1, round(fractions[2] * len(distinct)))
    n_train = len(distinct) - n_valid - n_test
    if n_train < 1:
        raise ValueError(f"{len(distinct)} distinct queries are too few for a train / valid / test split")
    split = QuerySplit()
    for rank, idx in enumerate(order):
        split[distinct[idx]] = (
            "train" if rank < n_train else ("valid" if rank < n_train + n_valid else "test")
        )
    return split


@dataclass
class Judged:
    queries: list[str]  # per pair
    item_ids: list[str]
    grades: np.ndarray  # int8
    unknown_item_rows: int  # judgments dropped: item id not in the catalog


def load_judged(path: Path, known_items: set[str]) -> Judged:
    table = load_judgments(path)  # FormatError naming the line for a grade outside 0..4
    queries = table.column("query").to_pylist()
    item_ids = table.column("item_id").to_pylist()
    grades = table.column("grade").to_numpy().astype(np.int8)
    keep = np.fromiter((i in known_items for i in item_ids), dtype=bool, count=len(item_ids))
    unknown = int((~keep).sum())
    if unknown:
        log.warning(
            "%s: %d of %d judgments name item ids not in the catalog; they are skipped",
            path,
            unknown,
            len(keep),
        )
    if not keep.any():
        raise ValueError(f"{path}: none of the {len(keep)} judgments names an item of the catalog")
    idx = np.flatnonzero(keep)
    return Judged([queries[i] for i in idx], [item_ids[i] for i in idx], grades[idx], unknown)


def _load_catalog_columns(index_dir: Path, catalog_dir: Path, manifest: dict) -> dict[str, list]:
    """The index's copy of the catalog, after checking that the index was built from the dataset's catalog."""
    dataset_catalog = find_file(catalog_dir, "catalog")
    digest = hashlib.sha256(dataset_catalog.read_bytes()).hexdigest()
    if digest != manifest["catalog"]["sha256"]:
        raise SchemaMismatchError(
            f"index {index_dir} was built from another catalog than {dataset_catalog} (sha256 {digest[:12]}... vs "
            f"{manifest['catalog']['sha256'][:12]}...): rebuild it with python -m search_sim build --catalog "
            f"{catalog_dir} --out {index_dir}"
        )
    index_catalog = load_catalog(find_file(index_dir, "catalog"))
    return {name: index_catalog.column(name).to_pylist() for name in index_catalog.column_names}


def _oracle(catalog_dir: Path):
    manifest = json.loads((catalog_dir / "manifest.json").read_text())
    if manifest.get("source") != "synthetic":
        return None
    return Oracle.load(catalog_dir)


@dataclass
class TrainResult:
    out: str
    metrics: dict


def train(
    catalog_dir: str | Path,
    judgments_path: str | Path,
    index_dir: str | Path,
    out: str | Path,
    init_model: str | Path | None = None,
    embeddings: bool = False,
    config: TrainConfig = TrainConfig(),
    progress: bool = True,
    cv_folds: int = 0,
    cross_encoder: CrossEncoderConfig | None = None,
) -> TrainResult:
    """Train and write a model directory (see model.py). With ``cv_folds`` = K > 1 the report also gives the
    K-fold cross-validated quality over ALL judged queries (each fold held out once, split by query), which is
    steadier than the single test split when there are few queries (the ESCI sample has 150).

    With ``cross_encoder`` a cross-encoder is fine-tuned on the train and valid queries (it has no early stopping,
    so the test queries stay unseen) and blended with the trees; under CV one more is fine-tuned per fold."""
    import lightgbm as lgb

    t_start = time.perf_counter()
    catalog_dir, judgments_path, index_dir, out = (
        Path(catalog_dir),
        Path(judgments_path),
        Path(index_dir),
        Path(out),
    )
    manifest = index_manifest(index_dir)
    identity = index_identity(manifest)
    init_schema = None
    if init_model is not None:
        init_model = Path(init_model)
        init_schema = json.loads((init_model / SCHEMA_FILE).read_text())
        if init_schema.get("schema_version") != FEATURE_SCHEMA_VERSION:
            raise SchemaMismatchError(
                f"{init_model}: feature schema version {init_schema.get('schema_version')}, this code computes "
                f"{FEATURE_SCHEMA_VERSION}; an incremental update cannot change the schema, train from scratch"
            )
        if embeddings != init_schema["embeddings"]:
            log.info(
                "--init-model %s decides the embedding feature: embeddings=%s",
                init_model,
                init_schema["embeddings"],
            )
            embeddings = init_schema["embeddings"]
    init_cross_encoder = None
    if init_model is not None and init_schema.get("cross_encoder"):
        init_cross_encoder = init_model / CROSS_ENCODER_DIR
        if cross_encoder is None:
            cross_encoder = CrossEncoderConfig(**init_schema["cross_encoder"]["config"])
            log.info("--init-model %s has a cross-encoder: it is fine-tuned further", init_model)
    names = feature_names(embeddings)

    catalog_columns = _load_catalog_columns(index_dir, catalog_dir, manifest)
    # read (and check) the judgments before the catalog features: a bad file fails in a second, not minutes
    judged = load_judged(judgments_path, set(catalog_columns["item_id"]))
    analyzer = Analyzer(AnalyzerConfig.from_dict(identity["analyzer"]))
    t0 = time.perf_counter()
    catalog = CatalogFeatures.build(catalog_columns, analyzer.analyze, progress=progress)
    catalog_build_s = time.perf_counter() - t0
    item_vectors = None
    if embeddings:
        item_vectors = _item_embeddings(
            catalog_columns, identity["catalog_checksum"], [init_model, out], progress
        )

    schema = {
        "schema_version": FEATURE_SCHEMA_VERSION,
        "feature_names": names,
        "embeddings": embeddings,
        "embedding_model": EMBEDDING_MODEL_NAME if embeddings else None,
        "target": "grade / 4 (grades 0 Bad .. 4 Perfect)",
        "analyzer": identity["analyzer"],
        "catalog_checksum": identity["catalog_checksum"],
        "n_items": len(catalog.item_ids),
        "index_dir": str(index_dir),
        "lightgbm_params": config.lgb_params(),
        "cross_encoder": (
            {"base_model": BASE_MODEL_NAME, "config": asdict(cross_encoder)}
            if cross_encoder is not None
            else None
        ),
    }
    scorer = RelevanceModel(None, schema, catalog, analyzer, item_vectors, num_threads=config.num_threads)

    split = split_by_query(judged.queries, config.seed)
    part = np.asarray([split[q] for q in judged.queries])
    y = judged.grades.astype(np.float32) / MAX_GRADE
    t0 = time.perf_counter()
    distinct = list(dict.fromkeys(judged.queries))
    qidx = {q: i for i, q in enumerate(distinct)}
    pair_query = np.asarray([qidx[q] for q in judged.queries], np.int64)
    pair_row = scorer.rows(judged.item_ids)
    X = scorer._features(distinct, pair_query, pair_row)
    featurise_s = time.perf_counter() - t0

    params = config.lgb_params()
    train_mask, valid_mask = part == "train", part == "valid"
    dtrain = lgb.Dataset(X[train_mask], y[train_mask], feature_name=names, free_raw_data=False)
    dvalid = lgb.Dataset(X[valid_mask], y[valid_mask], reference=dtrain, free_raw_data=False)
    init_booster = lgb.Booster(model_file=str(init_model / MODEL_FILE)) if init_model is not None else None
    init_trees = init_booster.num_trees() if init_booster is not None else 0
    t0 = time.perf_counter()
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=config.max_rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        init_model=init_booster,
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    train_s = time.perf_counter() - t0
    best_iteration = booster.best_iteration or booster.current_iteration()
    # round-trip through the text format so the saved model and the evaluated model are the same object
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best_iteration))
    scorer.booster = booster
    texts = None
    if cross_encoder is not None:
        texts = item_texts(catalog_columns)
        seen = part != "test"
        scorer.cross_encoder = CrossEncoder.fine_tune(
            [q for q, s in zip(judged.queries, seen, strict=True) if s],
            pair_row[seen],
            y[seen],
            texts,
            cross_encoder,
            init_dir=init_cross_encoder,
            progress=progress,
        )

    metrics = {
        "schema_version": FEATURE_SCHEMA_VERSION,
        "judgments": str(judgments_path),
        "index": str(index_dir),
        "catalog": str(catalog_dir),
        "init_model": str(init_model) if init_model is not None else None,
        "embeddings": embeddings,
        "pairs": {p: int((part == p).sum()) for p in ("train", "valid", "test")},
        "queries": {p: sum(1 for v in split.values() if v == p) for p in ("train", "valid", "test")},
        "unknown_item_judgments_skipped": judged.unknown_item_rows,
        "trees": booster.num_trees(),
        "trees_from_init_model": init_trees,
        "cross_encoder": scorer.cross_encoder.training_log if scorer.cross_encoder is not None else None,
        "seconds": {"catalog_features": catalog_build_s, "featurise": featurise_s, "train": train_s},
        "seed": config.seed,
    }
    test_mask = part == "test"
    test_trees = scorer.predict(X[test_mask])
    test_queries = [q for q, m in zip(judged.queries, test_mask, strict=True) if m]
    test_items = [i for i, m in zip(judged.item_ids, test_mask, strict=True) if m]
    metrics["test"] = evaluate(
        scorer.blend(test_trees, distinct, pair_query[test_mask], pair_row[test_mask]),
        test_queries,
        test_items,
        judged.grades[test_mask],
        index_dir,
        _oracle(catalog_dir),
    )
    if scorer.cross_encoder is not None:
        metrics["test"]["ndcg@10_trees_only"] = mean_ndcg(
            test_queries, test_items, judged.grades[test_mask], test_trees
        )
    if init_booster is not None:
        before = RelevanceModel(init_booster, schema, catalog, analyzer, item_vectors, config.num_threads)
        if init_cross_encoder is not None:
            before.cross_encoder = CrossEncoder.load(init_cross_encoder, item_texts=texts)
        pred = before.blend(
            before.predict(X[test_mask]), distinct, pair_query[test_mask], pair_row[test_mask]
        )
        metrics["test"]["init_model_rmse_grade"] = rmse(pred * MAX_GRADE, judged.grades[test_mask])
        metrics["test"]["init_model_ndcg@10"] = mean_ndcg(
            test_queries,
            test_items,
            judged.grades[test_mask],
            pred,
        )
    if cv_folds:
        oof = cross_validated_predictions(X, y, judged.queries, cv_folds, config, names, init_booster)
        trees_only = None
        if cross_encoder is not None:
            trees_only = mean_ndcg(judged.queries, judged.item_ids, judged.grades, oof)
            oof_cross = cross_validated_cross_encoder(
                judged.queries,
                pair_row,
                y,
                texts,
                cv_folds,
                config.seed,
                cross_encoder,
                init_cross_encoder,
                progress,
            )
            oof = blend_scores(oof, oof_cross, cross_encoder.weight)
        metrics["cv"] = {
            "folds": cv_folds,
            **evaluate(oof, judged.queries, judged.item_ids, judged.grades, index_dir, _oracle(catalog_dir)),
        }
        if trees_only is not None:
            metrics["cv"]["ndcg@10_trees_only"] = trees_only
            metrics["cv"]["ndcg@10_cross_encoder_only"] = mean_ndcg(
                judged.queries, judged.item_ids, judged.grades, oof_cross
            )
    importance = booster.feature_importance(importance_type="gain")
    metrics["feature_gain_share"] = {
        n: round(float(g / max(importance.sum(), 1e-12)), 4)
        for n, g in sorted(zip(names, importance, strict=True), key=lambda t: -t[1])
    }
    metrics["seconds"]["total"] = time.perf_counter() - t_start

    with atomic_write_dir(out) as tmp:
        booster.save_model(str(tmp / MODEL_FILE))
        (tmp / SCHEMA_FILE).write_text(json.dumps(schema, indent=2) + "\n")
        catalog.save(tmp / CATALOG_FEATURES_FILE)
        if item_vectors is not None:
            np.save(tmp / EMBEDDINGS_FILE, item_vectors)
        if scorer.cross_encoder is not None:
            scorer.cross_encoder.save(tmp / CROSS_ENCODER_DIR)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "report.md").write_text(report_markdown(metrics))
    log.info("wrote relevance model %s", out)
    return TrainResult(str(out), metrics)


def cross_validated_predictions(X, y, queries, folds: int, config: TrainConfig, names, init_booster=None):
    """Out-of-fold predictions: query folds (seeded), each predicted by a model trained on the other folds with
    early stopping on a query-disjoint 15% of them."""
    import lightgbm as lgb

    distinct, fold_of = query_folds(queries, folds, config.seed)
    pair_fold = np.asarray([fold_of[q] for q in queries])
    pred = np.zeros(len(queries), dtype=np.float32)
    for k in range(folds):
        rest = [q for q in distinct if fold_of[q] != k]
        inner = split_by_query(rest, config.seed, fractions=(0.85, 0.15, 0.0))
        train_mask = np.asarray([fold_of[q] != k and inner[q] == "train" for q in queries])
        valid_mask = np.asarray([fold_of[q] != k and inner[q] != "train" for q in queries])
        dtrain = lgb.Dataset(X[train_mask], y[train_mask], feature_name=names)
        dvalid = lgb.Dataset(X[valid_mask], y[valid_mask], reference=dtrain)
        booster = lgb.train(
            config.lgb_params(),
            dtrain,
            num_boost_round=config.max_rounds,
            valid_sets=[dvalid],
            init_model=init_booster,
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
        )
        test_mask = pair_fold == k
        raw = booster.predict(
            X[test_mask], num_iteration=booster.best_iteration or None, num_threads=config.num_threads
        )
        pred[test_mask] = np.clip(raw, 0.0, 1.0)
    return pred


def query_folds(queries: list[str], folds: int, seed: int) -> tuple[list[str], dict[str, int]]:
    """(sorted distinct queries, query -> fold in 0..folds-1): seeded, the same for the trees and the cross-encoder."""
    distinct = sorted(set(queries))
    if folds < 2 or folds > len(distinct):
        raise ValueError(f"--cv-folds must be in 2..{len(distinct)} (distinct queries), got {folds}")
    order = np.random.default_rng(seed + 1).permutation(len(distinct))
    return distinct, {distinct[idx]: rank % folds for rank, idx in enumerate(order)}


def cross_validated_cross_encoder(
    queries, rows, y, texts, folds: int, seed: int, config: CrossEncoderConfig, init_dir=None, progress=True
) -> np.ndarray:
    """Out-of-fold cross-encoder scores on the folds of :func:`query_folds`: one fine-tuning per fold on the
    other folds' pairs (train and valid alike: the cross-encoder has no early stopping)."""
    _, fold_of = query_folds(queries, folds, seed)
    pair_fold = np.asarray([fold_of[q] for q in queries])
    pred = np.zeros(len(queries), dtype=np.float32)
    for k in range(folds):
        rest = np.flatnonzero(pair_fold != k)
        held = np.flatnonzero(pair_fold == k)
        model = CrossEncoder.fine_tune(
            [queries[i] for i in rest],
            rows[rest],
            y[rest],
            texts,
            config,
            init_dir,
            progress,
            desc=f"cross-encoder, CV fold {k + 1}/{folds}",
        )
        pred[held] = model.predict([queries[i] for i in held], rows[held])
    return pred


def _item_embeddings(catalog_columns, checksum: str, candidates: list, progress: bool) -> np.ndarray:
    """MiniLM item vectors, reused from an earlier model directory trained on the same catalog."""
    for d in candidates:
        if d is None or not (Path(d) / EMBEDDINGS_FILE).exists():
            continue
        schema = json.loads((Path(d) / SCHEMA_FILE).read_text())
        if schema.get("catalog_checksum") == checksum:
            log.info("reusing item embeddings of %s", d)
            return np.load(Path(d) / EMBEDDINGS_FILE)
    encoder = embedding_encoder()
    return encoder.encode(
        item_texts(catalog_columns),
        batch_size=128,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=progress,
    ).astype(np.float32)
