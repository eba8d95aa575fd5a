"""scripts/latest_checkpoint.py, scripts/plot_grpo.py and the Makefile's profile choice (no training here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from data_prep.cli import run_cli
from tests.fixtures_recipes import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import latest_checkpoint  # noqa: E402
import plot_grpo  # noqa: E402


def make_checkpoint(run_dir, version, step, complete=True):
    folder = run_dir / version / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if complete:
        (folder / "config.json").write_text("{}")
    return folder


def test_latest_checkpoint_picks_newest_complete_one(tmp_path):
    make_checkpoint(tmp_path, "v0-20261124-010000", 50)
    newest = make_checkpoint(tmp_path, "v1-20261124-020000", 5)
    make_checkpoint(tmp_path, "v1-20261124-020000", 10, complete=False)  # still being written: skipped
    make_checkpoint(tmp_path, "v1-20261124-020000", 2)  # lower step of the same version
    assert latest_checkpoint.latest_checkpoint(tmp_path) == newest


def test_latest_checkpoint_link_is_relative_and_replaced(tmp_path):
    first = make_checkpoint(tmp_path, "v0-20261124-010000", 3)
    link = tmp_path / "last"
    assert latest_checkpoint.main([str(tmp_path), "--link", str(link)]) == 0
    assert link.resolve() == first.resolve() and not link.readlink().is_absolute()
    second = make_checkpoint(tmp_path, "v1-20261124-020000", 1)  # the `last` link itself is not a version
    assert latest_checkpoint.main([str(tmp_path), "--link", str(link)]) == 0
    assert link.resolve() == second.resolve()


@pytest.mark.parametrize(
    "layout",
    [
        "missing",  # no run directory at all
        "empty",  # a run directory without checkpoints
        "incomplete",  # only a checkpoint without config.json
    ],
)
def test_latest_checkpoint_errors_name_the_folder(tmp_path, layout, capsys):
    run_dir = tmp_path / "runs"
    if layout != "missing":
        run_dir.mkdir()
    if layout == "incomplete":
        make_checkpoint(run_dir, "v0-20261124-010000", 1, complete=False)
    assert run_cli(latest_checkpoint.main, [str(run_dir)]) == 2
    assert str(run_dir) in capsys.readouterr().err


GRPO_ROWS = [
    {
        "loss": 0.01,
        "reward": 0.5,
        "rewards/leser_format/mean": 0.25,
        "kl": 0.0,
        "global_step/max_steps": "1/3",
    },
    {
        "loss": 0.02,
        "reward": 0.9,
        "rewards/leser_format/mean": 0.75,
        "kl": 0.002,
        "global_step/max_steps": "2/3",
    },
    {
        "loss": 0.03,
        "reward": 1.2,
        "rewards/leser_format/mean": 1.0,
        "kl": 0.004,
        "global_step/max_steps": "3/3",
    },
    {"train_runtime": 12.0, "global_step/max_steps": "3/3"},  # ms-swift's summary row: not a step
]


def test_plot_grpo_reads_newest_version_and_writes_png(tmp_path, capsys):
    old = tmp_path / "v0-20261124-010000"
    new = tmp_path / "v1-20261124-020000"
    for folder, rows in [(old, GRPO_ROWS[:1]), (new, GRPO_ROWS)]:
        folder.mkdir()
        (folder / "logging.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "curves.png"
    assert plot_grpo.main([str(tmp_path), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = plot_grpo.read_curves(new / "logging.jsonl")
    assert curves.steps == [1, 2, 3]
    assert curves.series["rewards/leser_format/mean"] == [0.25, 0.75, 1.0]
    assert "last 1.2000" in capsys.readouterr().out


def test_plot_grpo_bad_line_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "logging.jsonl"
    path.write_text(json.dumps(GRPO_ROWS[0]) + "\n{not json\n")
    assert run_cli(plot_grpo.main, [str(path), "--out", str(tmp_path / "x.png")]) == 2
    assert f"{path}:2" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def make_dry_run(*args: str) -> str:
    """`make -n` output: the commands make would run, nothing executed."""
    result = subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return result.stdout


@pytest.mark.parametrize(
    ("gpus", "recipe"),
    [
        ("0", "recipes/SmolLM2-135M-Instruct/sft/cpu.yaml"),  # no GPU: the CPU demo profile
        ("1", "recipes/Llama-3.2-3B-Instruct/sft/1gpu.yaml"),  # one GPU
        ("8", "recipes/Llama-3.2-3B-Instruct/sft/paper.yaml"),  # a node of GPUs: the paper
    ],
)
def test_make_sft_profile_follows_gpu_count(gpus, recipe):
    out = make_dry_run("sft", f"GPU={gpus}", "SPLITS=tests", "SMOLLM2=tests")  # dry run: nothing built
    assert f".venv/bin/swift sft {recipe}" in out
    assert (REPO_ROOT / recipe).is_file()


def test_make_grpo_passes_model_steps_and_extra_args():
    out = make_dry_run(
        "grpo", "PROFILE=paper", "SPLITS=tests", "MODEL=/ckpt/x", "MAX_STEPS=2", "SWIFT_ARGS=--seed 7"
    )
    # on a fresh clone the dry run also lists the data chain (whose synth command has its own --seed 7):
    # look only at the swift command line
    commands = out.replace("\\\n", " ").splitlines()  # join make's backslash-continued lines
    swift_line = next(line for line in commands if ".venv/bin/swift rlhf" in line)
    # the stop file of the leser_time_budget callback sits in the run's GRPO folder (touch it to save and stop)
    assert swift_line.startswith("LESER_STOP_FILE=runs/paper/grpo/STOP .venv/bin/swift rlhf ")
    assert ".venv/bin/swift rlhf recipes/Llama-3.2-3B-Instruct/grpo/paper.yaml" in swift_line
    assert (
        "--model /ckpt/x" in swift_line
        and "--max_steps 2" in swift_line
        and swift_line.index("--max_steps 2") < swift_line.index("--seed 7")
    )


def test_make_grpo_no_warmup_keeps_the_recipes_base_model():
    out = make_dry_run(
        "grpo", "PROFILE=paper", "GRPO_VARIANT=no_warmup", "SPLITS=tests", "RUN_DIR=/nonexistent"
    )
    assert "grpo/no_warmup.yaml" in out and "--model" not in out


def test_learn_1gpu_script_refuses_missing_data_in_one_line(tmp_path):
    """scripts/gpu/learn_1gpu.sh checks its inputs before it starts anything: a missing split is one error line
    naming the file and the command that builds it, exit 2."""
    script = REPO_ROOT / "scripts" / "gpu" / "learn_1gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    env = {**os.environ, "SPLITS": str(tmp_path / "nosplits"), "RUN": str(tmp_path / "run")}
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nosplits/sft.jsonl" in lines[0]
    assert "make data PROFILE=learn" in lines[0]
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def _results(path, name, per_query, split="eval.jsonl", temperature=0.5):
    meta = {"dataset": "d", "split": split, "temperature": temperature, "top_k": 100, "truth": "oracle"}
    path.write_text(json.dumps({"meta": meta, "systems": [{"name": name, "per_query_d_ndcg10": per_query}]}))
    return path


def test_compare_evals_pairs_systems_of_two_result_files(tmp_path, capsys):
    import compare_evals

    a = _results(tmp_path / "a.json", "sft:new", {"q1": 0.3, "q2": 0.2, "q3": 0.1, "only a": 1.0})
    b = _results(tmp_path / "b.json", "sft:old", {"q1": 0.1, "q2": 0.1, "q3": 0.1, "only b": -1.0})
    out = tmp_path / "cmp.json"
    assert run_cli(compare_evals.main, [str(a), str(b), "--system-a", "sft:", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    stats = result["d_ndcg10"]
    assert result["systems"] == ["sft:new", "sft:old"]
    assert stats["n_queries"] == 3 and (stats["wins"], stats["losses"]) == (2, 0)  # only shared queries
    assert stats["mean"] == pytest.approx(0.1)
    assert stats["ci95"][0] <= stats["mean"] <= stats["ci95"][1] and stats["ci95"][0] >= 0.0
    assert "| all | 3 | +0.100 |" in capsys.readouterr().out
    levels = {"q1": "broad", "q2": "broad", "q3": "specific"}
    by_level = compare_evals.compare(
        json.loads(a.read_text())["systems"][0], json.loads(b.read_text())["systems"][0], levels
    )["by_level"]
    assert list(by_level) == ["specific", "broad"] and by_level["broad"]["mean"] == pytest.approx(0.15)


@pytest.mark.parametrize(
    ("b_kwargs", "prefix", "message"),
    [
        ({"temperature": 0.9}, "", "meta field 'temperature'"),  # another protocol: not comparable
        ({}, "leser:", "0 systems start with 'leser:'"),
    ],
)
def test_compare_evals_refuses_mismatches_in_one_line(tmp_path, capsys, b_kwargs, prefix, message):
    import compare_evals

    a = _results(tmp_path / "a.json", "sft:a", {"q": 0.1})
    b = _results(tmp_path / "b.json", "sft:b", {"q": 0.0}, **b_kwargs)
    assert run_cli(compare_evals.main, [str(a), str(b), "--system-b", prefix]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "b.json" in err and "\n" not in err
