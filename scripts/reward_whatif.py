"""Re-score the samples a GRPO run actually drew under other reward settings, against the oracle's true relevance.

GRPO learns from the order of the rewards inside each group (the N samples of one prompt). This script takes every
sample of a run (ms-swift's completions.jsonl, `log_completions: true`), computes its true NDCG@10 change (synthetic
oracle; an abstention or an answer that fails the gate is "no change", as in the evaluation), and then, for the
paper's reward and each variant (Settings overrides such as a smaller lambda or size-ratio cap), measures per query
level:

- pairwise agreement: over the pairs of samples of one group whose true changes differ, the share the reward orders
  the same way (a reward tie counts one half): how often the advantage points at the truly better sample;
- rewarded without true gain: the share of valid expanding samples whose true change is <= 0 that the reward still
  pays more than abstaining (the incentive to expand where expanding does not help);
- expanding beats abstaining: the share of valid expanding samples paid more than abstaining.

The samples, the gate and the truth are the same for every variant; only the reward changes. Writes OUT/whatif.json
and OUT/whatif.md.

    python scripts/reward_whatif.py --completions docs/experiment/gpu/grpo_completions.jsonl.gz \\
        --out runs/learn-1gpu/whatif --variant lambda0.02:lambda_size=0.02 --variant cap2:size_ratio_cap=2
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from diagnose_reward import LEVELS, open_scoring, read_completions, write_report  # noqa: E402

from data_prep.cli import ArgumentParser, run_cli  # noqa: E402
from leser.evaluation.harness import score_rankings  # noqa: E402
from leser.prompts import format_completion  # noqa: E402
from leser.reward import LeserScorer  # noqa: E402
from leser.settings import SIZE_MEASURES  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SETTING_KEYS = {
    "lambda_size": float,
    "size_ratio_cap": float,
    "rel_floor": float,
    "ret_floor": int,
    "eps": float,
    "size_measure": str,
    "expansion_cost": float,
}
DEFAULT_VARIANTS = (
    "lambda0.05:lambda_size=0.05",
    "lambda0.02:lambda_size=0.02",
    "lambda0:lambda_size=0",
    "cap2:size_ratio_cap=2",
    "relevant-recall:size_measure=relevance",
    "cost0.05:expansion_cost=0.05",
    "cost0.1:expansion_cost=0.1",
)


def parse_variant(text: str) -> tuple[str, dict]:
    """`NAME:key=value[,key=value]` -> (NAME, {key: value}); keys are the reward's Settings fields above."""
    name, sep, body = text.partition(":")
    if not sep or not name or not body:
        raise ValueError(f"--variant {text!r}: expected NAME:key=value[,key=value]")
    overrides = {}
    for part in body.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in SETTING_KEYS:
            raise ValueError(f"--variant {text!r}: {key!r} is not one of {sorted(SETTING_KEYS)}")
        if key == "size_measure" and value not in SIZE_MEASURES:
            raise ValueError(f"--variant {text!r}: size_measure must be one of {list(SIZE_MEASURES)}")
        try:
            overrides[key] = SETTING_KEYS[key](value)
        except ValueError:
            raise ValueError(f"--variant {text!r}: {key}={value!r} is not a number") from None
    return name, overrides


def pairwise_agreement(groups: list[list[int]], reward: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """(share of within-group pairs with different truth that the reward orders the same way, ties = 1/2; pairs)."""
    score, pairs = 0.0, 0
    for idx in groups:
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                dt = truth[i] - truth[j]
                if abs(dt) <= 1e-9:
                    continue
                dr = reward[i] - reward[j]
                pairs += 1
                score += 0.5 if abs(dr) <= 1e-9 else float(np.sign(dr) == np.sign(dt))
    return (score / pairs if pairs else math.nan), pairs


def share(mask: np.ndarray, among: np.ndarray) -> float:
    return float(mask[among].mean()) if among.any() else math.nan


def measure(levels, groups, truth, expanding, reward, abstain_reward) -> dict:
    """Per level and "all": pairwise agreement, and how often the reward pays expanding over abstaining."""
    out = {}
    for level in (*LEVELS, "all"):
        in_level = np.array([level == "all" or lv == level for lv in levels])
        if not in_level.any():
            continue
        level_groups = [g for g in groups if in_level[g[0]]]
        agreement, pairs = pairwise_agreement(level_groups, reward, truth)
        beats = reward > abstain_reward + 1e-9
        exp = in_level & expanding
        out[level] = {
            "samples": int(in_level.sum()),
            "pairs": pairs,
            "pairwise_agreement": agreement,
            "expanding_beats_abstain": share(beats, exp),
            "rewarded_without_true_gain": share(beats, exp & (truth <= 1e-9)),
            "expanding_without_true_gain": share(truth <= 1e-9, exp),
            "mean_reward": float(reward[in_level].mean()),
        }
    return out


def markdown(result: dict) -> str:
    def f(x, pct=True):
        return (
            "-"
            if x is None or (isinstance(x, float) and math.isnan(x))
            else (f"{100 * x:.0f}%" if pct else f"{x:.2f}")
        )

    lines = [
        f"# What-if rewards on the samples of {result['completions']}",
        "",
        f"{result['samples']} samples in {result['groups']} groups (steps x prompts); true change = oracle NDCG@10 of "
        "the answer minus that of q alone (abstentions and failed gates: 0). Per variant and level: pairwise "
        "agreement of the reward with the true change inside groups (what GRPO's advantage follows; ties = 1/2), "
        "and the share of valid expanding samples with no true gain that the reward pays more than abstaining.",
        "",
        "| variant | " + " | ".join(f"{lv}: agreement / paid without gain" for lv in (*LEVELS, "all")) + " |",
        "|---|" + "---|" * (len(LEVELS) + 1),
    ]
    for name, variant in result["variants"].items():
        cells = []
        for lv in (*LEVELS, "all"):
            d = variant["per_level"].get(lv)
            cells.append(
                "-" if d is None else f"{f(d['pairwise_agreement'])} / {f(d['rewarded_without_true_gain'])}"
            )
        overrides = ", ".join(f"{k} = {v}" for k, v in variant["overrides"].items()) or "paper defaults"
        lines.append(f"| {name} ({overrides}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Share of all valid expanding samples that the reward pays more than abstaining (what pulls a level's "
        "queries towards expanding; the paper wants specific queries left alone):",
        "",
        "| variant | " + " | ".join((*LEVELS, "all")) + " |",
        "|---|" + "---|" * (len(LEVELS) + 1),
    ]
    for name, variant in result["variants"].items():
        cells = [f(variant["per_level"][lv]["expanding_beats_abstain"]) if lv in variant["per_level"] else "-"
                 for lv in (*LEVELS, "all")]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Pairs compared per level: "
        + ", ".join(
            f"{lv} {d['pairs']}" for lv, d in next(iter(result["variants"].values()))["per_level"].items()
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", type=Path, required=True, help="completions.jsonl(.gz) of a GRPO run")
    p.add_argument("--dataset", type=Path, default=REPO / "artifacts/synth")
    p.add_argument("--config", type=Path, default=REPO / "configs/leser.synth.yaml", help="LESER_CONFIG")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:key=value[,key=value] over the reward settings (lambda_size, size_ratio_cap, rel_floor, "
        f"ret_floor, eps, size_measure, expansion_cost); repeatable; default: {' '.join(DEFAULT_VARIANTS)}",
    )
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    variants = dict(parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS))
    if not args.completions.exists():
        raise FileNotFoundError(f"{args.completions}: no such completions file")
    # a bad completions file fails before any backend is opened
    rows = [r for r in read_completions(args.completions) if r["query"] is not None]
    if not rows:
        raise ValueError(f"{args.completions}: no samples with a query")
    scorer, oracle, _, ctx = open_scoring(args.config, args.dataset)
    engine, judge, base = scorer.engine, scorer.judge, scorer.settings

    queries = [r["query"] for r in rows]
    completions = [r["completion"] for r in rows]
    verdicts = [scorer.gate(c, q) for q, c in zip(queries, completions, strict=True)]
    expanding = np.array([v.valid and bool(v.expansions) for v in verdicts])
    sets = list(
        dict.fromkeys(
            (q, tuple(v.expansions))
            for q, v in zip(queries, verdicts, strict=True)
            if v.valid and v.expansions
        )
    )
    distinct_q = sorted(set(queries))
    answered = score_rankings(ctx, [[q, *e] for q, e in sets], "answers")
    alone = dict(zip(distinct_q, score_rankings(ctx, [[q] for q in distinct_q], "queries"), strict=True))
    d_ndcg = {key: s.ndcg - alone[key[0]].ndcg for key, s in zip(sets, answered, strict=True)}
    truth = np.array([d_ndcg[(q, tuple(v.expansions))] if e else 0.0
                      for q, v, e in zip(queries, verdicts, expanding, strict=True)])  # fmt: skip
    levels = [oracle.query_level(q) for q in queries]
    by_group = defaultdict(list)
    for i, r in enumerate(rows):
        by_group[(r["step"], r["query"])].append(i)
    groups = [g for g in by_group.values() if len(g) > 1]

    result = {
        "completions": str(args.completions),
        "samples": len(rows),
        "groups": len(groups),
        "variants": {},
    }
    for name, overrides in {"paper": {}, **variants}.items():
        settings = dataclasses.replace(base, **overrides)
        variant_scorer = LeserScorer(engine, judge, settings)
        reward = np.array([b.reward for b in variant_scorer.score_batch(queries, completions)])
        abstain_of = dict(zip(distinct_q, (b.reward for b in variant_scorer.score_batch(
            distinct_q, [format_completion("", [])] * len(distinct_q))), strict=True))  # fmt: skip
        abstain = np.array([abstain_of[q] for q in queries])
        result["variants"][name] = {
            "overrides": overrides,
            "per_level": measure(levels, groups, truth, expanding, reward, abstain),
        }
    text = markdown(result)
    write_report(args.out, "whatif", result, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
