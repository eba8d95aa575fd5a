"""Search-engine benchmark: speed, build cost, memory sharing and the HTTP service (issue 3).

    python bench/bench_engine.py            # synthetic catalogs of 100k and 1M items (about 15 min on 2 cores)
    python bench/bench_engine.py --quick    # 20k items, fewer queries (about 1 min)

Catalogs come from ``python -m data_prep synth`` into --work-dir (reused when present). For each size it reports
index build time and peak RSS (fresh process), load time, queries/s for k=10, k=100, recall size and a merged
set of 4 queries (one process, queries sampled from the catalog's query log), the speed ratio against bm25s and
rank_bm25 (same catalog and analyzer tokens, a fair top-10 for each, OR semantics and the default
minimum_should_match, top-10 scores checked equal; at the smallest size; `pip install -e .[bench]` for bm25s), the memory of 8 processes
sharing one index (sum of PSS from /proc/<pid>/smaps_rollup vs the RSS of one process alone), and the service's
throughput and latency with 8 concurrent client processes. Writes bench/results/engine.{json,md}
(bench/results/quick/engine.{json,md} with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
RESULTS = ROOT / "bench" / "results"


def rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def smaps_rollup_mb() -> dict:
    text = Path("/proc/self/smaps_rollup").read_text()
    return {
        k: int(re.search(rf"^{k}:\s+(\d+)", text, re.M).group(1)) / 1024
        for k in ("Rss", "Pss", "Private_Dirty")
    }


def index_mapping_mb(index: Path) -> dict:
    """Rss and Pss of this process's mappings of files inside the index directory (the shared part)."""
    prefix = str(Path(index).resolve())
    rss = pss = 0
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if not fields[0].endswith(":"):  # a mapping header: "start-end perms offset dev inode [path]"
            inside = len(fields) >= 6 and fields[5].startswith(prefix)
        elif inside and fields[0] == "Rss:":
            rss += int(fields[1])
        elif inside and fields[0] == "Pss:":
            pss += int(fields[1])
    return {"index_Rss": rss / 1024, "index_Pss": pss / 1024}


def query_log(dataset: Path, n: int, seed: int = 0) -> list[str]:
    import pyarrow.parquet as pq

    queries = pq.read_table(dataset / "queries.parquet", columns=["query"]).column("query").to_pylist()
    random.Random(seed).shuffle(queries)
    return queries[:n]


# ----------------------------------------------------------------------------------------------- children
# Each measurement that needs a clean process (peak RSS, load time, memory sharing) runs this file again with
# --child; the child prints one JSON line.


def child_build(args) -> dict:
    from search_sim.index import build_index

    stats = build_index(args.catalog, args.index)
    return {
        "build_s": stats.build_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "index_mb": stats.index_bytes / 1e6,
        "terms": stats.num_terms,
        "postings": stats.num_postings,
    }


def child_load(args) -> dict:
    from search_sim import SearchEngine

    t0 = time.perf_counter()
    SearchEngine.load(args.index, verify_checksums=False)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    SearchEngine.load(args.index, verify_checksums=True)
    return {"load_s": fast, "load_verified_s": time.perf_counter() - t0, "rss_after_load_mb": rss_mb()}


def child_share(args) -> dict:
    """Load, run every query (touching the pages a real rank touches), then wait for the parent's signal so that
    all processes are alive when PSS is read."""
    from search_sim import SearchEngine

    engine = SearchEngine.load(args.index, verify_checksums=False, backend=args.backend, cache_mb=0)
    for q in Path(args.queries_file).read_text().splitlines():
        engine.search(q, k=10)
        engine.items(engine.search(q, k=10).item_ids[:3])
    print("ready", flush=True)
    sys.stdin.readline()
    return smaps_rollup_mb() | index_mapping_mb(Path(args.index))


def run_child(kind: str, **kwargs) -> dict:
    cmd = [PY, __file__, "--child", kind] + [f"--{k.replace('_', '-')}={v}" for k, v in kwargs.items()]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- measurements


def ensure_dataset(work: Path, n_items: int) -> Path:
    out = work / f"synth_{n_items}"
    if not (out / "manifest.json").exists():
        n_queries = min(5000, max(2000, n_items // 50))  # the generator has ~7k distinct queries
        print(f"generating {out} ({n_items} items, {n_queries} queries)", flush=True)
        subprocess.run(
            [PY, "-m", "data_prep", "synth", "--items", str(n_items), "--queries", str(n_queries), "--seed", "11",
             "--out", str(out), "--quiet"],
            check=True, cwd=ROOT,
        )  # fmt: skip
    return out


def throughput(engine, queries: list[str], min_s: float) -> dict:
    """queries/s of each operation, repeating the query list until ``min_s`` seconds have passed."""

    def rate(fn, units_per_call: int = 1) -> dict:
        for q in queries[:50]:
            fn(q)  # warm-up (JIT, page cache)
        done, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            for q in queries:
                fn(q)
            done += len(queries)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_s:
                # wall-clock rate, and the rate per CPU-second of this process (what an idle core would give on a
                # machine shared with other jobs)
                return {
                    "wall": done * units_per_call / elapsed,
                    "cpu": done * units_per_call / (time.process_time() - c0),
                }

    groups = {q: [q] + random.Random(q).sample(queries, 3) for q in queries}
    return {
        "qps_k10": rate(lambda q: engine.search(q, k=10)),
        "qps_k100": rate(lambda q: engine.search(q, k=100)),
        "qps_recall_size": rate(lambda q: engine.recall_size([q])),
        "qps_merged4_queries": rate(lambda q: engine.merged(groups[q], k=10), 4),
    }


BM25S_BACKENDS = ("numba", "numpy")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best positive scores, best first, ties by catalog order: np.argpartition over all items,
    then a sort of the k chosen only (what our engine does; a Python sort over every item would dominate)."""
    k = min(k, len(scores))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = np.argpartition(-scores, k - 1)[:k]
    chosen = chosen[scores[chosen] > 0]
    return chosen[np.lexsort((chosen, -scores[chosen]))]


def rate(fn, items: list, min_s: float) -> float:
    """Calls of ``fn`` per second over ``items``, repeated until ``min_s`` seconds have passed (after a warm-up
    on the first few, which compiles numba kernels and fills caches)."""
    for x in items[:5]:
        fn(x)
    done, t0 = 0, time.perf_counter()
    while True:
        for x in items:
            fn(x)
        done += len(items)
        if time.perf_counter() - t0 >= min_s:
            return done / (time.perf_counter() - t0)


def baseline_comparison(dataset: Path, work: Path, queries: list[str], n_items: int, min_s: float) -> dict:
    """Our engine vs bm25s and rank_bm25 on equal terms (issue 15): the same catalog, the same analyzer tokens
    (one field: title, attribute values, brand and category, weights 1; k1 1.5, b 0.75), top-10 by argpartition
    for rank_bm25, bm25s's own ``retrieve`` on one thread with each of its backends (numpy, its default, and
    numba, as ours), for OR semantics and for our default minimum_should_match. Neither library has
    minimum_should_match, so both get it the cheapest way their structures allow: full scores, a count of
    distinct query terms per item from their own per-term data, then argpartition. Query analysis is inside our
    timing and outside theirs (their tokens are precomputed)."""
    from collections import Counter

    import bm25s
    from rank_bm25 import BM25Okapi

    from search_sim import IndexConfig, SearchEngine, build_index
    from search_sim.bm25 import DEFAULT_MINIMUM_SHOULD_MATCH
    from search_sim.bm25 import minimum_should_match as msm_required
    from search_sim.index import load_catalog_table

    k1, b, k = 1.5, 0.75, 10
    engines = {}
    for idf in ("okapi", "lucene"):  # okapi: rank_bm25's idf; lucene: ours by default and bm25s's
        config = IndexConfig(
            field_weights={"title": 1.0, "attributes": 1.0, "category": 1.0}, k1=k1, b=b, idf=idf,
            minimum_should_match="1", impact_dtype="float64",
        )  # fmt: skip
        build_index(dataset, work / f"parity_{idf}_{n_items}", config)
        engines[idf] = SearchEngine.load(work / f"parity_{idf}_{n_items}", cache_mb=0)
    ours = engines["lucene"]
    table, _ = load_catalog_table(dataset)
    analyze = ours.analyzer.analyze
    corpus = []
    for row in table.select(["title", "attributes", "brand", "category"]).to_pylist():
        texts = [row["title"]] + [a["value"] for a in row["attributes"]] + [row["brand"]] + row["category"]
        corpus.append([t for text in texts for t in analyze(text)])
    tokens = [analyze(q) for q in queries]

    t0 = time.perf_counter()
    okapi = BM25Okapi(corpus, k1=k1, b=b, epsilon=0.25)
    rank_bm25_init_s = time.perf_counter() - t0
    retrievers, bm25s_init_s = {}, {}
    for backend in BM25S_BACKENDS:
        t0 = time.perf_counter()
        retrievers[backend] = bm25s.BM25(k1=k1, b=b, method="lucene", backend=backend)
        retrievers[backend].index(corpus, show_progress=False)
        bm25s_init_s[backend] = time.perf_counter() - t0
    retriever = retrievers["numpy"]  # same matrix in both: parity and the hit counts read this one
    csc_indptr, csc_indices = retriever.scores["indptr"], retriever.scores["indices"]
    doc_len = np.asarray(okapi.doc_len, dtype=np.float64)
    norm = k1 * (1 - b + b * doc_len / okapi.avgdl)

    def required(terms: list[str], msm: str) -> int:
        return msm_required(msm, len(set(terms)))

    def rank_bm25_scores(terms: list[str], msm: str) -> np.ndarray:
        if msm == "1":
            return okapi.get_scores(terms)
        # get_scores' own term-by-term pass over doc_freqs, counting hits on the way for minimum_should_match
        scores, hits = np.zeros(len(corpus)), np.zeros(len(corpus), dtype=np.int32)
        for term, qtf in Counter(terms).items():
            tf = np.array([d.get(term, 0) for d in okapi.doc_freqs], dtype=np.float64)
            scores += qtf * okapi.idf.get(term, 0.0) * (tf * (k1 + 1) / (tf + norm))
            hits += tf > 0
        scores[hits < required(terms, msm)] = 0
        return scores

    def bm25s_scores(terms: list[str], msm: str, retriever=retriever) -> np.ndarray:
        scores = retriever.get_scores(terms) if terms else np.zeros(len(corpus))
        term_ids = retriever.get_tokens_ids(list(dict.fromkeys(terms)))
        postings = [csc_indices[csc_indptr[t] : csc_indptr[t + 1]] for t in term_ids]
        hits = np.bincount(np.concatenate(postings), minlength=len(corpus)) if postings else 0
        return np.where(hits >= required(terms, msm), scores, 0)

    def bm25s_retrieve(batch: list[list[str]], retriever=retriever):
        return retriever.retrieve(batch, k=k, n_threads=1, show_progress=False)

    def same_scores(theirs: list[np.ndarray], ours_results: list, scale: float = 1.0) -> int:
        """Queries whose top-10 scores equal ours, whatever the order of tied items."""
        return sum(
            len(t) == len(r.scores) and np.allclose(np.sort(t)[::-1] * scale, r.scores, rtol=1e-4)
            for t, r in zip(theirs, ours_results, strict=True)
        )

    out = {"items": n_items, "queries": len(queries), "bm25s_version": bm25s.__version__, "semantics": {}}
    out |= {"rank_bm25_init_s": rank_bm25_init_s, "bm25s_init_s": bm25s_init_s}
    batches = [tokens[i : i + 50] for i in range(0, len(tokens), 50)]  # bm25s retrieves a list per call
    for name, msm in (("or", "1"), ("minimum_should_match", DEFAULT_MINIMUM_SHOULD_MATCH)):
        # parity first, untimed: each library against our engine built with its BM25 variant
        ours_okapi = [engines["okapi"].search(q, k=k, minimum_should_match=msm) for q in queries]
        ours_lucene = [ours.search(q, k=k, minimum_should_match=msm) for q in queries]
        # scores, not item ids: argpartition picks any of the items tied at the tenth score
        rb_top_scores = [scores[top_k(scores, k)] for scores in (rank_bm25_scores(t, msm) for t in tokens)]
        if name == "or":
            found = bm25s_retrieve(tokens)
            bs_top_scores = [row[row > 0] for row in found.scores]
        else:
            bs_top_scores = [scores[top_k(scores, k)] for scores in (bm25s_scores(t, msm) for t in tokens)]
        row = {
            "ours_qps": rate(lambda q, m=msm: ours.search(q, k=k, minimum_should_match=m), queries, min_s),
            "rank_bm25_qps": rate(lambda t, m=msm: top_k(rank_bm25_scores(t, m), k), tokens, min_s),
            "rank_bm25_same_top10_scores": same_scores(rb_top_scores, ours_okapi),
            # bm25s's lucene variant leaves out the constant (k1 + 1) of the BM25 numerator
            "bm25s_same_top10_scores": same_scores(bs_top_scores, ours_lucene, scale=k1 + 1),
        }
        for backend, r in retrievers.items():
            if name == "or":
                qps = rate(lambda x, r=r: bm25s_retrieve(x, r), batches, min_s) * len(tokens) / len(batches)
            else:
                qps = rate(lambda t, m=msm, r=r: top_k(bm25s_scores(t, m, r), k), tokens, min_s)
            row[f"bm25s_{backend}_qps"] = qps
            row[f"bm25s_{backend}_ratio"] = row["ours_qps"] / qps
        row["rank_bm25_ratio"] = row["ours_qps"] / row["rank_bm25_qps"]
        out["semantics"][name] = row
        print(f"   {name}: {row}", flush=True)
    return out


def sharing(index: Path, queries: list[str], n_procs: int, backend: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(queries))
    try:

        def run(n: int) -> list[dict]:
            cmd = [PY, __file__, "--child", "share", f"--index={index}", f"--queries-file={f.name}",
                   f"--backend={backend}"]  # fmt: skip
            procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
                     for _ in range(n)]  # fmt: skip
            for p in procs:
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError(
                        f"sharing child failed (exit {p.wait()}); run it by hand: {' '.join(cmd)}"
                    )
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]

        alone = run(1)[0]
        many = run(n_procs)
    finally:
        os.unlink(f.name)
    total_pss = sum(m["Pss"] for m in many)
    return {
        "backend": backend,
        "one_process_rss_mb": alone["Rss"],
        "processes": n_procs,
        "sum_pss_mb": total_pss,
        "sum_private_dirty_mb": sum(m["Private_Dirty"] for m in many),
        "ratio_vs_one": total_pss / alone["Rss"],
        "index_one_process_rss_mb": alone["index_Rss"],
        "index_sum_pss_mb": sum(m["index_Pss"] for m in many),
        "index_ratio_vs_one": sum(m["index_Pss"] for m in many) / max(alone["index_Rss"], 1e-9),
    }


def _client_worker(url: str, queries: list[str], batch: int, duration_s: float, out_q) -> None:
    from search_sim.client import SearchClient

    client = SearchClient(url)
    latencies, n, i = [], 0, 0
    t_end = time.perf_counter() + duration_s
    while time.perf_counter() < t_end:
        chunk = [queries[(i + j) % len(queries)] for j in range(batch)]
        i += batch
        t0 = time.perf_counter()
        client.search_many(chunk, k=10)
        latencies.append((time.perf_counter() - t0) * 1e3)
        n += batch
    out_q.put((n, latencies))


def service(index: Path, queries: list[str], n_clients: int, duration_s: float) -> list[dict]:
    import multiprocessing as mp

    from search_sim.client import SearchClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # --cache-mb 0: the clients cycle through a few thousand queries, which a result cache would mostly answer
    server = subprocess.Popen([PY, "-m", "search_sim", "serve", str(index), "--port", str(port), "--cache-mb", "0"], cwd=ROOT,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    rows = []
    try:
        SearchClient(url, retries=40, backoff_s=0.25, max_backoff_s=1.0).health()
        ctx = mp.get_context("spawn")
        for batch in (1, 16):
            out_q = ctx.Queue()
            procs = [ctx.Process(target=_client_worker, args=(url, queries[c::n_clients], batch, duration_s, out_q))
                     for c in range(n_clients)]  # fmt: skip
            t0 = time.perf_counter()
            for p in procs:
                p.start()
            parts = [out_q.get() for _ in procs]
            for p in procs:
                p.join()
            wall = time.perf_counter() - t0
            lat = np.concatenate([np.asarray(lats) for _, lats in parts])
            rows.append({
                "clients": n_clients, "queries_per_request": batch, "qps": sum(n for n, _ in parts) / duration_s,
                "requests_per_s": len(lat) / duration_s, "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)), "wall_s": wall,
            })  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    return rows


# ----------------------------------------------------------------------------------------------- report


def _r(rate: dict) -> str:
    return f"{rate['wall']:,.0f} ({rate['cpu']:,.0f})"


def write_report(results: dict, command: str) -> None:
    results.setdefault("command", command)
    out = (
        RESULTS / "quick" if "--quick" in command else RESULTS
    )  # a smoke run never overwrites the full numbers
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "## Search engine (search_sim)",
        "",
        f"Command: `{command}` ({results['machine']}; load average at start "
        f"{results['load_average']}). Rates are queries/s of wall-clock time, and in brackets per CPU-second of "
        "the benchmark process (the rate of an idle core when the machine is shared).",
        "",
    ]
    lines += ["| items | build s | build peak RSS MB | index MB | load ms | load+verify s | q/s k=10 | q/s k=100 "
              "| q/s recall size | q/s merged (per query) | q/s k=10 numpy | query process RSS MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["sizes"]:
        b, ld, t = r["build"], r["load"], r["throughput"]
        lines.append(
            f"| {r['items']:,} | {b['build_s']:.1f} | {b['peak_rss_mb']:.0f} | {b['index_mb']:.0f} "
            f"| {ld['load_s'] * 1e3:.0f} | {ld['load_verified_s']:.2f} | {_r(t['qps_k10'])} | {_r(t['qps_k100'])} "
            f"| {_r(t['qps_recall_size'])} | {_r(t['qps_merged4_queries'])} | {_r(r['throughput_numpy']['qps_k10'])} "
            f"| {r['sharing'][0]['one_process_rss_mb']:.0f} |"
        )
    lines += ["", "Memory of 8 processes sharing one index (sum of PSS) vs one process alone (RSS): whole processes, "
              "then only the index's memory-mapped files:", "",
              "| items | backend | one process RSS MB | 8 processes sum PSS MB | ratio | index pages, one process MB "
              "| index pages, 8 processes sum PSS MB | ratio |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["sizes"]:
        for s in r["sharing"]:
            lines.append(f"| {r['items']:,} | {s['backend']} | {s['one_process_rss_mb']:.0f} | {s['sum_pss_mb']:.0f} "
                         f"| {s['ratio_vs_one']:.2f} | {s.get('index_one_process_rss_mb', float('nan')):.0f} "
                         f"| {s.get('index_sum_pss_mb', float('nan')):.0f} | {s.get('index_ratio_vs_one', float('nan')):.2f} |")  # fmt: skip
    base = results.get("baselines")
    if base:
        n = base["queries"]
        lines += ["", f"Against bm25s {base['bm25s_version']} and rank_bm25 ({base['items']:,} items, {n} queries): the same "
                  "catalog and analyzer tokens, one field, k1 1.5, b 0.75. OR: bm25s's own `retrieve` (one thread, "
                  "50 queries per call) with each backend, rank_bm25's `get_scores` then top-10 by `np.argpartition`. "
                  "minimum_should_match (neither library has it): their full scores, each item's count of distinct "
                  "query terms from their own postings, then `np.argpartition`. Our time includes query analysis, "
                  "theirs does not. Same top-10 = the same ten scores as ours built with that library's BM25 "
                  "variant (bm25s / rank_bm25).", "",
                  "| semantics | ours q/s | bm25s numba q/s | ours / bm25s numba | bm25s numpy q/s | ours / bm25s numpy "
                  "| rank_bm25 q/s | ours / rank_bm25 | same top-10 |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, r in base["semantics"].items():
            lines.append(f"| {name.replace('_', ' ')} | {r['ours_qps']:,.0f} | {r['bm25s_numba_qps']:,.0f} "
                         f"| **{r['bm25s_numba_ratio']:,.2f}x** | {r['bm25s_numpy_qps']:,.0f} "
                         f"| **{r['bm25s_numpy_ratio']:,.1f}x** | {r['rank_bm25_qps']:,.1f} "
                         f"| **{r['rank_bm25_ratio']:,.0f}x** | {r['bm25s_same_top10_scores']}/{n}, "
                         f"{r['rank_bm25_same_top10_scores']}/{n} |")  # fmt: skip
    lines += ["", "Service (`python -m search_sim serve INDEX --cache-mb 0`: result cache off), 8 concurrent client processes (search, k=10), 5 s per row:", "",
              "| items | queries/request | q/s | requests/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["sizes"]:
        for s in r["service"]:
            lines.append(f"| {r['items']:,} | {s['queries_per_request']} | {s['qps']:,.0f} | {s['requests_per_s']:,.0f} "
                         f"| {s['p50_ms']:.1f} | {s['p99_ms']:.1f} |")  # fmt: skip
    (out / "engine.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="20k items, fewer queries: a smoke run of every line"
    )
    parser.add_argument(
        "--sizes", default=None, help="comma-separated catalog sizes (default 100000,1000000)"
    )
    parser.add_argument("--work-dir", default="/tmp/engine_bench", help="catalogs and indexes (reused)")
    parser.add_argument("--queries", type=int, default=None, help="queries sampled from each query log")
    parser.add_argument("--min-s", type=float, default=None, help="seconds per throughput measurement")
    parser.add_argument(
        "--only",
        default=None,
        help="re-measure only 'sharing', 'service' and/or 'baselines' (comma-separated)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--catalog", help=argparse.SUPPRESS)
    parser.add_argument("--index", help=argparse.SUPPRESS)
    parser.add_argument("--queries-file", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = {"build": child_build, "load": child_load, "share": child_share}[args.child](args)
        print(json.dumps(result), flush=True)
        return

    from search_sim import SearchEngine

    min_s = args.min_s or (1.0 if args.quick else 3.0)
    n_baseline_queries = 40 if args.quick else 100
    if args.only:  # re-measure some lines of an existing results file
        results = json.loads(((RESULTS / "quick" if args.quick else RESULTS) / "engine.json").read_text())
        results.pop("rank_bm25", None)  # the old comparison, which timed a Python sort over every item
        if "baselines" in args.only:
            small = min(row["items"] for row in results["sizes"])
            dataset = ensure_dataset(Path(args.work_dir), small)
            queries = query_log(dataset, n_baseline_queries, seed=1)
            results["baselines"] = baseline_comparison(dataset, Path(args.work_dir), queries, small, min_s)
        for row in results["sizes"]:
            queries = query_log(Path(args.work_dir) / f"synth_{row['items']}", 500 if args.quick else 2000)
            index = Path(args.work_dir) / f"index_{row['items']}"
            if "sharing" in args.only:
                row["sharing"] = [
                    sharing(index, queries[: len(queries) // 2], 8, b) for b in ("numba", "numpy")
                ]
                print(f"   sharing {row['sharing']}", flush=True)
            if "service" in args.only:
                row["service"] = service(index, queries, 8, 2.0 if args.quick else 5.0)
                print(f"   service {row['service']}", flush=True)
        write_report(results, results["command"])
        return

    sizes = [int(s) for s in (args.sizes or ("20000" if args.quick else "100000,1000000")).split(",")]
    n_queries = args.queries or (500 if args.quick else 2000)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    results = {
        "machine": f"{os.cpu_count()} CPU cores, Python {sys.version.split()[0]}",
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "sizes": [],
    }
    for n_items in sizes:
        dataset = ensure_dataset(work, n_items)
        index = work / f"index_{n_items}"
        queries = query_log(dataset, n_queries)
        print(f"== {n_items} items: build", flush=True)
        row = {"items": n_items, "build": run_child("build", catalog=dataset, index=index)}
        row["load"] = run_child("load", index=index)
        print(f"   build {row['build']}  load {row['load']}", flush=True)
        engine = SearchEngine.load(index, cache_mb=0)  # measure the engine, not its result cache
        row["throughput"] = throughput(engine, queries, min_s)
        row["throughput_numpy"] = throughput(
            SearchEngine.load(index, backend="numpy", cache_mb=0), queries[: n_queries // 2], min_s / 2
        )
        recalls = np.array([engine.search(q, k=0).recall_size for q in queries])
        row["recall_size"] = {"zero_share": float((recalls == 0).mean()), "median": float(np.median(recalls)),
                              "p90": float(np.percentile(recalls, 90))}  # fmt: skip
        print(f"   throughput {row['throughput']}  numpy {row['throughput_numpy']}", flush=True)
        share_queries = queries[: 200 if args.quick else 1000]
        row["sharing"] = [sharing(index, share_queries, 8, b) for b in ("numba", "numpy")]
        print(f"   sharing {row['sharing']}", flush=True)
        row["service"] = service(index, queries, 8, 2.0 if args.quick else 5.0)
        print(f"   service {row['service']}", flush=True)
        results["sizes"].append(row)
    small = sizes[0]
    print(f"== bm25s and rank_bm25 at {small} items", flush=True)
    baseline_queries = query_log(work / f"synth_{small}", n_baseline_queries, seed=1)
    results["baselines"] = baseline_comparison(work / f"synth_{small}", work, baseline_queries, small, min_s)
    results["command"] = "python bench/bench_engine.py" + (" --quick" if args.quick else "")
    write_report(results, results["command"])


if __name__ == "__main__":
    main()
