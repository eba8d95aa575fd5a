"""Command line: `python -m data_prep synth|describe|import|model ...` (see data_prep/README.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from data_prep import base_model, formats, importers, synth
from data_prep.cli import ArgumentParser, int_at_least, run_cli


def _synth(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    result = synth.generate(args.items, args.queries, args.seed, args.out, progress=not args.quiet)
    print(
        f"wrote {result.out}: {result.n_items} items, {result.n_queries} queries, {result.n_judgments} judgments "
        f"in {time.perf_counter() - t0:.1f} s"
    )


def _describe(args: argparse.Namespace) -> None:
    ds = formats.load_dataset(args.dir)
    print(json.dumps(ds.manifest["counts"], indent=2))
    if not (Path(args.dir) / "truth").exists():
        return
    print("\nlevel        queries  median relevant  all query words in title  any query word in title")
    for s in synth.level_stats(args.dir):
        print(
            f"{s.level:<12} {s.queries:>7}  {s.median_relevant:>15.0f}  {s.share_all_words_in_title:>24.2f}"
            f"  {s.share_any_word_in_title:>23.2f}"
        )


def _import(args: argparse.Namespace) -> None:
    if args.kind == "esci":
        report = importers.import_esci(
            args.products, args.examples, args.out, locale=args.locale, lenient=args.lenient
        )
    elif args.kind == "wands":
        report = importers.import_wands(
            args.products, args.queries, args.labels, args.out, delimiter=args.delimiter, lenient=args.lenient
        )
    else:
        overrides = list(args.field or [])
        for section, value in (
            ("catalog", args.catalog),
            ("judgments", args.judgments),
            ("queries", args.queries),
        ):
            if value:
                overrides.append(f"{section}.path={value}")
        mapping = importers.load_mapping(args.mapping, overrides)
        report = importers.import_mapped(mapping, args.out, lenient=args.lenient, source=args.source)
    c = report.counts
    print(
        f"wrote {report.out}: {c['items']} items, {c['queries']} queries, {c['judgments']} judgments "
        f"(grades {c['grades']}); skipped {sum(report.skips.values())}"
    )
    for reason, n in sorted(report.skips.items()):
        print(f"  skipped {n}: {reason}")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m data_prep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "synth", help="generate the synthetic marketplace (catalog, queries, judgments, truth)"
    )
    p.add_argument("--items", type=int_at_least(1), default=20000, help="number of listings (default 20000)")
    p.add_argument(
        "--queries",
        type=int_at_least(1),
        default=2000,
        help="number of distinct queries in the log (default 2000)",
    )
    p.add_argument(
        "--seed", type=int, default=7, help="random seed; the same seed gives byte-identical files"
    )
    p.add_argument("--out", required=True, help="output dataset directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_synth)

    p = sub.add_parser(
        "describe",
        help="validate a dataset directory; print its counts (and, if synthetic, the vocabulary gap per query level)",
    )
    p.add_argument("dir", help="dataset directory")
    p.set_defaults(func=_describe)

    p = sub.add_parser("import", help="import ESCI, WANDS or any JSONL/CSV export to the canonical format")
    kinds = p.add_subparsers(dest="kind", required=True)
    k = kinds.add_parser("esci", help="ESCI parquet: shopping_queries_dataset_products + _examples")
    k.add_argument("--products", required=True, help="shopping_queries_dataset_products.parquet")
    k.add_argument("--examples", required=True, help="shopping_queries_dataset_examples.parquet")
    k.add_argument("--locale", default="us", help="product_locale to keep (default us)")
    k = kinds.add_parser("wands", help="WANDS: product.csv, query.csv, label.csv")
    k.add_argument("--products", required=True, help="product.csv")
    k.add_argument("--queries", required=True, help="query.csv")
    k.add_argument("--labels", required=True, help="label.csv")
    k.add_argument(
        "--delimiter", default="\t", help="field delimiter (WANDS files are tab-separated; default TAB)"
    )
    k = kinds.add_parser(
        "jsonl",
        help="generic JSONL / NDJSON bulk / CSV / JSON with a field mapping",
        description="Field mapping from --mapping YAML (see data_prep/mappings/) and/or --field section.key=value, "
        "e.g. --field catalog.id=asin --field judgments.grade_map='{E: 4, S: 2, C: 1, I: 0}'.",
    )
    k.add_argument("--mapping", help="mapping YAML (paths inside are relative to the YAML's folder)")
    k.add_argument("--catalog", help="catalog file (overrides catalog.path)")
    k.add_argument("--judgments", help="judgments file (overrides judgments.path)")
    k.add_argument("--queries", help="query log / query set file (overrides queries.path; optional)")
    k.add_argument(
        "--field", action="append", metavar="SECTION.KEY=VALUE", help="mapping override, repeatable"
    )
    k.add_argument("--source", default="jsonl", help="manifest source name (default jsonl)")
    for k in kinds.choices.values():
        k.add_argument("--out", required=True, help="output dataset directory")
        k.add_argument("--lenient", action="store_true", help="skip and count bad rows instead of stopping")
    p.set_defaults(func=_import)

    # `model` (offline base model); its argparse setup lives in the module. The training splits are
    # `python -m leser.distill` (they need the reward, which sits above data_prep).
    base_model.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input raises (run_cli turns it into one line and exit 2)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
