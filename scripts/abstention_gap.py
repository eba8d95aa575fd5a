"""Abstention per query level and the specific - broad gap, with 95% bootstrap intervals, from evaluation generations.

The issue's bars are abstention >= 90% on specific queries and <= 30% on broad ones: a policy has to tell the levels
apart, by a gap of at least 60 points. This reads the generations/<system>.jsonl files `python -m leser.evaluation`
writes (one line per query and run, with the oracle's `level`, `valid` and `expansions`): an answer abstains when it
is valid with an empty expansion list (as the evaluation's "abstain" columns). Each query's abstention share over its
runs; per level the mean over that level's queries; gap = specific - broad. Intervals: bootstrap over the queries,
resampled within each level (2,000 resamples). With several systems, each one's gap minus the first one's, paired:
the same resampled queries for both (the files must hold the same queries).

    python scripts/abstention_gap.py warm-up=runs/eval/sft3/generations/sft_runs_sft3_sft_last.jsonl \\
        evidence=runs/eval/sft_ev/generations/sft_runs_sft_ev_sft_last.jsonl --out gap.json > gap.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep.cli import ArgumentParser, run_cli  # noqa: E402
from data_prep.formats import write_json  # noqa: E402
from leser.evaluation.report import levels_in_order  # noqa: E402

GAP = ("specific", "broad")
RESAMPLES = 2000


def per_query_abstention(path: Path) -> tuple[dict[str, float], dict[str, str]]:
    """({query: share of its runs that abstain}, {query: level}) of one generations file."""
    answers: dict[str, list[bool]] = {}
    levels: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            query, level, valid, expansions = row["query"], row["level"], row["valid"], row["expansions"]
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from None
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"{path}:{number}: a generations row needs query, level, valid, expansions ({err})"
            ) from None
        if not level:
            raise ValueError(f"{path}:{number}: no query level (generations of a dataset without an oracle)")
        answers.setdefault(query, []).append(bool(valid) and not expansions)
        levels[query] = level
    if not answers:
        raise ValueError(f"{path}: no generations")
    return {q: float(np.mean(a)) for q, a in answers.items()}, levels


def level_queries(levels: dict[str, str]) -> dict[str, list[str]]:
    """{level: its queries, sorted}, levels in the paper's order."""
    return {
        lv: sorted(q for q, level in levels.items() if level == lv) for lv in levels_in_order(levels.values())
    }


def bootstrap_indices(by_level: dict[str, list[str]], seed: int = 0) -> dict[str, np.ndarray]:
    """{level: RESAMPLES x n_level indices}: queries resampled with replacement within each level."""
    rng = np.random.default_rng(seed)
    return {lv: rng.integers(0, len(qs), size=(RESAMPLES, len(qs))) for lv, qs in by_level.items()}


def interval(samples: np.ndarray) -> list[float]:
    low, high = np.percentile(samples, [2.5, 97.5])
    return [float(low), float(high)]


def summarize(
    shares: dict[str, float], by_level: dict[str, list[str]], draws: dict[str, np.ndarray]
) -> tuple[dict, dict[str, np.ndarray]]:
    """Per level: n, abstention % and its interval; gap specific - broad (points) and its interval. Also the
    bootstrap samples of each level's mean, for paired differences."""
    out, samples = {"levels": {}}, {}
    for lv, queries in by_level.items():
        values = np.array([shares[q] for q in queries]) * 100.0
        samples[lv] = values[draws[lv]].mean(axis=1)
        out["levels"][lv] = {
            "n_queries": len(queries),
            "abstain": float(values.mean()),
            "ci95": interval(samples[lv]),
        }
    if all(lv in by_level for lv in GAP):
        gap = samples[GAP[0]] - samples[GAP[1]]
        out["gap"] = {
            "abstain": out["levels"][GAP[0]]["abstain"] - out["levels"][GAP[1]]["abstain"],
            "ci95": interval(gap),
        }
        samples["gap"] = gap
    return out, samples


def compare(systems: list[tuple[str, Path]], seed: int = 0) -> dict:
    """Abstention per level and the gap of every system; each later system minus the first, paired."""
    loaded = [(label, *per_query_abstention(path)) for label, path in systems]
    _, _, levels = loaded[0]
    by_level = level_queries(levels)
    for (label, _, lv), (_, path) in zip(loaded[1:], systems[1:], strict=True):
        if lv != levels:
            raise ValueError(
                f"{path}: {label} answered other queries (or levels) than {loaded[0][0]} in {systems[0][1]}: "
                "no paired comparison"
            )
    draws = bootstrap_indices(by_level, seed)
    result, all_samples = {"systems": {}, "versus_first": {}}, {}
    for label, shares, _ in loaded:
        result["systems"][label], all_samples[label] = summarize(shares, by_level, draws)

    def point(label: str, key: str) -> float:
        summary = result["systems"][label]
        return (summary["gap"] if key == "gap" else summary["levels"][key])["abstain"]

    first = loaded[0][0]
    for label, _, _ in loaded[1:]:
        result["versus_first"][label] = {
            key: {
                "mean": point(label, key) - point(first, key),
                "ci95": interval(all_samples[label][key] - all_samples[first][key]),
            }
            for key in all_samples[first]
        }
    return result


def markdown(result: dict) -> str:
    labels = list(result["systems"])
    levels = list(result["systems"][labels[0]]["levels"])
    head = [f"{lv} ({result['systems'][labels[0]]['levels'][lv]['n_queries']})" for lv in levels]
    lines = [
        "Abstention (% of answers: valid, empty list; each query's share over its runs, mean over the level's "
        "queries) and the specific - broad gap (points); 95% intervals: bootstrap over queries within each level, "
        f"{RESAMPLES:,} resamples. The issue's bars: specific >= 90, broad <= 30 (gap >= 60).",
        "",
        "| system | " + " | ".join(head) + " | gap specific - broad |",
        "|---|" + "---|" * (len(levels) + 1),
    ]

    def cell(s: dict) -> str:
        lo, hi = s["ci95"]
        return f"{s['abstain']:.0f} [{lo:.0f}, {hi:.0f}]"

    for label in labels:
        s = result["systems"][label]
        gap = cell(s["gap"]) if "gap" in s else "-"
        lines.append(f"| {label} | " + " | ".join(cell(s["levels"][lv]) for lv in levels) + f" | {gap} |")
    if result["versus_first"]:
        lines += ["", f"Paired differences against `{labels[0]}` (points, same resampled queries):", ""]
        lines += [
            "| system - " + labels[0] + " | " + " | ".join(levels) + " | gap |",
            "|---|" + "---|" * (len(levels) + 1),
        ]
        for label, diffs in result["versus_first"].items():
            cells = [
                f"{d['mean']:+.0f} [{d['ci95'][0]:+.0f}, {d['ci95'][1]:+.0f}]" if d else "-"
                for d in (diffs.get(k) for k in [*levels, "gap"])
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_system(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise ValueError(f"system {text!r}: expected LABEL=generations.jsonl")
    return label, Path(path)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="scripts/abstention_gap.py", description=__doc__.split("\n\n")[0])
    p.add_argument("systems", nargs="+", help="LABEL=generations.jsonl, the first is the reference")
    p.add_argument("--out", type=Path, help="also write the result as JSON here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    systems = [parse_system(s) for s in args.systems]
    if len({label for label, _ in systems}) != len(systems):
        raise ValueError("two systems share a label: give each its own LABEL=")
    result = compare(systems, args.seed)
    print(markdown(result), end="")
    if args.out is not None:
        write_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
