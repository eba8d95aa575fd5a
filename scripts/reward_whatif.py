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

The samples, the gate and the truth are the same for every variant; only the reward changes. A variant may also
swap the reward's judge for the oracle (`judge=oracle`: Rel scores are the true grade / 4, the judge's own target):
what the reward's form would do with a perfect judge, which splits a low agreement into the judge's errors and the
formula's. Writes OUT/whatif.json and OUT/whatif.md.

    python scripts/reward_whatif.py --completions docs/experiment/gpu/grpo_completions.jsonl.gz \\
        --out runs/learn-1gpu/whatif --variant lambda0.02:lambda_size=0.02 --variant cap2:size_ratio_cap=2 \\
        --variant oracle-judge:judge=oracle
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
from leser.settings import REL_MEASURES, SIZE_MEASURES  # noqa: E402
from search_sim.relevance.report import BOOTSTRAP_RESAMPLES  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SETTING_KEYS = {
    "lambda_size": float,
    "size_ratio_cap": float,
    "rel_floor": float,
    "ret_floor": int,
    "eps": float,
    "size_measure": str,
    "rel_measure": str,
    "expansion_cost": float,
}
JUDGES = (
    "model",
    "oracle",
)  # `judge=`: the run's relevance model (LESER_CONFIG) or the synthetic oracle's grades
DEFAULT_VARIANTS = (
    "lambda0.05:lambda_size=0.05",
    "lambda0.02:lambda_size=0.02",
    "lambda0:lambda_size=0",
    "cap2:size_ratio_cap=2",
    "relevant-recall:size_measure=relevance",
    "cost0.05:expansion_cost=0.05",
    "cost0.1:expansion_cost=0.1",
    "dcg:rel_measure=dcg",
    "dcg-lambda0:rel_measure=dcg,lambda_size=0",
    "dcg-cost0.05:rel_measure=dcg,expansion_cost=0.05",
    "oracle-judge:judge=oracle",
    "oracle-judge-lambda0:judge=oracle,lambda_size=0",
)


def parse_variant(text: str) -> tuple[str, dict]:
    """`NAME:key=value[,key=value]` -> (NAME, {key: value}); keys are the reward's Settings fields above, or
    `judge` (one of JUDGES)."""
    name, sep, body = text.partition(":")
    if not sep or not name or not body:
        raise ValueError(f"--variant {text!r}: expected NAME:key=value[,key=value]")
    overrides = {}
    for part in body.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if sep and key == "judge":
            if value not in JUDGES:
                raise ValueError(f"--variant {text!r}: judge must be one of {list(JUDGES)}")
            overrides[key] = value
            continue
        if not sep or key not in SETTING_KEYS:
            raise ValueError(f"--variant {text!r}: {key!r} is not one of {sorted([*SETTING_KEYS, 'judge'])}")
        if key == "size_measure" and value not in SIZE_MEASURES:
            raise ValueError(f"--variant {text!r}: size_measure must be one of {list(SIZE_MEASURES)}")
        if key == "rel_measure" and value not in REL_MEASURES:
            raise ValueError(f"--variant {text!r}: rel_measure must be one of {list(REL_MEASURES)}")
        try:
            overrides[key] = SETTING_KEYS[key](value)
        except ValueError:
            raise ValueError(f"--variant {text!r}: {key}={value!r} is not a number") from None
    return name, overrides


class OracleAsJudge:
    """The reward's judge interface (``score_many``) on the synthetic oracle: true grade / 4, the scale the relevance
    model is trained to predict."""

    def __init__(self, oracle):
        self.oracle = oracle

    def score_many(self, queries, item_id_lists) -> list[np.ndarray]:
        return [
            np.asarray(self.oracle.grade(q, list(ids)), dtype=np.float64) / 4.0 if len(ids) else np.zeros(0)
            for q, ids in zip(queries, item_id_lists, strict=True)
        ]


def group_agreement(
    groups: list[list[int]], reward: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per group: (concordant pairs, ties counting 1/2; pairs whose truth differs). Pooled over groups, their ratio
    is the pairwise agreement."""
    scores, pairs = np.zeros(len(groups)), np.zeros(len(groups), dtype=np.int64)
    for n, idx in enumerate(groups):
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                dt = truth[i] - truth[j]
                if abs(dt) <= 1e-9:
                    continue
                dr = reward[i] - reward[j]
                pairs[n] += 1
                scores[n] += 0.5 if abs(dr) <= 1e-9 else float(np.sign(dr) == np.sign(dt))
    return scores, pairs


def pairwise_agreement(groups: list[list[int]], reward: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """(share of within-group pairs with different truth that the reward orders the same way, ties = 1/2; pairs)."""
    scores, pairs = group_agreement(groups, reward, truth)
    total = int(pairs.sum())
    return (float(scores.sum()) / total if total else math.nan), total


def agreement_gain_interval(
    groups: list[list[int]],
    reward: np.ndarray,
    base_reward: np.ndarray,
    truth: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict:
    """Agreement of ``reward`` minus that of ``base_reward`` on the same pairs, with a 95% interval from a paired
    bootstrap over groups (a group's pairs share one prompt, so groups, not pairs, are the independent units)."""
    scores, pairs = group_agreement(groups, reward, truth)
    base_scores, _ = group_agreement(groups, base_reward, truth)
    if pairs.sum() == 0:
        return {"mean": math.nan, "ci95": [math.nan, math.nan]}
    draws = np.random.default_rng(seed).integers(0, len(groups), size=(resamples, len(groups)))
    drawn_pairs = pairs[draws].sum(axis=1)
    ok = drawn_pairs > 0
    gains = (scores[draws].sum(axis=1)[ok] - base_scores[draws].sum(axis=1)[ok]) / drawn_pairs[ok]
    lo, hi = np.percentile(gains, [2.5, 97.5])
    return {"mean": float((scores.sum() - base_scores.sum()) / pairs.sum()), "ci95": [float(lo), float(hi)]}


def share(mask: np.ndarray, among: np.ndarray) -> float:
    return float(mask[among].mean()) if among.any() else math.nan


def measure(levels, groups, truth, expanding, reward, abstain_reward, paper_reward) -> dict:
    """Per level and "all": pairwise agreement (and its gain over the paper's reward, with a paired bootstrap 95%
    interval over groups), and how often the reward pays expanding over abstaining."""
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
            "agreement_minus_paper": agreement_gain_interval(level_groups, reward, paper_reward, truth),
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
        "",
        "Agreement minus the paper's reward's on the same pairs, percentage points, with a 95% interval (paired "
        f"bootstrap over groups, {BOOTSTRAP_RESAMPLES:,} resamples):",
        "",
        "| variant | " + " | ".join((*LEVELS, "all")) + " |",
        "|---|" + "---|" * (len(LEVELS) + 1),
    ]

    def gain(d):
        g = d["agreement_minus_paper"]
        if math.isnan(g["mean"]):
            return "-"
        lo, hi = g["ci95"]
        return f"{100 * g['mean']:+.0f} [{100 * lo:+.0f}, {100 * hi:+.0f}]"

    for name, variant in list(result["variants"].items())[1:]:
        cells = [
            gain(variant["per_level"][lv]) if lv in variant["per_level"] else "-" for lv in (*LEVELS, "all")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
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
        f"ret_floor, eps, size_measure, rel_measure, expansion_cost) or judge=model|oracle; repeatable; default: {' '.join(DEFAULT_VARIANTS)}",
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
    paper_reward = None
    for name, overrides in {"paper": {}, **variants}.items():
        settings = dataclasses.replace(base, **{k: v for k, v in overrides.items() if k != "judge"})
        variant_judge = OracleAsJudge(oracle) if overrides.get("judge") == "oracle" else judge
        variant_scorer = LeserScorer(engine, variant_judge, settings)
        reward = np.array([b.reward for b in variant_scorer.score_batch(queries, completions)])
        abstain_of = dict(zip(distinct_q, (b.reward for b in variant_scorer.score_batch(
            distinct_q, [format_completion("", [])] * len(distinct_q))), strict=True))  # fmt: skip
        abstain = np.array([abstain_of[q] for q in queries])
        paper_reward = reward if paper_reward is None else paper_reward
        result["variants"][name] = {
            "overrides": overrides,
            "per_level": measure(levels, groups, truth, expanding, reward, abstain, paper_reward),
        }
    text = markdown(result)
    write_report(args.out, "whatif", result, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
