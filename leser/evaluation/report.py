"""Evaluation outputs: results.md (Table 2 layout + extra columns), results.json, results.png, generations/*.jsonl."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from data_prep.formats import atomic_write_path
from leser.evaluation.harness import RUN_METRICS, QueryEval, SystemReport
from search_sim.relevance.report import paired_bootstrap_ci

LABELS = {
    "none": "No expansion",
    "rm3": "RM3 (pseudo-relevance feedback)",
    "ebqe": "EBQE (nearest logged queries by embedding)",
    "fewshot": "Few-shot prompting (3 in-context examples)",
    "openai": "Few-shot prompting (OpenAI-compatible endpoint)",
    "rules": "Rules teacher (attribute values of the context)",
    "sft": "SFT warm-up",
    "sftllm": "SFT-LLM (rejection-sampled)",
    "leser": "LESER",
}


def label(system_name: str) -> str:
    return LABELS.get(system_name.split(":")[0], system_name)


def slug(system_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", system_name).strip("_")


def _cell(key: str, value, stochastic: bool) -> str:
    if math.isnan(value.mean):
        return "-"
    digits = (
        3
        if key
        in ("mean_d_rel", "ndcg10", "d_ndcg10", "ndcg10_condensed", "d_ndcg10_condensed", "rm_pairwise_acc")
        else 2
    )
    if key in ("d_ndcg10", "d_ndcg10_condensed"):
        return f"{value.mean:+.{digits}f} ± {value.std:.{digits}f}"
    return f"{value.mean:.{digits}f} ± {value.std:.{digits}f}"


# Metrics shown inside another column's cell, not as a column of their own: key -> the column it annotates.
ANNOTATIONS = {"off_target_answers": "off_target_recall"}


def _annotated_cell(report: SystemReport, key: str) -> str:
    cell = _cell(key, report.aggregate[key], report.stochastic)
    for extra, target in ANNOTATIONS.items():
        count = report.aggregate[extra].mean
        if target == key and cell != "-" and not math.isnan(count):
            cell += f" (n={count:.0f})" if float(count).is_integer() else f" (n={count:.1f})"
    return cell


def markdown_table(reports: list[SystemReport], header: str) -> str:
    keys = [k for k in RUN_METRICS if k not in ANNOTATIONS]
    lines = [
        header,
        "",
        "| System | Backbone | " + " | ".join(RUN_METRICS[k] for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for r in reports:
        cells = [_annotated_cell(r, k) for k in keys]
        lines.append(f"| {label(r.name)} | {r.backbone} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def off_target_note(meta: dict) -> str:
    """The line under the table that says how off-target recall was measured (truth or proxy)."""
    info = meta.get("off_target_recall")
    if not info:
        return ""
    return (
        f"\noff-target recall (%): share of the items the expansions recall beyond q's own recall set (what Ret "
        f"rewards) that are off target, mean over the answers that recalled a new item (n: answers per run); "
        f"{info['description']}; at most {info['sample_per_answer']:,} new items examined per answer (uniform "
        'sample). "-": nothing recalled beyond q.\n'
    )


# Paired comparisons reported when both systems were evaluated: (kind a, kind b) means a - b.
PAIRS = (
    ("leser", "sft"),
    ("leser", "rules"),
    ("leser", "sftllm"),
    ("sft", "rules"),
    ("leser", "none"),
    ("sft", "none"),
)


def paired_stats(diffs: np.ndarray, seed: int = 0) -> dict:
    """Mean of per-query differences and its 95% paired bootstrap interval (queries resampled)."""
    low, high = paired_bootstrap_ci(diffs, seed=seed)
    return {"mean": float(diffs.mean()), "ci95": [low, high]}


def per_query_differences(a: dict[str, float], b: dict[str, float]) -> tuple[list[str], np.ndarray]:
    """(queries both systems answered, a - b per such query) of two per-query dNDCG@10 maps."""
    shared = [q for q in a if q in b]
    return shared, np.array([a[q] - b[q] for q in shared], dtype=np.float64)


def levels_in_order(query_levels) -> list[str]:
    """The distinct non-empty levels, in the paper's order (specific first, problem last)."""
    return sorted({lv for lv in query_levels if lv}, key=_level_order)


def paired_comparisons(
    reports: list[SystemReport], seed: int = 0, levels: dict[str, str | None] | None = None
) -> dict[str, dict]:
    """For each pair in PAIRS present once each: the per-query difference of dNDCG@10 (each averaged over its
    system's runs) over the queries both systems answered, its mean, 95% paired bootstrap interval (queries
    resampled with replacement), and query wins / losses. Keyed "a-b" (e.g. "leser-sft"). With `levels` (query ->
    level, synthetic truth), also "by_level": the same mean and interval over each level's queries, since the
    method is meant to help vague queries and to leave specific ones alone."""
    by_kind: dict[str, list[SystemReport]] = {}
    for r in reports:
        by_kind.setdefault(r.name.split(":")[0], []).append(r)
    out = {}
    for a, b in PAIRS:
        if len(by_kind.get(a, ())) != 1 or len(by_kind.get(b, ())) != 1:
            continue
        ra, rb = by_kind[a][0], by_kind[b][0]
        shared, diffs = per_query_differences(ra.per_query_d_ndcg10, rb.per_query_d_ndcg10)
        if not shared:
            continue
        out[f"{a}-{b}"] = {
            "systems": [ra.name, rb.name],
            "n_queries": len(shared),
            "wins": int((diffs > 1e-12).sum()),
            "losses": int((diffs < -1e-12).sum()),
            "d_ndcg10": paired_stats(diffs, seed),
        }
        query_levels = [(levels or {}).get(q) for q in shared]
        if any(query_levels):
            out[f"{a}-{b}"]["by_level"] = {
                level: {"n_queries": int(mask.sum()), "d_ndcg10": paired_stats(diffs[mask], seed)}
                for level in levels_in_order(query_levels)
                for mask in [np.array([lv == level for lv in query_levels])]
            }
    return out


def _level_order(level: str) -> tuple[int, str]:
    order = ("specific", "identifier", "broad", "colloquial", "problem")
    return (order.index(level) if level in order else len(order), level)


def paired_table(paired: dict[str, dict]) -> str:
    if not paired:
        return ""
    lines = [
        "",
        "Paired differences of dNDCG@10 over the same queries (each system's per-query mean over its runs; "
        "95% interval: paired bootstrap over queries, 2,000 resamples):",
        "",
        "| a - b | queries | mean | 95% interval | wins / losses | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for p in paired.values():
        low, high = p["d_ndcg10"]["ci95"]
        verdict = "a better" if low > 0 else "b better" if high < 0 else "not clearly different"
        lines.append(
            f"| {label(p['systems'][0]).split(' (')[0]} - {label(p['systems'][1]).split(' (')[0]} | "
            f"{p['n_queries']} | {p['d_ndcg10']['mean']:+.4f} | [{low:+.4f}, {high:+.4f}] | "
            f"{p['wins']} / {p['losses']} | {verdict} |"
        )
    with_levels = [p for p in paired.values() if p.get("by_level")]
    if with_levels:
        level_names = list(dict.fromkeys(lv for p in with_levels for lv in p["by_level"]))
        lines += [
            "",
            "The same per query level (mean [95% interval] over that level's queries):",
            "",
            "| a - b | "
            + " | ".join(
                f"{lv} ({with_levels[0]['by_level'].get(lv, {}).get('n_queries', 0)})" for lv in level_names
            )
            + " |",  # fmt: skip
            "|---|" + "---|" * len(level_names),
        ]
        for p in with_levels:
            cells = []
            for lv in level_names:
                d = p["by_level"].get(lv)
                if d is None:
                    cells.append("-")
                    continue
                low, high = d["d_ndcg10"]["ci95"]
                cells.append(f"{d['d_ndcg10']['mean']:+.3f} [{low:+.3f}, {high:+.3f}]")
            lines.append(
                f"| {label(p['systems'][0]).split(' (')[0]} - {label(p['systems'][1]).split(' (')[0]} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically (temp file, then rename) and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)


def write_text(path: Path, text: str) -> None:
    with atomic_write_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_results(
    out: Path,
    reports: list[SystemReport],
    meta: dict,
    header: str,
    levels: dict[str, str | None] | None = None,
) -> None:
    paired = paired_comparisons(reports, levels=levels)
    write_text(
        out / "results.md", markdown_table(reports, header) + off_target_note(meta) + paired_table(paired)
    )
    payload = {
        "meta": meta,
        "columns": RUN_METRICS,
        "systems": [r.to_json() for r in reports],
        "paired": paired,
    }
    write_text(out / "results.json", json.dumps(payload, indent=2, allow_nan=True) + "\n")
    write_chart(out / "results.png", reports, meta.get("title", ""))


def read_results(path: Path) -> dict:
    """A results.json written by `write_results`; ValueError naming the file (and line) when it is not one."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not JSON ({err.msg})") from None
    if not isinstance(results, dict) or not isinstance(results.get("systems"), list):
        raise ValueError(f"{path}: no 'systems' list (not a results.json of leser.evaluation)")
    return results


def find_system(results: dict, prefix: str, path: Path) -> dict:
    """The one system of `results` whose name starts with `prefix` (`leser` matches `leser:runs/x/grpo/last`)."""
    matches = [s for s in results["systems"] if str(s.get("name", "")).startswith(prefix)]
    if len(matches) != 1:
        names = ", ".join(str(s.get("name")) for s in results["systems"])
        raise ValueError(f"{path}: {len(matches)} systems start with {prefix!r} (systems: {names})")
    return matches[0]


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
    judged = [r.aggregate["judged10"].mean for r in reports]
    if any(j < 99.99 for j in judged if not math.isnan(j)):
        # judgments with holes: unjudged = 0 next to the condensed list, so "worse" and "not judged" can be told apart
        right.bar(x - 0.2, d_ndcg, 0.4, yerr=[r.aggregate["d_ndcg10"].std for r in reports], capsize=3,
                  color="tab:green", label="unjudged = 0")  # fmt: skip
        right.bar(x + 0.2, [r.aggregate["d_ndcg10_condensed"].mean for r in reports], 0.4,
                  yerr=[r.aggregate["d_ndcg10_condensed"].std for r in reports], capsize=3, color="tab:olive",
                  label="condensed (unjudged removed)")  # fmt: skip
        right.legend(fontsize=8)
    else:
        right.bar(
            x, d_ndcg, 0.5, yerr=[r.aggregate["d_ndcg10"].std for r in reports], capsize=3, color="tab:green"
        )
    right.axhline(0, color="black", linewidth=0.8)
    right.set_xticks(x, names, rotation=25, ha="right")
    right.set_ylabel("NDCG@10 change vs no expansion")
    right.set_title("True relevance")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


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
