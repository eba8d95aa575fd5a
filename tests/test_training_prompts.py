"""The prompt builder: the six instruction points, context formatting, truncation by whole items, sizing (exact
with a chat template, contents + margin without one) and the drop counters."""

import json

import pytest

from leser.gate import Rules, check_completion
from leser.prompts import (
    INSTRUCTION,
    TEMPLATE_MARGIN_TOKENS,
    PromptStats,
    PromptTooLongError,
    build_messages,
    count_tokens,
    format_completion,
    format_item,
    prompt_length,
    prompt_sizing,
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
    # The paper's instruction (Sec. 3.2, Table 1); PAPER.md "Training data and SFT warm-up".
    text = build_messages("ergonomic mouse", [_item(1)])[1]["content"].lower()
    for needle in (
        "infer the intent",  # 1. intent
        "attribute values",  # 2. pick attribute values ...
        "clarify, disambiguate or enrich",  # 2. ... that clarify, disambiguate or enrich the intent
        "empty list",  # 3. specific -> empty list
        "at least 3",  # 4. >= 3 diverse expansions
        "diverse",
        "different combination",  # 4. ... each a different combination of attribute values
        "faithful to the original intent",  # 5. faithful
        "<think>",  # 6. reason first ...
        '{"expansion"',  # 6. ... then the JSON answer
    ):
        assert needle in text, needle
    assert text.index("<think>") < text.index("<answer>")
    assert "<think>" in build_messages("q", [])[0]["content"]


def test_instruction_does_not_contradict_the_paper():
    text = INSTRUCTION.lower()
    assert "json only" not in text  # the model thinks first
    # the paper's own outputs add words: "sleep improvement" -> "natural sleep aid supplement"
    assert "keep its words" not in text and "do not add" not in text
    example = json.loads(INSTRUCTION.rsplit("<answer>", 1)[1].split("</answer>")[0])
    assert len(example["expansion"]) >= 3  # the example shows what point 4 asks


def test_context_lists_title_and_attribute_pairs_in_rank_order():
    content = build_messages("mouse", [_item(1), _item(2)])[1]["content"]
    assert content.index("[1] Item number 1") < content.index("[2] Item number 2")
    assert "brand: brand1; attr0: value1-0; attr1: value1-1" in content
    assert format_item(3, {"title": "Plain", "attributes": []}) == "[3] Plain"


@pytest.mark.parametrize(
    ("max_prompt_tokens", "max_context_items"),
    [
        (2048, 10),  # everything fits: 10 of 12 items (the cap)
        (450, 10),  # tight budget: only a few whole items
        (340, 10),  # very tight: maybe no item at all
        (2048, 3),  # the cap alone limits
    ],
)
def test_truncation_drops_whole_items_only(max_prompt_tokens, max_context_items):
    items = [_item(i, n_attributes=6) for i in range(1, 13)]
    stats = PromptStats()
    messages = build_messages("wireless mouse", items, None, max_prompt_tokens, max_context_items, stats)
    content = messages[1]["content"]
    # Without a tokenizer: the contents' estimate plus the template margin stays within the budget.
    total = sum(count_tokens(m["content"]) for m in messages)
    assert total + TEMPLATE_MARGIN_TOKENS == prompt_length(messages) <= max_prompt_tokens
    kept = [line for line in content.splitlines() if line.startswith("[")]
    assert len(kept) <= max_context_items
    # Every kept line is exactly a full item line, and they are the top-ranked ones.
    assert kept == [format_item(r, items[r - 1]) for r in range(1, len(kept) + 1)]
    # The counters: items beyond the cap are not "dropped", items the budget cost are.
    offered = min(max_context_items, len(items))
    assert stats == PromptStats(1, int(len(kept) < offered), offered - len(kept))
    # Greedy: one more item would not have fitted (unless the cap or the item list stopped us).
    if len(kept) < offered:
        bigger = build_messages("wireless mouse", items, None, 10**6, len(kept) + 1)
        assert prompt_length(bigger) > max_prompt_tokens


def test_drop_counters_add_up_over_prompts():
    stats = PromptStats()
    items = [_item(i, n_attributes=6) for i in range(1, 6)]
    build_messages("wireless mouse", items, stats=stats)  # fits whole
    build_messages("wireless mouse", items, max_prompt_tokens=450, stats=stats)  # loses some
    build_messages("wireless mouse", [], stats=stats)  # no results: nothing to drop
    assert stats.prompts == 3 and stats.prompts_with_dropped_items == 1
    assert 0 < stats.items_dropped < 5
    assert stats.as_dict() == {
        "prompts": 3,
        "prompts_with_dropped_items": 1,
        "items_dropped": stats.items_dropped,
    }


def test_sizing_without_a_tokenizer_is_recorded_as_estimate_plus_margin():
    assert TEMPLATE_MARGIN_TOKENS >= 48  # Llama-3's frame with its date lines is about 35 tokens
    assert prompt_sizing() == {
        "tokenizer": "estimate (chars/3)",
        "template": f"margin {TEMPLATE_MARGIN_TOKENS}",
        "max_prompt_tokens": 2048,
    }


class _NoTemplateTokenizer:
    """A tokenizer without a chat template: one token per word."""

    chat_template = None
    name_or_path = "words"

    def encode(self, text, add_special_tokens=False):
        return text.split()


def test_a_tokenizer_without_a_chat_template_counts_contents_plus_margin():
    tokenizer = _NoTemplateTokenizer()
    items = [_item(i, n_attributes=6) for i in range(1, 11)]
    messages = build_messages("wireless mouse", items, tokenizer, max_prompt_tokens=400)
    words = sum(len(m["content"].split()) for m in messages)
    assert prompt_length(messages, tokenizer) == words + TEMPLATE_MARGIN_TOKENS <= 400
    assert prompt_sizing(tokenizer)["template"] == f"margin {TEMPLATE_MARGIN_TOKENS}"


@pytest.mark.slow
def test_truncation_with_a_real_tokenizer_counts_tokens(base_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    items = [_item(i, n_attributes=8) for i in range(1, 11)]
    messages = build_messages("wireless mouse", items, tokenizer, max_prompt_tokens=512)
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    assert len(ids) <= 512
    assert prompt_sizing(tokenizer, str(base_model_dir))["template"] == "exact"


@pytest.mark.slow
def test_exact_sizing_with_the_chat_template_never_exceeds_the_limit(base_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    items = [_item(i, n_attributes=8) for i in range(1, 11)]

    def templated(messages):
        encoded = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return len(encoded["input_ids"])

    whole = templated(build_messages("wireless mouse", items, tokenizer, max_prompt_tokens=10**6))
    # Limits from "everything fits exactly" down to "one token short of one item more": each prompt near its
    # limit keeps the most items whose templated length (generation prompt included) is within it.
    for limit in (whole, whole - 1, whole - 40, 600, 400):
        stats = PromptStats()
        messages = build_messages("wireless mouse", items, tokenizer, max_prompt_tokens=limit, stats=stats)
        assert prompt_length(messages, tokenizer) == templated(messages) <= limit
        kept = messages[1]["content"].count("\n[")
        assert stats.items_dropped == 10 - kept
        assert (kept == 10) == (limit >= whole)
        if kept < 10:
            more = build_messages("wireless mouse", items, tokenizer, 10**6, max_context_items=kept + 1)
            assert templated(more) > limit


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
