"""Importers: ESCI parquet, WANDS CSV, generic mapping (on a real slice of the ESCI OpenSearch sample)."""

from pathlib import Path

import pytest

from data_prep import formats, importers
from data_prep.__main__ import main
from data_prep.formats import FormatError

FIXTURES = Path(__file__).parent / "fixtures"
ESCI = FIXTURES / "esci"
WANDS = FIXTURES / "wands"
SAMPLE = FIXTURES / "esci_opensearch_sample"
MAPPING = Path(__file__).parents[1] / "data_prep" / "mappings" / "esci_opensearch_sample.yaml"


def _grades(root):
    j = formats.load_dataset(root).judgments.to_pydict()
    return {(q, i): g for q, i, g in zip(j["query"], j["item_id"], j["grade"], strict=True)}


def test_esci_parquet(tmp_path):
    report = importers.import_esci(
        ESCI / "shopping_queries_dataset_products.parquet",
        ESCI / "shopping_queries_dataset_examples.parquet",
        tmp_path / "out",
    )
    assert report.counts["items"] == 4  # the de product is left out
    assert report.counts["queries"] == 2 and report.counts["judgments"] == 5
    assert _grades(tmp_path / "out") == {
        ("ergonomic mouse", "B000TEST01"): 4,  # E
        ("ergonomic mouse", "B000TEST02"): 4,  # E
        ("ergonomic mouse", "B000TEST03"): 1,  # C
        ("ergonomic mouse", "B000TEST05"): 0,  # I
        ("sleep improvement", "B000TEST05"): 2,  # S
    }
    ds = formats.load_dataset(tmp_path / "out")
    first = ds.catalog.to_pylist()[0]
    assert first["attributes"] == [{"name": "Color", "value": "Graphite"}] and first["brand"] == "Logitech"
    assert "57 degree angle" in first["description"]
    assert ds.queries.to_pylist()[0] == {"query": "ergonomic mouse", "frequency": 1, "intent_id": "101"}


def test_wands_csv(tmp_path):
    report = importers.import_wands(
        WANDS / "product.csv", WANDS / "query.csv", WANDS / "label.csv", tmp_path / "w"
    )
    assert (report.counts["items"], report.counts["queries"], report.counts["judgments"]) == (3, 3, 4)
    assert _grades(tmp_path / "w") == {
        ("slow cooker", "1"): 4,
        ("gray accent chair", "2"): 4,
        ("gray accent chair", "0"): 0,
        ("salon chair", "2"): 2,
    }
    chair = formats.load_dataset(tmp_path / "w").catalog.to_pylist()[2]
    assert chair["category"] == ["Furniture", "Living Room Furniture", "Chairs & Seating", "Accent Chairs"]
    assert chair["attributes"] == [
        {"name": "color", "value": "grey"},
        {"name": "material", "value": "velvet"},
    ]


def test_generic_mapping_on_real_esci_sample_slice(tmp_path):
    overrides = [
        f"catalog.path={SAMPLE / 'products.ndjson'}",
        f"judgments.path={SAMPLE / 'judgments.json'}",
        f"queries.path={SAMPLE / 'queryset.json'}",
    ]
    report = importers.import_mapped(
        importers.load_mapping(MAPPING, overrides), tmp_path / "e", source="esci"
    )
    assert (report.counts["items"], report.counts["queries"], report.counts["judgments"]) == (8, 2, 8)
    assert report.counts["grades"] == {"Bad": 0, "Fair": 0, "Good": 2, "Excellent": 0, "Perfect": 6}
    ds = formats.load_dataset(tmp_path / "e")
    assert ds.manifest["source"] == "esci"
    assert all(r["title"] for r in ds.catalog.to_pylist())


def test_generic_cli_with_fields_only(tmp_path):
    # the same import without a YAML, every field on the command line
    catalog = tmp_path / "c.jsonl"
    catalog.write_text(
        '{"sku": "1", "name": "vertical mouse", "dept": "PC > Mice", "colour": "black"}\n'
        '{"sku": "2", "name": "gel wrist rest", "dept": "PC > Accessories"}\n'
    )
    judged = tmp_path / "j.csv"
    judged.write_text("q,sku,label\nergonomic mouse,1,E\nergonomic mouse,2,C\n")
    rc = main(
        [
            "import",
            "jsonl",
            "--catalog",
            str(catalog),
            "--judgments",
            str(judged),
            "--out",
            str(tmp_path / "o"),
            "--field",
            "catalog.id=sku",
            "--field",
            "catalog.title=name",
            "--field",
            "catalog.category=dept",
            "--field",
            "catalog.attributes={colour: Color}",
            "--field",
            "judgments.query=q",
            "--field",
            "judgments.item_id=sku",
            "--field",
            "judgments.grade=label",
            "--field",
            "judgments.grade_map={E: 4, S: 2, C: 1, I: 0}",
        ]
    )
    assert rc == 0
    ds = formats.load_dataset(tmp_path / "o")
    assert ds.catalog.to_pylist()[0]["category"] == ["PC", "Mice"]
    assert ds.catalog.to_pylist()[0]["attributes"] == [{"name": "Color", "value": "black"}]
    assert _grades(tmp_path / "o") == {("ergonomic mouse", "1"): 4, ("ergonomic mouse", "2"): 1}


BAD_INPUT_CASES = [
    # (id, catalog text, judgments text, file that must be named, line, field, rows skipped in lenient mode)
    ("missing title", '{"item_id": "1"}\n', "query,item_id,grade\nq,1,4\n", "c.jsonl", 1, "title", 2),
    (
        "duplicate id",
        '{"item_id": "1", "title": "a"}\n{"item_id": "1", "title": "b"}\n',
        "query,item_id,grade\nq,1,4\n",
        "c.jsonl",
        2,
        "item_id",
        1,
    ),
    (
        "empty title",
        '{"item_id": "1", "title": "a"}\n{"item_id": "2", "title": ""}\n',
        "query,item_id,grade\nq,1,4\n",
        "c.jsonl",
        2,
        "title",
        1,
    ),
    (
        "unknown item in judgments",
        '{"item_id": "1", "title": "a"}\n',
        "query,item_id,grade\nq,1,4\nq,9,3\n",
        "j.csv",
        3,
        "item_id",
        1,
    ),
    (
        "grade not an integer",
        '{"item_id": "1", "title": "a"}\n',
        "query,item_id,grade\nq,1,high\n",
        "j.csv",
        2,
        "grade",
        1,
    ),
    (
        "bad encoding",
        '{"item_id": "1", "title": "a"}\n',
        b"query,item_id,grade\nq\xff,1,4\n",
        "j.csv",
        2,
        None,
        0,
    ),
]


@pytest.mark.parametrize(
    "case_id,cat,jud,file,line,field,n_skipped", BAD_INPUT_CASES, ids=[c[0] for c in BAD_INPUT_CASES]
)
def test_generic_bad_input(tmp_path, case_id, cat, jud, file, line, field, n_skipped):
    (tmp_path / "c.jsonl").write_text(cat)
    (tmp_path / "j.csv").write_bytes(jud if isinstance(jud, bytes) else jud.encode())
    mapping = importers.load_mapping(
        None, [f"catalog.path={tmp_path / 'c.jsonl'}", f"judgments.path={tmp_path / 'j.csv'}"]
    )
    with pytest.raises(FormatError) as err:
        importers.import_mapped(mapping, tmp_path / "out")
    assert Path(err.value.file).name == file and err.value.line == line and err.value.field == field
    assert not (tmp_path / "out" / "manifest.json").exists()  # nothing half written
    if n_skipped:  # a file that cannot be decoded is not skippable row by row
        report = importers.import_mapped(mapping, tmp_path / "out", lenient=True)
        assert sum(report.skips.values()) == n_skipped
        assert formats.load_dataset(tmp_path / "out").manifest["skipped"] == dict(report.skips)


def test_wands_bad_features_and_labels(tmp_path):
    product = (
        (WANDS / "product.csv")
        .read_text()
        .replace("color:grey|material:velvet", "color grey|material:velvet")
    )
    (tmp_path / "product.csv").write_text(product)
    labels = (WANDS / "label.csv").read_text() + "4\t1\t0\tMaybe\n"
    (tmp_path / "label.csv").write_text(labels)
    with pytest.raises(FormatError, match=r"product.csv:4: field 'product_features'"):
        importers.import_wands(
            tmp_path / "product.csv", WANDS / "query.csv", tmp_path / "label.csv", tmp_path / "o"
        )
    report = importers.import_wands(
        tmp_path / "product.csv", WANDS / "query.csv", tmp_path / "label.csv", tmp_path / "o", lenient=True
    )
    # the product with bad features (and its two judgments, now unknown items), and the unknown label
    assert sum(report.skips.values()) == 4
    assert report.counts["items"] == 2


def test_mapping_errors(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("catalog:\n  idd: asin\n")
    with pytest.raises(FormatError, match="catalog.idd"):
        importers.load_mapping(bad)
    with pytest.raises(FormatError, match="section.key=value"):
        importers.load_mapping(None, ["nosection=1"])
