"""`python -m leser.evaluation`: run the offline evaluation of several expansion systems on one dataset."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

from data_prep.cli import ArgumentParser
from data_prep.formats import load_dataset
from data_prep.oracle import Oracle
from leser.evaluation.harness import (
    EvalContext,
    HeadNounOffTarget,
    JudgmentsJudge,
    OracleJudge,
    SystemReport,
    TrueCategoryOffTarget,
    evaluate_system,
)
from leser.evaluation.report import GenerationsWriter, write_results
from leser.evaluation.reuse import fingerprint, reusable_reports
from leser.evaluation.systems import (
    EBQE,
    RM3,
    EvalQuery,
    ModelSystem,
    NoExpansion,
    few_shot_from_rules,
)
from leser.evaluation.teacher_system import OpenAISystem, RulesSystem
from leser.gate import DEFAULT_RULES_PATH, Gate, Rules
from leser.generation import SamplingConfig, load_generator, release_memory
from leser.prompts import prompt_for
from search_sim import open_engine
from search_sim.relevance import RelevanceModel

logger = logging.getLogger("leser.evaluation")

SYSTEMS_HELP = (
    "comma-separated systems: none, rm3, ebqe, rules, openai (needs LESER_TEACHER_BASE_URL), "
    "fewshot:<model> (the base instruct model: a folder, or a Hugging Face id in the local cache; `make eval` passes "
    "the profile's backbone), sft:<checkpoint> (the SFT warm-up), sftllm:<checkpoint> (the SFT-LLM baseline: `make "
    "sft-llm`, trained on the rejection-sampled sft_llm.jsonl), leser:<checkpoint> (a model folder or an ms-swift "
    "output dir, whose newest checkpoint-* is used)"
)


def load_queries(split: Path | None, dataset, limit: int | None) -> list[EvalQuery]:
    """Rows of an eval split (messages + query), or, without a split, the dataset's query log (messages are then
    built from the engine when a model needs them). `limit` keeps the first N (splits are already shuffled)."""
    if split is None:
        queries = [EvalQuery(q, None) for q in dataset.queries.column("query").to_pylist()]
        return queries[:limit] if limit else queries
    rows = []
    with open(split, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if limit and len(rows) >= limit:
                break
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{split}:{line_no}: invalid JSON: {err}") from err
            for key in ("query", "messages"):
                if key not in row:
                    raise ValueError(f"{split}:{line_no}: missing field '{key}'")
            if row["messages"][-1]["role"] != "user":
                raise ValueError(
                    f"{split}:{line_no}: field 'messages' must end with the user prompt (eval rows)"
                )
            rows.append(EvalQuery(row["query"], row["messages"]))
    if not rows:
        raise ValueError(f"{split}: no rows")
    return rows


class Resources:
    """Everything systems are built from, loaded once."""

    def __init__(self, args, engine, dataset, queries: list[EvalQuery]):
        self.args, self.engine, self.dataset, self.queries = args, engine, dataset, queries
        self.gate = Gate.for_engine(engine, Rules.load(args.rules))

    def prompt_for(self, q: EvalQuery) -> list[dict]:
        if q.messages is not None:
            return q.messages
        return prompt_for(self.engine, q.query)

    def sampling(self):
        a = self.args
        return SamplingConfig(temperature=a.temperature, max_new_tokens=a.max_new_tokens, seed=a.seed)


def build_system(spec: str, res: Resources):
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return NoExpansion()
    if kind == "rm3":
        return RM3(res.engine)
    if kind == "ebqe":
        return EBQE(res.dataset.queries.column("query").to_pylist(), res.engine.analyzer)
    if kind == "rules":
        return RulesSystem(res.engine, res.gate, res.dataset.catalog)
    if kind in ("fewshot", "sft", "sftllm", "leser"):
        if not arg:
            raise ValueError(
                f"system {spec!r}: give a model folder, e.g. {kind}:models/smollm2-135m-instruct"
            )
        generator = load_generator(arg, res.args.backend, res.args.batch_size)
        few_shot = None
        if kind == "fewshot":
            teacher = RulesSystem(res.engine, res.gate, res.dataset.catalog).teacher
            log = res.dataset.queries.column("query").to_pylist()
            few_shot = few_shot_from_rules(res.engine, teacher, log, {q.query for q in res.queries})
        return ModelSystem(spec, arg, generator, res.sampling(), res.gate, res.prompt_for, few_shot)
    if kind == "openai":
        return OpenAISystem(res.engine, res.gate, res.args.out, res.args.temperature)
    raise ValueError(f"unknown system {spec!r}; {SYSTEMS_HELP}")


def evaluate_spec(
    spec: str, res: Resources, ctx: EvalContext, runs: int, writer
) -> tuple[SystemReport, float]:
    """Build one system, evaluate it and free its model before returning (report, seconds): each model system
    opens its own model or vLLM engine, and the next system's must not find the GPU still held by this one."""
    t0 = time.perf_counter()
    system = build_system(spec, res)
    try:
        report = evaluate_system(ctx, system, runs, writer)
    finally:
        if isinstance(system, ModelSystem):
            system.generator.close()
        del system
        release_memory()
    return report, round(time.perf_counter() - t0, 1)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m leser.evaluation",
        description="Offline evaluation of query expansion (the LESER paper's Table 2 protocol plus true-relevance "
        "metrics): writes results.md, results.json, results.png and generations/*.jsonl to --out.",
    )
    p.add_argument(
        "--dataset", type=Path, required=True, help="dataset directory (catalog, queries, judgments)"
    )
    p.add_argument(
        "--index", required=True, help="index directory, or http://host:port of `search_sim serve`"
    )
    p.add_argument("--relevance", type=Path, required=True, help="relevance model directory")
    p.add_argument("--split", type=Path, help="eval split JSONL (messages + query); default: the query log")
    p.add_argument("--systems", default="none,rm3,ebqe,rules", help=SYSTEMS_HELP)
    p.add_argument("--runs", type=int, default=5, help="generations per query (paper: 5); std over runs")
    p.add_argument("--limit", type=int, help="evaluate only the first N queries")
    p.add_argument("--out", type=Path, required=True, help="run directory, e.g. runs/eval/synth")
    p.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (paper: 0.5)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=512,
        help="completion length cap (default 512: the paper profile's training max_completion_length, so a long "
        "answer is not cut and counted invalid)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="transformers generation batch size")
    p.add_argument("--backend", choices=["auto", "transformers", "vllm"], default="auto")
    p.add_argument("--seed", type=int, default=0, help="run r samples with seed + r")
    p.add_argument("--rules", type=Path, default=DEFAULT_RULES_PATH, help="gate rules YAML")
    p.add_argument("--top-k", type=int, default=100, help="AvgRel depth of the merged ranking (paper: 100)")
    p.add_argument("--merge-policy", default="rrf", help="fusion of the rankings of q and its expansions")
    p.add_argument(
        "--new-items-depth", type=int, default=2000, help="recall depth searched for new relevant items"
    )
    p.add_argument(
        "--no-reuse",
        action="store_true",
        help="evaluate every system again, even one that OUT/results.json holds with the same inputs",
    )
    p.add_argument(
        "--reuse-from",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also take systems evaluated with the same inputs from DIR/results.json (an evaluation of other "
        "systems run in parallel); repeatable",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    dataset = load_dataset(args.dataset)
    engine = open_engine(args.index)
    relevance = RelevanceModel.load(args.relevance, args.index)
    if (args.dataset / "truth").is_dir():
        judge = OracleJudge(Oracle.load(args.dataset), dataset.catalog.column("item_id").to_pylist())
        off_target = TrueCategoryOffTarget(judge.oracle)
    else:
        judge = JudgmentsJudge(dataset.judgments, dataset.manifest.get("source", "dataset"))
        off_target = HeadNounOffTarget.from_catalog(engine.analyzer, dataset.catalog)
    if not hasattr(engine, "match"):
        logger.warning(
            "%s: a search service has no recall sets; off-target recall is not measured", args.index
        )
        off_target = None
    queries = load_queries(args.split, dataset, args.limit)
    logged = set(dataset.queries.column("query").to_pylist())
    unknown = [q.query for q in queries if q.query not in logged]
    if unknown:
        # The oracle grades only logged queries; a split from another generation of the dataset is a stale split.
        raise ValueError(
            f"{args.split}: {len(unknown)} of {len(queries)} queries are not in {args.dataset}'s query log "
            f"(first: {unknown[0]!r}); was the split built from this dataset?"
        )
    ctx = EvalContext(
        engine,
        relevance,
        judge,
        queries,
        top_k=args.top_k,
        merge_policy=args.merge_policy,
        new_items_depth=args.new_items_depth,
        off_target=off_target,
    )
    res = Resources(args, engine, dataset, queries)
    writer = GenerationsWriter(args.out)
    reports, timings = [], {}
    meta = {
        "title": f"{args.dataset.name}: {len(queries)} queries x {args.runs} runs",
        "dataset": str(args.dataset),
        "split": str(args.split) if args.split else None,
        "n_queries": len(queries),
        "runs": args.runs,
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "top_k": args.top_k,
        "truth": judge.name,
        "off_target_recall": {
            "definition": off_target.kind if off_target else "not measured",
            "description": off_target.description if off_target else "not measured (no recall sets)",
            "sample_per_answer": ctx.off_target_sample,
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "timings_s": timings,
    }
    specs = [s.strip() for s in args.systems.split(",") if s.strip()]
    levels = {
        q.query: judge.level(q.query) for q in queries
    }  # per-level paired intervals (None: real catalogs)
    prints = {spec: fingerprint(spec, args) for spec in specs}
    meta["fingerprints"] = prints
    reused, reused_timings = (
        ({}, {}) if args.no_reuse else reusable_reports(args.out, prints, args.reuse_from)
    )
    for spec in specs:
        if spec in reused:
            reports.append(reused[spec])
            timings[spec] = reused_timings[spec]
        else:
            report, timings[spec] = evaluate_spec(spec, res, ctx, args.runs, writer)
            reports.append(report)
            logger.info("%s done in %.1f s", spec, timings[spec])
        header = (
            f"Evaluation on `{args.dataset}` ({len(queries)} queries, {args.runs} runs at T = {args.temperature}; "
            f"mean ± std over runs). Truth: {judge.name}."
        )
        # after every system, so a long run shows progress
        write_results(args.out, reports, meta, header, levels=levels)
    logger.info("wrote %s/results.md in %.1f s", args.out, time.perf_counter() - started)
    print((args.out / "results.md").read_text())
