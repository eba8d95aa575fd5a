"""rank_bm25 is the oracle: same BM25 variant (Okapi idf with epsilon floor, k1 1.5, b 0.75, titles only)
-> identical scores (float64 impacts, to 1e-12) and identical order on the committed 30-item corpus."""

import numpy as np
import orjson
import pytest
from rank_bm25 import BM25Okapi

from search_sim import IndexConfig, SearchEngine, build_index
from tests.fixtures_engine import ENGINE_CATALOG_DIR

QUERIES = [
    "ergonomic mouse",
    "wireless",  # in many titles
    "dell dock",
    "wd19tb",
    "sony wh-1000xm5 headphones",
    "sleep better",
    "navy t-shirt xxl",
    "usb-c phone charger 20w",
    "charger charger",  # repeated query term counts twice in both
]


@pytest.fixture(scope="module", params=["numba", "numpy"])
def parity(tmp_path_factory, request):
    config = IndexConfig(
        field_weights={"title": 1.0, "attributes": 0.0, "category": 0.0},
        k1=1.5,
        b=0.75,
        idf="okapi",
        minimum_should_match="1",  # rank_bm25 scores every document containing any query term
        impact_dtype="float64",
    )
    out = tmp_path_factory.mktemp("parity") / "index"
    build_index(ENGINE_CATALOG_DIR, out, config)
    engine = SearchEngine.load(out, backend=request.param)
    items = [orjson.loads(line) for line in (ENGINE_CATALOG_DIR / "catalog.jsonl").read_bytes().splitlines()]
    corpus = [engine.analyzer.analyze(item["title"]) for item in items]
    return engine, BM25Okapi(corpus, k1=1.5, b=0.75, epsilon=0.25), corpus, [i["item_id"] for i in items]


@pytest.mark.parametrize("query", QUERIES)
def test_scores_and_order_equal_rank_bm25(parity, query):
    engine, oracle, corpus, ids = parity
    terms = engine.analyzer.analyze(query)
    expected = oracle.get_scores(terms)
    containing = [i for i, doc in enumerate(corpus) if set(terms) & set(doc)]
    result = engine.search(query, k=len(ids))
    assert result.recall_size == len(containing)
    # identical order: descending score, ties by catalog order (a stable sort of rank_bm25's scores)
    order = sorted(containing, key=lambda i: (-expected[i], i))
    assert result.item_ids == [ids[i] for i in order]
    np.testing.assert_allclose(result.scores, expected[order], rtol=1e-12, atol=0)
