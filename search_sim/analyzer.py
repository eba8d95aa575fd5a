"""Text analysis shared by indexing, querying, the relevance model and the validation gate.

Pipeline (the same at index and at query time, so both sides agree on every term):

1. Unicode NFKC (full-width letters, ligatures and compatibility digits fold to their plain forms), lowercase.
2. Apostrophes are dropped ("men's" -> "mens", "5'11" -> "511"); every other non-alphanumeric character
   separates tokens, except a decimal point between digits ("2.5") which is kept.
3. Identifier normalisation: tokens split at letter/digit boundaries, like Elasticsearch's word_delimiter with
   split_on_numerics. "WD-19TB", "WD19 TB" and "wd19tb" all become ``wd 19 tb``; "2XL" becomes ``2 xl``;
   "16GB" and "16 GB" agree. Recall then matches identifiers however a seller or a shopper spaced them.
4. Stop words (default: Lucene's English list) are removed; then optional Snowball stemming (PyStemmer).

The analyzer is a pure function of its :class:`AnalyzerConfig`, which is stored in the index manifest so that a
loaded index always analyses queries the way it analysed the catalog.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import asdict, dataclass, field

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (the Elasticsearch "_english_" default).
LUCENE_ENGLISH_STOP_WORDS = [
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "but",
    "by",
    "for",
    "if",
    "in",
    "into",
    "is",
    "it",
    "no",
    "not",
    "of",
    "on",
    "or",
    "such",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "will",
    "with",
]

# One token: a number with an optional decimal part, a run of letters, or a run of other word characters (CJK,
# etc.). Letters and digits are separate alternatives, so "wd19tb" yields "wd", "19", "tb".
_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+")
_SEPARATOR = "\x1e"  # ASCII record separator: joins texts in analyze_batch; never part of a token
_DROP_APOSTROPHES = str.maketrans("", "", "'\u2019")


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything that decides the analyzer's output; saved in the index manifest.

    Attributes:
        stemmer: Snowball language for PyStemmer ("english", "german", ...), or "" for no stemming.
        stop_words: terms dropped after lowercasing (before stemming).
        split_identifiers: split tokens at letter/digit boundaries (see module docstring).
        min_token_chars: shorter tokens are dropped (1 keeps sizes such as "s", "m", "l" and single digits).
    """

    stemmer: str = "english"
    stop_words: tuple[str, ...] = field(default=tuple(LUCENE_ENGLISH_STOP_WORDS))
    split_identifiers: bool = True
    min_token_chars: int = 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop_words"] = list(self.stop_words)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AnalyzerConfig:
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown analyzer config field(s): {sorted(unknown)}")
        d = dict(d)
        if "stop_words" in d:
            d["stop_words"] = tuple(d["stop_words"])
        return cls(**d)


class Analyzer:
    """Turns text into index terms: ``Analyzer().analyze("WD-19TB Docks") == ["wd", "19", "tb", "dock"]``."""

    def __init__(self, config: AnalyzerConfig | None = None):
        self.config = config or AnalyzerConfig()
        self._stop = frozenset(self.config.stop_words)
        self._token_re = _TOKEN_RE if self.config.split_identifiers else re.compile(r"\d+(?:\.\d+)?|\w+")
        self._batch_re = re.compile(self._token_re.pattern + "|" + _SEPARATOR)
        if self.config.stemmer:
            import Stemmer  # PyStemmer; C extension, imported lazily so a no-stemming analyzer needs nothing

            self._stemmer = Stemmer.Stemmer(self.config.stemmer)
        else:
            self._stemmer = None
        # Stemming the same surface token again and again dominates index build time; the vocabulary of a
        # catalog is small compared with its token count, so a plain dict cache pays off.
        self._stem_cache: dict[str, str] = {}
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Analyzer({self.config})"

    def tokenize(self, text: str) -> list[str]:
        """Normalised surface tokens before stop-word removal and stemming."""
        text = unicodedata.normalize("NFKC", text).lower()
        text = text.translate(_DROP_APOSTROPHES)
        return self._token_re.findall(text)

    def analyze(self, text: str) -> list[str]:
        """Index / query terms of ``text`` in order, duplicates kept."""
        tokens = [
            t for t in self.tokenize(text) if t not in self._stop and len(t) >= self.config.min_token_chars
        ]
        if self._stemmer is None:
            return tokens
        cache = self._stem_cache
        missing = [t for t in tokens if t not in cache]
        if not missing:
            try:
                return [cache[t] for t in tokens]
            except KeyError:  # another thread cleared the cache in between: stem this text afresh
                missing = tokens
        fresh = dict(zip(missing, self._stemmer_for_thread().stemWords(missing), strict=True))
        if len(cache) > 2_000_000:  # a long-running service sees endless novel tokens; bound the memory
            cache.clear()
        cache.update(fresh)
        return [
            fresh[t] if t in fresh else cache.get(t) or self._stemmer_for_thread().stemWord(t) for t in tokens
        ]

    def _stemmer_for_thread(self):
        """PyStemmer objects must not be shared between threads (the search service runs one per request)."""
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import Stemmer

            stemmer = self._local.stemmer = Stemmer.Stemmer(self.config.stemmer)
        return stemmer

    def analyze_many(self, texts: list[str]) -> list[list[str]]:
        return [self.analyze(t) for t in texts]

    def analyze_batch(self, texts: list[str]):
        """The terms of many texts at once, for index building: ``(terms, codes, lengths)`` where ``terms`` is the
        sorted list of distinct terms, ``codes`` (int32 numpy) indexes ``terms`` for every term occurrence, text
        after text, and ``lengths[i]`` is the number of terms of ``texts[i]``. Same terms as :meth:`analyze` on
        each text (a test checks this), but normalisation and tokenisation run once over the joined texts in C,
        and each distinct token is stemmed once."""
        import numpy as np

        joined = _SEPARATOR.join(texts)
        if joined.count(_SEPARATOR) != max(
            len(texts) - 1, 0
        ):  # a text containing the separator: split it out
            joined = _SEPARATOR.join(t.replace(_SEPARATOR, " ") for t in texts)
        text = unicodedata.normalize("NFKC", joined).lower().translate(_DROP_APOSTROPHES)
        tokens = self._batch_re.findall(text)
        distinct = sorted(set(tokens))  # sorted: same catalog -> same term ids -> byte-identical index
        kept = [
            t
            for t in distinct
            if t != _SEPARATOR and t not in self._stop and len(t) >= self.config.min_token_chars
        ]
        stems = self._stemmer_for_thread().stemWords(kept) if self._stemmer is not None else kept
        terms = sorted(set(stems))
        position = {t: i for i, t in enumerate(terms)}
        code = dict.fromkeys(distinct, -1)
        code[_SEPARATOR] = -2
        for raw, stem in zip(kept, stems, strict=True):
            code[raw] = position[stem]
        ids = np.fromiter(map(code.__getitem__, tokens), dtype=np.int32, count=len(tokens))
        text_of_token = np.cumsum(ids == -2)
        keep = ids >= 0
        return terms, ids[keep], np.bincount(text_of_token[keep], minlength=len(texts)).astype(np.int64)
