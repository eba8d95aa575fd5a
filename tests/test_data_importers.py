"""Importers: ESCI parquet, WANDS CSV, generic mapping (on a real slice of the ESCI OpenSearch sample)."""

import json
import subprocess
import sys
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


# ---------------------------------------------------------------------------------- catalog shapes (made up)


def _import_shapes(tmp_path, records: list, fields: list[str], lenient: bool = False):
    """Import made-up catalog records (JSONL, one judgment per item) with `--field` style mapping overrides;
    returns {item_id: catalog row}."""
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in records))
    ids = [str(r.get("sku", "")) for r in records if isinstance(r, dict)]
    (tmp_path / "j.csv").write_text("query,sku,grade\n" + "".join(f"q,{i},3\n" for i in ids))
    base = [f"catalog.path={catalog}", f"judgments.path={tmp_path / 'j.csv'}", "catalog.id=sku"]
    base += ["judgments.item_id=sku"]
    mapping = importers.load_mapping(None, base + fields)
    importers.import_mapped(mapping, tmp_path / "out", lenient=lenient)
    return {r["item_id"]: r for r in formats.load_dataset(tmp_path / "out").catalog.to_pylist()}


def _pairs(row) -> list[tuple[str, str]]:
    return [(a["name"], a["value"]) for a in row["attributes"]]


def test_attributes_from_an_object_field(tmp_path):
    # electronics-style export: one `specs` object per item, numbers and lists among its values
    rows = _import_shapes(
        tmp_path,
        [
            {
                "sku": 101,
                "title": "Vertical mouse",
                "specs": {
                    "Connectivity": "Wireless",
                    "Buttons": 6,
                    "Weight (g)": 135.0,
                    "DPI": [800, 1600, 4000],
                    "Bluetooth": True,
                    "Battery": 2.5,
                    "Warranty": None,
                    "Notes": "",
                },
            },
            {"sku": 102, "title": "Gel wrist rest"},  # no specs at all
            {"sku": 103, "title": "Laptop stand", "specs": {}},
            {"sku": 104, "title": "Monitor", "specs": {"Size": {"Diagonal": 27, "Unit": "in"}}},
        ],
        ["catalog.attributes=specs"],
    )
    assert _pairs(rows["101"]) == [
        ("Connectivity", "Wireless"),
        ("Buttons", "6"),
        ("Weight (g)", "135"),  # a float holding an integer is written as the integer
        ("DPI", "800"),
        ("DPI", "1600"),
        ("DPI", "4000"),
        ("Bluetooth", "true"),
        ("Battery", "2.5"),
    ]
    assert rows["102"]["attributes"] == [] and rows["103"]["attributes"] == []
    assert _pairs(rows["104"]) == [("Size.Diagonal", "27"), ("Size.Unit", "in")]


def test_attribute_shape_is_detected_per_record(tmp_path):
    # the same field holds pairs, an object, a plain value or option lists, record by record
    rows = _import_shapes(
        tmp_path,
        [
            {
                "sku": "a",
                "title": "USB-C dock",
                "attributes": [
                    {"name": "Color", "value": "Black"},
                    {"name": "Ports", "value": ["USB-C", "HDMI"]},
                    {"name": "Displays", "value": 2},
                    {"name": "Cable", "value": None},
                ],
            },
            {"sku": "b", "title": "Webcam", "attributes": {"Color": "White"}},
            {"sku": "c", "title": "Mouse pad", "attributes": "Blue"},
            {"sku": "d", "title": "T-shirt", "attributes": [{"name": "Size", "values": ["S", "M"]}]},
            {"sku": "e", "title": "Sticker", "attributes": None},
        ],
        ["catalog.attributes=attributes"],
    )
    assert _pairs(rows["a"]) == [("Color", "Black"), ("Ports", "USB-C"), ("Ports", "HDMI"), ("Displays", "2")]
    assert _pairs(rows["b"]) == [("Color", "White")]
    assert _pairs(rows["c"]) == [("Attributes", "Blue")]  # a plain value is named after its field
    assert _pairs(rows["d"]) == [("Size", "S"), ("Size", "M")]
    assert rows["e"]["attributes"] == []


def test_category_shapes(tmp_path):
    rows = _import_shapes(
        tmp_path,
        [
            {"sku": "a", "title": "Dock", "dept": "PC > Docks"},
            {"sku": "b", "title": "Drill", "dept": ["Tools", "Power Tools", None, ""]},
            {"sku": "c", "title": "Mystery", "dept": 12},  # a category id where a path was expected
            {"sku": "d", "title": "Loose"},
        ],
        ["catalog.category=dept"],
    )
    assert [rows[i]["category"] for i in "abcd"] == [["PC", "Docks"], ["Tools", "Power Tools"], ["12"], []]


def test_dotted_paths_for_every_mapped_field(tmp_path):
    # a nested export: product fields under `product`, attributes two levels down, judgments nested too
    (tmp_path / "c.jsonl").write_text(
        json.dumps(
            {
                "product": {
                    "id": "p1",
                    "title": "Cordless drill",
                    "brand": {"name": "Acme"},
                    "taxonomy": {"path": "Tools > Power Tools"},
                },
                "content": {"text": "18 V, two batteries"},
                "specs": {"attributes": [{"name": "Voltage", "value": 18}]},
                "colour": {"primary": ["red", "black"]},
            }
        )
        + "\n"
        + json.dumps({"product": {"id": "p2", "title": "Hammer"}})  # nothing optional: all stay empty
        + "\n"
    )
    (tmp_path / "j.json").write_text(
        json.dumps(
            {
                "data": {
                    "rows": [
                        {"q": {"text": "drill"}, "ratings": [{"doc": {"id": "p1"}, "label": 3}]},
                        {"q": {"text": "hammer"}, "ratings": [{"doc": {"id": "p2"}, "label": 4}]},
                    ]
                }
            }
        )
    )
    (tmp_path / "q.jsonl").write_text('{"q": {"text": "drill", "count": 12, "intent": {"id": 7}}}\n')
    (tmp_path / "m.yaml").write_text(
        "catalog:\n  path: c.jsonl\n  id: product.id\n  title: product.title\n  brand: product.brand.name\n"
        "  category: product.taxonomy.path\n  description: [content.text, content.missing]\n"
        "  attributes: {specs.attributes: Specs, colour.primary: Colour, product.color: Color}\n"
        "queries:\n  path: q.jsonl\n  query: q.text\n  frequency: q.count\n  intent_id: q.intent.id\n"
        "judgments:\n  path: j.json\n  records: data.rows\n  ratings: ratings\n  query: q.text\n"
        "  item_id: doc.id\n  grade: label\n"
    )
    report = importers.import_mapped(importers.load_mapping(tmp_path / "m.yaml"), tmp_path / "o")
    assert (report.counts["items"], report.counts["queries"], report.counts["judgments"]) == (2, 2, 2)
    ds = formats.load_dataset(tmp_path / "o")
    drill, hammer = ds.catalog.to_pylist()
    assert drill == {
        "item_id": "p1",
        "title": "Cordless drill",
        "category": ["Tools", "Power Tools"],
        "attributes": [
            {"name": "Voltage", "value": "18"},
            {"name": "Colour", "value": "red"},
            {"name": "Colour", "value": "black"},
        ],
        "brand": "Acme",
        "description": "18 V, two batteries",
    }
    assert (hammer["category"], hammer["attributes"], hammer["brand"], hammer["description"]) == (
        [],
        [],
        "",
        "",
    )
    assert ds.queries.to_pylist()[0] == {"query": "drill", "frequency": 12, "intent_id": "7"}
    assert _grades(tmp_path / "o") == {("drill", "p1"): 3, ("hammer", "p2"): 4}


def test_a_key_with_a_dot_is_read_as_written(tmp_path):
    # CSV headers are flat: `product.title` is a column name, not a path
    (tmp_path / "c.csv").write_text("id,product.title,specs.color\nx1,Desk lamp,white\n")
    (tmp_path / "j.csv").write_text("query,item_id,grade\nlamp,x1,4\n")
    mapping = importers.load_mapping(
        None,
        [
            f"catalog.path={tmp_path / 'c.csv'}",
            f"judgments.path={tmp_path / 'j.csv'}",
            "catalog.id=id",
            "catalog.title=product.title",
            "catalog.attributes=[specs.color]",
        ],
    )
    importers.import_mapped(mapping, tmp_path / "o")
    row = formats.load_dataset(tmp_path / "o").catalog.to_pylist()[0]
    assert row["title"] == "Desk lamp" and _pairs(row) == [("Color", "white")]


RECORD_SHAPE_ERRORS = [
    # (id, records, extra fields, line, field named): the path ends on an object, a missing required path, ...
    (
        "title is an object",
        [{"sku": 1, "title": "ok"}, {"sku": 2, "title": {"en": "lamp"}}],
        [],
        2,
        "title",
    ),
    (
        "nested title missing",
        [{"sku": 1, "p": {"title": "a"}}, {"sku": 2, "p": {}}],
        ["catalog.title=p.title"],
        2,
        "p.title",
    ),
    (
        "category is an object",
        [{"sku": 1, "title": "a", "cat": "A > B"}, {"sku": 2, "title": "b", "cat": {"id": 3}}],
        ["catalog.category=cat"],
        2,
        "cat",
    ),
    ("record is not an object", [{"sku": 1, "title": "a"}, ["sku", 2]], [], 2, None),
]


@pytest.mark.parametrize(
    "case_id,records,fields,line,field", RECORD_SHAPE_ERRORS, ids=[c[0] for c in RECORD_SHAPE_ERRORS]
)
def test_record_shape_errors_name_line_and_field(tmp_path, case_id, records, fields, line, field):
    with pytest.raises(FormatError) as err:
        _import_shapes(tmp_path, records, fields)
    assert (Path(err.value.file).name, err.value.line, err.value.field) == ("catalog.jsonl", line, field)
    rows = _import_shapes(
        tmp_path, records, fields, lenient=True
    )  # the bad record skipped, the rest imported
    assert len(rows) == sum(isinstance(r, dict) for r in records) - (field is not None)


BAD_MAPPING_VALUES = [
    # (id, YAML text or None, --field overrides, mapping key named, file named)
    (
        "attributes null on the command line",
        None,
        ["catalog.attributes=null"],
        "catalog.attributes",
        "--field",
    ),
    ("attributes not names", None, ["catalog.attributes=[1, 2]"], "catalog.attributes", "--field"),
    ("attribute name a list", None, ["catalog.attributes={colour: [a, b]}"], "catalog.attributes", "--field"),
    ("broken YAML value", None, ["catalog.attributes={colour: Color"], "catalog.attributes", "--field"),
    ("empty required field", None, ["catalog.id="], "catalog.id", "--field"),
    ("unknown format", None, ["catalog.format=parquet"], "catalog.format", "--field"),
    ("grade out of range", None, ["judgments.grade_map={E: 5}"], "judgments.grade_map", "--field"),
    ("attributes a number", "catalog:\n  attributes: 7\n", [], "catalog.attributes", "m.yaml"),
    ("title null", "catalog:\n  title: null\n", [], "catalog.title", "m.yaml"),
    (
        "description with a null",
        "catalog:\n  description: [body, null]\n",
        [],
        "catalog.description",
        "m.yaml",
    ),
    ("grade a bool", "judgments:\n  grade_map: {E: yes}\n", [], "judgments.grade_map", "m.yaml"),
    ("grade map a list", "judgments:\n  grade_map: [E, S]\n", [], "judgments.grade_map", "m.yaml"),
    ("empty separator", "catalog:\n  category_separator: ''\n", [], "catalog.category_separator", "m.yaml"),
    ("section not a mapping", "catalog: items.jsonl\n", [], "catalog", "m.yaml"),
    ("not sections", "- catalog\n", [], None, "m.yaml"),
]


@pytest.mark.parametrize(
    "case_id,yaml_text,fields,key,file", BAD_MAPPING_VALUES, ids=[c[0] for c in BAD_MAPPING_VALUES]
)
def test_bad_mapping_values_name_the_key(tmp_path, case_id, yaml_text, fields, key, file):
    path = None
    if yaml_text is not None:
        path = tmp_path / "m.yaml"
        path.write_text(yaml_text)
    with pytest.raises(FormatError) as err:
        importers.load_mapping(path, fields)
    assert err.value.field == key and Path(err.value.file).name == file
    assert "\n" not in str(err.value)


def test_bad_mapping_value_checked_before_reading_files(tmp_path):
    # a mapping built in code and changed afterwards is checked by import_mapped itself
    mapping = importers.load_mapping(None, ["catalog.path=nowhere.jsonl", "judgments.path=nowhere.csv"])
    mapping["catalog"]["attributes"] = {"colour": None}
    with pytest.raises(FormatError, match="catalog.attributes") as err:
        importers.import_mapped(mapping, tmp_path / "o")
    assert err.value.file == "mapping"  # not "no such file": the files were never opened
    with pytest.raises(FormatError, match="no such mapping file"):
        importers.load_mapping(tmp_path / "absent.yaml")


def test_cli_bad_mapping_value_is_one_line(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"item_id": "1", "title": "a", "specs": {"Color": "red"}}\n')
    (tmp_path / "j.csv").write_text("query,item_id,grade\nq,1,4\n")
    args = ["import", "jsonl", "--catalog", str(tmp_path / "c.jsonl"), "--judgments", str(tmp_path / "j.csv")]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_prep",
            *args,
            "--out",
            str(tmp_path / "o"),
            "--field",
            "catalog.attributes=null",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "catalog.attributes" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()
