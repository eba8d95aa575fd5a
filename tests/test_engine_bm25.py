"""minimum_should_match (Elasticsearch semantics) and the idf variants."""

import math

import numpy as np
import pytest

from search_sim.bm25 import bm25_impacts, idf_lucene, idf_okapi, minimum_should_match

MSM_CASES = [
    # (spec, n_terms, required)
    ("1", 5, 1),  # plain integer
    ("3", 2, 2),  # more than there are terms: clamped to n
    ("-1", 4, 3),  # all but one
    ("-5", 3, 1),  # never below 1
    ("75%", 4, 3),  # percentages round down
    ("75%", 3, 2),
    ("100%", 7, 7),
    ("-25%", 4, 3),  # negative percentage: n - floor(n * 25%)
    ("-25%", 3, 3),  # floor(0.75) = 0 terms may be missing
    ("3<75%", 3, 3),  # the default: up to 3 terms all are required
    ("3<75%", 4, 3),
    ("3<75%", 5, 3),
    ("3<75%", 8, 6),
    ("2<-25% 9<-3", 2, 2),  # several conditions: the largest threshold below n applies
    ("2<-25% 9<-3", 8, 6),
    ("2<-25% 9<-3", 12, 9),
    ("3<75%", 0, 0),  # empty query matches nothing
]


@pytest.mark.parametrize(("spec", "n_terms", "required"), MSM_CASES)
def test_minimum_should_match(spec, n_terms, required):
    assert minimum_should_match(spec, n_terms) == required


@pytest.mark.parametrize("spec", ["", "abc", "3<", "<75%", "75%%", "1.5"])
def test_invalid_minimum_should_match(spec):
    with pytest.raises(ValueError, match="minimum_should_match"):
        minimum_should_match(spec, 4)


def test_idf_variants():
    df = np.array([1, 5, 9])
    # Lucene: ln(1 + (N - df + .5) / (df + .5)), always positive
    assert idf_lucene(df, 10) == pytest.approx([math.log(1 + (10 - d + 0.5) / (d + 0.5)) for d in df])
    # Okapi: ln((N - df + .5) / (df + .5)); the negative one (df = 9) becomes 0.25 * mean idf
    raw = [math.log((10 - d + 0.5) / (d + 0.5)) for d in df]
    expected = [raw[0], raw[1], 0.25 * sum(raw) / 3]
    assert idf_okapi(df, 10) == pytest.approx(expected)


def test_bm25_impacts_saturate_and_normalise():
    idf = 2.0
    one, many = bm25_impacts(np.array([1.0, 100.0]), np.array([10.0, 10.0]), 10.0, idf, k1=1.2, b=0.75)
    assert one == pytest.approx(idf)  # tf = 1 at average length: idf * (k1 + 1) / (1 + k1)
    assert many < idf * 2.2  # saturates below idf * (k1 + 1)
    short, long_ = bm25_impacts(np.array([1.0, 1.0]), np.array([5.0, 20.0]), 10.0, idf, k1=1.2, b=0.75)
    assert short > long_  # shorter documents score higher for the same tf


def test_readme_recall_rule_table():
    """search_sim/README.md's worked table of the default recall rule is what the code does: each row's counts are
    minimum_should_match's, its example query has that many distinct analysed terms, and its example item (in double
    quotes) holds enough of them to be recalled."""
    import re
    from pathlib import Path

    from search_sim.analyzer import Analyzer, AnalyzerConfig
    from search_sim.bm25 import DEFAULT_MINIMUM_SHOULD_MATCH

    readme = (Path(__file__).resolve().parent.parent / "search_sim" / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (\d+) \| (\d+) \| `([^`]+)`(.*)\|$", readme, flags=re.M)
    assert [int(r[0]) for r in rows] == list(range(1, 9)), "the table covers 1 to 8 terms"
    analyzer = Analyzer(AnalyzerConfig())
    for n, must, miss, query, rest in rows:
        n, must, miss = int(n), int(must), int(miss)
        assert minimum_should_match(DEFAULT_MINIMUM_SHOULD_MATCH, n) == must, n
        assert miss == n - must, n
        terms = set(analyzer.analyze(query))
        assert len(terms) == n, (query, sorted(terms))
        for item in re.findall(r'"([^"]+)"', rest):
            shared = terms & set(analyzer.analyze(item))
            assert len(shared) >= must, (query, item, sorted(shared))
            if n > 3:
                assert "mous" not in shared or "mouse" not in query, (query, item)
