"""Evaluation outputs: results.md (Table 2 layout + extra columns), results.json, results.png, generations/*.jsonl."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from data_prep.formats import atomic_write_path
from leser.evaluation.harness import RUN_METRICS, QueryEval, SystemReport

LABELS = {
    "none": "No expansion",
    "rm3": "RM3 (pseudo-relevance feedback)",
    "ebqe": "EBQE (nearest logged queries by embedding)",
    "fewshot": "Few-shot prompting (3 in-context examples)",
    "openai": "Few-shot prompting (OpenAI-compatible endpoint)",
    "rules": "Rules teacher (attribute values of the context)",
    "sft": "SFT-LLM",
    "leser": "LESER",
}


def label(system_name: str) -> str:
    return LABELS.get(system_name.split(":")[0], system_name)


def slug(system_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", system_name).strip("_")


def _cell(key: str, value, stochastic: bool) -> str:
    if math.isnan(value.mean):
        return "-"
    digits = 3 if key in ("mean_d_rel", "ndcg10", "d_ndcg10", "rm_pairwise_acc") else 2
    if key == "d_ndcg10":
        return f"{value.mean:+.{digits}f} ± {value.std:.{digits}f}"
    return f"{value.mean:.{digits}f} ± {value.std:.{digits}f}"


def markdown_table(reports: list[SystemReport], header: str) -> str:
    keys = list(RUN_METRICS)
    lines = [
        header,
        "",
        "| System | Backbone | " + " | ".join(RUN_METRICS[k] for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for r in reports:
        cells = [_cell(k, r.aggregate[k], r.stochastic) for k in keys]
        lines.append(f"| {label(r.name)} | {r.backbone} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    with atomic_write_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_results(out: Path, reports: list[SystemReport], meta: dict, header: str) -> None:
    write_text(out / "results.md", markdown_table(reports, header))
    payload = {"meta": meta, "columns": RUN_METRICS, "systems": [r.to_json() for r in reports]}
    write_text(out / "results.json", json.dumps(payload, indent=2, allow_nan=True) + "\n")
    write_chart(out / "results.png", reports, meta.get("title", ""))


def write_chart(path: Path, reports: list[SystemReport], title: str) -> None:
    """Grouped bars of % queries with dRet > 0 and dRel > 0 (error bars: std over runs), plus dNDCG@10."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [label(r.name).split(" (")[0] for r in reports]
    x = np.arange(len(reports))
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(reports) + 4), 4.2))
    for offset, key, color in ((-0.2, "pct_d_ret_pos", "tab:blue"), (0.2, "pct_d_rel_pos", "tab:orange")):
        means = [r.aggregate[key].mean for r in reports]
        stds = [r.aggregate[key].std for r in reports]
        left.bar(x + offset, means, 0.4, yerr=stds, capsize=3, label=RUN_METRICS[key], color=color)
    left.set_xticks(x, names, rotation=25, ha="right")
    left.set_ylabel("% of queries")
    left.set_ylim(0, 100)
    left.legend()
    left.set_title("Paper protocol (Table 2)")
    d_ndcg = [r.aggregate["d_ndcg10"].mean for r in reports]
    right.bar(
        x, d_ndcg, 0.5, yerr=[r.aggregate["d_ndcg10"].std for r in reports], capsize=3, color="tab:green"
    )
    right.axhline(0, color="black", linewidth=0.8)
    right.set_xticks(x, names, rotation=25, ha="right")
    right.set_ylabel("NDCG@10 change vs no expansion")
    right.set_title("True relevance")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


class GenerationsWriter:
    """Per-query rows of every run, one JSONL file per system (rewritten on each run, atomically)."""

    def __init__(self, out: Path):
        self.folder = out / "generations"
        self.rows: dict[str, list[dict]] = {}

    def __call__(self, system, rows: list[QueryEval]) -> None:
        from dataclasses import asdict

        kept = self.rows.setdefault(system.name, [])
        kept.extend(asdict(r) for r in rows)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
        write_text(self.folder / f"{slug(system.name)}.jsonl", text)
