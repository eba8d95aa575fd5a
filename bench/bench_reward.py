"""Benchmark of the LESER reward on GRPO-shaped batches: 8 prompts x 4 completions, about 4 expansions each.

    python bench/bench_reward.py            # 1,000,000-item synthetic catalog (reuses /tmp/engine_bench if built)
    python bench/bench_reward.py --quick    # 100,000 items

Times LeserScorer.score_batch (gate + deduplicated searches + relevance judge + Eq. 1-2) pinned to one core, with
the local engine and through `python -m search_sim serve` (the service on its own process), and the gate's fuzz
rate (completions per second, valid and malformed mixed). Each batch has 8 new queries, so Rel(q) and Ret(q) are
never served from the cache. Writes bench/results/reward.json and bench/results/reward.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
PROMPTS, GENERATIONS, EXPANSIONS = 8, 4, 4


def ensure_backend(work: Path, n_items: int, n_queries: int) -> tuple[Path, Path, Path]:
    """Dataset, index and relevance model for ``n_items`` under ``work`` (built once, reused afterwards)."""
    from data_prep import synth
    from search_sim import IndexCorruptError, SearchEngine
    from search_sim.index import build_index
    from search_sim.relevance import RelevanceModel
    from search_sim.relevance.model import SchemaMismatchError
    from search_sim.relevance.training import train

    data, index, relevance = (
        work / f"synth_{n_items}",
        work / f"index_{n_items}",
        work / f"relevance_{n_items}",
    )
    if not (data / "manifest.json").is_file():
        print(f"generating a {n_items:,}-item synthetic catalog in {data} ...", file=sys.stderr)
        synth.generate(n_items=n_items, n_queries=n_queries, seed=7, out=data)
    try:
        SearchEngine.load(index).items([])
    except (IndexCorruptError, OSError) as exc:  # missing, or written by an older version of the engine
        print(f"building the index {index} ({exc}) ...", file=sys.stderr)
        build_index(data, index)
    try:
        RelevanceModel.load(relevance, index)
    except (SchemaMismatchError, OSError) as exc:
        print(f"training the relevance model {relevance} ({exc}) ...", file=sys.stderr)
        train(data, data / "judgments.parquet", index, relevance)
    return data, index, relevance


def make_batches(engine, queries: list[str], n_batches: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """GRPO batches whose expansions add attribute values of the query's own top results (what a policy does),
    with about 1 completion in 16 malformed."""
    rng = random.Random(seed)
    picked = rng.sample(queries, PROMPTS * n_batches)
    batches = []
    for b in range(n_batches):
        qs, cs = [], []
        for q in picked[b * PROMPTS : (b + 1) * PROMPTS]:
            items = engine.items(engine.search(q, k=10).item_ids)
            values = sorted(
                {a["value"] for it in items for a in it["attributes"]} | {it["brand"] for it in items} - {""}
            )
            for _ in range(GENERATIONS):
                chosen = rng.sample(values, min(len(values), EXPANSIONS))
                expansions = [f"{v} {q}" if i % 2 else f"{q} {v}" for i, v in enumerate(chosen)]
                text = f"<think>the shopper wants {q}</think>\n<answer>{json.dumps({'expansion': expansions})}</answer>"
                if rng.random() < 1 / 16:
                    text = text.replace("</think>", "")
                qs.append(q)
                cs.append(text)
        batches.append((qs, cs))
    return batches


def time_batches(scorer, batches, warmup: int) -> dict:
    times_ms = []
    valid = total = 0
    for i, (qs, cs) in enumerate(tqdm(batches, desc="score_batch", leave=False)):
        t0 = time.perf_counter()
        out = scorer.score_batch(qs, cs)
        if i >= warmup:
            times_ms.append((time.perf_counter() - t0) * 1000)
            valid += sum(b.valid for b in out)
            total += len(out)
    t = np.asarray(times_ms)
    return {
        "batches": len(t),
        "p50_ms": round(float(np.percentile(t, 50)), 2),
        "p99_ms": round(float(np.percentile(t, 99)), 2),
        "mean_ms": round(float(t.mean()), 2),
        "valid_fraction": round(valid / total, 3),
    }


def fuzz_completions(n: int, vocabulary_words: list[str], seed: int) -> list[str]:
    """Half well-formed answers over catalog words, half random mutations (cut, swapped, junk, broken JSON)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        exps = [" ".join(rng.sample(vocabulary_words, rng.randint(1, 4))) for _ in range(rng.randint(0, 6))]
        text = f"<think>{' '.join(rng.sample(vocabulary_words, 20))}</think>\n<answer>{json.dumps({'expansion': exps})}</answer>"
        kind = rng.randrange(6)
        if kind == 1:
            text = text[: rng.randrange(len(text))]
        elif kind == 2:
            text = text.replace("<think>", "<answer>", 1)
        elif kind == 3:
            text = text + " trailing"
        elif kind == 4:
            text = text.replace('"]', "]", 1)
        out.append(text)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(index: Path, relevance: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "search_sim", "serve", str(index), "--relevance", str(relevance),
           "--port", str(port), "--threads", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"search service did not start; log: {log_path}") from None
            time.sleep(0.5)


def markdown(r: dict) -> str:
    cmd = "python bench/bench_reward.py" + (" --quick" if r["quick"] else "")
    rows = "\n".join(
        f"| {name} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} | {v['mean_ms']:.1f} | {v['batches']} |"
        for name, v in r["score_batch"].items()
    )
    return (
        f"## Reward (LESER Eq. 1-2 + gate)\n\n"
        f"`{cmd}` on {r['machine']}: one GRPO batch = {PROMPTS} prompts x {GENERATIONS} completions x "
        f"~{EXPANSIONS} expansions over a {r['items']:,}-item synthetic catalog, scorer pinned to one core, new "
        f"queries every batch (no Rel(q) cache hits). Target: p50 <= 100 ms.\n\n"
        "| backend | p50 (ms) | p99 (ms) | mean (ms) | batches |\n|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"Gate fuzz rate: {r['gate']['completions_per_s']:,.0f} completions/s "
        f"({r['gate']['completions']:,} completions, {r['gate']['valid_fraction']:.0%} valid).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 items instead of 1,000,000")
    parser.add_argument("--items", type=int, default=None, help="catalog size (overrides --quick)")
    parser.add_argument("--queries", type=int, default=2000, help="queries of a catalog built here")
    parser.add_argument("--batches", type=int, default=60, help="timed GRPO batches per backend (+3 warm-up)")
    parser.add_argument("--work-dir", default="/tmp/engine_bench", help="catalogs, indexes, models (reused)")
    parser.add_argument("--no-service", action="store_true", help="skip the service measurement")
    args = parser.parse_args()
    n_items = args.items or (100_000 if args.quick else 1_000_000)
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says

    import pyarrow.parquet as pq

    from leser.gate import check_completion
    from leser.reward import LeserScorer
    from leser.settings import Settings, load_settings, open_backend

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    data, index, relevance = ensure_backend(work, n_items, args.queries)
    rules_path = ROOT / "configs" / "rules.yaml"
    with tempfile.TemporaryDirectory(prefix="bench_reward_") as tmp:
        cfg = Path(tmp) / "local.yaml"
        cfg.write_text(f"search: {index}\nrelevance: {relevance}\nrules: {rules_path}\n")
        settings: Settings = load_settings(cfg)
        engine, judge = open_backend(settings)
        scorer = LeserScorer(engine, judge, settings)
        queries = pq.read_table(data / "queries.parquet").column("query").to_pylist()
        warmup = 3
        # three disjoint slices of batches (local count, local relevance-weighted Ret, service): each backend and
        # option meets new queries, none is served by another's caches
        n_batches = min(args.batches + warmup, len(queries) // PROMPTS // 3)
        batches = make_batches(engine, queries, 3 * n_batches, seed=0)
        results = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (scorer pinned to 1), Python {platform.python_version()}",
            "items": engine.num_items,
            "quick": args.quick,
            "batch": {"prompts": PROMPTS, "generations": GENERATIONS, "expansions": EXPANSIONS},
            "score_batch": {"local engine": time_batches(scorer, batches[:n_batches], warmup)},
        }
        # the option size_measure: relevance (Ret = judge-weighted recall): one more judge call over the recall union
        relevance_settings = dataclasses.replace(settings, size_measure="relevance")
        results["score_batch"]["local engine, size_measure: relevance"] = time_batches(
            LeserScorer(engine, judge, relevance_settings), batches[2 * n_batches :], warmup
        )
        words = [w for w in {t for qs, _ in batches for q in qs for t in q.split()} if w.isalpha()]
        fuzz = fuzz_completions(20_000, words, seed=1)
        t0 = time.perf_counter()
        verdicts = [
            check_completion(t, "usb c charger", settings.rules, scorer.vocabulary, scorer.analyzer)
            for t in fuzz
        ]
        gate_s = time.perf_counter() - t0
        results["gate"] = {
            "completions": len(fuzz),
            "completions_per_s": round(len(fuzz) / gate_s),
            "valid_fraction": round(sum(v.valid for v in verdicts) / len(fuzz), 3),
        }
        del scorer, engine, judge  # the service loads its own copy of the index and the judge
        if not args.no_service:
            proc, url = start_service(index, relevance, Path(tmp) / "service.log")
            try:
                cfg_s = Path(tmp) / "service.yaml"
                cfg_s.write_text(f"search: {url}\nrelevance: service\nrules: {rules_path}\n")
                s_settings = load_settings(cfg_s)
                remote = LeserScorer(*open_backend(s_settings), s_settings)
                # other queries than the local run: the service has its own caches
                results["score_batch"]["service (HTTP, 1 thread)"] = time_batches(
                    remote, batches[n_batches : 2 * n_batches], warmup
                )
            finally:
                proc.terminate()
                proc.wait(timeout=60)

    RESULTS.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("reward.json", json.dumps(results, indent=2) + "\n"),
        ("reward.md", markdown(results)),
    ):
        tmp_path = RESULTS / (name + ".tmp")
        tmp_path.write_text(text)
        os.replace(tmp_path, RESULTS / name)
    print(markdown(results))


if __name__ == "__main__":
    main()
