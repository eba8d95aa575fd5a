"""Analyzer: normalisation, identifiers, stop words, stemming (table-driven)."""

import pytest

from search_sim.analyzer import Analyzer, AnalyzerConfig

DEFAULT = Analyzer()
NO_STEM = Analyzer(AnalyzerConfig(stemmer=""))

CASES = [
    # identifiers written three ways analyse to the same terms
    ("WD-19TB", ["wd", "19", "tb"]),
    ("WD19 TB", ["wd", "19", "tb"]),
    ("wd19tb", ["wd", "19", "tb"]),
    # full-width characters fold under NFKC
    ("ＷＤ１９ＴＢ", ["wd", "19", "tb"]),
    # sizes: "2XL" splits like "2 XL"; "XXL" stays one term
    ("2XL", ["2", "xl"]),
    ("XXL", ["xxl"]),
    # capacities with and without a space agree
    ("16GB", ["16", "gb"]),
    ("16 GB", ["16", "gb"]),
    # a decimal point between digits is kept
    ("2.5mm jack", ["2.5", "mm", "jack"]),
    # apostrophes inside words are dropped, then stemming
    ("Men's Running Shoes", ["men", "run", "shoe"]),
    # punctuation separates; stop words (Lucene English) go
    ("mouse, for the wrist!!", ["mous", "wrist"]),
    # accents are kept (NFKC composes them), case folds
    ("Café CRÈME", ["café", "crème"]),
    # nothing indexable
    ("--- !!! ", []),
    ("the and of", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_default_analyzer(text, expected):
    assert DEFAULT.analyze(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # without stemming, plurals stay plural
        ("Wireless Mice", ["wireless", "mice"]),
        ("running shoes", ["running", "shoes"]),
    ],
)
def test_no_stemming(text, expected):
    assert NO_STEM.analyze(text) == expected


def test_custom_stop_words_and_no_identifier_split():
    analyzer = Analyzer(AnalyzerConfig(stemmer="", stop_words=("with",), split_identifiers=False))
    # "the" is no longer a stop word; "wd19tb" is no longer split
    assert analyzer.analyze("the dock with wd19tb") == ["the", "dock", "wd19tb"]


def test_config_round_trip():
    config = AnalyzerConfig(stemmer="german", stop_words=("und",), min_token_chars=2)
    assert AnalyzerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown analyzer config"):
        AnalyzerConfig.from_dict({"stemmer": "", "lowercase": True})


def test_analyze_batch_equals_analyze_text_by_text():
    texts = [text for text, _ in CASES] + ["", "a\x1eb WD-19TB", "ΣΟΦΟΣ Σ", "İstanbul 2,5 kg", "x" * 3]
    for analyzer in (DEFAULT, NO_STEM, Analyzer(AnalyzerConfig(split_identifiers=False, min_token_chars=2))):
        terms, codes, lengths = analyzer.analyze_batch(texts)
        assert terms == sorted(set(terms))
        flat = [terms[c] for c in codes]
        expected = [analyzer.analyze(t.replace("\x1e", " ")) for t in texts]
        assert lengths.tolist() == [len(e) for e in expected]
        assert flat == [t for e in expected for t in e]
