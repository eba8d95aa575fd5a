"""Precompute expansions for the head of a query log and write the serving cache (the paper's deployment, Sec. 5).

    python -m leser.expand --model runs/cpu/grpo/last --index artifacts/synth/index \
        --queries artifacts/synth/queries.parquet --top 1000 --out runs/cache/expansions.jsonl

Each query gets the same prompt as in training (engine top items as context, `leser.prompts.prompts_for`),
one greedy generation (temperature 0 by default: a cache should not depend on a sampling seed), and the
validation gate. One JSON object per line, most frequent query first:

    {"query": "...", "frequency": 3991, "expansions": ["...", ...], "valid": true, "reason": "ok"}

An answer that fails the gate is written with `"valid": false` and no expansions, so serving falls back to the raw
query; the reasons are counted and printed at the end. The file is written atomically. torch / transformers are
imported only when the model is loaded.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path

import orjson
from tqdm import tqdm

from data_prep.cli import ArgumentParser, int_at_least, run_cli
from data_prep.formats import atomic_write_path, load_queries
from leser.gate import DEFAULT_RULES_PATH, Gate, Rules
from leser.generation import SamplingConfig, load_generator
from leser.prompts import MAX_CONTEXT_ITEMS, prompts_for
from search_sim import open_engine

logger = logging.getLogger("leser.expand")


def head_queries(queries_path: str | Path, top: int) -> list[tuple[str, int]]:
    """The `top` most frequent queries of a canonical query log (ties: log order), as (query, frequency)."""
    table = load_queries(queries_path)
    rows = list(zip(table.column("query").to_pylist(), table.column("frequency").to_pylist(), strict=True))
    order = sorted(range(len(rows)), key=lambda i: (-rows[i][1], i))
    return [rows[i] for i in order[:top]]


def expand_queries(
    queries: list[tuple[str, int]],
    engine,
    generator,
    gate,
    sampling,
    max_context_items: int,
    chunk_size: int,
) -> tuple[list[dict], Counter]:
    """Generate, gate and collect one cache row per query; returns the rows and the count of gate reasons."""
    rows: list[dict] = []
    reasons: Counter = Counter()
    with tqdm(total=len(queries), desc="expand", unit="query") as bar:
        for start in range(0, len(queries), chunk_size):
            chunk = queries[start : start + chunk_size]
            _, conversations = prompts_for(engine, [q for q, _ in chunk], max_context_items)
            result = generator.generate(conversations, sampling, progress=False)
            for (query, frequency), text in zip(chunk, result.texts, strict=True):
                verdict = gate(text, query)
                reasons[verdict.reason] += 1
                expansions = list(verdict.expansions) if verdict.valid else []
                rows.append(
                    {
                        "query": query,
                        "frequency": int(frequency),
                        "expansions": expansions,
                        "valid": verdict.valid,
                        "reason": verdict.reason,
                    }
                )
            bar.update(len(chunk))
    return rows, reasons


def write_cache(rows: list[dict], out: str | Path) -> None:
    with atomic_write_path(out) as tmp, open(tmp, "wb") as f:
        for row in rows:
            f.write(orjson.dumps(row) + b"\n")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m leser.expand",
        description="Precompute gated expansions for the most frequent queries of a log (the serving cache).",
    )
    parser.add_argument(
        "--model", required=True, help="model folder or ms-swift output dir (newest checkpoint)"
    )
    parser.add_argument(
        "--index", required=True, help="index directory or http://host:port of search_sim serve"
    )
    parser.add_argument("--queries", required=True, help="query log (queries.parquet or .jsonl)")
    parser.add_argument("--out", required=True, help="output JSONL")
    parser.add_argument(
        "--top", type=int_at_least(1), default=1000, help="most frequent queries to expand (paper: ~600K)"
    )
    parser.add_argument("--rules", default=DEFAULT_RULES_PATH, help="gate rules YAML")
    parser.add_argument(
        "--max-context-items",
        type=int_at_least(1),
        default=MAX_CONTEXT_ITEMS,
        help=f"engine items in each prompt (default {MAX_CONTEXT_ITEMS})",
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (reproducible cache)")
    parser.add_argument("--max-new-tokens", type=int_at_least(1), default=256)
    parser.add_argument(
        "--batch-size", type=int_at_least(1), default=16, help="transformers generation batch size"
    )
    parser.add_argument("--backend", choices=["auto", "transformers", "vllm"], default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    engine = open_engine(args.index)
    gate = Gate.for_engine(engine, Rules.load(args.rules))
    queries = head_queries(args.queries, args.top)
    generator = load_generator(args.model, args.backend, batch_size=args.batch_size)
    sampling = SamplingConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    rows, reasons = expand_queries(
        queries, engine, generator, gate, sampling, args.max_context_items, chunk_size=4 * args.batch_size
    )
    write_cache(rows, args.out)
    valid = sum(r["valid"] for r in rows)
    expanded = sum(bool(r["expansions"]) for r in rows)
    print(
        f"wrote {args.out}: {len(rows)} queries, {valid} valid ({valid / len(rows):.1%}), {expanded} expanded"
    )
    print("gate reasons: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
