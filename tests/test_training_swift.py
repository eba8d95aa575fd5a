"""The SFT split goes through ms-swift's own dataset loading and chat template (the real `swift sft` code path)."""

import json

import pytest


@pytest.mark.slow
def test_sft_split_loads_and_encodes_with_swift(small_splits, base_model_dir):
    from swift.dataset import load_dataset
    from swift.model import get_processor
    from swift.template import get_template

    # As the CPU recipes run it: --model models/smollm2-135m-instruct --model_type llama --template chatml
    processor = get_processor(str(base_model_dir), model_type="llama", use_hf=True)
    template = get_template(processor, template_type="chatml", max_length=2048)
    template.set_mode("train")
    for name in ("sft.jsonl", "sft_llm.jsonl"):
        path = small_splits / name
        n_rows = sum(1 for _ in path.open())
        if n_rows == 0:
            continue
        train, val = load_dataset([str(path)], use_hf=True)
        assert len(train) == n_rows and val is None
        for row in train:
            encoded = template.encode(row)
            labels = [t for t in encoded["labels"] if t != -100]
            # Only the assistant turn is trained on, and it decodes back to the teacher's completion.
            assert 0 < len(labels) < len(encoded["input_ids"]) <= 2048
        last = json.loads(path.read_text().splitlines()[-1])["messages"][-1]["content"]
        assert last in template.safe_decode(encoded["input_ids"])


@pytest.mark.slow
def test_grpo_split_keeps_the_query_column_for_the_reward(small_splits):
    from swift.dataset import load_dataset

    # GRPO runs with remove_unused_columns false so `query` reaches the reward function as a keyword argument.
    train, _ = load_dataset([str(small_splits / "grpo.jsonl")], use_hf=True, remove_unused_columns=False)
    assert "query" in train.column_names and train[0]["messages"][-1]["role"] == "user"
