"""`python -m search_sim relevance train|score ...` (also `python -m search_sim.relevance ...`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from data_prep.cli import ArgumentParser, int_at_least
from search_sim.relevance.cross_encoder import CrossEncoderConfig
from search_sim.relevance.model import RelevanceModel
from search_sim.relevance.report import report_markdown
from search_sim.relevance.selection import DEFAULT_SELECT_FOLDS, select
from search_sim.relevance.training import TrainConfig, train


def _fill(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="relevance_command", required=True)
    train = sub.add_parser(
        "train",
        help="train on graded judgments; writes MODEL/{model.txt,schema.json,metrics.json,report.md}",
        description="LightGBM pointwise L2 regression on grade/4, split by query (train/valid/test), early "
        "stopping on valid, quality report (NDCG@10 of BM25 vs model [vs oracle]) on test.",
    )
    train.add_argument(
        "--catalog", required=True, help="dataset directory (manifest.json, catalog.parquet, ...)"
    )
    train.add_argument("--judgments", required=True, help="judgments file (.parquet or .jsonl), grades 0-4")
    train.add_argument("--index", required=True, help="index directory built from the same catalog")
    train.add_argument("--out", required=True, help="model directory to write (replaced atomically)")
    train.add_argument(
        "--init-model", default=None, help="continue the trees of this model on the new judgments"
    )
    train.add_argument("--embeddings", action="store_true", help="add the MiniLM query/item cosine feature")
    train.add_argument(
        "--cross-encoder",
        action="store_true",
        help="also fine-tune a MiniLM cross-encoder on the judgments and blend it with the trees (slow on CPU: "
        "about 7 min per 5,000 pairs and 2 epochs on 2 cores, once more per CV fold)",
    )
    ce_defaults = CrossEncoderConfig()
    train.add_argument("--cross-encoder-epochs", type=float, default=ce_defaults.epochs)
    train.add_argument(
        "--cross-encoder-weight",
        type=float,
        default=ce_defaults.weight,
        help="share w of the cross-encoder in the score (1 - w) * trees + w * cross-encoder",
    )
    train.add_argument("--seed", type=int, default=7)
    train.add_argument(
        "--cv-folds",
        type=int_at_least(0),
        default=0,
        help="also report K-fold cross-validated NDCG over all judged queries (default 5 with --select)",
    )
    train.add_argument(
        "--select",
        action="store_true",
        help="climb trees -> + embeddings -> + cross-encoder under the same CV folds, keep the cheapest judge "
        "clearly better than BM25 and write the ladder into report.md / metrics.json (stops at the first win)",
    )
    train.add_argument(
        "--threads", type=int_at_least(1), default=1, help="LightGBM threads (1 = deterministic and light)"
    )
    defaults = TrainConfig()
    train.add_argument(
        "--max-rounds", type=int_at_least(1), default=defaults.max_rounds, help="most boosting rounds (trees)"
    )
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train.add_argument("--num-leaves", type=int, default=defaults.num_leaves)
    train.add_argument("--min-data-in-leaf", type=int, default=defaults.min_data_in_leaf)
    train.set_defaults(func=_train)

    score = sub.add_parser("score", help="score items for a query with a trained model")
    score.add_argument("--model", required=True)
    score.add_argument("--index", required=True)
    score.add_argument("query")
    score.add_argument("item_ids", nargs="+")
    score.set_defaults(func=_score)


def _train(args: argparse.Namespace) -> None:
    cross_encoder = (
        CrossEncoderConfig(epochs=args.cross_encoder_epochs, weight=args.cross_encoder_weight, seed=args.seed)
        if args.cross_encoder or args.select
        else None
    )
    config = TrainConfig(
        seed=args.seed,
        num_threads=args.threads,
        max_rounds=args.max_rounds,
        learning_rate=args.learning_rate,
        num_leaves=args.num_leaves,
        min_data_in_leaf=args.min_data_in_leaf,
    )
    if args.select:
        if args.embeddings or args.cross_encoder or args.init_model:
            raise ValueError(
                "--select chooses between trees, --embeddings and --cross-encoder itself and trains from "
                "scratch: drop --embeddings, --cross-encoder and --init-model"
            )
        chosen = select(
            args.catalog,
            args.judgments,
            args.index,
            args.out,
            config=config,
            cv_folds=args.cv_folds or DEFAULT_SELECT_FOLDS,
            cross_encoder=cross_encoder,
        )
        print(chosen.report)
        print(f"wrote {chosen.out}")
        return
    result = train(
        args.catalog,
        args.judgments,
        args.index,
        args.out,
        init_model=args.init_model,
        embeddings=args.embeddings,
        cv_folds=args.cv_folds,
        cross_encoder=cross_encoder,
        config=config,
    )
    print(report_markdown(result.metrics))
    print(f"wrote {result.out}")


def _score(args: argparse.Namespace) -> None:
    model = RelevanceModel.load(args.model, args.index)
    scores = model.score(args.query, args.item_ids)
    print(json.dumps(dict(zip(args.item_ids, [round(float(s), 6) for s in scores], strict=True)), indent=2))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = ArgumentParser(prog="python -m search_sim relevance", description=__doc__)
    _fill(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.func(args)
    return 0
