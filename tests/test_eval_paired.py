"""Paired comparisons of the evaluation (results.json "paired"), the probe curve's checkpoint choice and the
reward diagnosis' reading of ms-swift's completions.jsonl."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from leser.evaluation.harness import SystemReport
from leser.evaluation.report import paired_comparisons, paired_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import diagnose_reward  # noqa: E402
import probe_curve  # noqa: E402


def report(name: str, per_query: dict[str, float]) -> SystemReport:
    run = {k: 0.0 for k in ("pct_d_ret_pos", "pct_d_rel_pos", "mean_d_ret", "mean_d_rel", "ndcg10")}
    run.update(
        d_ndcg10=float(np.mean(list(per_query.values()))),
        validity=100.0,
        mean_n_expansions=1.0,
        abstain_specific=0.0,
        abstain_broad=0.0,
        new_relevant=0.0,
        queries_per_s=1.0,
        rm_pairwise_acc=0.5,
    )
    return SystemReport(name, "-", [run], True, len(per_query), {}, 0, per_query_d_ndcg10=per_query)


QUERIES = [f"q{i}" for i in range(40)]


@pytest.mark.parametrize(
    ("leser_minus_sft", "verdict"),
    [
        (0.05, "a better"),  # LESER better on every query: the interval sits above 0
        (-0.05, "b better"),
        (0.0, "not clearly different"),
    ],
)
def test_paired_difference_mean_interval_and_verdict(leser_minus_sft, verdict):
    rng = np.random.default_rng(0)
    sft = {q: float(v) for q, v in zip(QUERIES, rng.normal(0.05, 0.02, len(QUERIES)), strict=True)}
    noise = rng.normal(0, 0.005, len(QUERIES)) if leser_minus_sft else np.zeros(len(QUERIES))
    leser = {q: sft[q] + leser_minus_sft + n for q, n in zip(QUERIES, noise, strict=True)}
    paired = paired_comparisons(
        [report("sft:a", sft), report("leser:b", leser), report("none", dict.fromkeys(QUERIES, 0.0))]
    )
    p = paired["leser-sft"]
    diffs = np.array([leser[q] - sft[q] for q in QUERIES])
    assert p["n_queries"] == 40 and p["systems"] == ["leser:b", "sft:a"]
    assert p["d_ndcg10"]["mean"] == pytest.approx(diffs.mean())
    low, high = p["d_ndcg10"]["ci95"]
    assert low <= diffs.mean() <= high
    assert p["wins"] == int((diffs > 1e-12).sum()) and p["losses"] == int((diffs < -1e-12).sum())
    assert verdict in paired_table(paired)
    assert set(paired) == {"leser-sft", "leser-none", "sft-none"}  # no rules system: no rules pairs


def test_paired_uses_only_shared_queries_and_skips_ambiguous_kinds():
    a = report("leser:x", {"q1": 0.2, "q2": 0.1})
    b = report("rules", {"q2": 0.0, "q3": 0.5})
    paired = paired_comparisons([a, b])
    assert paired["leser-rules"]["n_queries"] == 1 and paired["leser-rules"]["d_ndcg10"][
        "mean"
    ] == pytest.approx(0.1)
    # two LESER checkpoints: which one "leser" means is ambiguous, so no leser pair is reported
    assert "leser-rules" not in paired_comparisons([a, report("leser:y", {"q2": 0.3}), b])
    assert paired_table({}) == ""


def test_paired_by_level_splits_the_same_differences_per_query_level():
    # 4 broad queries where LESER loses 0.02 each, 2 problem queries where it wins 0.3 and 0.1: hand-computed means
    sft = {f"b{i}": 0.05 for i in range(4)} | {"p0": 0.0, "p1": 0.0}
    leser = {f"b{i}": 0.03 for i in range(4)} | {"p0": 0.3, "p1": 0.1}
    levels = {f"b{i}": "broad" for i in range(4)} | {"p0": "problem", "p1": "problem", "other": "specific"}
    paired = paired_comparisons([report("sft:a", sft), report("leser:b", leser)], levels=levels)
    by_level = paired["leser-sft"]["by_level"]
    assert list(by_level) == ["broad", "problem"]  # the paper's level order; no shared query is specific
    assert by_level["broad"]["n_queries"] == 4 and by_level["broad"]["d_ndcg10"]["mean"] == pytest.approx(
        -0.02
    )
    assert by_level["broad"]["d_ndcg10"]["ci95"] == pytest.approx([-0.02, -0.02])  # identical differences
    assert by_level["problem"]["n_queries"] == 2 and by_level["problem"]["d_ndcg10"]["mean"] == pytest.approx(
        0.2
    )
    low, high = by_level["problem"]["d_ndcg10"]["ci95"]
    assert 0.1 - 1e-9 <= low <= high <= 0.3 + 1e-9
    table = paired_table(paired)
    assert "| a - b | broad (4) | problem (2) |" in table and "-0.020 [-0.020, -0.020]" in table
    # real catalogs have no levels: no by_level, no second table
    plain = paired_comparisons([report("sft:a", sft), report("leser:b", leser)], levels=dict.fromkeys(levels))
    assert "by_level" not in plain["leser-sft"] and "per query level" not in paired_table(plain)


def _checkpoint(root: Path, version: str, step: int) -> Path:
    path = root / version / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


def test_probe_points_every_n_steps_plus_the_last(tmp_path):
    start = tmp_path / "sft"
    start.mkdir()
    for step in (25, 50, 75):
        _checkpoint(tmp_path / "grpo", "v0-a", step)
    (tmp_path / "grpo" / "v0-a" / "checkpoint-100").mkdir()  # no config.json: an unfinished save is skipped
    resumed = _checkpoint(tmp_path / "grpo", "v1-b", 110)  # a resumed run continues the step numbers
    points = probe_curve.probe_points(start, tmp_path / "grpo", every=50)
    assert list(points) == [0, 50, 110] and points[0] == start and points[110] == resumed
    assert list(probe_curve.probe_points(start, tmp_path / "nothing", every=50)) == [0]


def test_read_completions_columnar_and_rows(tmp_path):
    prompt = 'Expand ...\n\nQuery: "red "pro" mouse"\nSearch results:\n[1] ...'
    table = {
        "step": ["1", "1"],
        "prompt": [[{"role": "user", "content": prompt}]] * 2,
        "completion": ['<think></think><answer>{"expansion": []}</answer>', "x"],
        "leser_reward": [1.1, 0.0],
        "advantages": [0.5, -0.5],
    }
    path = tmp_path / "completions.jsonl"
    path.write_text(
        json.dumps(table)
        + "\n"
        + json.dumps({"step": "2", "query": "desk", "completion": "y", "leser_reward": 0.0})
        + "\n"
    )
    rows = diagnose_reward.read_completions(path)
    assert [r["step"] for r in rows] == [1, 1, 2]
    assert rows[0]["query"] == 'red "pro" mouse' and rows[2]["query"] == "desk"
    assert rows[1]["leser_reward"] == 0.0
    path.write_text("not json\n")
    with pytest.raises(ValueError, match=r"completions.jsonl:1"):
        diagnose_reward.read_completions(path)


def test_report_saved_before_a_column_existed_shows_nan_there():
    old = report("sft:a", {"q1": 0.1})  # its runs lack the condensed-NDCG and judged@10 columns
    assert math.isnan(old.aggregate["judged10"].mean) and old.aggregate["d_ndcg10"].mean == pytest.approx(0.1)


def test_advantage_push_splits_each_level_by_kind_of_sample():
    rows = [
        {"level": "broad", "valid": True, "abstains": True, "advantages": 0.4},
        {"level": "broad", "valid": True, "abstains": False, "advantages": 0.8},
        {"level": "broad", "valid": False, "abstains": False, "advantages": -1.2},
        {"level": "specific", "valid": True, "abstains": True, "advantages": 0.1},
        {"level": "specific", "valid": True, "abstains": True, "advantages": 0.3},
        {"level": "specific", "valid": True, "abstains": False, "advantages": None},  # not logged: skipped
    ]
    push = diagnose_reward.advantage_push(rows)
    assert list(push) == ["specific", "broad", "all"]
    assert push["broad"]["fails the gate"] == {"n": 1, "mean": -1.2, "sum": -1.2}
    assert push["specific"] == {"abstains": {"n": 2, "mean": pytest.approx(0.2), "sum": pytest.approx(0.4)}}
    assert push["all"]["abstains"]["n"] == 3 and push["all"]["expands"]["sum"] == pytest.approx(0.8)
