"""Plot a GRPO run: the LESER reward, the validity rate (leser_format) and the KL to the reference over the steps.

Reads ms-swift's `logging.jsonl` (one row per logging step; `logging_steps: 1` in the recipes) and writes a PNG
with three panels. Accepts the `logging.jsonl` itself, a version folder `v<N>-<timestamp>/`, or an output_dir such
as `runs/cpu/grpo`, where the newest version that has a `logging.jsonl` is used.

    python scripts/plot_grpo.py runs/cpu/grpo --out runs/cpu/grpo/grpo_curves.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

# ms-swift's metric names (swift/rlhf_trainers/grpo_trainer.py): `reward` is the weighted sum of reward_funcs,
# `rewards/<name>/mean` each function's mean over the step's completions, `kl` the mean per-token KL.
REWARD_KEY = "reward"
VALIDITY_KEY = "rewards/leser_format/mean"
KL_KEY = "kl"
ZERO_STD_KEY = "frac_reward_zero_std"  # share of groups whose N rewards are equal: no advantage, no gradient
EXTRA_KEYS = (
    "rewards/leser_rel_ratio/mean",
    "rewards/leser_size_ratio/mean",
    "rewards/leser_num_expansions/mean",
)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, from any working directory

from data_prep.cli import ArgumentParser, run_cli  # noqa: E402

_VERSION = re.compile(r"^v(\d+)-")


class GrpoCurves(NamedTuple):
    """Per-step series from one run (NaN where a row lacks the metric)."""

    steps: list[int]
    series: dict[str, list[float]]


def find_logging_jsonl(path: str | Path) -> Path:
    """`path` itself, `path/logging.jsonl`, or the newest `path/v<N>-*/logging.jsonl`."""
    path = Path(path)
    if path.is_file():
        return path
    if (path / "logging.jsonl").is_file():
        return path / "logging.jsonl"
    versions = [
        (int(m.group(1)), v)
        for v in path.glob("v*")
        if (m := _VERSION.match(v.name)) and (v / "logging.jsonl").is_file()
    ]
    if not versions:
        raise FileNotFoundError(f"{path}: no logging.jsonl here nor in any v<N>-*/ below it")
    return max(versions)[1] / "logging.jsonl"


def read_curves(logging_jsonl: Path) -> GrpoCurves:
    """Training rows (those with a `reward`) of ms-swift's logging.jsonl; the step comes from `global_step/max_steps`."""
    steps, series = [], {key: [] for key in (REWARD_KEY, VALIDITY_KEY, KL_KEY, ZERO_STD_KEY, *EXTRA_KEYS)}
    with open(logging_jsonl, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{logging_jsonl}:{line_no}: not JSON ({error})") from None
            if REWARD_KEY not in row:
                continue  # the final summary row (train_runtime, ...) and eval rows
            step_text = str(row.get("global_step/max_steps", ""))
            steps.append(int(step_text.split("/")[0]) if step_text else len(steps) + 1)
            for key, values in series.items():
                values.append(float(row.get(key, math.nan)))
    if not steps:
        raise ValueError(f"{logging_jsonl}: no training row with a '{REWARD_KEY}' (is this a GRPO run?)")
    return GrpoCurves(steps, series)


def plot(curves: GrpoCurves, out: Path, title: str) -> None:
    """Three stacked panels: reward (+ relevance ratio), validity rate, KL; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    s = curves.series
    axes[0].plot(curves.steps, s[REWARD_KEY], marker="o", ms=3, label="reward r(Y) (Eq. 1)")
    axes[0].plot(curves.steps, s[EXTRA_KEYS[0]], ls="--", label="r_rel (Rel ratio)")
    axes[0].set_ylabel("mean reward")
    axes[0].legend(loc="best", fontsize=8)
    axes[1].plot(curves.steps, s[VALIDITY_KEY], marker="o", ms=3, color="tab:green")
    axes[1].set_ylabel("validity (leser_format)")
    axes[1].set_ylim(-0.05, 1.05)
    if any(not math.isnan(v) for v in s[KL_KEY]):
        axes[2].plot(curves.steps, s[KL_KEY], marker="o", ms=3, color="tab:red")
        axes[2].set_ylabel("KL to reference")
    else:  # beta = 0: no reference model, so no KL; show the groups that gave no gradient instead
        axes[2].plot(curves.steps, s[ZERO_STD_KEY], marker="o", ms=3, color="tab:red")
        axes[2].set_ylabel("groups without gradient")
        axes[2].set_ylim(-0.05, 1.05)
    axes[2].set_xlabel("GRPO step")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)


def summary(curves: GrpoCurves) -> str:
    """One line per metric: first and last step values and the mean."""
    lines = []
    for key in (REWARD_KEY, VALIDITY_KEY, KL_KEY):
        values = [v for v in curves.series[key] if not math.isnan(v)]
        if values:
            lines.append(
                f"{key:28s} first {values[0]:.4f}  last {values[-1]:.4f}  mean {sum(values) / len(values):.4f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="logging.jsonl, a v<N>-* folder or an output_dir such as runs/cpu/grpo")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    logging_jsonl = find_logging_jsonl(args.run)
    curves = read_curves(logging_jsonl)
    plot(curves, args.out, f"LESER GRPO: {logging_jsonl.parent} ({len(curves.steps)} steps)")
    print(summary(curves))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
