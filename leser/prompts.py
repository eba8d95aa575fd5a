"""The one prompt builder: SFT, GRPO, evaluation and serving all call `build_messages`, and every prompt made from
the engine goes through `prompt_for` / `prompts_for` (the engine's top k items of the query as context).

How many items the model sees is one setting: `MAX_CONTEXT_ITEMS` (10, the paper's context set), or a training
profile's `max_context_items` (`leser.distill.splits.PROFILES`: cpu 5, learn 3, paper 10), which is recorded in the
splits' stats.json; evaluation and serving read prompts from a split, or build them with the default.

A prompt is a system message (think, then answer) and a user message holding the instruction, the query and up to
`max_context_items` items the engine returned for the query (title plus attribute name/value pairs). When the
prompt would exceed `max_prompt_tokens`, whole items are dropped from the end (lowest ranked first); an item is
never cut in the middle, so the model never sees half an attribute list.

Sizing (`prompt_length`): with a tokenizer that has a chat template, the whole templated prompt is counted exactly
(`apply_chat_template(..., add_generation_prompt=True)`), so the backbone's own header (Llama-3's date lines
included) is inside the budget. Without one, the two contents are counted (tokenizer, else a conservative
character estimate) plus `TEMPLATE_MARGIN_TOKENS` for the template. `PromptStats` counts the prompts that lost
items to the budget; the splits builder writes it and `prompt_sizing` to stats.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

SYSTEM_PROMPT = (
    "You rewrite e-commerce search queries. First reason briefly inside <think>...</think>, "
    "then give the final answer inside <answer>...</answer>."
)

# The six points of the paper's instruction (Sec. 3.2, Table 1), in our own words and kept short: the CPU demo model
# is small. Point 2 says where values come from (the results) but forbids no other word: the paper's own outputs add
# words such as "natural" ("sleep improvement" -> "natural sleep aid supplement"). What the gate rejects beyond this
# (a word the catalog never saw: "unsupported attribute") is in PAPER.md.
INSTRUCTION = """Expand the shopper's query using the search results below.
1. Infer the intent: what the shopper is looking for.
2. Pick the attribute values in the results that clarify, disambiguate or enrich that intent.
3. If the query is already specific, return an empty list.
4. Otherwise write at least 3 diverse expanded queries, each a different combination of relevant attribute values.
5. Keep every expansion faithful to the original intent.
6. Reason inside <think>...</think> first, then answer inside <answer>...</answer> with a JSON object:
<answer>{"expansion": ["...", "...", "..."]}</answer>"""

MAX_CONTEXT_ITEMS = 10  # the paper's context set: the top (at most) 10 items of q
MAX_PROMPT_TOKENS = 2048  # the paper's max input length
# Used when no tokenizer is given: about 3 characters per token over English product text with attribute names,
# which overestimates the token count of BPE tokenizers such as Llama's and SmolLM2's (about 4), so we stay under.
CHARS_PER_TOKEN_ESTIMATE = 3.0
# Without a chat template to count (no tokenizer, or one without a template) the contents are counted and this
# margin stands for the template. The largest frame among our backbones is Llama-3.x's: <|begin_of_text|>, a system
# header with "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n", the user header, two
# <|eot_id|> and the assistant header, about 35 Llama tokens (SmolLM2's ChatML frame: 11; the 16 allowed before
# did not cover Llama's). 64 leaves room for other date strings and templates; the character estimate of the
# contents already overcounts BPE tokens by about a quarter on top of it.
TEMPLATE_MARGIN_TOKENS = 64


@dataclass
class PromptStats:
    """How often the token budget cost a prompt context items (the `max_context_items` cap is not counted)."""

    prompts: int = 0
    prompts_with_dropped_items: int = 0
    items_dropped: int = 0

    def record(self, offered: int, kept: int) -> None:
        self.prompts += 1
        self.prompts_with_dropped_items += kept < offered
        self.items_dropped += offered - kept

    def as_dict(self) -> dict:
        return asdict(self)


def has_chat_template(tokenizer) -> bool:
    return tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))


def prompt_sizing(
    tokenizer=None, tokenizer_name: str | None = None, max_prompt_tokens: int = MAX_PROMPT_TOKENS
):
    """How `build_messages` sizes prompts under `tokenizer`, for stats.json: {"tokenizer": name or "estimate
    (chars/3)", "template": "exact" or "margin N", "max_prompt_tokens": N}."""
    if tokenizer is None:
        name = f"estimate (chars/{CHARS_PER_TOKEN_ESTIMATE:g})"
    else:
        name = tokenizer_name or getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    template = "exact" if has_chat_template(tokenizer) else f"margin {TEMPLATE_MARGIN_TOKENS}"
    return {"tokenizer": str(name), "template": template, "max_prompt_tokens": max_prompt_tokens}


class PromptTooLongError(ValueError):
    """The prompt does not fit even with no context item."""


def format_item(rank: int, item: dict) -> str:
    """One context line: `[rank] title | name: value; name: value` (brand first when the catalog has one)."""
    pairs = []
    brand = item.get("brand") or ""
    if brand:
        pairs.append(f"brand: {brand}")
    for attribute in item.get("attributes") or ():
        if attribute["name"] != "brand":
            pairs.append(f"{attribute['name']}: {attribute['value']}")
    line = f"[{rank}] {item['title'].strip()}"
    return f"{line} | {'; '.join(pairs)}" if pairs else line


def _user_content(query: str, item_lines: Sequence[str]) -> str:
    results = "\n".join(item_lines) if item_lines else "(no results)"
    return f'{INSTRUCTION}\n\nQuery: "{query}"\nSearch results:\n{results}'


def count_tokens(text: str, tokenizer=None) -> int:
    """Tokens of `text` under `tokenizer` (a Hugging Face tokenizer), or a conservative character estimate."""
    if tokenizer is None:
        return int(len(text) / CHARS_PER_TOKEN_ESTIMATE) + 1
    return len(tokenizer.encode(text, add_special_tokens=False))


def prompt_length(messages: Sequence[dict], tokenizer=None) -> int:
    """Tokens of the prompt as the model receives it: the templated ids (generation prompt included) when
    `tokenizer` has a chat template, else the contents' tokens plus `TEMPLATE_MARGIN_TOKENS`."""
    if has_chat_template(tokenizer):
        encoded = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return len(encoded["input_ids"])
    return TEMPLATE_MARGIN_TOKENS + sum(count_tokens(m["content"], tokenizer) for m in messages)


def build_messages(
    query: str,
    context_items: Sequence[dict],
    tokenizer=None,
    max_prompt_tokens: int = MAX_PROMPT_TOKENS,
    max_context_items: int = MAX_CONTEXT_ITEMS,
    stats: PromptStats | None = None,
) -> list[dict]:
    """System + user messages for `query` with the engine's top `context_items` (catalog-schema dicts, rank order).

    Keeps the first `max_context_items` items (at most 10) and then as many of them as fit in `max_prompt_tokens`
    (`prompt_length`: the templated prompt under `tokenizer`, or contents + margin), dropping whole items from the
    end; `stats` (when given) records how many the budget dropped.
    Raises PromptTooLongError when the instruction and the query alone do not fit.
    """
    if not query.strip():
        raise ValueError("build_messages: empty query")
    lines = [format_item(rank, item) for rank, item in enumerate(context_items[:max_context_items], start=1)]

    def messages_with(n: int) -> list[dict]:
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": _user_content(query, lines[:n])},
        ]

    if prompt_length(messages_with(0), tokenizer) > max_prompt_tokens:
        raise PromptTooLongError(
            f"query {query[:80]!r}: the prompt exceeds {max_prompt_tokens} tokens with no items"
        )
    # Binary search on the number of kept items: token counts grow with each added line.
    low, high = 0, len(lines)
    while low < high:
        mid = (low + high + 1) // 2
        if prompt_length(messages_with(mid), tokenizer) <= max_prompt_tokens:
            low = mid
        else:
            high = mid - 1
    if stats is not None:
        stats.record(len(lines), low)
    return messages_with(low)


def format_completion(reasoning: str, expansions: Sequence[str]) -> str:
    """`<think>reasoning</think>\\n<answer>{"expansion": [...]}</answer>`, the exact format the gate accepts."""
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        if tag in reasoning:
            raise ValueError(f"format_completion: the reasoning contains the tag {tag}")
    answer = json.dumps({"expansion": list(expansions)}, ensure_ascii=False)
    return f"<think>{reasoning.strip()}</think>\n<answer>{answer}</answer>"


def context_items(engine, queries: Sequence[str], k: int = MAX_CONTEXT_ITEMS) -> list[list[dict]]:
    """The engine's top `k` items of each query in catalog schema (rank order): what the prompt shows the model."""
    results = engine.search_many(list(queries), k=k)
    return [engine.items(list(r.item_ids)) if len(r.item_ids) else [] for r in results]


def prompts_for(
    engine,
    queries: Sequence[str],
    k: int = MAX_CONTEXT_ITEMS,
    tokenizer=None,
    stats: PromptStats | None = None,
) -> tuple[list[list[dict]], list[list[dict]]]:
    """(context items, messages) of each query: `build_messages` over the engine's top `k` items (`stats`, when
    given, counts the items the token budget dropped)."""
    contexts = context_items(engine, queries, k)
    messages = [
        build_messages(q, items, tokenizer, max_context_items=k, stats=stats)
        for q, items in zip(queries, contexts, strict=True)
    ]
    return contexts, messages


def prompt_for(engine, query: str, k: int = MAX_CONTEXT_ITEMS, tokenizer=None) -> list[dict]:
    """System + user messages of one query with the engine's top `k` items as context."""
    return prompts_for(engine, [query], k, tokenizer)[1][0]
