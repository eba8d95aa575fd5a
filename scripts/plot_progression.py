"""One figure of how a policy moved across its training stages, against the issue's bars, from evaluation results.

Each point is one system of a `results.json` written by `python -m leser.evaluation` (e.g. the SFT warm-up, GRPO
stage 1, GRPO stage 2, each evaluated on the same queries): true NDCG@10 change against no expansion, validity, and
abstention on specific and broad queries, each as mean +- std over the evaluation's runs. The rules teacher (system
`rules` of the first file) is drawn as a dashed line; the bars (validity >= 95%, abstention >= 90% on specific and
<= 30% on broad queries) as dotted lines.

    python scripts/plot_progression.py "SFT=runs/eval/sft_ev/results.json:sft" \\
        "stage 1=runs/eval/lowrecall_ev/results.json:leser" "stage 2=runs/eval/stage2_ev/results.json:leser" \\
        --out progression.png

A point is LABEL=RESULTS_JSON:SYSTEM, SYSTEM being the start of a system name in that file (`leser` matches
`leser:runs/x/grpo/last`); exactly one system must match.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep.cli import ArgumentParser, run_cli  # noqa: E402
from leser.evaluation.report import find_system, read_results, save_figure  # noqa: E402

# (metric key of results.json "aggregate", panel title, the bar or None)
PANELS = (
    ("d_ndcg10", "NDCG@10 change vs no expansion (oracle)", None),
    ("validity", "valid answers (%)", 95.0),
    ("abstain_specific", "abstain on specific queries (%)", 90.0),
    ("abstain_broad", "abstain on broad queries (%)", 30.0),
)


def parse_point(text: str) -> tuple[str, Path, str]:
    """'LABEL=RESULTS_JSON:SYSTEM' -> (label, path, system prefix)."""
    label, sep, rest = text.partition("=")
    path, colon, system = rest.rpartition(":")
    if not sep or not label or not colon or not path or not system:
        raise ValueError(
            f"{text!r}: a point is LABEL=RESULTS_JSON:SYSTEM (e.g. 'stage 1=runs/eval/x/results.json:leser')"
        )
    return label, Path(path), system


def metric(system: dict, key: str, path: Path) -> tuple[float, float]:
    """(mean, std) of an aggregate metric; NaN when the system has no value for it (e.g. validity of `none`)."""
    value = system.get("aggregate", {}).get(key)
    if value is None:
        return float("nan"), 0.0
    try:
        return float(value["mean"]), float(value.get("std") or 0.0)
    except (TypeError, KeyError, ValueError):
        raise ValueError(
            f"{path}: system {system.get('name')!r}: aggregate {key!r} is not {{mean, std}}"
        ) from None


def collect(points: list[str]) -> tuple[list[str], dict[str, list[tuple[float, float]]], dict[str, float]]:
    """(labels, {metric: [(mean, std) per point]}, {metric: the rules teacher's mean from the first file})."""
    labels, values, teacher = [], {key: [] for key, _, _ in PANELS}, {}
    for i, text in enumerate(points):
        label, path, prefix = parse_point(text)
        results = read_results(path)
        system = find_system(results, prefix, path)
        labels.append(label)
        for key, _, _ in PANELS:
            values[key].append(metric(system, key, path))
        if i == 0:
            rules = [s for s in results["systems"] if s.get("name") == "rules"]
            if rules:
                teacher = {key: metric(rules[0], key, path)[0] for key, _, _ in PANELS}
    return labels, values, teacher


def plot(labels, values, teacher, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    x = list(range(len(labels)))
    for ax, (key, name, bar) in zip(axes.flat, PANELS, strict=True):
        means = [m for m, _ in values[key]]
        stds = [s for _, s in values[key]]
        # no connecting line: points may be siblings (two seeds of one stage), not always a sequence
        ax.errorbar(
            x, means, yerr=stds, marker="o", linestyle="none", capsize=4, color="tab:blue", label="policy"
        )
        if key in teacher:
            ax.axhline(teacher[key], color="tab:green", linestyle="--", label="rules teacher")
        if bar is not None:
            ax.axhline(bar, color="tab:red", linestyle=":", label=f"bar ({bar:g})")
        ax.set_title(name, fontsize=10)
        ax.set_xticks(x, labels, rotation=20, ha="right")
        ax.grid(alpha=0.3)
        if key == "validity":  # the points sit near the bar: 0-100 would flatten them
            low = min([m for m in means if m == m] + [bar, teacher.get(key, 100.0)])
            ax.set_ylim(max(0.0, low - 10), 101)
        elif bar is not None:
            ax.set_ylim(0, 102)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="scripts/plot_progression.py", description=__doc__.split("\n\n")[0])
    p.add_argument("points", nargs="+", help="LABEL=RESULTS_JSON:SYSTEM, in training order")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--title", default="The policy across its stages (mean +- std over evaluation runs)")
    args = p.parse_args(argv)
    labels, values, teacher = collect(args.points)
    plot(labels, values, teacher, args.out, args.title)
    for i, label in enumerate(labels):
        row = ", ".join(f"{key} {values[key][i][0]:.3f}" for key, _, _ in PANELS)
        print(f"{label}: {row}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
