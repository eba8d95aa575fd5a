"""Keep the GRPO prompts whose query alone recalls at most MAX_RECALL items: train where expanding can matter.

Eq. 1 compares an expansion set with q alone. Where q already recalls a healthy set, the best answer is usually to
abstain, every sample of a group scores about 1 + lambda and the group carries no gradient; where q recalls nothing
(vocabulary mismatch: "something to keep my coffee hot"), abstaining scores 0, expanding is the only way to a
result and the reward separates good expansions from bad ones. On a small CPU budget, GRPO's steps are better spent
on those prompts. Ret(q) is the reward's own (the search engine of LESER_CONFIG, the same analyzer and recall rule),
so the selection needs no labels and works on any catalog: these are the null- and low-result queries a shop's
search log already counts.

    python scripts/select_grpo_prompts.py --config configs/leser.synth.yaml \\
        --split artifacts/synth/splits_learn/grpo.jsonl --max-recall 0 \\
        --out artifacts/synth/splits_learn/grpo_low_recall.jsonl

Rows keep their order and every column; the output is written to a temporary file, then renamed.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep.cli import ArgumentParser, int_at_least, run_cli  # noqa: E402
from data_prep.formats import atomic_write_path  # noqa: E402
from leser.settings import load_settings  # noqa: E402
from search_sim import open_engine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def read_rows(path: Path) -> list[dict]:
    """The split's rows; each needs a non-empty string "query" (the column the reward reads)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such split")
    rows = []
    with path.open("rb") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not JSON ({exc})") from None
            if not isinstance(row, dict) or not isinstance(row.get("query"), str) or not row["query"].strip():
                raise ValueError(f'{path}:{line_no}: needs a non-empty string "query"')
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def recall_sizes(engine, queries: list[str]) -> dict[str, int]:
    """Ret(q): the size of each distinct query's recall set, from one batched search."""
    distinct = list(dict.fromkeys(queries))
    results = engine.search_many(distinct, k=1)
    return {q: int(r.recall_size) for q, r in zip(distinct, results, strict=True)}


def select(rows: list[dict], recall: dict[str, int], max_recall: int) -> list[dict]:
    return [row for row in rows if recall[row["query"]] <= max_recall]


def write_rows(rows: list[dict], out: Path) -> None:
    with atomic_write_path(out) as tmp, tmp.open("wb") as f:
        for row in rows:
            f.write(orjson.dumps(row) + b"\n")


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("LESER_CONFIG") or REPO / "configs/leser.synth.yaml"),
        help="the reward's settings (search engine and its recall rule); default: $LESER_CONFIG, else the synth one",
    )
    p.add_argument("--split", type=Path, required=True, help="GRPO split JSONL (messages + query)")
    p.add_argument("--max-recall", type=int_at_least(0), default=0, help="keep rows with Ret(q) <= this")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.out.resolve() == args.split.resolve():
        raise ValueError(f"--out {args.out}: would overwrite the input split")
    rows = read_rows(args.split)
    # Ret(q) needs no judge: the relevance model stays unloaded
    engine = open_engine(load_settings(args.config).search)
    recall = recall_sizes(engine, [r["query"] for r in rows])
    kept = select(rows, recall, args.max_recall)
    if not kept:
        raise ValueError(f"{args.split}: no row has Ret(q) <= {args.max_recall}; raise --max-recall")
    write_rows(kept, args.out)
    buckets = Counter(
        "0" if n == 0 else "1-9" if n < 10 else "10-99" if n < 100 else ">=100" for n in recall.values()
    )
    print(
        f"{args.out}: {len(kept)} of {len(rows)} rows with Ret(q) <= {args.max_recall} "
        f"(distinct queries by Ret(q): {', '.join(f'{b}: {buckets[b]}' for b in ('0', '1-9', '10-99', '>=100'))})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
