"""Checkpoint resolution, the EBQE baseline, the model-system kinds and freeing each model before the next is
loaded (leser/generation.py, leser/evaluation/systems.py, leser/evaluation/cli.py)."""

import pytest

from leser.generation import resolve_checkpoint


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (["config.json"], "."),  # a plain model folder
        (["adapter_config.json"], "."),  # a LoRA adapter folder
        (
            ["v0-2026/checkpoint-50/config.json", "v0-2026/checkpoint-100/config.json"],
            "v0-2026/checkpoint-100",
        ),
        # ms-swift output dir: the highest step wins, not the lexically last name (checkpoint-50 > checkpoint-100)
        (
            ["v0/checkpoint-9/config.json", "v1/checkpoint-12/config.json"],
            "v1/checkpoint-12",
        ),  # across versions
        (
            ["v0/checkpoint-3-merged/config.json", "v0/checkpoint-2/config.json"],
            "v0/checkpoint-2",
        ),  # not a step
    ],
)
def test_resolve_checkpoint(tmp_path, layout, expected):
    for rel in layout:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    assert resolve_checkpoint(tmp_path).samefile(tmp_path / expected)


def test_resolve_checkpoint_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json and no checkpoint"):
        resolve_checkpoint(tmp_path)


def test_resolve_checkpoint_takes_a_cached_hub_model_and_never_downloads(tmp_path, monkeypatch):
    # The Makefile's few-shot system on a GPU profile names the SFT recipe's model, a Hugging Face id.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read when snapshot_download runs
    snapshot = tmp_path / "hub" / "models--acme--tiny-model" / "snapshots" / ("0" * 40)
    with pytest.raises(FileNotFoundError, match="acme/tiny-model: not a folder here, and not .* local cache"):
        resolve_checkpoint("acme/tiny-model")
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--acme--tiny-model" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--tiny-model" / "refs" / "main").write_text("0" * 40)
    assert resolve_checkpoint("acme/tiny-model").samefile(snapshot)


def test_ebqe_picks_nearest_logged_queries(small_engine):
    from leser.evaluation.systems import EBQE, EvalQuery

    logged = ["wireless mouse", "cordless mouse", "mouse wireless", "garden hose", "vertical ergonomic mouse"]
    system = EBQE(logged, small_engine.analyzer, top_n=2, min_cosine=0.5)
    out = system.expand([EvalQuery("wireless mouse", None), EvalQuery("zzqx", None)], run=0).expansions
    # the query itself and its reordering ("mouse wireless": same analyzer terms) are skipped; a garden hose is far
    assert out[0].expansions[0] in {"cordless mouse", "vertical ergonomic mouse"}
    assert "mouse wireless" not in out[0].expansions and "garden hose" not in out[0].expansions
    assert out[1].expansions == []  # nothing near a nonsense token


def test_model_system_kinds_and_labels():
    """`sft:` is the SFT warm-up, `sftllm:` the rejection-sampled SFT-LLM baseline; both are model systems."""
    from types import SimpleNamespace

    from leser.evaluation.cli import build_parser, build_system
    from leser.evaluation.report import label

    assert label("sft:runs/cpu/sft/last") == "SFT warm-up"
    assert label("sftllm:runs/cpu/sft_llm/last") == "SFT-LLM (rejection-sampled)"
    for kind in ("sft", "sftllm"):  # known kinds without a folder ask for one, instead of "unknown system"
        with pytest.raises(ValueError, match="give a model folder"):
            build_system(f"{kind}:", SimpleNamespace())
    args = build_parser().parse_args(["--dataset", "d", "--index", "i", "--relevance", "r", "--out", "o"])
    assert args.max_new_tokens == 512  # the paper profile's max_completion_length: long answers are not cut


class _Engine:
    def __init__(self):
        self.shutdowns = 0

    def shutdown(self):
        self.shutdowns += 1


@pytest.mark.parametrize("where", ["llm", "engine_core"])
def test_vllm_generator_close_shuts_the_engine_down(where):
    """vLLM's engine core holds the GPU memory until its shutdown; close() calls it once and drops the engine."""
    from types import SimpleNamespace

    from leser.generation import VLLMGenerator

    engine = _Engine()
    generator = object.__new__(VLLMGenerator)  # no vLLM on CPU: the engine is a stand-in
    if where == "llm":
        generator.llm = SimpleNamespace(shutdown=engine.shutdown, llm_engine=None)
    else:
        generator.llm = SimpleNamespace(llm_engine=SimpleNamespace(engine_core=engine))
    generator.close()
    generator.close()
    assert engine.shutdowns == 1 and generator.llm is None


def _tiny_chat_model(folder, tokenizer_dir, seed: int):
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, folder / name)
    return folder


@pytest.mark.slow
def test_each_model_system_is_freed_before_the_next_is_built(base_model_dir, tmp_path, monkeypatch):
    """Two model systems on the transformers backend: the first one's model is gone before the second is built,
    as on a GPU box the second model (or vLLM engine) needs the memory the first held. The system objects stay
    referenced here (as the evaluation loop's variable once kept the last one alive): their models must go anyway."""
    import weakref
    from types import SimpleNamespace

    from leser.evaluation import cli
    from leser.evaluation.systems import EvalQuery
    from leser.generation import SamplingConfig

    folders = [_tiny_chat_model(tmp_path / f"m{i}", base_model_dir, seed=i) for i in range(2)]
    verdict = SimpleNamespace(valid=False, expansions=(), reason="bad_json")
    res = SimpleNamespace(
        args=SimpleNamespace(backend="transformers", batch_size=2),
        gate=lambda text, query: verdict,
        prompt_for=lambda q: q.messages,
        sampling=lambda: SamplingConfig(temperature=0.5, max_new_tokens=4),
    )
    query = EvalQuery("wireless mouse", [{"role": "user", "content": 'Query: "wireless mouse"'}])
    models, systems = [], []

    def evaluate(ctx, system, runs, writer):
        output = system.expand([query], run=0)  # real generation: the model is in use, not just loaded
        assert len(output.expansions) == 1 and isinstance(output.expansions[0].completion, str)
        models.append(weakref.ref(system.generator.model))
        systems.append(system)
        if len(models) == 2:
            raise RuntimeError("a failing system is freed too")
        return "report"

    real_build = cli.build_system

    def build(spec, res_):
        assert all(ref() is None for ref in models), f"a previous model is still alive while {spec} is built"
        return real_build(spec, res_)

    monkeypatch.setattr(cli, "evaluate_system", evaluate)
    monkeypatch.setattr(cli, "build_system", build)
    assert cli.evaluate_spec(f"sft:{folders[0]}", res, None, 1, None)[0] == "report"
    with pytest.raises(RuntimeError, match="freed too"):
        cli.evaluate_spec(f"sftllm:{folders[1]}", res, None, 1, None)
    assert len(models) == 2 and all(ref() is None for ref in models)
    assert len(systems) == 2
