"""The prompt builder: the six instruction points, context formatting, truncation by whole items."""

import json

import pytest

from leser.gate import Rules, check_completion
from leser.prompts import (
    INSTRUCTION,
    PromptTooLongError,
    build_messages,
    count_tokens,
    format_completion,
    format_item,
)


def _item(i: int, n_attributes: int = 3) -> dict:
    return {
        "item_id": f"id{i}",
        "title": f"Item number {i} wireless mouse",
        "brand": f"brand{i}",
        "category": ["electronics", "mice"],
        "attributes": [{"name": f"attr{j}", "value": f"value{i}-{j}"} for j in range(n_attributes)],
        "description": "",
    }


def test_six_points_of_the_instruction():
    text = build_messages("ergonomic mouse", [_item(1)])[1]["content"].lower()
    for needle in (
        "looking for",  # 1. intent
        "attribute values",  # 2. pick clarifying attribute values
        "empty list",  # 3. specific -> empty list
        "at least 3",  # 4. >= 3 diverse expansions
        "different combination",  # 4. ... from different attribute combinations
        "faithful",  # 5. stay faithful
        '{"expansion"',  # 6. the JSON format
    ):
        assert needle in text, needle
    assert "<think>" in build_messages("q", [])[0]["content"]


def test_context_lists_title_and_attribute_pairs_in_rank_order():
    content = build_messages("mouse", [_item(1), _item(2)])[1]["content"]
    assert content.index("[1] Item number 1") < content.index("[2] Item number 2")
    assert "brand: brand1; attr0: value1-0; attr1: value1-1" in content
    assert format_item(3, {"title": "Plain", "attributes": []}) == "[3] Plain"


@pytest.mark.parametrize(
    ("max_prompt_tokens", "max_context_items"),
    [
        (2048, 10),  # everything fits: 10 of 12 items (the cap)
        (400, 10),  # tight budget: only a few whole items
        (330, 10),  # very tight: maybe no item at all
        (2048, 3),  # the cap alone limits
    ],
)
def test_truncation_drops_whole_items_only(max_prompt_tokens, max_context_items):
    items = [_item(i, n_attributes=6) for i in range(1, 13)]
    messages = build_messages("wireless mouse", items, None, max_prompt_tokens, max_context_items)
    content = messages[1]["content"]
    total = sum(count_tokens(m["content"]) for m in messages)
    assert total <= max_prompt_tokens
    kept = [line for line in content.splitlines() if line.startswith("[")]
    assert len(kept) <= max_context_items
    # Every kept line is exactly a full item line, and they are the top-ranked ones.
    assert kept == [format_item(r, items[r - 1]) for r in range(1, len(kept) + 1)]
    # Greedy: one more item would not have fitted (unless the cap or the item list stopped us).
    if len(kept) < min(max_context_items, len(items)):
        bigger = build_messages("wireless mouse", items, None, 10**6, len(kept) + 1)
        assert sum(count_tokens(m["content"]) for m in bigger) > max_prompt_tokens - 16


@pytest.mark.slow
def test_truncation_with_a_real_tokenizer_counts_tokens(base_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    items = [_item(i, n_attributes=8) for i in range(1, 11)]
    messages = build_messages("wireless mouse", items, tokenizer, max_prompt_tokens=512)
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    assert len(ids) <= 512


def test_too_long_query_is_a_clear_error():
    with pytest.raises(PromptTooLongError, match="no items"):
        build_messages("mouse " * 5000, [_item(1)])


@pytest.mark.parametrize(
    "expansions",
    [
        [],  # specific query: empty list
        ["wireless mouse black", "wireless mouse vertical"],  # plain
        ['mouse 15" "quoted"', "café mouse"],  # JSON escaping and non-ASCII
    ],
)
def test_format_completion_passes_the_gate(expansions):
    text = format_completion("Because.", expansions)
    result = check_completion(text, "wireless mouse", Rules())
    assert result.valid, result.reason
    assert json.loads(text.split("<answer>")[1].split("</answer>")[0]) == {"expansion": expansions}


def test_format_completion_rejects_tags_in_reasoning():
    with pytest.raises(ValueError, match="</think>"):
        format_completion("oops </think>", [])


def test_instruction_is_compact():
    # The CPU demo model is 135M parameters: the fixed instruction must stay short.
    assert count_tokens(INSTRUCTION) < 250
