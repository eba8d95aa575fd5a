"""Validation gate of the LESER reward (paper Sec. 3.3: "reward 0 for any structurally invalid output").

A completion is valid when all of these hold, checked in this order (the first failure is the reason code):

0. The whole completion has at most ``max_completion_chars`` characters (``too_long_completion``).
1. Layout: exactly one ``<think>...</think>`` followed by exactly one ``<answer>...</answer>``. Whitespace
   (characters for which ``str.isspace()`` is true) is tolerated before ``<think>``, between ``</think>`` and
   ``<answer>`` and after ``</answer>``; any other text outside the two blocks is rejected. Tags are
   case-sensitive and take no attributes; the think block may hold anything except the four tags.
2. The answer block is one JSON document (JSON whitespace around it is allowed): an object whose only key is
   ``"expansion"`` (extra keys rejected unless ``allow_extra_keys``), holding a list of strings.
3. At most ``max_expansions`` expansions. An empty list is valid: it means "already specific, do not expand".
4. Each expansion, in order: no lone surrogate; after NFKC normalisation and stripping, non-empty and at most
   ``max_chars`` characters; at least one and at most ``max_tokens`` analyzer terms; not the query nor an earlier
   expansion after normalisation (the same multiset of analyzer terms: a bag-of-words engine returns the same
   items for both); no blocked term (whole analyzer terms, a term sequence for multi-word entries) and no
   match of a blocked regex (searched case-insensitively in the NFKC form); then supported attributes:
   every word (a surface token of ``Analyzer.tokenize``; stop words are skipped) whose terms are not all among
   the query's terms must be known to the catalog, ``word in vocabulary``, which for the engine is
   ``engine.vocabulary_contains(word)``. A word the catalog has never seen cannot match any item, so it can only
   be an invented attribute value ("unsupported attribute" in the paper). Skipped when no vocabulary is given.

Reasons are short stable codes (``REASONS``) so that failures can be counted.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import yaml

from data_prep.cli import yaml_problem
from search_sim.analyzer import Analyzer

# The repository's rules file: command-line defaults point here so that they work from any working directory.
DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "configs" / "rules.yaml"

REASONS = (
    "ok",
    "too_long_completion",  # the whole completion exceeds max_completion_chars
    "missing_think",  # no <think> or no </think>
    "missing_answer",  # no <answer> or no </answer>
    "multiple_think",  # more than one <think> or </think>
    "multiple_answer",  # more than one <answer> or </answer>
    "tag_order",  # tags present once each but not as <think></think><answer></answer>
    "text_outside_tags",  # non-whitespace text before, between or after the blocks
    "bad_json",  # answer body is not JSON
    "not_object",  # JSON is not an object
    "missing_expansion",  # object lacks "expansion"
    "extra_keys",  # object has keys besides "expansion"
    "expansion_not_list",  # "expansion" is not a list
    "non_string_expansion",  # an item is not a string
    "too_many_expansions",  # more than max_expansions
    "invalid_unicode",  # an item holds a lone surrogate (a JSON escape such as "\\ud800"), not encodable text
    "empty_expansion",  # an item is empty or whitespace only (or has no token)
    "too_long_expansion",  # an item exceeds max_chars or max_tokens
    "duplicate_of_query",  # an item normalises to the query
    "duplicate_expansion",  # an item normalises to an earlier item
    "blocked_term",  # an item contains a blocked term or pattern
    "unsupported_term",  # an item has a token neither in the vocabulary nor in the query
)

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_LAYOUT = re.compile(r"\A\s*<think>(.*)</think>\s*<answer>(.*)</answer>\s*\Z", re.DOTALL)


@functools.cache
def default_analyzer() -> Analyzer:
    """The search engine's default analyzer, for use without an index."""
    return Analyzer()


@dataclass(frozen=True)
class Rules:
    """Platform rules of the gate (``configs/rules.yaml``)."""

    max_expansions: int = 8
    max_chars: int = 120
    max_tokens: int = 16
    max_completion_chars: int = 8000
    allow_extra_keys: bool = False
    check_vocabulary: bool = True
    blocked_terms: tuple[str, ...] = ()
    blocked_patterns: tuple[str, ...] = ()
    _compiled: tuple[re.Pattern, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self):
        compiled = []
        for pattern in self.blocked_patterns:
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise ValueError(f"rules: blocked_patterns: invalid regex {pattern!r}: {exc}") from exc
        object.__setattr__(self, "_compiled", tuple(compiled))
        for name in ("max_expansions", "max_chars", "max_tokens", "max_completion_chars"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"rules: {name} must be a positive integer, got {getattr(self, name)!r}")

    @classmethod
    def load(cls, path: str | Path) -> Rules:
        """Read rules from YAML; unknown keys are an error naming the file and key."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML at {yaml_problem(exc)}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        known = {name for name in cls.__dataclass_fields__ if not name.startswith("_")}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
        for key in ("blocked_terms", "blocked_patterns"):
            if key in data:
                if not isinstance(data[key], list) or not all(isinstance(t, str) for t in data[key]):
                    raise ValueError(f"{path}: {key} must be a list of strings")
                data[key] = tuple(data[key])
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc


class GateResult(NamedTuple):
    valid: bool
    reason: str  # one of REASONS
    expansions: list[str]  # stripped NFKC expansions when valid, else []


def _fail(reason: str) -> GateResult:
    return GateResult(False, reason, [])


def _check_layout(text: str) -> tuple[str, str | None]:
    """Return (reason, answer body) for the think/answer layout."""
    counts = {tag: text.count(tag) for tag in _TAGS}
    if counts["<think>"] == 0 or counts["</think>"] == 0:
        return "missing_think", None
    if counts["<answer>"] == 0 or counts["</answer>"] == 0:
        return "missing_answer", None
    if counts["<think>"] > 1 or counts["</think>"] > 1:
        return "multiple_think", None
    if counts["<answer>"] > 1 or counts["</answer>"] > 1:
        return "multiple_answer", None
    positions = [text.index(tag) for tag in _TAGS]
    if positions != sorted(positions):
        return "tag_order", None
    match = _LAYOUT.match(text)
    if match is None:
        return "text_outside_tags", None
    return "ok", match.group(2)


def _contains_sequence(tokens: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(tokens[i : i + n] == phrase for i in range(len(tokens) - n + 1))


class CachedVocabulary:
    """``word in vocabulary`` = ``lookup(word)`` (the engine's ``vocabulary_contains``), cached: through the service every lookup is
    a request, and a policy reuses the same attribute words batch after batch."""

    def __init__(self, lookup: Callable[[str], bool], max_size: int = 1_000_000):
        self._lookup = lookup
        self._known: dict[str, bool] = {}
        self._max_size = max_size

    def __contains__(self, word: str) -> bool:
        known = self._known.get(word)
        if known is None:
            if len(self._known) >= self._max_size:
                self._known.clear()
            known = self._known[word] = bool(self._lookup(word))
        return known


def check_completion(
    text: str,
    query: str,
    rules: Rules,
    vocabulary: Container[str] | None = None,
    analyzer: Analyzer | None = None,
) -> GateResult:
    """Validate one completion; never raises on any string input.

    Args:
        text: the model's completion.
        query: the original query q.
        rules: platform rules.
        vocabulary: ``word in vocabulary`` tells whether the catalog knows a surface word (see rule 5); ``None``
            skips the unsupported-attribute check.
        analyzer: the engine's analyzer (``engine.analyzer``) so that "duplicate" and "unsupported" mean what
            the engine would do. Defaults to :func:`default_analyzer`.

    Returns:
        GateResult(valid, reason, expansions).
    """
    analyzer = analyzer or default_analyzer()
    analyze = analyzer.analyze
    if len(text) > rules.max_completion_chars:
        return _fail("too_long_completion")
    reason, body = _check_layout(text)
    if body is None:
        return _fail(reason)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return _fail("bad_json")
    if not isinstance(payload, dict):
        return _fail("not_object")
    if "expansion" not in payload:
        return _fail("missing_expansion")
    if len(payload) > 1 and not rules.allow_extra_keys:
        return _fail("extra_keys")
    items = payload["expansion"]
    if not isinstance(items, list):
        return _fail("expansion_not_list")
    if not all(isinstance(item, str) for item in items):
        return _fail("non_string_expansion")
    if len(items) > rules.max_expansions:
        return _fail("too_many_expansions")

    query_tokens = analyze(query)
    query_terms = set(query_tokens)
    query_key = tuple(sorted(query_tokens))
    seen = {query_key}
    blocked = [analyze(term) for term in rules.blocked_terms]
    expansions = []
    for raw in items:
        if _LONE_SURROGATE.search(raw):
            return _fail("invalid_unicode")
        expansion = unicodedata.normalize("NFKC", raw).strip()
        if not expansion:
            return _fail("empty_expansion")
        if len(expansion) > rules.max_chars:
            return _fail("too_long_expansion")
        tokens = analyze(expansion)
        if not tokens:
            return _fail("empty_expansion")
        if len(tokens) > rules.max_tokens:
            return _fail("too_long_expansion")
        key = tuple(sorted(tokens))
        if key == query_key:
            return _fail("duplicate_of_query")
        if key in seen:
            return _fail("duplicate_expansion")
        seen.add(key)
        if any(_contains_sequence(tokens, phrase) for phrase in blocked) or any(
            pattern.search(expansion) for pattern in rules._compiled
        ):
            return _fail("blocked_term")
        if vocabulary is not None and rules.check_vocabulary and not set(tokens) <= query_terms:
            for word in analyzer.tokenize(expansion):
                terms = analyze(word)
                if terms and not set(terms) <= query_terms and word not in vocabulary:
                    return _fail("unsupported_term")
        expansions.append(expansion)
    return GateResult(True, "ok", expansions)


class Gate:
    """The gate bound to one rule set and one engine's vocabulary (cached) and analyzer: ``gate(text, query)`` ->
    GateResult. The one place where check_completion meets an engine: the reward, the evaluation and the serving
    cache all build theirs here."""

    def __init__(self, rules: Rules, vocabulary_contains: Callable[[str], bool], analyzer: Analyzer):
        self.rules = rules
        self.vocabulary = CachedVocabulary(vocabulary_contains)
        self.analyzer = analyzer

    @classmethod
    def for_engine(cls, engine, rules: Rules) -> Gate:
        """The gate of `engine` (SearchEngine or SearchClient) under `rules`."""
        return cls(rules, engine.vocabulary_contains, engine.analyzer)

    def __call__(self, text: str, query: str) -> GateResult:
        return check_completion(text, query, self.rules, self.vocabulary, self.analyzer)
