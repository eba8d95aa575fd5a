"""Every recipe is a valid ms-swift 4.6 configuration, and the paper's hyperparameters are where PAPER.md says.

Two levels of checking, because the GPU recipes name packages this CPU machine does not have (DeepSpeed, vLLM):
1. argument names, types and choices: ms-swift's own parser (HfArgumentParser over SftArguments / RLHFArguments,
   exactly what `swift sft|rlhf file.yaml` runs) must accept every key with nothing left over;
2. the full argument objects with their __post_init__ checks (batch divisibility, GRPO settings, template and model
   type), with the model swapped for the local SmolLM2 folder, `use_cpu` set and, for GPU recipes only, `deepspeed`
   and the vLLM keys removed (they need CUDA packages; level 1 already checked their names and types).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from tests.fixtures_recipes import RECIPES, REPO_ROOT, load_recipe, recipe_argv

GPU_ONLY_KEYS = (
    "deepspeed",
    "use_vllm",
    "vllm_mode",
    "vllm_gpu_memory_utilization",
    "vllm_tensor_parallel_size",
    "vllm_max_model_len",
    "sleep_level",
    "offload_optimizer",
    "offload_model",
)
RECIPE_IDS = [str(p.relative_to(REPO_ROOT / "recipes")) for p in RECIPES]


def args_class(path: Path):
    from swift.arguments import RLHFArguments, SftArguments

    return RLHFArguments if path.parent.name == "grpo" else SftArguments


def test_recipes_cover_every_profile():
    names = set(RECIPE_IDS)
    for expected in [
        "Llama-3.2-3B-Instruct/sft/paper.yaml",  # the paper profile
        "Llama-3.2-3B-Instruct/grpo/paper.yaml",
        "Llama-3.2-3B-Instruct/grpo/no_warmup.yaml",  # ablation: GRPO without warm-up
        "Llama-3.2-1B-Instruct/sft/paper.yaml",  # ablation: 1B backbone
        "Llama-3.2-1B-Instruct/grpo/paper.yaml",
        "Llama-3.1-8B-Instruct/sft/paper.yaml",  # ablation: 8B backbone
        "Llama-3.1-8B-Instruct/grpo/paper.yaml",
        "Llama-3.2-3B-Instruct/sft/1gpu.yaml",  # one GPU
        "Llama-3.2-3B-Instruct/grpo/1gpu.yaml",
        "SmolLM2-135M-Instruct/sft/cpu.yaml",  # the CPU demo
        "SmolLM2-135M-Instruct/grpo/cpu.yaml",
    ]:
        assert expected in names


@pytest.mark.parametrize("path", RECIPES, ids=RECIPE_IDS)
def test_recipe_header_and_sections(path):
    text = path.read_text()
    header = text.split("\nENV:")[0]
    for word in ("Hardware:", "Memory", "Run time", "Run:"):
        assert word in header, f"{path}: header lacks {word!r}"
    sections = ["# --- model", "# --- data", "# --- trainer"]
    if path.parent.name == "grpo":
        sections += ["# --- rollout", "# --- reward"]
    for section in sections:
        assert section in text, f"{path}: no {section!r} section"


@pytest.mark.parametrize("path", RECIPES, ids=RECIPE_IDS)
def test_recipe_keys_parse_with_ms_swift(path):
    from swift.utils.utils import HfArgumentParser, _patch_get_type_hints

    config, env = load_recipe(path)
    # exact names: argparse would also accept a unique prefix (e.g. `temperatur`), which reads as a typo
    unknown = set(config) - {f.name for f in dataclasses.fields(args_class(path))}
    assert not unknown, f"{path}: keys that are not ms-swift 4.6 argument names: {sorted(unknown)}"
    with _patch_get_type_hints():
        parser = HfArgumentParser([args_class(path)])
    namespace, remaining = parser.parse_known_args(recipe_argv(config))
    assert remaining == [], f"{path}: keys ms-swift 4.6 does not know: {remaining}"
    # a typo in a value of a Literal (e.g. rlhf_type, torch_dtype) makes argparse exit; reaching here means valid
    assert namespace.tuner_type == "full"
    assert all(isinstance(v, str) for v in env.values()), f"{path}: ENV values must be strings"


@pytest.fixture
def restore_environ():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.slow
@pytest.mark.parametrize("path", RECIPES, ids=RECIPE_IDS)
def test_recipe_builds_ms_swift_arguments(path, base_model_dir, tmp_path, restore_environ):
    from swift.utils import parse_args

    config, _ = load_recipe(path)
    config.update(model=str(base_model_dir), output_dir=str(tmp_path / "out"), add_version=False)
    if "use_vllm" in config and config["use_vllm"]:
        for key in GPU_ONLY_KEYS:
            config.pop(key, None)
    config.pop("deepspeed", None)
    config.pop("use_hf", None)
    config["use_cpu"] = (
        True  # bf16 GPU recipes: transformers refuses bf16 without a GPU unless told it is a CPU
    )
    args, remaining = parse_args(args_class(path), recipe_argv(config))
    assert remaining == []
    assert args.tuner_type == "full"
    if path.parent.name == "grpo":
        assert args.rlhf_type == "grpo"
        # one process here: a generation batch of per-device x accumulation completions must hold whole groups
        assert args.per_device_train_batch_size * args.gradient_accumulation_steps % args.num_generations == 0
        if args.beta > 0:  # a frozen reference model for the KL term
            assert args.ref_model == str(base_model_dir)
        else:  # beta = 0 (the learn profile): no reference model is loaded at all
            assert args.ref_model is None
    # 'delete' reaches the template as 'raise': an over-long row fails to encode and is dropped (SFT) or resampled
    # (GRPO), so no prompt is ever cut
    assert args.truncation_strategy == "delete"
    assert args.get_template_kwargs()["truncation_strategy"] == "raise"


# ms-swift 4.6 truncation strategies (TemplateArguments / RLHFArguments.truncation_strategy): "left" cuts the start of
# the sequence (the system prompt and the instruction; GRPO's default when unset), "right" cuts its end (the
# answer in SFT; GRPO refuses it), "split" is for pre-training only; "delete" drops an over-long row (SFT filters it
# out of the dataset, GRPO resamples another prompt and fails when it cannot find one).
PROMPT_SAFE_TRUNCATION = ("delete",)


@pytest.mark.parametrize("path", RECIPES, ids=RECIPE_IDS)
def test_recipe_truncation_never_cuts_the_prompt(path):
    config, _ = load_recipe(path)
    assert config.get("truncation_strategy") in PROMPT_SAFE_TRUNCATION, (
        f"{path}: truncation_strategy {config.get('truncation_strategy')!r}; unset, GRPO cuts the prompt's start"
    )
    line = next(x for x in path.read_text().splitlines() if x.startswith("truncation_strategy:"))
    assert "#" in line, f"{path}: say why on the truncation_strategy line"


def test_ms_swift_truncation_choices_are_the_ones_this_file_knows():
    """A new ms-swift with other strategies or another GRPO default needs PROMPT_SAFE_TRUNCATION reviewed."""
    import typing

    from swift.arguments import RLHFArguments, SftArguments

    for cls in (SftArguments, RLHFArguments):
        field = {f.name: f for f in dataclasses.fields(cls)}["truncation_strategy"]
        assert set(typing.get_args(field.type)) == {"delete", "left", "right", "split", None}, cls
        # None becomes 'delete' for SFT, 'left' for GRPO (RLHFArguments._init_grpo)
        assert field.default is None, cls


@pytest.mark.parametrize(
    "path", [p for p in RECIPES if p.parent.name == "grpo"], ids=lambda p: p.parent.parent.name + "/" + p.name
)
def test_reward_funcs_are_registered_by_the_plugin(path, swift_plugin_orms):
    from swift.callbacks import callbacks_map
    from swift.utils import import_external_file

    config, env = load_recipe(path)
    plugins = config["external_plugins"]
    plugins = [plugins] if isinstance(plugins, str) else plugins
    assert "swift_plugins/leser_reward.py" in plugins
    for plugin in plugins:
        assert (REPO_ROOT / plugin).is_file(), plugin
        import_external_file(str(REPO_ROOT / plugin))
    for name in config.get("callbacks", []):  # looked up in callbacks_map when the trainer is built
        assert name in callbacks_map, f"{path}: callbacks {name!r} is not registered by its plugins"
    for name in config["reward_funcs"]:
        assert name in swift_plugin_orms, (
            f"{path}: reward_funcs {name!r} is not in orms after loading the plugin"
        )
    assert len(config["reward_weights"]) == len(config["reward_funcs"])
    assert config["reward_weights"][0] == 1.0 and config["reward_funcs"][0] == "leser_reward"
    assert sum(config["reward_weights"]) == 1.0  # only Eq. 1 drives the advantage; the rest are diagnostics
    assert (REPO_ROOT / env["LESER_CONFIG"]).is_file()


PAPER_SFT = {  # key: value the paper states (PAPER.md "The method in brief", Training)
    "learning_rate": 1e-7,
    "warmup_ratio": 0.05,
    "num_train_epochs": 1,
    "max_length": 2048,
    "deepspeed": "zero3",
    "torch_dtype": "bfloat16",
}
PAPER_GRPO = {
    "num_generations": 4,
    "temperature": 0.9,
    "learning_rate": 1e-6,
    "beta": 0.04,
    "gradient_accumulation_steps": 1,
    # the paper's objective (Sec. 3.4): A_i = r_i - mean(r) without the group std, a sequence-level ratio
    "scale_rewards": "none",
    "importance_sampling_level": "sequence",
}
PAPER_OBJECTIVE = ("scale_rewards", "importance_sampling_level")


@pytest.mark.parametrize(
    "backbone", ["Llama-3.2-3B-Instruct", "Llama-3.2-1B-Instruct", "Llama-3.1-8B-Instruct"]
)
def test_paper_profile_hyperparameters(backbone):
    sft, sft_env = load_recipe(REPO_ROOT / "recipes" / backbone / "sft" / "paper.yaml")
    for key, value in PAPER_SFT.items():
        assert sft[key] == value, (backbone, key)
    n_gpus = int(sft_env["NPROC_PER_NODE"])
    # global batch 64 = per device x GPUs x accumulation
    assert sft["per_device_train_batch_size"] * n_gpus * sft["gradient_accumulation_steps"] == 64
    grpo, grpo_env = load_recipe(REPO_ROOT / "recipes" / backbone / "grpo" / "paper.yaml")
    for key, value in PAPER_GRPO.items():
        assert grpo[key] == value, (backbone, key)
    # ms-swift counts completions: 8 prompts x N = 4 per step across the GPUs, without accumulation
    assert (
        grpo["per_device_train_batch_size"] * int(grpo_env["NPROC_PER_NODE"]) == 8 * grpo["num_generations"]
    )
    assert grpo["use_vllm"] is True and grpo["vllm_mode"] == "colocate"


def test_one_gpu_profile_keeps_the_paper_batches_and_objective():
    sft, _ = load_recipe(REPO_ROOT / "recipes/Llama-3.2-3B-Instruct/sft/1gpu.yaml")
    assert sft["per_device_train_batch_size"] * sft["gradient_accumulation_steps"] == 64
    grpo, _ = load_recipe(REPO_ROOT / "recipes/Llama-3.2-3B-Instruct/grpo/1gpu.yaml")
    completions = grpo["per_device_train_batch_size"] * grpo["gradient_accumulation_steps"]
    assert completions == 8 * grpo["num_generations"]
    for key in PAPER_OBJECTIVE:
        assert grpo[key] == PAPER_GRPO[key], key


@pytest.mark.parametrize(
    "path",
    [p for p in RECIPES if p.parent.name == "grpo" and not p.parent.parent.name.startswith("SmolLM2")],
    ids=lambda p: p.parent.parent.name + "/" + p.name,
)
def test_gpu_grpo_recipes_use_the_paper_objective(path):
    """Every GPU GRPO recipe (paper, 1gpu and the ablations) trains the paper's objective, not ms-swift's default."""
    config, _ = load_recipe(path)
    for key in PAPER_OBJECTIVE:
        assert config.get(key) == PAPER_GRPO[key], (path, key)


def test_cpu_grpo_header_names_its_objective():
    """The CPU demo keeps ms-swift's defaults on purpose; its header must say so rather than leave it implicit."""
    path = REPO_ROOT / "recipes/SmolLM2-135M-Instruct/grpo/cpu.yaml"
    config, _ = load_recipe(path)
    header = path.read_text().split("\nENV:")[0]
    for key in PAPER_OBJECTIVE:
        assert key not in config, key  # the defaults the header describes
        assert f"`{key}`" in header, key
    assert "Objective:" in header and "Why:" in header


def test_ddp_timeout_is_never_below_ms_swift_default():
    """transformers' own default (1800 s) would let the NCCL watchdog kill ranks that wait on slow reward batches;
    ms-swift raises it, and a recipe must not lower it again."""
    setting = [p for p in RECIPES if "ddp_timeout" in load_recipe(p)[0]]
    assert setting, "no recipe sets ddp_timeout: drop this test or the key's documentation"
    for path in setting:
        default = {f.name: f.default for f in dataclasses.fields(args_class(path))}["ddp_timeout"]
        assert default >= 18_000_000  # ms-swift 4.6's value; a lower pinned default would be a new ms-swift
        assert load_recipe(path)[0]["ddp_timeout"] >= default, path
        line = next(x for x in path.read_text().splitlines() if x.startswith("ddp_timeout:"))
        assert "default" in line, f"{path}: the comment must say how the value relates to ms-swift's default"


def test_cpu_profile_runs_without_gpu_packages():
    for kind in ("sft", "grpo"):
        config, env = load_recipe(REPO_ROOT / f"recipes/SmolLM2-135M-Instruct/{kind}/cpu.yaml")
        assert config["use_cpu"] is True and "deepspeed" not in config
        assert config["model_type"] == "llama" and config["template"] == "chatml"
        assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert config["use_vllm"] is False
