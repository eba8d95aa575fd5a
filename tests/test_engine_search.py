"""SearchEngine against a brute-force reference: recall sets and counts, BM25F scores, ranking, fusion, items."""

import itertools
import math
from collections import Counter

import numpy as np
import orjson
import pytest

from search_sim import SearchEngine
from search_sim.bm25 import minimum_should_match
from tests.fixtures_engine import ENGINE_CATALOG_DIR

WEIGHTS = {"title": 2.0, "attributes": 1.0, "category": 0.5}  # IndexConfig defaults


def _catalog():
    return [orjson.loads(line) for line in (ENGINE_CATALOG_DIR / "catalog.jsonl").read_bytes().splitlines()]


class BruteForce:
    """Textbook BM25F (weighted tf and length, Lucene idf) over every item, no index."""

    def __init__(self, engine):
        self.analyze = engine.analyzer.analyze
        self.k1, self.b = engine.config.k1, engine.config.b
        self.tf, self.dl = [], []
        for item in _catalog():
            fields = {
                "title": [item["title"]],
                "attributes": [a["value"] for a in item["attributes"]] + [item["brand"]],
                "category": item["category"],
            }
            tf = Counter()
            for name, texts in fields.items():
                for text in texts:
                    for term in self.analyze(text):
                        tf[term] += WEIGHTS[name]
            self.tf.append(tf)
            self.dl.append(sum(tf.values()))
        self.ids = [item["item_id"] for item in _catalog()]
        self.avgdl = sum(self.dl) / len(self.dl)

    def search(self, query, msm):
        terms = Counter(self.analyze(query))
        required = minimum_should_match(msm, len(terms))
        n = len(self.tf)
        out = []
        for i, tf in enumerate(self.tf):
            if not terms or sum(t in tf for t in terms) < required:
                continue
            score = 0.0
            for t, qtf in terms.items():
                if t in tf:
                    df = sum(t in other for other in self.tf)
                    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                    norm = self.k1 * (1 - self.b + self.b * self.dl[i] / self.avgdl)
                    score += qtf * idf * tf[t] * (self.k1 + 1) / (tf[t] + norm)
            out.append((self.ids[i], score, i))
        out.sort(key=lambda r: (-r[1], r[2]))
        return out


QUERIES = [
    "ergonomic mouse",
    "wireless mouse",
    "wireless vertical ergonomic mouse for wrist support",  # long: 75% of the terms
    "WD-19TB",
    "dell dock 180w",
    "bose headphones",
    "noise cancelling headphones black sony",
    "sleep",
    "xxl navy t-shirt",
    "usb-c charger",
    "charger charger phone",  # repeated term: counted once for recall, twice in the score
    "zebra unicorn",  # nothing in the vocabulary
    "mouse zebra",  # one unknown term of two: 2 required, nothing matches
    "",
]


@pytest.fixture(scope="module", params=["numba", "numpy"])
def engine(engine_catalog_index, request):
    return SearchEngine.load(engine_catalog_index, backend=request.param)


@pytest.fixture(scope="module")
def brute(engine):
    return BruteForce(engine)


@pytest.mark.parametrize("msm", ["3<75%", "1", "100%", "-1", "50%"])
@pytest.mark.parametrize("query", QUERIES)
def test_recall_and_ranking_match_brute_force(engine, brute, query, msm):
    expected = brute.search(query, msm)
    result = engine.search(query, k=5, minimum_should_match=msm)
    assert result.recall_size == len(expected)
    assert result.item_ids == [r[0] for r in expected[:5]]
    np.testing.assert_allclose(result.scores, [r[1] for r in expected[:5]], rtol=1e-5)


def test_recall_size_is_exact_whatever_k(engine):
    full = engine.search("wireless", k=1000)
    assert engine.search("wireless", k=1).recall_size == full.recall_size == len(full.item_ids)
    nothing = engine.search("wireless", k=0)
    assert (nothing.item_ids, len(nothing.scores), nothing.recall_size) == ([], 0, full.recall_size)


def test_identifier_variants_recall_the_same_items(engine):
    sets = [set(engine.search(q, k=100).item_ids) for q in ("WD-19TB", "WD19 TB", "wd19tb", "ＷＤ１９ＴＢ")]
    assert sets[0] == sets[1] == sets[2] == sets[3] == {"d1", "d3", "c2"}


def test_union_recall_size(engine):
    a = set(engine.search("ergonomic mouse", k=100).item_ids)
    b = set(engine.search("logitech trackball", k=100).item_ids)
    c = set(engine.search("sleep", k=100).item_ids)
    assert engine.recall_size(["ergonomic mouse", "logitech trackball", "sleep"]) == len(a | b | c)
    assert engine.recall_size(["ergonomic mouse", "ergonomic mouse"]) == len(a)
    assert engine.recall_size(["zebra"]) == 0
    assert engine.recall_size_many([["sleep"], ["sleep", "ergonomic mouse"]]) == [len(c), len(a | c)]
    with pytest.raises(TypeError):
        engine.recall_size("sleep")


def test_rrf_fusion_by_hand(engine):
    queries = ["ergonomic mouse", "logitech trackball", "wireless headphones"]
    rankings = [engine.search(q, k=100).item_ids for q in queries]
    fused = Counter()
    for ranking in rankings:
        for rank, item_id in enumerate(ranking, start=1):
            fused[item_id] += 1 / (60 + rank)
    result = engine.merged(queries, k=4)
    assert result.scores == pytest.approx(sorted(fused.values(), reverse=True)[:4])
    assert {fused[i] for i in result.item_ids} == set(sorted(fused.values(), reverse=True)[:4])
    assert result.recall_size == engine.recall_size(queries)
    # no item is in two of these lists, so the first-ranked items of the three queries (m6, m2, h5) tie at 1/61,
    # keep the queries' order (the original query first) and all beat the second-ranked m1 (1/62)
    assert [fused[i] for i in ("m6", "m2", "h5", "m1")] == [1 / 61, 1 / 61, 1 / 61, 1 / 62]
    assert result.item_ids == ["m6", "m2", "h5", "m1"]


def test_rrf_ties_prefer_the_original_query(engine):
    # m6 is first for "ergonomic mouse pad", m2 first for "logitech trackball": equal RRF, the first query wins
    result = engine.merged(["ergonomic mouse pad", "logitech trackball"], k=2)
    assert result.item_ids == ["m6", "m2"]


def test_interleave(engine):
    a = engine.search("ergonomic mouse", k=10).item_ids
    b = engine.search("logitech", k=10).item_ids
    result = engine.merged(["ergonomic mouse", "logitech"], k=4, policy="interleave")
    expected = []
    for pair in itertools.zip_longest(a, b):
        for item in pair:
            if item is not None and item not in expected:
                expected.append(item)
    assert result.item_ids == expected[:4]
    assert result.scores.tolist() == [1, 1 / 2, 1 / 3, 1 / 4]
    with pytest.raises(ValueError, match="merge policy"):
        engine.merged(["a"], policy="borda")


def test_search_many_matches_search(engine):
    results = engine.search_many(["sleep", "ergonomic mouse", "sleep"], k=3)
    assert [r.item_ids for r in results] == [
        engine.search(q, k=3).item_ids for q in ["sleep", "ergonomic mouse", "sleep"]
    ]


def test_items_and_vocabulary(engine):
    items = engine.items(["d1", "m1"])
    assert [i["item_id"] for i in items] == ["d1", "m1"]
    assert items[0]["attributes"][0] == {"name": "model", "value": "WD-19TB"}
    assert set(items[0]) == {"item_id", "title", "category", "attributes", "brand", "description"}
    with pytest.raises(KeyError, match="nope"):
        engine.items(["m1", "nope"])
    assert engine.vocabulary_contains("Docking stations")
    assert not engine.vocabulary_contains("zebra dock")
    assert not engine.vocabulary_contains("the")
    assert engine.document_frequency("mouse zebra") == {"mous": 6, "zebra": 0}


def test_result_cache_gives_the_same_answers(engine_catalog_index):
    cached = SearchEngine.load(engine_catalog_index, cache_mb=1)
    uncached = SearchEngine.load(engine_catalog_index, cache_mb=0)
    for _ in range(2):
        for q in QUERIES:
            a, b = cached.search(q, k=5), uncached.search(q, k=5)
            assert a.item_ids == b.item_ids and a.recall_size == b.recall_size
    assert cached.cache_hits == len(QUERIES) and cached.cache_misses == len(QUERIES)
    assert cached.recall_size(QUERIES) == uncached.recall_size(QUERIES)


def test_dense_bitsets_locate_every_posting():
    from search_sim.index import dense_bitsets

    rng = np.random.default_rng(0)
    n_items = 5000
    lists = [np.sort(rng.choice(n_items, size, replace=False)) for size in (10, 400, 2000, 4999)]
    indptr = np.r_[0, np.cumsum([len(x) for x in lists])]
    docs = np.concatenate(lists).astype(np.int32)
    slot, words, rank = dense_bitsets(indptr, docs, n_items)
    assert slot.tolist() == [-1, 0, 1, 2]  # df >= 5000 / 16 = 312.5
    for t in (1, 2, 3):
        for pos in range(indptr[t], indptr[t + 1]):
            d = int(docs[pos])
            word = int(words[slot[t], d >> 6])
            assert word >> (d & 63) & 1
            assert indptr[t] + rank[slot[t], d >> 6] + bin(word & ((1 << (d & 63)) - 1)).count("1") == pos
        assert int(np.bitwise_count(words[slot[t]]).sum()) == indptr[t + 1] - indptr[t]


@pytest.mark.parametrize("msm", ["3<75%", "1", "-1"])
def test_backends_agree_on_a_synthetic_catalog(small_index, small_synth_dir, msm):
    import pyarrow.parquet as pq

    # 3000 items: common terms have bitsets, so this covers the numba kernel's bitset path against numpy
    numba_engine = SearchEngine.load(small_index, backend="numba", cache_mb=0)
    numpy_engine = SearchEngine.load(small_index, backend="numpy", cache_mb=0)
    assert (numba_engine._dense_slot >= 0).sum() > 10
    queries = pq.read_table(small_synth_dir / "queries.parquet").column("query").to_pylist()[:150]
    for q in queries + ["new black", "black white blue"]:
        a, b = numba_engine.match(q, msm), numpy_engine.match(q, msm)
        order_a, order_b = np.argsort(a[0]), np.argsort(b[0])
        np.testing.assert_array_equal(a[0][order_a], b[0][order_b])
        np.testing.assert_allclose(a[1][order_a], b[1][order_b], rtol=1e-9)
