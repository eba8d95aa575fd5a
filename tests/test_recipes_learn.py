"""The learning experiment's GRPO recipe trains what its header says: the top 10 decoder layers and the final norm,
applied with ms-swift's own freeze/activate functions to a tiny 30-layer Llama (the SmolLM2-135M layout)."""

from tests.fixtures_recipes import REPO_ROOT, load_recipe

LEARN_GRPO = REPO_ROOT / "recipes/SmolLM2-135M-Instruct/grpo/learn.yaml"


def test_learn_grpo_trains_only_the_top_ten_layers_and_the_norm():
    from swift.utils.transformers_utils import activate_parameters, freeze_parameters
    from transformers import LlamaConfig, LlamaForCausalLM

    config, _ = load_recipe(LEARN_GRPO)
    tiny = LlamaConfig(
        vocab_size=64,
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=30,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,  # as SmolLM2: the output head is the embedding matrix
    )
    model = LlamaForCausalLM(tiny)
    model.requires_grad_(True)
    freeze_parameters(model, config["freeze_parameters_ratio"], config.get("freeze_parameters", []))
    activate_parameters(model, config.get("trainable_parameters", []), config["trainable_parameters_regex"])
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    layers = {int(n.split(".")[2]) for n in trained if n.startswith("model.layers.")}
    assert layers == set(range(20, 30))
    assert "model.norm.weight" in trained
    assert not any("embed_tokens" in n or "lm_head" in n for n in trained)
    # every parameter of a trained layer is trained (attention, MLP and both norms)
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("model.layers.25."))


def test_learn_grpo_has_no_reference_model_and_several_prompts_per_step():
    config, _ = load_recipe(LEARN_GRPO)
    assert config["beta"] == 0.0  # no reference forward pass (header: ~1/4 of a CPU step)
    assert config["per_device_train_batch_size"] // config["num_generations"] >= 2  # prompts per step
    assert config["importance_sampling_level"] == "sequence" and config["scale_rewards"] == "group"
    assert config["save_steps"] <= config["max_steps"] // 4  # enough checkpoints for the probe curve
