"""Feature values of the relevance model on hand-made (query, item) pairs."""

import math

import numpy as np
import pytest

from search_sim.analyzer import Analyzer
from search_sim.relevance.features import (
    FEATURE_NAMES,
    CatalogFeatures,
    featurise,
    identifiers,
    parse_query,
    quantities,
)

CATALOG = {
    "item_id": ["wd2", "sg1", "mouse", "shirt"],
    "title": [
        "WD Elements 2TB Portable Hard Drive",
        "Seagate 1TB External Hard Drive",
        "Logitech MX Vertical Wireless Mouse",
        "Cotton Crew T-Shirt 2XL",
    ],
    "category": [
        ["Electronics", "Storage"],
        ["Electronics", "Storage"],
        ["Electronics", "Mice"],
        ["Clothing", "Shirts"],
    ],
    "attributes": [
        [{"name": "capacity", "value": "2TB"}, {"name": "model", "value": "WDBU6Y0020BBK"}],
        [{"name": "capacity", "value": "1 TB"}],
        [{"name": "connectivity", "value": "wireless"}, {"name": "color", "value": "graphite"}],
        [{"name": "size", "value": "XXL"}, {"name": "material", "value": "cotton"}],
    ],
    "brand": ["WD", "Seagate", "Logitech", ""],
    "description": ["", "fast usb 3.0 drive", "", ""],
}
ROW = {item_id: row for row, item_id in enumerate(CATALOG["item_id"])}


@pytest.fixture(scope="module")
def catalog():
    return CatalogFeatures.build(CATALOG, Analyzer().analyze, progress=False)


def features_of(catalog, query, item_id) -> dict[str, float]:
    analyzer = Analyzer()
    parsed = parse_query(query, analyzer.analyze, catalog)
    X = featurise(catalog, [parsed], np.zeros(1, np.int64), np.asarray([ROW[item_id]]))
    return dict(zip(FEATURE_NAMES, X[0].tolist(), strict=True))


CASES = [
    # all four query terms ("2", "tb", "hard", "drive") are in the title
    ("2tb hard drive", "wd2", {"cover_title": 1.0, "cover_all": 1.0}),
    # the capacity asked for is stated: a match, no conflict
    (
        "2tb hard drive",
        "wd2",
        {"numeric_query_count": 1.0, "numeric_match_share": 1.0, "numeric_conflict_share": 0.0},
    ),
    # "1 TB" states the same dimension with another value: a conflict
    (
        "2tb hard drive",
        "sg1",
        {"numeric_match_share": 0.0, "numeric_conflict_share": 1.0, "cover_title": 0.75},
    ),
    # the attribute value "2TB" is a contiguous part of the query ("2 tb" = 2 of 4 terms)
    ("2tb hard drive", "wd2", {"attr_value_match_count": 1.0, "attr_value_cover": 0.5}),
    # a mouse shares no term with a drive query
    ("2tb hard drive", "mouse", {"bm25_all": 0.0, "cover_all": 0.0, "numeric_conflict_share": 0.0}),
    # brand named in the query and it is this item's brand
    (
        "logitech wireless mouse",
        "mouse",
        {"brand_in_query": 1.0, "query_mentions_brand": 1.0, "brand_conflict": 0.0},
    ),
    # query names a brand the item does not have
    (
        "seagate portable drive",
        "wd2",
        {"brand_in_query": 0.0, "query_mentions_brand": 1.0, "brand_conflict": 1.0},
    ),
    # exact phrase: both bigrams of "vertical wireless mouse" are in the title in order
    ("vertical wireless mouse", "mouse", {"title_bigram_share": 1.0, "title_phrase_match": 1.0}),
    # reversed word order: no bigram matches, although every term does
    ("mouse wireless", "mouse", {"title_bigram_share": 0.0, "title_phrase_match": 0.0, "cover_title": 1.0}),
    # a model number typed with a hyphen still matches the identifier attribute
    ("WDBU6Y-0020BBK", "wd2", {"ident_query_count": 1.0, "ident_match_share": 1.0}),
    ("WDBU6Y-0020BBK", "sg1", {"ident_query_count": 1.0, "ident_match_share": 0.0}),
    # apparel sizes fold: "2xl" in the query equals "XXL" in the item
    ("cotton shirt 2xl", "shirt", {"numeric_match_share": 1.0, "numeric_conflict_share": 0.0}),
    # a category path element is named in the query
    ("storage for photos", "sg1", {"category_phrase_in_query": 1.0, "cover_category": 0.5}),
    # lengths: analysed title terms and attribute count
    ("drive", "sg1", {"title_terms": 6.0, "attribute_count": 1.0, "query_terms": 1.0}),
    # "seagate" (rarest term, in 1 of 4 items) is missing from the WD drive; "drive" is there
    ("seagate drive", "wd2", {"max_idf_missing_all": math.log(1 + 3.5 / 1.5)}),
    ("seagate drive", "sg1", {"max_idf_missing_all": 0.0}),
    # description only counts in its own field: "usb" is not in title, attributes, category or brand
    ("usb", "sg1", {"cover_description": 1.0, "cover_all": 0.0}),
]


@pytest.mark.parametrize(("query", "item_id", "expected"), CASES)
def test_feature_values(catalog, query, item_id, expected):
    got = features_of(catalog, query, item_id)
    for name, value in expected.items():
        assert math.isclose(got[name], value, abs_tol=1e-6), f"{name}: {got[name]} != {value}"


def test_bm25_field_matches_formula(catalog):
    # hand computation for the single term "seagate" in the brand field (1 of 3 branded items has it)
    n_items, df, tf, length, avg_len = 4, 1, 1.0, 1.0, 3 / 4  # brands: wd, seagate, logitech, "" (0 terms)
    idf = math.log(1 + (n_items - df + 0.5) / (df + 0.5))
    expected = idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * length / avg_len))
    assert math.isclose(features_of(catalog, "seagate", "sg1")["bm25_brand"], expected, rel_tol=1e-5)


def test_batch_equals_one_by_one(catalog):
    queries = ["2tb hard drive", "logitech mouse", "xxl cotton"]
    analyzer = Analyzer()
    parsed = [parse_query(q, analyzer.analyze, catalog) for q in queries]
    pair_query = np.repeat(np.arange(3), 4)
    pair_row = np.tile(np.arange(4), 3)
    batch = featurise(catalog, parsed, pair_query, pair_row)
    for i, (q, r) in enumerate(zip(pair_query, pair_row, strict=True)):
        single = featurise(catalog, [parsed[q]], np.zeros(1, np.int64), np.asarray([r]))
        np.testing.assert_array_equal(batch[i], single[0])


def test_save_load_round_trip(catalog, tmp_path):
    catalog.save(tmp_path / "c.npz")
    loaded = CatalogFeatures.load(tmp_path / "c.npz")
    analyzer = Analyzer()
    parsed = [parse_query("wd 2tb drive", analyzer.analyze, loaded)]
    a = featurise(catalog, parsed, np.zeros(4, np.int64), np.arange(4))
    b = featurise(loaded, parsed, np.zeros(4, np.int64), np.arange(4))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2TB", [("storage", "2000")]),  # TB -> GB
        ("1000 gb", [("storage", "1000")]),  # same base unit as "1TB"
        ('15.6" laptop', [("length", "39.62")]),  # inches -> cm
        ("pack of 6", [("count", "6")]),
        ("2XL", [("size", "xxl")]),
        ("model 2000", []),  # a bare number is no quantity
    ],
)
def test_quantities(text, expected):
    assert quantities(text) == expected


@pytest.mark.parametrize(
    ("text", "expected_member"),
    [
        ("WD-19TB dock", "wd19tb"),  # hyphen dropped
        ("wd19 tb", "wd19tb"),  # adjacent tokens joined
        ("SM-G991B", "smg991b"),
    ],
)
def test_identifiers(text, expected_member):
    assert expected_member in identifiers(text)


def test_quantity_is_not_an_identifier():
    assert identifiers("16gb ram") == []
