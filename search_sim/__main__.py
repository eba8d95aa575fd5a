"""Command line: ``python -m search_sim {build,search,verify,serve,relevance} ...`` (``--help`` on each)."""

from __future__ import annotations

import json
import logging
import sys

from data_prep.cli import ArgumentParser, int_at_least, run_cli
from search_sim import open_engine
from search_sim.analyzer import AnalyzerConfig
from search_sim.index import IndexConfig, build_index, open_arrays
from search_sim.relevance.cli import main as relevance_main
from search_sim.service import serve


def _build(args) -> int:
    weights = {
        "title": args.title_weight,
        "attributes": args.attributes_weight,
        "category": args.category_weight,
    }
    analyzer = AnalyzerConfig(stemmer="" if args.no_stem else args.stemmer)
    if args.stop_words is not None:
        words = [w.strip() for w in args.stop_words.split(",") if w.strip()]
        analyzer = AnalyzerConfig(stemmer=analyzer.stemmer, stop_words=tuple(words))
    config = IndexConfig(
        analyzer=analyzer,
        field_weights=weights,
        k1=args.k1,
        b=args.b,
        idf=args.idf,
        minimum_should_match=args.minimum_should_match,
        impact_dtype=args.impact_dtype,
    )
    stats = build_index(args.catalog, args.out, config)
    print(
        f"indexed {stats.num_items} items: {stats.num_terms} terms, {stats.num_postings} postings, "
        f"{stats.index_bytes / 1e6:.1f} MB in {stats.build_s:.1f} s -> {args.out}"
    )
    return 0


def _search(args) -> int:
    engine = open_engine(args.index)
    queries = args.query
    if len(queries) > 1 and args.merged:
        results = [("  +  ".join(queries), engine.merged(queries, k=args.k, policy=args.policy))]
    else:
        results = list(
            zip(queries, engine.search_many(queries, k=args.k, minimum_should_match=args.msm), strict=True)
        )
    for query, result in results:
        items = engine.items(result.item_ids) if result.item_ids else []
        if args.json:
            print(
                json.dumps(
                    {
                        "query": query,
                        "recall_size": result.recall_size,
                        "items": [
                            {"item_id": i, "score": float(s), "title": it["title"]}
                            for i, s, it in zip(result.item_ids, result.scores, items, strict=True)
                        ],
                    },
                    ensure_ascii=False,
                )
            )
            continue
        print(f"query: {query!r}   analysed: {engine.analyzer.analyze(query) if not args.merged else '-'}")
        print(f"recall size: {result.recall_size}   showing top {len(result.item_ids)}")
        print(f"{'#':>3}  {'score':>8}  {'item_id':<16}  title")
        for rank, (item_id, score, item) in enumerate(
            zip(result.item_ids, result.scores, items, strict=True), 1
        ):
            title = item["title"] if len(item["title"]) <= 80 else item["title"][:77] + "..."
            print(f"{rank:>3}  {score:8.3f}  {item_id:<16}  {title}")
        print()
    return 0


def _verify(args) -> int:
    manifest, _ = open_arrays(args.index, verify_checksums=True)
    print(f"{args.index}: OK ({len(manifest['files'])} files, checksums match; counts {manifest['counts']})")
    return 0


def _serve(args) -> int:
    serve(
        args.index,
        host=args.host,
        port=args.port,
        relevance_dir=args.relevance,
        threads=args.threads,
        cache_mb=args.cache_mb,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "relevance":  # owned by search_sim/relevance.py (the relevance model's own CLI)
        return relevance_main(argv[1:])
    parser = ArgumentParser(prog="python -m search_sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="index a catalog into a versioned index directory")
    p.add_argument(
        "--catalog", required=True, help="dataset directory (with catalog.parquet/.jsonl) or catalog file"
    )
    p.add_argument("--out", required=True, help="index directory to write (replaced atomically)")
    p.add_argument("--k1", type=float, default=1.2, help="BM25 k1 (default 1.2)")
    p.add_argument("--b", type=float, default=0.75, help="BM25 b (default 0.75)")
    p.add_argument(
        "--idf", choices=["lucene", "okapi"], default="lucene", help="idf variant (default lucene)"
    )
    p.add_argument("--title-weight", type=float, default=2.0)
    p.add_argument("--attributes-weight", type=float, default=1.0, help="attribute values and brand")
    p.add_argument("--category-weight", type=float, default=0.5)
    p.add_argument(
        "--minimum-should-match", default="3<75%", help="default recall rule (Elasticsearch syntax)"
    )
    p.add_argument("--stemmer", default="english", help="Snowball language for PyStemmer (default english)")
    p.add_argument("--no-stem", action="store_true", help="disable stemming")
    p.add_argument(
        "--stop-words", default=None, help="comma-separated stop words (default: Lucene English list)"
    )
    p.add_argument("--impact-dtype", choices=["float32", "float64"], default="float32")
    p.set_defaults(func=_build)

    p = sub.add_parser("search", help="run queries and print a table of results")
    p.add_argument("index", help="index directory or http://host:port of a running service")
    p.add_argument("query", nargs="+", help="one or more queries")
    p.add_argument("-k", type=int_at_least(1), default=10, help="results per query (default 10)")
    p.add_argument("--msm", default=None, help="minimum_should_match override (e.g. '1', '100%%', '2<75%%')")
    p.add_argument("--merged", action="store_true", help="fuse the queries into one ranking (recall = union)")
    p.add_argument(
        "--policy", choices=["rrf", "interleave"], default="rrf", help="merge policy with --merged"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per query instead of a table")
    p.set_defaults(func=_search)

    p = sub.add_parser("verify", help="check an index directory's files against its manifest checksums")
    p.add_argument("index")
    p.set_defaults(func=_verify)

    p = sub.add_parser("serve", help="HTTP search service shared by training ranks")
    p.add_argument("index")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--relevance", default=None, help="relevance model directory (enables /relevance)")
    p.add_argument("--threads", type=int, default=16, help="max concurrent request handlers (default 16)")
    p.add_argument(
        "--cache-mb", type=float, default=64, help="LRU cache of recall sets, MB (0: off; default 64)"
    )
    p.set_defaults(func=_serve)

    sub.add_parser("relevance", help="relevance model commands: python -m search_sim relevance --help")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
