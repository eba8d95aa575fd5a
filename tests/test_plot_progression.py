"""scripts/plot_progression.py: one figure of a policy across its stages from evaluation results."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import plot_progression  # noqa: E402


def _results(path: Path, systems: dict[str, dict[str, float]]) -> Path:
    """systems: name -> {metric: mean}; std 1.0 everywhere."""
    path.write_text(
        json.dumps(
            {
                "systems": [
                    {"name": name, "aggregate": {k: {"mean": v, "std": 1.0} for k, v in metrics.items()}}
                    for name, metrics in systems.items()
                ]
            }
        )
    )
    return path


METRICS = {"d_ndcg10": 0.04, "validity": 94.0, "abstain_specific": 77.0, "abstain_broad": 5.0}


def test_points_follow_the_given_order_and_the_teacher_comes_from_the_first_file(tmp_path, capsys):
    first = _results(
        tmp_path / "a.json",
        {"rules": {**METRICS, "validity": 100.0}, "sft:runs/x/sft/last": METRICS},
    )
    second = _results(tmp_path / "b.json", {"leser:runs/x/grpo/last": {**METRICS, "abstain_specific": 93.0}})
    out = tmp_path / "fig.png"
    code = plot_progression.main([f"SFT={first}:sft", f"stage 2={second}:leser", "--out", str(out)])
    assert code == 0 and out.read_bytes().startswith(b"\x89PNG")
    labels, values, teacher = plot_progression.collect([f"SFT={first}:sft", f"stage 2={second}:leser"])
    assert labels == ["SFT", "stage 2"]
    assert values["abstain_specific"] == [(77.0, 1.0), (93.0, 1.0)]
    assert teacher["validity"] == 100.0
    assert "stage 2: d_ndcg10 0.040, validity 94.000, abstain_specific 93.000" in capsys.readouterr().out


def test_a_missing_metric_is_nan_not_zero(tmp_path):
    path = _results(tmp_path / "a.json", {"none": {"d_ndcg10": 0.0}})
    _, values, _ = plot_progression.collect([f"none={path}:none"])
    assert values["validity"][0][0] != values["validity"][0][0]  # NaN: nothing to plot, not a 0% point


@pytest.mark.parametrize(
    "point, message",
    [
        ("no-equals-sign", "a point is LABEL=RESULTS_JSON:SYSTEM"),
        ("label=path-without-system", "a point is LABEL=RESULTS_JSON:SYSTEM"),
        ("x={missing}:sft", "cannot read"),
        ("x={bad}:sft", ":1: not JSON"),
        ("x={two}:leser", "2 systems start with 'leser'"),
        ("x={two}:sft", "0 systems start with 'sft'"),
    ],
)
def test_bad_points_fail_with_one_line_naming_the_file(tmp_path, capsys, point, message):
    (tmp_path / "bad.json").write_text("{oops")
    two = _results(tmp_path / "two.json", {"leser:a": METRICS, "leser:b": METRICS})
    point = point.format(missing=tmp_path / "missing.json", bad=tmp_path / "bad.json", two=two)
    out = tmp_path / "fig.png"
    code = plot_progression.run_cli(plot_progression.main, [point, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and not out.exists()
    assert err.startswith("error: ") and message in err and "\n" not in err
