"""scripts/abstention_gap.py: abstention per level, the specific - broad gap and paired differences."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import abstention_gap  # noqa: E402


def _write(path: Path, answers: dict[str, tuple[str, list[list[str] | None]]]) -> Path:
    """answers: query -> (level, one entry per run: expansions, or None for an invalid answer)."""
    with path.open("w") as f:
        for query, (level, runs) in answers.items():
            for run, expansions in enumerate(runs):
                row = {"query": query, "run": run, "level": level}
                row |= {"valid": expansions is not None, "expansions": expansions or []}
                f.write(json.dumps(row) + "\n")
    return path


# 4 specific and 4 broad queries, 2 runs each.
SPECIFIC = [f"s{i}" for i in range(4)]
BROAD = [f"b{i}" for i in range(4)]


def _teacher_like(tmp_path):
    answers = {q: ("specific", [[], []]) for q in SPECIFIC}  # always abstains
    answers |= {q: ("broad", [["x"], ["y"]]) for q in BROAD}  # always expands
    return _write(tmp_path / "teacher.jsonl", answers)


def _blurred(tmp_path):
    answers = {q: ("specific", [[], ["x"]]) for q in SPECIFIC}  # abstains in half the runs
    answers |= {q: ("broad", [[], None]) for q in BROAD[:2]}  # one abstention, one invalid answer (not one)
    answers |= {q: ("broad", [["x"], ["y"]]) for q in BROAD[2:]}
    return _write(tmp_path / "blurred.jsonl", answers)


def test_levels_gap_and_paired_difference(tmp_path):
    result = abstention_gap.compare([("teacher", _teacher_like(tmp_path)), ("policy", _blurred(tmp_path))])
    teacher, policy = result["systems"]["teacher"], result["systems"]["policy"]
    assert teacher["levels"]["specific"]["abstain"] == 100 and teacher["levels"]["broad"]["abstain"] == 0
    assert teacher["gap"]["abstain"] == 100 and teacher["gap"]["ci95"] == [100, 100]  # no spread to resample
    assert policy["levels"]["specific"]["abstain"] == 50
    assert policy["levels"]["broad"]["abstain"] == 25  # 2 of 4 queries abstain in 1 of 2 runs
    assert policy["gap"]["abstain"] == 25
    lo, hi = policy["levels"]["broad"]["ci95"]
    assert 0 <= lo < 25 < hi <= 50
    versus = result["versus_first"]["policy"]
    assert versus["gap"]["mean"] == -75 and versus["specific"]["mean"] == -50
    assert versus["gap"]["ci95"][0] <= -75 <= versus["gap"]["ci95"][1] < 0
    table = abstention_gap.markdown(result)
    assert "| teacher | 100 [100, 100] | 0 [0, 0] | 100 [100, 100] |" in table
    assert "| policy | -50 [-50, -50] | +25 [" in table


def test_cli_writes_json_and_names_the_bad_line(tmp_path, capsys):
    out = tmp_path / "gap.json"
    code = abstention_gap.main([f"a={_teacher_like(tmp_path)}", f"b={_blurred(tmp_path)}", "--out", str(out)])
    assert code == 0 and json.loads(out.read_text())["systems"]["b"]["gap"]["abstain"] == 25
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"query": "q", "run": 0, "level": "broad", "valid": true, "expansions": []}\n{"query": \n'
    )
    assert abstention_gap.run_cli(abstention_gap.main, [f"a={bad}"]) == 2
    assert f"{bad}:2: not JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["teacher"], "expected LABEL=generations.jsonl"),
        (["a=TEACHER", "a=TEACHER"], "two systems share a label"),
        (["a=TEACHER", "b=OTHER"], "answered other queries"),
    ],
)
def test_cli_rejects_unpairable_input(tmp_path, capsys, argv, message):
    teacher = _teacher_like(tmp_path)
    other = _write(tmp_path / "other.jsonl", {"s0": ("specific", [[]]), "b0": ("broad", [["x"]])})
    argv = [a.replace("TEACHER", str(teacher)).replace("OTHER", str(other)) for a in argv]
    assert abstention_gap.run_cli(abstention_gap.main, argv) == 2
    assert message in capsys.readouterr().err
