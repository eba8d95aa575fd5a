"""Teachers that write SFT completions (reasoning + answer) in the exact LESER format.

- `RulesTeacher` (default; offline, deterministic): attribute pseudo-relevance feedback over the context set.
- `OpenAITeacher`: any OpenAI-compatible chat-completions endpoint (a local `vllm serve`, or a hosted API), the
  offline stand-in for the paper's GPT-4.1 distillation.

Both expose `complete_many(queries, contexts) -> list[str | None]` (None: the teacher failed on that query, counted
by the caller).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from data_prep.cli import UserError
from leser.prompts import MAX_CONTEXT_ITEMS, build_messages, format_completion
from search_sim.analyzer import Analyzer as SearchAnalyzer

log = logging.getLogger(__name__)

Analyzer = Callable[[str], list[str]]

# A token mixing letters and digits ("wd19tb", "xps-9310", "b08n5wrwnw") names a model or part: a specific query.
_IDENTIFIER = re.compile(r"(?=\w*\d)(?=\w*[a-z])[a-z0-9]{4,}")


class TeacherOutput(NamedTuple):
    reasoning: str
    expansions: list[str]

    @property
    def completion(self) -> str:
        return format_completion(self.reasoning, self.expansions)


def _default_analyzer() -> Analyzer:
    return SearchAnalyzer().analyze


def _item_pairs(item: dict) -> list[tuple[str, str]]:
    """(name, value) pairs of an item, brand included, in catalog order."""
    pairs = [("brand", item["brand"])] if item.get("brand") else []
    pairs += [(a["name"], a["value"]) for a in item.get("attributes") or () if a["name"] != "brand"]
    return [(name, value.strip()) for name, value in pairs if value and value.strip()]


REASONING_STYLES = ("intent_first", "evidence_first")

_NEGATIONS = frozenset({"without", "no", "not", "non", "never"})


def _relaxation_units(query: str, analyze: Analyzer) -> list[str]:
    """Content words of the query; a negation and the word after it stay one unit ("without mugs"), so that
    relaxing never turns "dinnerware without mugs" into "dinnerware mugs"."""
    units: list[str] = []
    words = query.split()
    i = 0
    while i < len(words):
        if words[i].lower() in _NEGATIONS and i + 1 < len(words):
            units.append(f"{words[i]} {words[i + 1]}")
            i += 2
            continue
        if analyze(words[i]):
            units.append(words[i])
        i += 1
    return units


@dataclass(frozen=True)
class RulesTeacher:
    """Attribute pseudo-relevance feedback over the engine's top items for the query.

    0. Too few results (< `min_context_items`): query relaxation (`_relax`), when `recall_sizes` is given.
    1. Specific query -> empty list: the query contains a model/part identifier, or it already contains the values
       (as seen on some context item) of at least `specific_min_named_attributes` attributes (brand + colour, ...).
    2. Splitting attributes: attributes the query does not fix and whose values split the context items into at
       least two groups; ranked by coverage x normalised entropy of the value distribution.
    3. Expansions: the query plus the values of one attribute combination (single attributes and pairs of the top
       splitting attributes, in turn), each taken from one context item so that it matches at least that item;
       at most `max_expansions`, no two with the same bag of analyzer tokens. Fewer than `min_expansions` distinct
       expansions means the results barely differ: the query is treated as specific.
    """

    analyzer: Analyzer | None = None
    # text -> bool: every analyzer token of text is in the index (engine.vocabulary_contains); a value the index
    # cannot match would fail the gate's unsupported-attribute check, so it is never proposed.
    vocabulary_contains: Callable[[str], bool] | None = None
    # queries -> recall sizes (engine); enables query relaxation when the raw query finds too few items.
    recall_sizes: Callable[[list[str]], list[int]] | None = None
    min_context_items: int = 3
    # sorted analyzer-token tuple of a catalog attribute value -> attribute names having it (`catalog_values`):
    # when the query names a colour the results lack, no expansion adds a different colour (faithfulness).
    catalog_values: Mapping[tuple[str, ...], frozenset[str]] | None = None
    min_expansions: int = 3
    max_expansions: int = 4
    specific_min_named_attributes: int = 2
    # Order of the reasoning (`REASONING_STYLES`). intent_first: "The shopper wants ..., but q is broad: ..." (the
    # decision is the token after the intent). evidence_first: the attribute values the query names come first,
    # then the decision, so a small student writes the evidence the rule counts before it commits
    # (docs/experiment/sft_evidence_first/). The answers (expansions or empty list) are the same.
    reasoning: str = "intent_first"
    max_value_chars: int = 40
    max_expansion_chars: int = 110
    max_expansion_tokens: int = 14

    def __post_init__(self):
        if self.reasoning not in REASONING_STYLES:
            raise ValueError(
                f"reasoning must be one of {', '.join(REASONING_STYLES)}, got {self.reasoning!r}"
            )

    def teach(self, query: str, items: Sequence[dict]) -> TeacherOutput:
        analyze = self.analyzer or _default_analyzer()
        query_tokens = set(analyze(query))
        if not items:
            relaxed = self._relax(query, analyze)
            if relaxed:
                return relaxed
            return TeacherOutput(
                f'The engine returns nothing for "{query}", so no result can ground an expansion.', []
            )
        identifier = next(
            (t for t in query.lower().split() if _IDENTIFIER.fullmatch(re.sub(r"[-_/.,]", "", t))), None
        )
        named = self._named_attributes(items, query_tokens, analyze)
        intent = self._intent(items)
        evidence_first = self.reasoning == "evidence_first"
        if identifier is not None or len(named) >= self.specific_min_named_attributes:
            if identifier is not None:
                why = f'names the identifier "{identifier}"'
            else:
                why = "already names " + " and ".join(f'the {n} "{v}"' for n, v in list(named.items())[:3])
            if evidence_first:
                return TeacherOutput(
                    f'The query "{query}" {why}, and the top results agree with it, so it is already specific. '
                    f"The shopper wants {intent}; expanding the query would only drift from the intent.",
                    [],
                )
            return TeacherOutput(
                f'The shopper wants {intent}. The query "{query}" {why}, and the top results agree with it, '
                "so it is already specific; expanding it would only drift from the intent.",
                [],
            )
        # What the query fixes, as the evidence-first reasoning states it before deciding.
        names = (
            "only " + " and ".join(f'the {n} "{v}"' for n, v in named.items())
            if named
            else "no attribute value of its results"
        )
        if len(items) < self.min_context_items:
            relaxed = self._relax(query, analyze, len(items))
            if relaxed:
                return relaxed
        fixed = set(named) | self._catalog_named(query_tokens)
        splitting = self._splitting_attributes(items, query_tokens, fixed, analyze)
        expansions, used = self._compose(query, items, splitting, query_tokens, analyze)
        if len(expansions) < self.min_expansions:
            if evidence_first:
                return TeacherOutput(
                    f'The query "{query}" names {names}, but its results hardly differ in their attributes, so '
                    f"no value would clarify it further. The shopper wants {intent}; the query is specific "
                    "enough as it is.",
                    [],
                )
            return TeacherOutput(
                f'The shopper wants {intent}. The results for "{query}" hardly differ in their attributes, '
                "so no value would clarify the query further; it is specific enough as it is.",
                [],
            )
        described = "; ".join(f"{name} ({', '.join(values[:3])})" for name, values in used.items() if values)
        if evidence_first:
            return TeacherOutput(
                f'The query "{query}" names {names}, so it is broad: the results differ in {described}. The '
                f"shopper wants {intent}; each expansion keeps the query and adds a different combination of "
                "these values taken from the results, so together they cover the main variants without leaving "
                "the intent.",
                expansions,
            )
        return TeacherOutput(
            f'The shopper wants {intent}, but "{query}" is broad: the results differ in {described}. '
            "Each expansion keeps the query and adds a different combination of these values taken from the "
            "results, so together they cover the main variants without leaving the intent.",
            expansions,
        )

    def complete_many(self, queries: Sequence[str], contexts: Sequence[Sequence[dict]]) -> list[str | None]:
        return [self.teach(q, items).completion for q, items in zip(queries, contexts, strict=True)]

    def _relax(self, query: str, analyze: Analyzer, n_found: int = 0) -> TeacherOutput | None:
        """Query relaxation when the engine finds (almost) nothing: drop the words that over-constrain the query.

        Works on the content words (those the analyzer keeps). Candidates keep all of them but one; for four or
        more, also all but two; for five or more, also any two. The engine must find more items for a candidate
        than for the raw query. Candidates that keep the last content word that is not negated (usually the product
        noun) come first,
        then longer ones; a single word is proposed only when it is that word. At most `max_expansions`;
        None when relaxation is off (no `recall_sizes`) or nothing helps.
        """
        words = _relaxation_units(query, analyze)
        n = len(words)
        if self.recall_sizes is None or n < 2:
            return None
        keeps = [tuple(k for k in range(n) if k != i) for i in range(n)]
        if n >= 4:
            keeps += [
                tuple(k for k in range(n) if k not in (i, j)) for i in range(n) for j in range(i + 1, n)
            ]
        if n >= 5:
            keeps += [(i, j) for i in range(n) for j in range(i + 1, n)]
        # The product noun: the last unit that is not a negation ("mouse" in "wireless mouse without cable").
        head = max((k for k in range(n) if words[k].split()[0].lower() not in _NEGATIONS), default=n - 1)
        keeps = [keep for keep in keeps if len(keep) > 1 or keep == (head,)]
        keeps.sort(key=lambda keep: (head not in keep, -len(keep)))
        seen = {tuple(sorted(analyze(query)))}
        candidates, dropped = [], []
        for keep in keeps:
            text = " ".join(words[k] for k in keep)
            bag = tuple(sorted(analyze(text)))
            if bag not in seen:
                seen.add(bag)
                candidates.append(text)
                dropped.append(" ".join(words[k] for k in range(n) if k not in keep))
        sizes = self.recall_sizes(candidates) if candidates else []
        kept = [(c, d) for c, d, size in zip(candidates, dropped, sizes, strict=True) if size > n_found]
        kept = kept[: self.max_expansions]
        if not kept:
            return None
        found = "nothing" if n_found == 0 else f"only {n_found} item" + ("s" if n_found > 1 else "")
        words_dropped = ", ".join(f'"{d}"' for _, d in kept)
        return TeacherOutput(
            f'The engine finds {found} for "{query}": the query is too strict for the catalog. '
            f"Leaving out the words that over-constrain it ({words_dropped}) keeps the rest of the intent and "
            "lets the engine return items for it.",
            [c for c, _ in kept],
        )

    @staticmethod
    def _intent(items: Sequence[dict]) -> str:
        leaves = Counter(item["category"][-1] for item in items if item.get("category"))
        return f'items in "{leaves.most_common(1)[0][0]}"' if leaves else "a product like the top results"

    def _catalog_named(self, query_tokens: set[str]) -> set[str]:
        """Attribute names one of whose catalog values (1 to 3 tokens) the query contains."""
        if not self.catalog_values:
            return set()
        tokens = sorted(query_tokens)
        names: set[str] = set()
        for size in (1, 2, 3):
            for combo in itertools.combinations(tokens, size):
                names |= self.catalog_values.get(combo, frozenset())
        return names

    @staticmethod
    def _named_attributes(items, query_tokens: set[str], analyze: Analyzer) -> dict[str, str]:
        """Attributes whose value (as seen on some context item) the query already contains."""
        hits: dict[str, Counter] = defaultdict(Counter)
        for item in items:
            # dict.fromkeys, not set: one count per item, in catalog order whatever the hash seed, so the reasoning
            # names the attributes in the same order on every run
            for name, value in dict.fromkeys(_item_pairs(item)):
                tokens = set(analyze(value))
                if tokens and tokens <= query_tokens:
                    hits[name][value] += 1
        return {name: values.most_common(1)[0][0] for name, values in hits.items()}

    def _splitting_attributes(self, items, query_tokens, named: set[str], analyze) -> list[str]:
        """Attributes not fixed by the query that split the items into >= 2 groups, best first."""
        values_by_name: dict[str, Counter] = defaultdict(Counter)
        for item in items:
            for name, value in _item_pairs(item):
                if name in named or len(value) > self.max_value_chars:
                    continue
                tokens = set(analyze(value))
                if not tokens or tokens <= query_tokens:
                    continue
                if self.vocabulary_contains is None or self.vocabulary_contains(value):
                    values_by_name[name][value] += 1
        scored = []
        for name, values in values_by_name.items():
            if len(values) < 2:
                continue
            covered = sum(values.values())
            entropy = -sum(c / covered * math.log(c / covered) for c in values.values())
            scored.append((covered / len(items) * entropy / math.log(len(values)), name))
        return [name for _, name in sorted(scored, key=lambda s: (-s[0], s[1]))]

    def _compose(self, query, items, splitting, query_tokens, analyze):
        top = splitting[:3]
        patterns = [(a,) for a in top[:2]] + [(a, b) for i, a in enumerate(top) for b in top[i + 1 :]]
        patterns += [(a,) for a in top[2:]]
        seen_bags = {tuple(sorted(analyze(query)))}
        expansions: list[str] = []
        used: dict[str, list[str]] = {name: [] for name in top}
        # Round-robin over patterns so that consecutive expansions use different attribute combinations.
        next_item = dict.fromkeys(patterns, 0)
        progress = True
        while len(expansions) < self.max_expansions and progress:
            progress = False
            for pattern in patterns:
                if len(expansions) >= self.max_expansions:
                    break
                while next_item[pattern] < len(items):
                    pairs = dict(_item_pairs(items[next_item[pattern]]))
                    next_item[pattern] += 1
                    if not all(name in pairs for name in pattern):
                        continue
                    values = [pairs[name] for name in pattern]
                    if any(len(v) > self.max_value_chars or set(analyze(v)) <= query_tokens for v in values):
                        continue
                    if self.vocabulary_contains is not None and not all(
                        map(self.vocabulary_contains, values)
                    ):
                        continue
                    # Diversity: each expansion brings at least one value no earlier expansion used.
                    if all(value in used[name] for name, value in zip(pattern, values, strict=True)):
                        continue
                    text = " ".join([query.strip(), *values])
                    tokens = analyze(text)
                    bag = tuple(sorted(tokens))
                    if bag in seen_bags or len(text) > self.max_expansion_chars:
                        continue
                    if len(tokens) > self.max_expansion_tokens:
                        continue
                    seen_bags.add(bag)
                    expansions.append(text)
                    for name, value in zip(pattern, values, strict=True):
                        if value not in used[name]:
                            used[name].append(value)
                    progress = True
                    break
        return expansions, used


def catalog_value_index(
    catalog_rows: Sequence[dict], analyze: Analyzer, min_items: int = 3, max_tokens: int = 3
) -> dict[tuple[str, ...], frozenset[str]]:
    """Attribute values seen on at least `min_items` catalog items (brand included), as sorted analyzer-token
    tuples of at most `max_tokens` tokens -> the attribute names that use them."""
    counts: Counter = Counter()
    for row in catalog_rows:
        counts.update(set(_item_pairs(row)))
    index: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for (name, value), n in counts.items():
        tokens = tuple(sorted(set(analyze(value))))
        if n >= min_items and 0 < len(tokens) <= max_tokens:
            index[tokens].add(name)
    return {tokens: frozenset(names) for tokens, names in index.items()}


def rules_teacher(engine, catalog=None, reasoning: str = "intent_first") -> RulesTeacher:
    """The rules teacher bound to an engine, as the SFT data and the evaluation's `rules` system both use it: the
    engine's analyzer and vocabulary, query relaxation through its recall sizes, and (given the catalog table) the
    catalog's attribute values. `reasoning`: the order of its reasoning text (`RulesTeacher.reasoning`)."""
    analyze = engine.analyzer.analyze
    catalog_rows = catalog.select(["brand", "attributes"]).to_pylist() if catalog is not None else []
    return RulesTeacher(
        analyzer=analyze,
        catalog_values=catalog_value_index(catalog_rows, analyze),
        vocabulary_contains=engine.vocabulary_contains,
        recall_sizes=lambda queries: [r.recall_size for r in engine.search_many(queries, k=1)],
        reasoning=reasoning,
    )


# Few-shot examples for LLM teachers: one broad query (expand) and one specific query (empty list).
FEW_SHOT = [
    (
        "ergonomic mouse",
        [
            {
                "title": "Vertical Wireless Mouse 2.4G",
                "brand": "Anker",
                "attributes": [
                    {"name": "connectivity", "value": "wireless"},
                    {"name": "type", "value": "vertical"},
                ],
            },
            {
                "title": "MX Ergo Trackball Mouse",
                "brand": "Logitech",
                "attributes": [
                    {"name": "connectivity", "value": "bluetooth"},
                    {"name": "type", "value": "trackball"},
                ],
            },
            {
                "title": "Ergonomic Wired Mouse for Small Hands",
                "brand": "Jelly Comb",
                "attributes": [
                    {"name": "connectivity", "value": "wired"},
                    {"name": "type", "value": "vertical"},
                ],
            },
        ],
        TeacherOutput(
            'The shopper wants a mouse that is easy on the wrist, but "ergonomic mouse" is broad: the results '
            "differ in type (vertical, trackball) and connectivity (wireless, bluetooth, wired). Each expansion "
            "adds one combination seen in the results.",
            [
                "ergonomic mouse vertical wireless",
                "ergonomic mouse trackball logitech",
                "ergonomic mouse wired small hands",
            ],
        ),
    ),
    (
        "black bose quietcomfort ultra headphones",
        [
            {
                "title": "Bose QuietComfort Ultra Wireless Headphones, Black",
                "brand": "Bose",
                "attributes": [
                    {"name": "color", "value": "black"},
                    {"name": "model", "value": "QuietComfort Ultra"},
                ],
            },
            {
                "title": "Bose QuietComfort Ultra Headphones Black - Renewed",
                "brand": "Bose",
                "attributes": [
                    {"name": "color", "value": "black"},
                    {"name": "model", "value": "QuietComfort Ultra"},
                ],
            },
        ],
        TeacherOutput(
            "The query already names the brand, the model and the color, and the results agree with it, so it is "
            "specific; expanding would only drift from the intent.",
            [],
        ),
    ),
]


class OpenAIError(UserError, RuntimeError):
    """A non-retryable error from the endpoint (bad key, unknown model, bad request)."""


class OpenAITeacher:
    """Distil from any OpenAI-compatible `/chat/completions` endpoint.

    Few-shot (`FEW_SHOT` as earlier chat turns), at most `concurrency` requests in flight, retries with
    exponential backoff and jitter on 429, 5xx and network errors, and an append-only JSONL cache keyed by a hash of
    (model, messages, temperature) so an interrupted run resumes where it stopped. The API key is sent only in the
    Authorization header and never logged or cached.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        cache_path: str | Path,
        concurrency: int = 4,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 120.0,
        temperature: float = 0.3,
        max_tokens: int = 512,
        tokenizer=None,
        max_context_items: int = MAX_CONTEXT_ITEMS,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.cache_path = Path(cache_path)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer
        self.max_context_items = max_context_items
        self._lock = threading.Lock()
        self._cache: dict[str, str] = {}
        if self.cache_path.is_file():
            with self.cache_path.open(encoding="utf-8") as f:
                for line_no, line in enumerate(f, start=1):
                    try:
                        entry = json.loads(line)
                        self._cache[entry["key"]] = entry["completion"]
                    except (ValueError, KeyError):
                        # A line cut by an interrupted run: the request is simply made again.
                        log.warning("%s:%d: unreadable cache line skipped", self.cache_path, line_no)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAITeacher(base_url={self.base_url!r}, model={self.model!r})"

    @classmethod
    def from_env(cls, cache_path: str | Path, **kwargs) -> OpenAITeacher:
        """Base URL from LESER_TEACHER_BASE_URL (default https://api.openai.com/v1), model from
        LESER_TEACHER_MODEL (required), key from LESER_TEACHER_API_KEY or OPENAI_API_KEY (optional for local servers)."""
        model = os.environ.get("LESER_TEACHER_MODEL")
        if not model:
            raise RuntimeError(
                "the openai teacher needs LESER_TEACHER_MODEL (and LESER_TEACHER_BASE_URL for a local server)"
            )
        base_url = os.environ.get("LESER_TEACHER_BASE_URL", "https://api.openai.com/v1")
        api_key = os.environ.get("LESER_TEACHER_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return cls(base_url, model, api_key, cache_path, **kwargs)

    def messages_for(self, query: str, items: Sequence[dict]) -> list[dict]:
        messages = build_messages(query, items, self.tokenizer, max_context_items=self.max_context_items)
        shots = []
        for shot_query, shot_items, shot_output in FEW_SHOT:
            shots.append(build_messages(shot_query, shot_items)[1])
            shots.append({"role": "assistant", "content": shot_output.completion})
        return [messages[0], *shots, messages[1]]

    def _key(self, messages: list[dict]) -> str:
        payload = json.dumps([self.model, self.temperature, messages], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _post(self, messages: list[dict]) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            payload = json.loads(response.read())
        try:
            return payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise OpenAIError(
                f"{self.base_url}/chat/completions: unexpected response shape ({exc!r})"
            ) from None

    def complete(self, query: str, items: Sequence[dict]) -> str | None:
        """One completion (cached); None after `max_retries` transient failures, which the log counts."""
        messages = self.messages_for(query, items)
        key = self._key(messages)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        for attempt in range(self.max_retries + 1):
            try:
                completion = self._post(messages)
                break
            except urllib.error.HTTPError as exc:
                if exc.code not in (408, 409, 429) and exc.code < 500:
                    raise OpenAIError(
                        f"{self.base_url}/chat/completions: HTTP {exc.code} {exc.reason}"
                    ) from None
                reason = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = type(exc).__name__
            if attempt == self.max_retries:
                log.warning("teacher gave up on %r after %d attempts (%s)", query[:60], attempt + 1, reason)
                return None
            time.sleep(self.backoff_s * 2**attempt * (0.5 + random.random()))
        with self._lock:
            self._cache[key] = completion
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self.cache_path.open("a", encoding="utf-8") as f:
                f.write(
                    json.dumps({"key": key, "query": query, "completion": completion}, ensure_ascii=False)
                    + "\n"
                )
        return completion

    def complete_many(self, queries: Sequence[str], contexts: Sequence[Sequence[dict]]) -> list[str | None]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [
                pool.submit(self.complete, q, items) for q, items in zip(queries, contexts, strict=True)
            ]
            results = [f.result() for f in tqdm(futures, desc=f"teacher {self.model}", unit="query")]
        failed = sum(r is None for r in results)
        if failed:
            log.warning("teacher failed on %d of %d queries (after retries)", failed, len(results))
        return results
