"""Synthetic marketplace: determinism, format, phenomena, and the oracle's grades on hand-made cases."""

import hashlib
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from data_prep import formats, synth

# A two-category world for hand-made oracle cases: mice (Style, Connectivity, Color) and keyboards.
TAXONOMY = {
    "categories": [
        {
            "name": "mice",
            "slots": ["Style", "Connectivity", "Color"],
            "values": [["vertical", "standard"], ["wireless", "wired"], ["black", "white"]],
        },
        {
            "name": "keyboards",
            "slots": ["Style", "Color"],
            "values": [["ergonomic", "standard"], ["black", "white"]],
        },
        {"name": "books", "slots": ["Genre"], "values": [["fantasy", "mystery"]]},
    ]
}
# items: (category, product, attribute codes)
ITEMS = [
    (0, 0, [0, 0, 0]),  # m0: vertical wireless black mouse, product 0
    (0, 0, [0, 0, 1]),  # m1: same product in white
    (0, 1, [0, 1, 0]),  # m2: vertical wired mouse
    (0, 2, [1, 1, 0]),  # m3: standard wired mouse
    (1, 3, [0, 0, -1]),  # k0: ergonomic keyboard (related to mice)
    (2, 4, [0, -1, -1]),  # b0: fantasy book (unrelated)
]
INTENTS = {
    "broad-1": {
        "level": "broad",
        "categories": {"mice": 4},
        "related": ["keyboards"],
        "constraints": {"mice": {"Style": ["vertical"], "Connectivity": ["wireless"]}},
        "products": [],
    },
    "broad-0": {
        "level": "broad",
        "categories": {"mice": 4},
        "related": [],
        "constraints": {},
        "products": [],
    },
    "spec-2": {
        "level": "specific",
        "categories": {"mice": 2},
        "related": ["keyboards"],
        "constraints": {"mice": {"Color": ["white"]}},
        "products": [0],
    },
    "iden-3": {
        "level": "identifier",
        "categories": {"mice": 2},
        "related": [],
        "constraints": {},
        "products": [0],
    },
    "prob-4": {
        "level": "problem",
        "categories": {"mice": 4, "keyboards": 3},
        "related": [],
        "constraints": {"mice": {"Style": ["vertical"]}},
        "products": [],
    },
}
QUERIES = {
    "ergonomic mouse": "broad-1",
    "mouse": "broad-0",
    "white logitech mx mouse": "spec-2",
    "mx-910": "iden-3",
    "wrist pain": "prob-4",
}


@pytest.fixture(scope="module")
def tiny_oracle():
    attrs = np.full((len(ITEMS), synth.MAX_SLOTS), -1, dtype=np.int16)
    for i, (_, _, codes) in enumerate(ITEMS):
        attrs[i, : len(codes)] = codes
    return synth.Oracle(
        ["m0", "m1", "m2", "m3", "k0", "b0"],
        np.array([c for c, _, _ in ITEMS], dtype=np.int16),
        np.array([p for _, p, _ in ITEMS], dtype=np.int32),
        attrs,
        TAXONOMY,
        INTENTS,
        QUERIES,
    )


ORACLE_CASES = [
    # broad with two constraints: both hold -> 4, one of two -> 3, none -> 2, related keyboard -> 1, book -> 0
    ("ergonomic mouse", [4, 4, 3, 2, 1, 0]),
    # broad without constraints: every mouse is a perfect answer
    ("mouse", [4, 4, 4, 4, 0, 0]),
    # specific product in white: the white one 4, the black one of the same product 3, other mice 2, related 1
    ("white logitech mx mouse", [3, 4, 2, 2, 1, 0]),
    # identifier: the product 4 whatever the color, same category 2
    ("mx-910", [4, 4, 2, 2, 0, 0]),
    # problem: vertical mice satisfy the constraint (4), standard mice 2, keyboards are a partial answer (3)
    ("wrist pain", [4, 4, 4, 2, 3, 0]),
]


@pytest.mark.parametrize("query,expected", ORACLE_CASES, ids=[c[0] for c in ORACLE_CASES])
def test_oracle_grades_hand_made(tiny_oracle, query, expected):
    grades = tiny_oracle.grade(query, ["m0", "m1", "m2", "m3", "k0", "b0"])
    assert grades.dtype == np.int8
    assert grades.tolist() == expected
    assert tiny_oracle.grade_all(query).tolist() == expected


def test_oracle_unknown_query_and_item(tiny_oracle):
    with pytest.raises(KeyError):
        tiny_oracle.grade("not in the log", ["m0"])
    with pytest.raises(KeyError):
        tiny_oracle.grade("mouse", ["nope"])
    assert tiny_oracle.query_level("wrist pain") == "problem"


@pytest.mark.parametrize(
    "identifier,variant",
    [("WD-19TB", "WD19TB"), ("WD-19TB", "WD19 TB"), ("WD-19TB", "wd-19tb"), ("KX-450", "KX 450")],
)
def test_identifier_variants(identifier, variant):
    assert variant in synth.identifier_variants(identifier)


def _hashes(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path):
    synth.generate(1500, 150, seed=3, out=tmp_path / "a", progress=False)
    synth.generate(1500, 150, seed=3, out=tmp_path / "b", progress=False)
    synth.generate(1500, 150, seed=4, out=tmp_path / "c", progress=False)
    a, b, c = _hashes(tmp_path / "a"), _hashes(tmp_path / "b"), _hashes(tmp_path / "c")
    assert set(a) >= {
        "catalog.parquet",
        "queries.parquet",
        "judgments.parquet",
        "manifest.json",
        "truth/taxonomy.json",
        "truth/intents.jsonl",
        "truth/item_attrs.npy",
    }
    assert a == b
    assert a["catalog.parquet"] != c["catalog.parquet"]


def test_output_loads_and_manifest_counts(small_synth_dir):
    ds = formats.load_dataset(small_synth_dir)  # validates every file and every judged item id
    assert ds.catalog.num_rows == 3000 and ds.queries.num_rows == 300
    counts = ds.manifest["counts"]
    assert counts["judgments"] == ds.judgments.num_rows and counts["judged_queries"] == 300
    assert set(ds.judgments.column("source").to_pylist()) == {"oracle"}
    assert ds.manifest["taxonomy"]["departments"] >= 6 and ds.manifest["taxonomy"]["categories"] >= 30
    oracle = synth.Oracle.load(small_synth_dir)
    j = ds.judgments.to_pydict()
    for query in list(dict.fromkeys(j["query"]))[:50]:  # the judgments are the oracle's grades
        idx = [i for i, q in enumerate(j["query"]) if q == query]
        assert oracle.grade(query, [j["item_id"][i] for i in idx]).tolist() == [j["grade"][i] for i in idx]


def test_every_level_present_with_zipf_frequencies(small_synth_dir):
    oracle = synth.Oracle.load(small_synth_dir)
    queries = pq.read_table(small_synth_dir / "queries.parquet").to_pydict()
    levels = Counter(oracle.query_level(q) for q in queries["query"])
    assert set(levels) == set(synth.LEVELS)
    freq = np.array(queries["frequency"])
    assert freq.max() >= 50 * np.median(freq)  # a head far above the median, a long tail of rare queries
    assert (freq == 1).sum() >= 10


def test_vocabulary_mismatch_for_broad_problem_colloquial(small_synth_dir):
    """Most truly relevant items of broad/problem/colloquial queries lack some of the query's words;
    specific queries share words with nearly all their targets."""
    stats = {s.level: s for s in synth.level_stats(small_synth_dir)}
    assert set(stats) == set(synth.LEVELS)
    for level in ("broad", "problem", "colloquial"):
        assert stats[level].share_all_words_in_title < 0.3, level
    assert stats["problem"].share_any_word_in_title < 0.3
    assert stats["specific"].share_any_word_in_title > 0.9


def test_stuffed_titles_fool_words_not_the_oracle(small_synth_dir):
    """Keyword-stuffed listings match the words of queries they do not answer; the oracle grades them <= 1."""
    stuffed = np.flatnonzero(np.load(small_synth_dir / "truth" / "item_stuffed.npy"))
    assert 0.005 < len(stuffed) / 3000 < 0.05
    oracle = synth.Oracle.load(small_synth_dir)
    titles = pq.read_table(small_synth_dir / "catalog.parquet").column("title").to_pylist()
    category_names = [c["name"] for c in oracle.taxonomy["categories"]]
    fooled_grades = []
    for query in oracle.query_to_intent:
        intent = oracle.intent(query)
        words = set(synth.tokenize(query))
        for i in stuffed:
            if category_names[oracle.item_category[i]] in intent["categories"]:
                continue
            if words <= set(synth.tokenize(titles[i])):
                fooled_grades.append(int(oracle.grade(query, [oracle.item_ids[i]])[0]))
    assert len(fooled_grades) >= 5  # the stuffing does catch queries lexically
    assert max(fooled_grades) <= 1


def test_cli_synth_writes_a_loadable_directory(tmp_path, capsys):
    from data_prep.__main__ import main

    assert (
        main(["synth", "--items", "800", "--queries", "60", "--seed", "2", "--out", str(tmp_path), "--quiet"])
        == 0
    )
    assert "800 items, 60 queries" in capsys.readouterr().out
    ds = formats.load_dataset(tmp_path)
    oracle = synth.Oracle.load(tmp_path)
    anchors_in_log = [q for q in synth.ANCHOR_QUERIES if q in oracle.query_to_intent]
    assert "sleep improvement" in anchors_in_log  # anchors whose targets have no listing are left out
    assert ds.queries.num_rows == 60
