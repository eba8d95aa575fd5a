"""Canonical formats: validation errors name file, line and field; lenient mode counts skips; atomic writes."""

from collections import Counter

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_prep import formats

GOOD_ITEM = {
    "item_id": "a1",
    "title": "Logitech MX Vertical mouse",
    "category": ["Computers", "mice"],
    "attributes": [{"name": "Color", "value": "black"}],
    "brand": "Logitech",
    "description": "",
}


def _jsonl(path, rows):
    path.write_bytes(b"".join(r if isinstance(r, bytes) else orjson.dumps(r) + b"\n" for r in rows))
    return path


def _item(**changes):
    row = dict(GOOD_ITEM, **changes)
    return {k: v for k, v in row.items() if v is not KeyError}


CATALOG_CASES = [
    # (id, rows, expected line, expected field, words in the message)
    ("missing title", [GOOD_ITEM, _item(item_id="a2", title=KeyError)], 2, "title", "missing"),
    ("empty title", [GOOD_ITEM, _item(item_id="a2", title="  ")], 2, "title", "empty"),
    ("empty item id", [_item(item_id="")], 1, "item_id", "empty"),
    ("duplicate id", [GOOD_ITEM, _item(title="other")], 2, "item_id", "duplicate"),
    ("category not a list", [_item(category="Computers > mice")], 1, "category", "expected"),
    (
        "attribute without name",
        [_item(attributes=[{"name": "", "value": "x"}])],
        1,
        "attributes",
        "empty name",
    ),
    ("bad json", [GOOD_ITEM, b"{not json\n"], 2, None, "invalid JSON"),
    ("bad encoding", [GOOD_ITEM, b'{"item_id": "\xff\xfe"}\n'], 2, None, "not UTF-8"),
]


@pytest.mark.parametrize("case_id,rows,line,field,words", CATALOG_CASES, ids=[c[0] for c in CATALOG_CASES])
def test_catalog_jsonl_errors_name_file_line_field(tmp_path, case_id, rows, line, field, words):
    path = _jsonl(tmp_path / "catalog.jsonl", rows)
    with pytest.raises(formats.FormatError) as err:
        formats.load_catalog(path)
    assert err.value.file == str(path)
    assert err.value.line == line
    assert err.value.field == field
    assert words in str(err.value)
    assert f"catalog.jsonl:{line}" in str(err.value)


@pytest.mark.parametrize("case_id,rows,line,field,words", CATALOG_CASES, ids=[c[0] for c in CATALOG_CASES])
def test_catalog_lenient_mode_skips_and_counts(tmp_path, case_id, rows, line, field, words):
    path = _jsonl(tmp_path / "catalog.jsonl", rows)
    skips = Counter()
    table = formats.load_catalog(path, lenient=True, skips=skips)
    assert sum(skips.values()) == 1  # exactly the one bad row, counted
    assert table.num_rows == len(rows) - 1


def test_catalog_defaults_and_attribute_dict_form(tmp_path):
    # brand, description, category, attributes are optional; attributes may be an object
    path = _jsonl(tmp_path / "c.jsonl", [{"item_id": "x", "title": "t", "attributes": {"Color": "red"}}])
    row = formats.load_catalog(path).to_pylist()[0]
    assert row == {
        "item_id": "x",
        "title": "t",
        "category": [],
        "attributes": [{"name": "Color", "value": "red"}],
        "brand": "",
        "description": "",
    }


def test_parquet_missing_column_and_bad_row(tmp_path):
    path = tmp_path / "catalog.parquet"
    pq.write_table(pa.table({"item_id": ["a"], "category": [["x"]]}), path)
    with pytest.raises(formats.FormatError, match="field 'title' missing column"):
        formats.load_catalog(path)
    pq.write_table(pa.table({"item_id": ["a", "b", "c"], "title": ["t", "t", ""]}), path)
    with pytest.raises(formats.FormatError) as err:
        formats.load_catalog(path)
    assert (err.value.line, err.value.field) == (3, "title")


JUDGMENT_CASES = [
    # (id, row, field, words)
    ("grade above 4", {"query": "q", "item_id": "a1", "grade": 7, "source": "human"}, "grade", "0..4"),
    ("negative grade", {"query": "q", "item_id": "a1", "grade": -1, "source": "human"}, "grade", "0..4"),
    (
        "grade as string",
        {"query": "q", "item_id": "a1", "grade": "3", "source": "human"},
        "grade",
        "expected",
    ),
    (
        "unknown item",
        {"query": "q", "item_id": "zz", "grade": 3, "source": "human"},
        "item_id",
        "not in the catalog",
    ),
    ("empty query", {"query": "", "item_id": "a1", "grade": 3, "source": "human"}, "query", "empty"),
    ("missing source", {"query": "q", "item_id": "a1", "grade": 3}, "source", "missing"),
]


@pytest.mark.parametrize("case_id,row,field,words", JUDGMENT_CASES, ids=[c[0] for c in JUDGMENT_CASES])
def test_judgment_errors(tmp_path, case_id, row, field, words):
    good = {"query": "q", "item_id": "a1", "grade": 4, "source": "human"}
    path = _jsonl(tmp_path / "judgments.jsonl", [good, row])
    with pytest.raises(formats.FormatError) as err:
        formats.load_judgments(path, item_ids=pa.array(["a1", "a2"]))
    assert (err.value.line, err.value.field) == (2, field)
    assert words in str(err.value)
    skips = Counter()
    kept = formats.load_judgments(path, item_ids=pa.array(["a1", "a2"]), lenient=True, skips=skips)
    assert kept.num_rows == 1 and sum(skips.values()) == 1


QUERY_CASES = [
    # (id, rows, line, field)
    ("zero frequency", [{"query": "a", "frequency": 0}], 1, "frequency"),
    ("duplicate query", [{"query": "a", "frequency": 1}, {"query": "a", "frequency": 2}], 2, "query"),
    ("missing frequency", [{"query": "a"}], 1, "frequency"),
]


@pytest.mark.parametrize("case_id,rows,line,field", QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_query_errors(tmp_path, case_id, rows, line, field):
    path = _jsonl(tmp_path / "queries.jsonl", rows)
    with pytest.raises(formats.FormatError) as err:
        formats.load_queries(path)
    assert (err.value.line, err.value.field) == (line, field)


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.parquet"
    target.write_text("old")
    with pytest.raises(RuntimeError), formats.atomic_write_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"  # the previous file survives
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]  # no temp file left behind


def test_dataset_roundtrip_parquet_and_jsonl(tmp_path):
    catalog = pa.Table.from_pylist([GOOD_ITEM], schema=formats.CATALOG_SCHEMA)
    queries = pa.Table.from_pylist(
        [{"query": "q", "frequency": 3, "intent_id": None}], schema=formats.QUERIES_SCHEMA
    )
    judgments = pa.Table.from_pylist(
        [{"query": "q", "item_id": "a1", "grade": 4, "source": "human"}], schema=formats.JUDGMENTS_SCHEMA
    )
    formats.write_dataset(tmp_path / "d", catalog, queries, judgments, {"source": "jsonl"})
    ds = formats.load_dataset(tmp_path / "d")
    assert ds.catalog.equals(catalog) and ds.queries.equals(queries) and ds.judgments.equals(judgments)
    assert ds.manifest["counts"]["items"] == 1 and ds.manifest["counts"]["grades"]["Perfect"] == 1
    formats.write_table(catalog, tmp_path / "c.jsonl")
    assert formats.load_catalog(tmp_path / "c.jsonl").equals(catalog)
