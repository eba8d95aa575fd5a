"""Paired comparison of two systems evaluated in *separate* runs of `python -m leser.evaluation`.

The evaluation pairs systems only within one results.json (e.g. LESER - SFT); two checkpoints of the same kind
(two SFT warm-ups, two GRPO arms) evaluated on different days need this: the per-query dNDCG@10 of each system
(averaged over its runs) is differenced over the queries both answered, with its mean, the 95% paired bootstrap
interval (queries resampled with replacement, 2,000 resamples) and the query wins / losses; with --dataset of a
synthetic marketplace, also per query level (the oracle's). Both evaluations must share split, temperature, top-k
and dataset, else the difference would mix protocols: a mismatch is an error naming the field.

    python scripts/compare_evals.py runs/eval/b/results.json runs/eval/a/results.json \\
        --system-a sft: --system-b sft: --dataset artifacts/synth --out docs/x/compare.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep.cli import ArgumentParser, run_cli  # noqa: E402
from data_prep.formats import write_json  # noqa: E402
from leser.evaluation.report import (  # noqa: E402
    find_system,
    levels_in_order,
    paired_stats,
    per_query_differences,
    read_results,
)

PROTOCOL_FIELDS = ("dataset", "split", "temperature", "top_k", "truth")


def load_system(path: Path, prefix: str) -> tuple[dict, dict]:
    """(meta, the one system of results.json whose name starts with `prefix`)."""
    results = read_results(path)
    return results.get("meta", {}), find_system(results, prefix, path)


def compare(a: dict, b: dict, levels: dict[str, str] | None = None, seed: int = 0) -> dict:
    """Paired dNDCG@10 of system a - system b over their shared queries (overall and per level)."""
    shared, diffs = per_query_differences(a["per_query_d_ndcg10"], b["per_query_d_ndcg10"])
    if not shared:
        raise ValueError(f"{a['name']} and {b['name']} share no query")

    def stats(d: np.ndarray) -> dict:
        wins, losses = int((d > 1e-12).sum()), int((d < -1e-12).sum())
        return {"n_queries": len(d), **paired_stats(d, seed), "wins": wins, "losses": losses}

    out = {"systems": [a["name"], b["name"]], "d_ndcg10": stats(diffs)}
    if levels:
        query_levels = np.array([levels.get(q) or "" for q in shared])
        out["by_level"] = {
            level: stats(diffs[query_levels == level]) for level in levels_in_order(query_levels)
        }
    return out


def markdown(result: dict) -> str:
    a, b = result["systems"]
    lines = [
        f"Paired dNDCG@10, `{a}` - `{b}` (95% interval: paired bootstrap over queries, 2,000 resamples):",
        "",
        "| queries | n | mean | 95% interval | wins / losses |",
        "|---|---|---|---|---|",
    ]
    rows = [("all", result["d_ndcg10"]), *result.get("by_level", {}).items()]
    for name, s in rows:
        lo, hi = s["ci95"]
        lines.append(
            f"| {name} | {s['n_queries']} | {s['mean']:+.3f} | [{lo:+.3f}, {hi:+.3f}] | {s['wins']} / {s['losses']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="scripts/compare_evals.py", description=__doc__.split("\n\n")[0])
    p.add_argument("results_a", type=Path, help="results.json holding system A")
    p.add_argument("results_b", type=Path, help="results.json holding system B")
    p.add_argument(
        "--system-a",
        default="",
        help="name prefix of system A in its file, e.g. sft: (default: its only system)",
    )
    p.add_argument("--system-b", default="", help="name prefix of system B in its file")
    p.add_argument(
        "--dataset", type=Path, help="synthetic dataset folder: adds per-level intervals from its oracle"
    )
    p.add_argument("--out", type=Path, help="also write the comparison as JSON here")
    args = p.parse_args(argv)
    meta_a, sys_a = load_system(args.results_a, args.system_a)
    meta_b, sys_b = load_system(args.results_b, args.system_b)
    for field in PROTOCOL_FIELDS:
        if meta_a.get(field) != meta_b.get(field):
            raise ValueError(
                f"{args.results_b}: meta field '{field}' is {meta_b.get(field)!r}, "
                f"but {meta_a.get(field)!r} in {args.results_a}: not the same protocol"
            )
    levels = None
    if args.dataset is not None and (args.dataset / "truth").is_dir():
        from data_prep.oracle import Oracle

        oracle = Oracle.load(args.dataset)
        levels = {q: oracle.query_level(q) for q in sys_a["per_query_d_ndcg10"]}
    result = compare(sys_a, sys_b, levels)
    print(markdown(result), end="")
    if args.out is not None:
        write_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
