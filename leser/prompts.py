"""The one prompt builder: SFT, GRPO, evaluation and serving all call `build_messages`, and every prompt made from
the engine goes through `prompt_for` / `prompts_for` (the engine's top k items of the query as context).

How many items the model sees is one setting: `MAX_CONTEXT_ITEMS` (10, the paper's context set), or a training
profile's `max_context_items` (`leser.distill.splits.PROFILES`: cpu 5, learn 3, paper 10), which is recorded in the
splits' stats.json; evaluation and serving read prompts from a split, or build them with the default.

A prompt is a system message (think, then answer) and a user message holding the instruction, the query and up to
`max_context_items` items the engine returned for the query (title plus attribute name/value pairs). When the
prompt would exceed `max_prompt_tokens`, whole items are dropped from the end (lowest ranked first); an item is
never cut in the middle, so the model never sees half an attribute list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

SYSTEM_PROMPT = (
    "You rewrite e-commerce search queries. First reason briefly inside <think>...</think>, "
    "then give the final answer inside <answer>...</answer>."
)

# The six points of the paper's instruction (Sec. 3.2), in our own words and kept short: the CPU demo model is small.
INSTRUCTION = """Expand the shopper's query using the search results below.
1. Work out what the shopper is looking for.
2. Choose attribute values from the results that make that need clearer or more precise.
3. If the query is already specific, return an empty list.
4. Otherwise write at least 3 different expanded queries, each built from a different combination of attribute values.
5. Stay faithful to the original query: keep its words and do not add values that are not in the results.
6. Answer with JSON only: <answer>{"expansion": ["...", "..."]}</answer>"""

MAX_CONTEXT_ITEMS = 10  # the paper's context set: the top (at most) 10 items of q
# Used when no tokenizer is given: about 3 characters per token over English product text with attribute names,
# which overestimates the token count of BPE tokenizers such as Llama's and SmolLM2's (about 4), so we stay under.
CHARS_PER_TOKEN_ESTIMATE = 3.0
# Chat-template overhead (role markers, default system header) not counted by encoding the two contents.
TEMPLATE_OVERHEAD_TOKENS = 16


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


def build_messages(
    query: str,
    context_items: Sequence[dict],
    tokenizer=None,
    max_prompt_tokens: int = 2048,
    max_context_items: int = MAX_CONTEXT_ITEMS,
) -> list[dict]:
    """System + user messages for `query` with the engine's top `context_items` (catalog-schema dicts, rank order).

    Keeps the first `max_context_items` items (at most 10) and then as many of them as fit in `max_prompt_tokens`
    tokens of `tokenizer` (or of the character estimate when `tokenizer` is None), dropping whole items from the end.
    Raises PromptTooLongError when the instruction and the query alone do not fit.
    """
    if not query.strip():
        raise ValueError("build_messages: empty query")
    lines = [format_item(rank, item) for rank, item in enumerate(context_items[:max_context_items], start=1)]
    budget = max_prompt_tokens - TEMPLATE_OVERHEAD_TOKENS - count_tokens(SYSTEM_PROMPT, tokenizer)
    # Binary search on the number of kept items: token counts grow with each added line.
    low, high = 0, len(lines)
    if count_tokens(_user_content(query, []), tokenizer) > budget:
        raise PromptTooLongError(
            f"query {query[:80]!r}: the prompt exceeds {max_prompt_tokens} tokens with no items"
        )
    while low < high:
        mid = (low + high + 1) // 2
        if count_tokens(_user_content(query, lines[:mid]), tokenizer) <= budget:
            low = mid
        else:
            high = mid - 1
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _user_content(query, lines[:low])},
    ]


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
    engine, queries: Sequence[str], k: int = MAX_CONTEXT_ITEMS, tokenizer=None
) -> tuple[list[list[dict]], list[list[dict]]]:
    """(context items, messages) of each query: `build_messages` over the engine's top `k` items."""
    contexts = context_items(engine, queries, k)
    messages = [
        build_messages(q, items, tokenizer, max_context_items=k)
        for q, items in zip(queries, contexts, strict=True)
    ]
    return contexts, messages


def prompt_for(engine, query: str, k: int = MAX_CONTEXT_ITEMS, tokenizer=None) -> list[dict]:
    """System + user messages of one query with the engine's top `k` items as context."""
    return prompts_for(engine, [query], k, tokenizer)[1][0]
