"""CPU smoke of the user path: `make sft` then `make grpo`, 2 optimizer steps each, on a tiny marketplace.

Real ms-swift, real SmolLM2-135M, the real LESER plugin and search engine; only the sizes shrink (short sequences,
2 samples per prompt of <= 32 tokens) so that both runs fit a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures_recipes import REPO_ROOT
from tests.fixtures_reward import write_settings


def run_make(target: str, env: dict, *variables: str) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", target, *variables],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"make {target} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"


@pytest.mark.slow
def test_make_sft_then_grpo_two_steps_on_cpu(base_model_dir, training_world, small_splits, tmp_path):
    settings = write_settings(
        tmp_path / "leser.yaml", str(training_world["index"]), str(training_world["relevance"])
    )
    env = {**os.environ, "LESER_CONFIG": str(settings)}
    run_dir = tmp_path / "runs"
    common = [
        "PROFILE=cpu",
        f"DATA={training_world['dataset']}",
        f"INDEX={training_world['index']}",
        f"RELEVANCE={training_world['relevance']}",
        f"SPLITS={small_splits}",
        f"RUN_DIR={run_dir}",
        "MAX_STEPS=2",
    ]
    run_make(
        "sft",
        env,
        *common,
        "SWIFT_ARGS=--max_length 768 --per_device_train_batch_size 1 --gradient_accumulation_steps 1",
    )
    sft_last = run_dir / "sft" / "last"
    assert (sft_last / "config.json").is_file() and sft_last.name == "last"
    assert sft_last.resolve().name == "checkpoint-2"

    run_make(
        "grpo",
        env,
        *common,
        "SWIFT_ARGS=--max_length 768 --max_completion_length 32 --num_generations 2 --per_device_train_batch_size 2",
    )
    grpo_last = (run_dir / "grpo" / "last").resolve()
    assert grpo_last.name == "checkpoint-2" and (grpo_last / "config.json").is_file()
    args = json.loads((grpo_last.parent / "args.json").read_text())
    assert Path(args["model"]).resolve() == sft_last.resolve()  # GRPO started from the latest SFT checkpoint
    rows = [json.loads(line) for line in (grpo_last.parent / "logging.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward" in r]
    assert len(steps) == 2
    for row in steps:
        for key in ("rewards/leser_reward/mean", "rewards/leser_format/mean", "kl"):
            assert key in row, f"logging.jsonl lacks {key}: {sorted(row)}"
        assert 0.0 <= row["rewards/leser_format/mean"] <= 1.0
    assert (run_dir / "grpo" / "grpo_curves.png").stat().st_size > 0


def make_output(*arguments: str) -> str:
    """stdout of `make ARGUMENTS` (asserting success), with no GPU detected."""
    result = subprocess.run(
        ["make", "--no-print-directory", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GPU": "0"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def dry_run(target: str, *variables: str) -> str:
    """The commands `make TARGET` would run (make -n), without running them."""
    return make_output("-n", target, *variables)


def test_make_sft_llm_trains_the_sft_recipe_on_the_rejection_sampled_split(tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "sft.jsonl").write_text("")
    run_dir = tmp_path / "runs"
    variables = (f"SPLITS={splits}", f"RUN_DIR={run_dir}", "PROFILE=cpu", f"SMOLLM2={tmp_path}")
    (tmp_path / "config.json").write_text("{}")
    sft_llm = next(line for line in dry_run("sft-llm", *variables).splitlines() if " sft " in line)
    sft = next(line for line in dry_run("sft", *variables).splitlines() if " sft " in line)
    # the warm-up's command with only the dataset and the output folder swapped
    swapped = sft.replace(f"{splits}/sft.jsonl", f"{splits}/sft_llm.jsonl").replace(
        f"{run_dir}/sft ", f"{run_dir}/sft_llm "
    )
    assert sft_llm == swapped and sft_llm != sft
    assert f"--link {run_dir}/sft_llm/last" in dry_run("sft-llm", *variables)


def test_make_eval_adds_the_sft_llm_baseline_only_once_it_is_trained(tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "sft.jsonl").write_text("")
    run_dir = tmp_path / "runs"
    variables = (f"SPLITS={splits}", f"RUN_DIR={run_dir}", "PROFILE=cpu")

    def systems() -> list[str]:
        return dry_run("eval", *variables).split("--systems ")[1].split()[0].split(",")

    before = systems()
    assert f"sft:{run_dir}/sft/last" in before and not any(s.startswith("sftllm:") for s in before)
    (run_dir / "sft_llm" / "checkpoint-1").mkdir(parents=True)
    (run_dir / "sft_llm" / "last").symlink_to("checkpoint-1")
    after = systems()
    assert f"sftllm:{run_dir}/sft_llm/last" in after
    assert [s for s in after if not s.startswith("sftllm:")] == before


def test_make_grpo_low_recall_selects_the_null_result_prompts_first(tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "sft.jsonl").write_text("")
    variables = (f"SPLITS={splits}", f"RUN_DIR={tmp_path / 'runs'}", "PROFILE=cpu", f"MODEL={tmp_path}")

    def commands(*extra: str) -> list[list[str]]:
        return [
            line.split() for line in dry_run("grpo", *variables, *extra).replace("\\\n", " ").splitlines()
        ]

    def dataset(cmds) -> str:
        swift = next(c for c in cmds if "rlhf" in c)
        return swift[swift.index("--dataset") + 1]

    default = commands()
    assert dataset(default) == f"{splits}/grpo.jsonl"
    assert not any("scripts/select_grpo_prompts.py" in c for c in default)
    low = commands("GRPO_PROMPTS=low_recall")
    assert dataset(low) == f"{splits}/grpo_low_recall.jsonl"
    select = next(i for i, c in enumerate(low) if "scripts/select_grpo_prompts.py" in c)
    assert low[select][-6:] == ["--split", f"{splits}/grpo.jsonl", "--max-recall", "0", "--out",
                                f"{splits}/grpo_low_recall.jsonl"]  # fmt: skip
    assert select < next(i for i, c in enumerate(low) if "rlhf" in c)
    # once selected, the split is reused
    (splits / "grpo_low_recall.jsonl").write_text("")
    assert not any("scripts/select_grpo_prompts.py" in c for c in commands("GRPO_PROMPTS=low_recall"))


def make_variable(name: str, *variables: str) -> str:
    """The value make gives variable NAME, with the command-line VARIABLES (nothing runs)."""
    return make_output("-s", f"--eval=print-var: ; @echo $({name})", "print-var", *variables).strip()


def test_experiment_evaluates_the_stage2_policy_only_when_a_second_stage_is_asked_for():
    def leser_system(*variables: str) -> str:
        systems = make_variable("LEARN_EVAL", *variables).split("EVAL_SYSTEMS=")[1].split()[0]
        return next(s for s in systems.split(",") if s.startswith("leser:"))

    assert leser_system() == "leser:runs/learn/grpo/last"
    assert leser_system("GRPO_STAGE2_STEPS=0") == "leser:runs/learn/grpo/last"
    assert leser_system("GRPO_STAGE2_STEPS=60") == "leser:runs/learn/stage2/grpo/last"
    # the warm-up stays the SFT checkpoint either way
    assert "sft:runs/learn/sft/last" in make_variable("LEARN_EVAL", "GRPO_STAGE2_STEPS=60")
