"""True relevance over the GRPO steps: evaluate the SFT start and every saved GRPO checkpoint on a fixed probe split.

Each point is one `python -m leser.evaluation` run (1 sample per query at T = 0.5 by default) of one checkpoint on
the probe queries (`probe.jsonl` of the `learn` profile: 50 queries disjoint from SFT, GRPO and eval), so the
curve uses the same gate, engine, merge and oracle as the final table. A point already evaluated with the same
checkpoint files and options is reused from `OUT/step_<n>/results.json` (the evaluation's fingerprints), so an
interrupted curve resumes and a new run's checkpoints are never mistaken for an old run's. Writes OUT/probe.json and a PNG.

    python scripts/probe_curve.py --grpo runs/learn/grpo --start runs/learn/sft/last \\
        --split artifacts/synth/splits_learn/probe.jsonl --out runs/learn/probe --every 50
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep.cli import ArgumentParser, int_at_least, run_cli  # noqa: E402
from data_prep.formats import atomic_write_path  # noqa: E402
from leser.evaluation.cli import main as evaluation  # noqa: E402
from leser.evaluation.report import save_figure  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
PROBE_KEYS = (
    "d_ndcg10",
    "validity",
    "mean_n_expansions",
    "abstain_specific",
    "abstain_broad",
    "pct_d_ret_pos",
)


def grpo_checkpoints(grpo_dir: Path) -> dict[int, Path]:
    """step -> checkpoint folder over every v*/checkpoint-<step>/ with weights (a resumed run continues the steps
    of the one before it in a new v* folder; the newest folder wins for a step saved twice)."""
    found: dict[int, Path] = {}
    for ckpt in sorted(grpo_dir.glob("v*/checkpoint-*"), key=lambda p: p.stat().st_mtime):
        match = _CHECKPOINT.match(ckpt.name)
        if match and (ckpt / "config.json").is_file():
            found[int(match.group(1))] = ckpt
    return dict(sorted(found.items()))


def probe_points(start: Path, grpo_dir: Path, every: int) -> dict[int, Path]:
    """Step 0 (the SFT start) and the GRPO checkpoints whose step is a multiple of `every`, plus the last one."""
    checkpoints = grpo_checkpoints(grpo_dir) if grpo_dir.is_dir() else {}
    points = {0: start}
    for step, path in checkpoints.items():
        if step % every == 0 or step == max(checkpoints):
            points[step] = path
    return points


def evaluate_point(step: int, model: Path, args) -> dict:
    out = args.out / f"step_{step}"
    # always through the evaluation: a point of the same checkpoint and options is reused from its results.json
    # (the evaluation's fingerprints), a point of another run's checkpoint at the same step is evaluated again
    evaluation(
        [
            "--dataset", str(args.dataset), "--index", str(args.index),
            "--relevance", str(args.relevance), "--split", str(args.split),
            "--systems", f"leser:{model}", "--runs", str(args.runs), "--out", str(out),
            "--temperature", str(args.temperature), "--max-new-tokens", str(args.max_new_tokens),
            "--batch-size", str(args.batch_size),
        ]
    )  # fmt: skip
    system = json.loads((out / "results.json").read_text())["systems"][0]
    return {"step": step, "model": str(model), **{k: system["aggregate"][k]["mean"] for k in PROBE_KEYS}}


def plot(points: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["step"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(steps, [p["d_ndcg10"] for p in points], "o-", color="tab:green")
    left.axhline(0, color="black", linewidth=0.8)
    left.set_xlabel("GRPO step (0 = SFT warm-up)")
    left.set_ylabel("NDCG@10 change vs no expansion (oracle)")
    left.set_title("True relevance on the probe")
    for key, style in (
        ("validity", "o-"),
        ("abstain_specific", "s--"),
        ("abstain_broad", "^--"),
        ("pct_d_ret_pos", "d:"),
    ):
        right.plot(steps, [p[key] for p in points], style, label=key)
    right.set_ylim(-2, 102)
    right.set_xlabel("GRPO step (0 = SFT warm-up)")
    right.set_ylabel("% of probe queries")
    right.legend(fontsize=8)
    right.set_title("Behaviour on the probe")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grpo", type=Path, required=True, help="GRPO output_dir, e.g. runs/learn/grpo")
    p.add_argument("--start", type=Path, required=True, help="the SFT checkpoint GRPO started from (step 0)")
    p.add_argument("--split", type=Path, required=True, help="probe split JSONL (messages + query)")
    p.add_argument("--dataset", type=Path, default=REPO / "artifacts/synth")
    p.add_argument("--index", type=Path, default=REPO / "artifacts/synth/index")
    p.add_argument("--relevance", type=Path, default=REPO / "artifacts/synth/relevance")
    p.add_argument("--out", type=Path, required=True, help="folder for the points, probe.json and probe.png")
    p.add_argument(
        "--every",
        type=int_at_least(1),
        default=50,
        help="evaluate checkpoints whose step is a multiple of this",
    )
    p.add_argument("--runs", type=int_at_least(1), default=1)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--max-new-tokens", type=int_at_least(1), default=192)
    p.add_argument("--batch-size", type=int_at_least(1), default=25)
    args = p.parse_args(argv)
    for path, what in ((args.split, "probe split"), (args.start, "SFT checkpoint")):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such {what}")
    points = [evaluate_point(s, m, args) for s, m in probe_points(args.start, args.grpo, args.every).items()]
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(args.out / "probe.json") as tmp:
        tmp.write_text(json.dumps(points, indent=2) + "\n")
    n = sum(1 for _ in args.split.open())
    plot(points, args.out / "probe.png", f"Probe: {n} queries x {args.runs} run(s) at T = {args.temperature}")
    for pt in points:
        print(
            f"step {pt['step']:>4}: dNDCG@10 {pt['d_ndcg10']:+.4f}  valid {pt['validity']:.1f}%  "
            f"abstain specific/broad {pt['abstain_specific']:.0f}/{pt['abstain_broad']:.0f}%  "
            f"# exp {pt['mean_n_expansions']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
