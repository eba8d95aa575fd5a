"""Diagnose what Eq. 1 rewards on a GRPO split, per query level, and what a GRPO run actually sampled.

1. Landscape (no model): for each GRPO query, the reward of abstaining (Y = {q}: 1 + lambda when Rel(q) and Ret(q)
   are above their floors), the reward of the rules teacher's answer, and the oracle NDCG@10 change of that
   answer; per level, and how well the reward's gain over abstaining tracks the true gain (Spearman).
2. Policy (from a GRPO run's completions.jsonl, ms-swift `log_completions: true`): the reward, validity and
   abstention of the samples of the first steps (the policy GRPO starts from) per level, their reward minus the
   abstention reward, the share of groups (the N samples of one prompt) whose rewards are all equal (no
   advantage, no gradient), and the same numbers per window of steps over the run.

Writes OUT/diagnosis.json, OUT/diagnosis.md and OUT/grpo_behaviour.png (reward, validity, abstention, zero-variance
groups per step window).

    python scripts/diagnose_reward.py --split artifacts/synth/splits_learn/grpo.jsonl --grpo runs/learn/grpo \\
        --out runs/learn/diagnosis
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep.cli import ArgumentParser, int_at_least, run_cli  # noqa: E402
from data_prep.formats import atomic_write_path, load_dataset  # noqa: E402
from data_prep.oracle import Oracle  # noqa: E402
from leser.distill.splits import PROFILES  # noqa: E402
from leser.distill.teachers import rules_teacher  # noqa: E402
from leser.evaluation.harness import EvalContext, OracleJudge, score_rankings  # noqa: E402
from leser.evaluation.report import save_figure  # noqa: E402
from leser.prompts import context_items, format_completion  # noqa: E402
from leser.reward import LeserScorer  # noqa: E402
from leser.settings import load_settings, open_backend  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

_QUERY_IN_PROMPT = re.compile(r'^Query: "(.*)"$\nSearch results', re.MULTILINE)
LEVELS = ("specific", "identifier", "broad", "colloquial", "problem")


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def summary(values) -> dict:
    v = np.asarray(values, dtype=float)
    if not len(v):
        return {"n": 0, "mean": math.nan, "std": math.nan}
    return {"n": int(len(v)), "mean": float(v.mean()), "std": float(v.std())}


def read_split_queries(path: Path) -> list[str]:
    """The `query` column of a split JSONL; a bad line is a ValueError naming file and line."""
    queries = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            try:
                queries.append(json.loads(line)["query"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{path}:{line_no}: not a split row with a 'query' ({err!r})") from None
    return queries


def _prompt_text(prompt) -> str:
    """The user message of a logged prompt (a list of chat messages, or already a string)."""
    if isinstance(prompt, list):
        return "\n".join(
            m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"
        )
    return str(prompt or "")


def read_completions(path: Path) -> list[dict]:
    """Rows {step, query, completion, leser_reward, leser_format, leser_num_expansions} from ms-swift's
    completions.jsonl (one columnar table per logging step, or one row per line; gzip-compressed when *.gz)."""
    rows = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no}: not JSON ({err})") from err
            table = entry if isinstance(entry.get("completion"), list) else {k: [v] for k, v in entry.items()}
            for i in range(len(table["completion"])):
                row = {k: v[i] for k, v in table.items() if isinstance(v, list) and len(v) > i}
                query = row.get("query")
                if query is None:
                    match = _QUERY_IN_PROMPT.search(_prompt_text(row.get("prompt")))
                    query = match.group(1) if match else None
                rows.append({**row, "step": int(row["step"]), "query": query})
    return rows


def landscape(args, engine, scorer, oracle, ctx, queries: list[str]) -> dict:
    # the rules teacher exactly as it wrote the SFT data (engine analyzer, vocabulary, catalog values)
    teacher = rules_teacher(engine, args.dataset_obj.catalog)
    contexts = context_items(engine, queries, args.context_items)
    answers = teacher.complete_many(queries, contexts)
    abstain = scorer.score_batch(queries, [format_completion("", [])] * len(queries))
    taught = scorer.score_batch(queries, [a or format_completion("", []) for a in answers])
    expanding = [i for i, b in enumerate(taught) if b.valid and b.n_expansions]
    truth = score_rankings(
        ctx, [[queries[i], *scorer.gate(answers[i], queries[i]).expansions] for i in expanding], "teacher"
    )
    reference = score_rankings(ctx, [[queries[i]] for i in expanding], "reference")
    d_ndcg = {i: t.ndcg - r.ndcg for i, t, r in zip(expanding, truth, reference, strict=True)}
    per_level = {}
    for level in LEVELS:
        idx = [i for i, q in enumerate(queries) if oracle.query_level(q) == level]
        if not idx:
            continue
        exp_idx = [i for i in idx if i in d_ndcg]
        gains = [taught[i].reward - abstain[i].reward for i in exp_idx]
        per_level[level] = {
            "queries": len(idx),
            "abstain_reward": summary([abstain[i].reward for i in idx]),
            "teacher_reward": summary([taught[i].reward for i in idx]),
            "teacher_expands_share": len(exp_idx) / len(idx),
            "teacher_beats_abstain_when_expanding": float(np.mean([g > 1e-9 for g in gains]))
            if gains
            else math.nan,
            "teacher_d_ndcg10_when_expanding": summary([d_ndcg[i] for i in exp_idx]),
            "spearman_reward_gain_vs_d_ndcg10": spearman(gains, [d_ndcg[i] for i in exp_idx]),
        }
    all_gains = [taught[i].reward - abstain[i].reward for i in expanding]
    return {
        "queries": len(queries),
        "per_level": per_level,
        "spearman_reward_gain_vs_d_ndcg10": spearman(all_gains, [d_ndcg[i] for i in expanding]),
    }


SAMPLE_KINDS = ("abstains", "expands", "fails the gate")


def advantage_push(rows: list[dict]) -> dict:
    """Per level and kind of sample (abstains / expands validly / fails the gate): how many samples GRPO drew, their
    mean advantage and the sum. Every failed gate is an attempted expansion, so its negative advantage also lowers the
    probability of the tokens that start an expansion: where validity is uncertain, abstaining (never invalid) is the
    safe answer of the group. Rows need "level", "valid", "abstains" and ms-swift's logged "advantages"."""
    cells: dict = defaultdict(list)
    for r in rows:
        if r.get("advantages") is None:
            continue
        kind = "fails the gate" if not r["valid"] else "abstains" if r["abstains"] else "expands"
        for level in (r["level"], "all"):
            cells[level, kind].append(float(r["advantages"]))
    return {
        level: {
            kind: {"n": len(v), "mean": float(np.mean(v)), "sum": float(np.sum(v))}
            for kind in SAMPLE_KINDS
            if (v := cells.get((level, kind)))
        }
        for level in (*LEVELS, "all")
        if any((level, kind) in cells for kind in SAMPLE_KINDS)
    }


def policy(rows: list[dict], scorer, oracle, ctx, first_steps: int, window: int) -> dict:
    rows = [r for r in rows if r["query"] is not None]
    if not rows:
        return {}
    abstain_of = {}
    distinct = sorted({r["query"] for r in rows})
    for q, b in zip(
        distinct, scorer.score_batch(distinct, [format_completion("", [])] * len(distinct)), strict=True
    ):
        abstain_of[q] = b.reward
    for r in rows:
        r["level"] = oracle.query_level(r["query"])
        r["valid"] = float(r.get("leser_format", 0.0)) > 0.5
        r["abstains"] = r["valid"] and float(r.get("leser_num_expansions", 0.0)) == 0
        r["reward"] = float(r["leser_reward"])
    early = [r for r in rows if r["step"] <= first_steps]
    # true gain of the early samples that expand validly
    expanding = [r for r in early if r["valid"] and not r["abstains"]]
    verdicts = [scorer.gate(r["completion"], r["query"]) for r in expanding]
    truth = score_rankings(
        ctx, [[r["query"], *v.expansions] for r, v in zip(expanding, verdicts, strict=True)], "samples"
    )
    reference = score_rankings(ctx, [[r["query"]] for r in expanding], "reference")
    for r, t, ref in zip(expanding, truth, reference, strict=True):
        r["d_ndcg10"] = t.ndcg - ref.ndcg
    per_level = {}
    for level in LEVELS:
        group = [r for r in early if r["level"] == level]
        if not group:
            continue
        exp = [r for r in group if "d_ndcg10" in r]
        per_level[level] = {
            "samples": len(group),
            "reward": summary([r["reward"] for r in group]),
            "reward_minus_abstain": summary([r["reward"] - abstain_of[r["query"]] for r in group]),
            "validity": float(np.mean([r["valid"] for r in group])),
            "abstention": float(np.mean([r["abstains"] for r in group])),
            "expanding_beats_abstain": float(
                np.mean([r["reward"] > abstain_of[r["query"]] + 1e-9 for r in exp])
            )
            if exp
            else math.nan,
            "expanding_d_ndcg10": summary([r["d_ndcg10"] for r in exp]),
        }
    # a group = the samples of one prompt within one step (ms-swift logs them together)
    by_step = defaultdict(list)
    for r in rows:
        by_step[r["step"]].append(r)
    steps = []
    for step, group_rows in sorted(by_step.items()):
        groups = defaultdict(list)
        for r in group_rows:
            groups[r["query"]].append(r["reward"])
        zero = [np.ptp(v) < 1e-9 for v in groups.values()]
        steps.append(
            {
                "step": step,
                "reward": float(np.mean([r["reward"] for r in group_rows])),
                "validity": float(np.mean([r["valid"] for r in group_rows])),
                "abstention": float(np.mean([r["abstains"] for r in group_rows])),
                "zero_std_groups": float(np.mean(zero)),
                "abstention_broad": float(
                    np.mean([r["abstains"] for r in group_rows if r["level"] == "broad"])
                )
                if any(r["level"] == "broad" for r in group_rows)
                else math.nan,
                "abstention_specific": float(
                    np.mean([r["abstains"] for r in group_rows if r["level"] in ("specific", "identifier")])
                )
                if any(r["level"] in ("specific", "identifier") for r in group_rows)
                else math.nan,
            }
        )
    chunks = [steps[start : start + window] for start in range(0, len(steps), window)]
    if (
        len(chunks) > 1 and len(chunks[-1]) < window / 2
    ):  # a short tail is noise: it joins the window before it
        chunks[-2:] = [chunks[-2] + chunks[-1]]
    windows = []
    for chunk in chunks:
        windows.append(
            {
                "steps": f"{chunk[0]['step']}-{chunk[-1]['step']}",
                **{
                    k: float(np.nanmean([c[k] for c in chunk]))
                    for k in (
                        "reward",
                        "validity",
                        "abstention",
                        "abstention_specific",
                        "abstention_broad",
                        "zero_std_groups",
                    )
                },
            }
        )
    return {
        "first_steps": first_steps,
        "samples_in_first_steps": len(early),
        "per_level": per_level,
        "spearman_reward_gain_vs_d_ndcg10": spearman(
            [r["reward"] - abstain_of[r["query"]] for r in expanding], [r["d_ndcg10"] for r in expanding]
        ),
        "zero_std_group_share": float(np.mean([s["zero_std_groups"] for s in steps])),
        "advantage_push": advantage_push(rows),
        "steps": steps,
        "windows": windows,
    }


def _f(x, digits=2, sign=False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def markdown(result: dict) -> str:
    land = result["landscape"]
    lines = [
        f"# Reward diagnosis ({land['queries']} GRPO queries)",
        "",
        "## What Eq. 1 pays, per query level (no model: abstaining vs the rules teacher)",
        "",
        "| level | queries | abstain reward | teacher reward | teacher expands | teacher beats abstaining (when expanding) "
        "| teacher dNDCG@10 (oracle, when expanding) | Spearman(reward gain, dNDCG) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for level, d in land["per_level"].items():
        lines.append(
            f"| {level} | {d['queries']} | {_f(d['abstain_reward']['mean'])} ± {_f(d['abstain_reward']['std'])} | "
            f"{_f(d['teacher_reward']['mean'])} ± {_f(d['teacher_reward']['std'])} | "
            f"{100 * d['teacher_expands_share']:.0f}% | {_f(100 * d['teacher_beats_abstain_when_expanding'], 0)}% | "
            f"{_f(d['teacher_d_ndcg10_when_expanding']['mean'], 3, True)} | "
            f"{_f(d['spearman_reward_gain_vs_d_ndcg10'])} |"
        )
    lines += ["", f"All expanding teacher answers: Spearman(reward - abstain reward, dNDCG@10) = "
              f"{_f(land['spearman_reward_gain_vs_d_ndcg10'])}.", ""]  # fmt: skip
    pol = result.get("policy")
    if pol:
        lines += [
            f"## What the policy sampled in GRPO steps 1-{pol['first_steps']} ({pol['samples_in_first_steps']} "
            "samples: the behaviour of the checkpoint GRPO started from)",
            "",
            "| level | samples | reward | reward - abstain reward | valid | abstains | expanding beats abstaining "
            "| dNDCG@10 of valid expansions (oracle) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for level, d in pol["per_level"].items():
            lines.append(
                f"| {level} | {d['samples']} | {_f(d['reward']['mean'])} ± {_f(d['reward']['std'])} | "
                f"{_f(d['reward_minus_abstain']['mean'], 2, True)} ± {_f(d['reward_minus_abstain']['std'])} | "
                f"{100 * d['validity']:.0f}% | {100 * d['abstention']:.0f}% | "
                f"{_f(100 * d['expanding_beats_abstain'], 0)}% | {_f(d['expanding_d_ndcg10']['mean'], 3, True)} |"
            )
        lines += [
            "",
            f"Valid expanding samples: Spearman(reward - abstain reward, dNDCG@10) = "
            f"{_f(pol['spearman_reward_gain_vs_d_ndcg10'])}. Groups with zero reward variance (no gradient) over the "
            f"whole run: {100 * pol['zero_std_group_share']:.0f}%.",
            "",
            "## Step by step (windows of steps)",
            "",
            "| steps | reward | valid | abstains | abstains specific+identifier | abstains broad | zero-variance groups |",
            "|---|---|---|---|---|---|---|",
        ]
        for w in pol["windows"]:
            lines.append(
                f"| {w['steps']} | {_f(w['reward'])} | {100 * w['validity']:.0f}% | {100 * w['abstention']:.0f}% | "
                f"{_f(100 * w['abstention_specific'], 0)}% | {_f(100 * w['abstention_broad'], 0)}% | "
                f"{100 * w['zero_std_groups']:.0f}% |"
            )
        push = pol.get("advantage_push")
        if push:
            lines += [
                "",
                "## Where the advantages push (whole run, per level and kind of sample)",
                "",
                "Each cell: samples, mean advantage, sum of advantages. A failed gate is an attempted expansion, so its "
                "negative advantage also pushes away from starting one; abstaining can never fail the gate.",
                "",
                "| level | " + " | ".join(SAMPLE_KINDS) + " |",
                "|---" * (len(SAMPLE_KINDS) + 1) + "|",
            ]
            for level, kinds in push.items():
                cells = [
                    f"{k['n']}, {k['mean']:+.2f}, {k['sum']:+.1f}" if (k := kinds.get(kind)) else "-"
                    for kind in SAMPLE_KINDS
                ]
                lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(pol: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = pol["windows"]
    x = [int(s["steps"].split("-")[-1]) for s in w]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(x, [s["reward"] for s in w], "o-", color="tab:blue")
    left.set_xlabel("GRPO step (end of window)")
    left.set_ylabel("mean LESER reward (Eq. 1)")
    left.set_title("Reward")
    for key, style in (
        ("validity", "o-"),
        ("abstention_specific", "s--"),
        ("abstention_broad", "^--"),
        ("zero_std_groups", "x:"),
    ):
        right.plot(x, [100 * s[key] for s in w], style, label=key)
    right.set_ylim(-2, 102)
    right.set_xlabel("GRPO step (end of window)")
    right.set_ylabel("% of samples (groups for zero_std_groups)")
    right.legend(fontsize=8)
    right.set_title("Validity, abstention, groups without gradient")
    fig.tight_layout()
    save_figure(fig, path)


def write_report(out: Path, stem: str, result: dict, text: str) -> None:
    """OUT/STEM.json and OUT/STEM.md, each written to a temp file and renamed."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(out / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, allow_nan=True) + "\n")
    with atomic_write_path(out / f"{stem}.md") as tmp:
        tmp.write_text(text)


def open_scoring(config: Path, dataset: Path):
    """(scorer, oracle, dataset, eval context): the reward of LESER_CONFIG and the synthetic oracle's truth."""
    for path, what in ((config, "LESER_CONFIG"), (dataset / "truth", "oracle")):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such {what}")
    settings = load_settings(config)
    engine, judge = open_backend(settings)
    data = load_dataset(dataset)
    oracle = Oracle.load(dataset)
    truth = OracleJudge(oracle, data.catalog.column("item_id").to_pylist())
    return LeserScorer(engine, judge, settings), oracle, data, EvalContext(engine, judge, truth, [])


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", type=Path, required=True, help="GRPO split JSONL (its queries)")
    p.add_argument(
        "--grpo", type=Path, help="GRPO output_dir with v*/completions.jsonl (log_completions: true)"
    )
    p.add_argument("--dataset", type=Path, default=REPO / "artifacts/synth")
    p.add_argument("--config", type=Path, default=REPO / "configs/leser.synth.yaml", help="LESER_CONFIG")
    p.add_argument(
        "--limit", type=int_at_least(1), default=300, help="landscape: the first N queries of the split"
    )
    p.add_argument(
        "--context-items",
        type=int_at_least(1),
        default=PROFILES["learn"].max_context_items,
        help="items the teacher sees (the split's profile; default: the learn profile's)",
    )
    p.add_argument(
        "--first-steps", type=int_at_least(1), default=10, help="policy: steps that stand for the start"
    )
    p.add_argument(
        "--window", type=int_at_least(1), default=10, help="steps per row of the step-by-step table"
    )
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    if not args.split.exists():
        raise FileNotFoundError(f"{args.split}: no such GRPO split")
    queries = read_split_queries(args.split)[: args.limit]  # a bad split fails before any backend is opened
    scorer, oracle, args.dataset_obj, ctx = open_scoring(args.config, args.dataset)
    engine = scorer.engine
    result = {"landscape": landscape(args, engine, scorer, oracle, ctx, queries)}
    if args.grpo:
        files = sorted(args.grpo.glob("v*/completions.jsonl"))
        if not files:
            raise FileNotFoundError(f"{args.grpo}: no v*/completions.jsonl (log_completions: true?)")
        rows = [r for f in files for r in read_completions(f)]
        result["policy"] = policy(rows, scorer, oracle, ctx, args.first_steps, args.window)
    text = markdown(result)
    write_report(args.out, "diagnosis", result, text)
    if result.get("policy"):
        plot(result["policy"], args.out / "grpo_behaviour.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
