"""Importers from public schemas to the canonical dataset directory (see data_prep/README.md, "Importers").

- `import_esci`: Amazon Shopping Queries (ESCI) official parquet files (products + examples);
- `import_wands`: Wayfair WANDS CSV files (product, query, label; tab-separated upstream);
- `import_mapped`: any JSONL / CSV / JSON export, with a field mapping (YAML file and/or `--field` overrides).

Every importer reads rows with their source line numbers, so that bad input raises `FormatError` naming file,
line and field, or (lenient mode) is skipped and counted in the report; outputs are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from data_prep import formats
from data_prep.formats import FormatError

log = logging.getLogger(__name__)

# ESCI labels -> our five levels (0 Bad .. 4 Perfect). Exact fulfils every aspect of the query (Perfect);
# Substitute fails some aspect but can stand in (Good: right kind of product, a constraint missed);
# Complement does not answer the query but goes with it (Fair: related item / accessory); Irrelevant is Bad.
ESCI_GRADES = {"E": 4, "S": 2, "C": 1, "I": 0}
# WANDS labels: Exact (fully relevant) 4, Partial (some aspects of the query) 2, Irrelevant 0.
WANDS_GRADES = {"Exact": 4, "Partial": 2, "Irrelevant": 0}


@dataclass
class ImportReport:
    """What an importer wrote and what it skipped (lenient mode), with counts per reason."""

    out: Path
    counts: dict
    skips: Counter = field(default_factory=Counter)


class _Rows:
    """Collects canonical rows with their source line numbers."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.rows: list[dict] = []
        self.lines: list[int] = []

    def add(self, row: dict, line: int) -> None:
        self.rows.append(row)
        self.lines.append(line)

    def table(self) -> tuple[pa.Table, np.ndarray]:
        return pa.Table.from_pylist(self.rows, schema=self.schema), np.asarray(self.lines, dtype=np.int64)


def _finish(out, source, catalog, queries, judgments, skips, lenient, names, extra=None) -> ImportReport:
    """Validate the three tables (catalog first, judged item ids against it) and write the directory."""
    cat_table, cat_lines = catalog.table()
    cat_table = formats.validate_catalog(cat_table, cat_lines, names[0], lenient=lenient, skips=skips)
    q_table, q_lines = queries.table()
    q_table = formats.validate_queries(q_table, q_lines, names[1], lenient=lenient, skips=skips)
    j_table, j_lines = judgments.table()
    j_table = formats.validate_judgments(
        j_table, j_lines, names[2], item_ids=cat_table.column("item_id"), lenient=lenient, skips=skips
    )
    manifest = {"source": source, "skipped": dict(sorted(skips.items())), **(extra or {})}
    formats.write_dataset(out, cat_table, q_table, j_table, manifest)
    counts = json.loads((Path(out) / "manifest.json").read_text())["counts"]
    if skips:
        log.warning("skipped %d rows in all (lenient mode): %s", sum(skips.values()), dict(skips))
    return ImportReport(Path(out), counts, skips)


def _skip_or_raise(err: FormatError, lenient: bool, skips: Counter) -> None:
    if not lenient:
        raise err
    skips[f"{Path(err.file).name}: field '{err.field}' {str(err).rsplit(': ', 1)[-1]}"] += 1


def _query_log(
    judged_queries: list[str], frequency: dict[str, int] | None = None, intent: dict | None = None
):
    """The query log of an imported set: one row per distinct judged query, in first-seen order."""
    rows = _Rows(formats.QUERIES_SCHEMA)
    for i, q in enumerate(dict.fromkeys(judged_queries), start=1):
        rows.add(
            {"query": q, "frequency": (frequency or {}).get(q, 1), "intent_id": (intent or {}).get(q)}, i
        )
    return rows


# ----------------------------------------------------------------------------------------------- ESCI


def import_esci(
    products: str | Path, examples: str | Path, out: str | Path, *, locale: str = "us", lenient: bool = False
) -> ImportReport:
    """ESCI parquet (shopping_queries_dataset_products / _examples) -> dataset directory (grades: ESCI_GRADES)."""
    skips: Counter = Counter()
    need_p = ["product_id", "product_title", "product_locale"]
    need_e = ["query", "query_id", "product_id", "product_locale", "esci_label"]
    prod = _read_parquet_columns(
        products, need_p, ["product_description", "product_bullet_point", "product_brand", "product_color"]
    )
    ex = _read_parquet_columns(examples, need_e, [])
    catalog = _Rows(formats.CATALOG_SCHEMA)
    for i, r in enumerate(prod, start=1):
        if r["product_locale"] != locale:
            continue
        description = "\n".join(x for x in (r.get("product_description"), r.get("product_bullet_point")) if x)
        attributes = [{"name": "Color", "value": r["product_color"]}] if r.get("product_color") else []
        catalog.add(
            {
                "item_id": r["product_id"],
                "title": r["product_title"] or "",
                "category": [],
                "attributes": attributes,
                "brand": r.get("product_brand") or "",
                "description": description,
            },
            i,
        )
    judgments = _Rows(formats.JUDGMENTS_SCHEMA)
    judged, intent = [], {}
    for i, r in enumerate(ex, start=1):
        if r["product_locale"] != locale:
            continue
        if r["esci_label"] not in ESCI_GRADES:
            _skip_or_raise(
                FormatError(examples, i, "esci_label", f"unknown label {r['esci_label']!r}"), lenient, skips
            )
            continue
        judgments.add(
            {
                "query": r["query"],
                "item_id": r["product_id"],
                "grade": ESCI_GRADES[r["esci_label"]],
                "source": "esci",
            },
            i,
        )
        judged.append(r["query"])
        intent.setdefault(r["query"], str(r["query_id"]))
    return _finish(
        out,
        "esci",
        catalog,
        _query_log(judged, intent=intent),
        judgments,
        skips,
        lenient,
        (products, "queries (from examples)", examples),
        {"locale": locale, "grade_map": ESCI_GRADES},
    )


def _read_parquet_columns(path, required: list[str], optional: list[str]) -> list[dict]:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise FormatError(path, None, None, f"not a readable parquet file: {err}") from err
    for name in required:
        if name not in schema.names:
            raise FormatError(path, None, name, "missing column")
    columns = required + [c for c in optional if c in schema.names]
    return pq.read_table(path, columns=columns).to_pylist()


# ----------------------------------------------------------------------------------------------- WANDS


def import_wands(
    product_csv, query_csv, label_csv, out, *, delimiter: str = "\t", lenient: bool = False
) -> ImportReport:
    """WANDS (product.csv, query.csv, label.csv; tab-separated upstream) -> dataset directory (WANDS_GRADES).

    product_features "name:value|name:value" become attributes; "category hierarchy" ("A / B / C") the path.
    """
    skips: Counter = Counter()
    catalog = _Rows(formats.CATALOG_SCHEMA)
    for line, r in _csv_rows(product_csv, delimiter, ["product_id", "product_name"]):
        try:
            attributes = _wands_features(r.get("product_features") or "", product_csv, line)
        except FormatError as err:
            _skip_or_raise(err, lenient, skips)
            continue
        path = [c.strip() for c in (r.get("category hierarchy") or "").split("/") if c.strip()]
        if not path and r.get("product_class"):
            path = [r["product_class"]]
        catalog.add(
            {
                "item_id": r["product_id"],
                "title": r["product_name"],
                "category": path,
                "attributes": attributes,
                "brand": "",
                "description": r.get("product_description") or "",
            },
            line,
        )
    query_of = {}
    for line, r in _csv_rows(query_csv, delimiter, ["query_id", "query"]):
        query_of[r["query_id"]] = (r["query"], r.get("query_class") or None, line)
    judgments = _Rows(formats.JUDGMENTS_SCHEMA)
    judged = []
    for line, r in _csv_rows(label_csv, delimiter, ["query_id", "product_id", "label"]):
        if r["query_id"] not in query_of:
            _skip_or_raise(
                FormatError(label_csv, line, "query_id", f"{r['query_id']!r} not in {Path(query_csv).name}"),
                lenient,
                skips,
            )
            continue
        if r["label"] not in WANDS_GRADES:
            _skip_or_raise(
                FormatError(label_csv, line, "label", f"unknown label {r['label']!r}"), lenient, skips
            )
            continue
        query = query_of[r["query_id"]][0]
        judgments.add(
            {
                "query": query,
                "item_id": r["product_id"],
                "grade": WANDS_GRADES[r["label"]],
                "source": "wands",
            },
            line,
        )
        judged.append(query)
    intent = {q: qid for qid, (q, _, _) in query_of.items()}
    return _finish(
        out,
        "wands",
        catalog,
        _query_log(judged, intent=intent),
        judgments,
        skips,
        lenient,
        (product_csv, query_csv, label_csv),
        {"grade_map": WANDS_GRADES},
    )


def _wands_features(text: str, path, line: int) -> list[dict]:
    attributes = []
    for pair in filter(None, (p.strip() for p in text.split("|"))):
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise FormatError(path, line, "product_features", f"expected name:value, got {pair!r:.40}")
        attributes.append({"name": name.strip(), "value": value.strip()})
    return attributes


def _csv_rows(path, delimiter: str, required: list[str]) -> Iterator[tuple[int, dict]]:
    """(line number, row dict) for a CSV/TSV file, checking the header and the encoding."""
    path = Path(path)
    if not path.exists():
        raise FormatError(path, None, None, "no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise FormatError(path, line, None, f"not UTF-8 ({err.reason} at byte {err.start})") from err
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = reader.fieldnames or []
    for name in required:
        if name not in header:
            raise FormatError(path, 1, name, f"missing column (header: {header})")
    for row in reader:
        yield reader.line_num, row


# ----------------------------------------------------------------------------------------------- generic


# Defaults of the mapping (YAML); every key can be overridden with --field section.key=value.
DEFAULT_MAPPING = {
    "catalog": {
        "path": None,
        "format": None,
        "records": None,
        "id": "item_id",
        "title": "title",
        "category": None,
        "category_separator": " > ",
        "brand": None,
        "description": None,
        "attributes": None,
    },
    "queries": {
        "path": None,
        "format": None,
        "records": None,
        "query": "query",
        "frequency": None,
        "intent_id": None,
    },
    "judgments": {
        "path": None,
        "format": None,
        "records": None,
        "ratings": None,
        "query": "query",
        "item_id": "item_id",
        "grade": "grade",
        "grade_map": None,
        "source": "human",
    },
}
FORMATS = ("jsonl", "bulk", "csv", "tsv", "json")

# What each key accepts (see _check_value). Field names may be dotted paths into nested records.
_KINDS = {
    "path": "file",
    "format": "format",
    "records": "optional field",
    "id": "field",
    "title": "field",
    "category": "optional field",
    "category_separator": "text",
    "brand": "optional field",
    "description": "fields",
    "attributes": "attributes",
    "query": "field",
    "frequency": "optional field",
    "intent_id": "optional field",
    "ratings": "optional field",
    "item_id": "field",
    "grade": "field",
    "grade_map": "grade map",
    "source": "text",
}
_EXPECTED = {
    "file": "a file path",
    "format": f"one of {list(FORMATS)}",
    "field": "a field name (text; dots reach into nested records, e.g. product.title)",
    "optional field": "a field name (text) or null",
    "text": "non-empty text",
    "fields": "a field name or a list of field names",
    "attributes": "a field name, a list of field names or {field: attribute name}",
    "grade map": "{raw label: grade 0-4}",
}


def _is_name(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _check_value(kind: str, value) -> bool:
    if kind == "file":
        return value is None or _is_name(value) or isinstance(value, Path)
    if kind == "format":
        return value is None or value in FORMATS
    if kind == "field":
        return _is_name(value)
    if kind == "optional field":
        return value is None or _is_name(value)
    if kind == "text":
        return _is_name(value)
    if kind == "fields":
        return value is None or _is_name(value) or (isinstance(value, list) and all(map(_is_name, value)))
    if kind == "attributes":
        if isinstance(value, dict):
            return all(_is_name(k) and _is_name(v) for k, v in value.items())
        return _check_value("fields", value)
    if kind == "grade map":  # a bool is an int to Python, but `E: yes` is a YAML slip, not grade 1
        return value is None or (
            isinstance(value, dict)
            and all(k is not None and not isinstance(k, dict | list) for k in value)
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 4 for v in value.values())
        )
    raise AssertionError(kind)


def validate_mapping(mapping: dict, origin: dict | None = None) -> None:
    """Check every value of a mapping before any file is read: a wrong one is a FormatError naming its key
    (`catalog.attributes`) and where it was set (the YAML file or `--field`), not an exception halfway through."""
    for section, defaults in DEFAULT_MAPPING.items():
        for key in defaults:
            if key not in mapping.get(section, {}):
                raise FormatError(
                    "mapping", None, f"{section}.{key}", "missing (build mappings with load_mapping)"
                )
            value = mapping[section][key]
            if not _check_value(_KINDS[key], value):
                where = (origin or {}).get(f"{section}.{key}", "mapping")
                shown = "null" if value is None else repr(value)
                raise FormatError(
                    where, None, f"{section}.{key}", f"expected {_EXPECTED[_KINDS[key]]}, got {shown:.80}"
                )


def _yaml_line(err: yaml.YAMLError) -> int | None:
    mark = getattr(err, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def _yaml_problem(err: yaml.YAMLError) -> str:
    return getattr(err, "problem", None) or str(err).splitlines()[0]


def load_mapping(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """Read a mapping YAML (relative paths are resolved against its folder) and apply `section.key=value`."""
    mapping = {section: dict(values) for section, values in DEFAULT_MAPPING.items()}
    origin: dict[str, str] = {}  # section.key -> where it was set, for the error message
    base = Path(".")
    if path:
        base = Path(path).parent
        if not Path(path).is_file():
            raise FormatError(path, None, None, "no such mapping file")
        try:
            user = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as err:
            raise FormatError(path, None, None, f"not UTF-8 ({err.reason} at byte {err.start})") from err
        except yaml.YAMLError as err:
            raise FormatError(path, _yaml_line(err), None, f"invalid YAML: {_yaml_problem(err)}") from err
        if not isinstance(user, dict):
            raise FormatError(path, None, None, f"expected sections {list(mapping)}, got {user!r:.60}")
        for section, values in user.items():
            if section not in mapping:
                raise FormatError(path, None, section, f"unknown section (expected {list(mapping)})")
            if not isinstance(values, dict | None):
                raise FormatError(path, None, section, f"expected key: value lines, got {values!r:.60}")
            for key, value in (values or {}).items():
                if key not in mapping[section]:
                    raise FormatError(
                        path, None, f"{section}.{key}", f"unknown key (expected {list(mapping[section])})"
                    )
                mapping[section][key] = value
                origin[f"{section}.{key}"] = str(path)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, _, name = key.partition(".")
        if not sep or section not in mapping or name not in mapping[section]:
            raise FormatError("--field", None, key, "expected section.key=value with a known section and key")
        if value.strip().lower() in ("", "null", "~", "none"):
            # More likely a slip than a field called "null"; this way `=null` cannot silently map nothing.
            hint = "" if _KINDS[name] in ("field", "text") else "; to map nothing leave the key out, or []"
            raise FormatError("--field", None, key, f"got {value!r}: give a field name{hint}")
        if value[:1] in "[{":
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as err:
                raise FormatError(
                    "--field", None, key, f"invalid YAML {value!r}: {_yaml_problem(err)}"
                ) from err
        mapping[section][name] = value
        origin[key] = "--field"
    validate_mapping(mapping, origin)
    for section in mapping.values():
        if section["path"] and not Path(section["path"]).is_absolute():
            section["path"] = str(base / section["path"])
    return mapping


def _open_text(path: Path) -> str:
    """Text of a file, or of the single file inside a .zip."""
    if not path.exists():
        raise FormatError(path, None, None, "no such file")
    raw = path.read_bytes()
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise FormatError(path, None, None, f"expected one file in the zip, found {members}")
            raw = zf.read(members[0])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise FormatError(path, line, None, f"not UTF-8 ({err.reason} at byte {err.start})") from err


def _records(spec: dict, lenient: bool, skips: Counter) -> Iterator[tuple[int, dict]]:
    """(line or record number, record) from JSONL / NDJSON bulk, CSV/TSV, or a JSON document's list."""
    path = Path(spec["path"])
    fmt = spec["format"] or {".csv": "csv", ".tsv": "tsv", ".json": "json"}.get(path.suffix, "jsonl")
    text = _open_text(path)
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="," if fmt == "csv" else "\t")
        for row in reader:
            yield reader.line_num, row
        return
    if fmt == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise FormatError(path, err.lineno, None, f"invalid JSON: {err.msg}") from err
        for key in (spec["records"] or "").split(".") if spec["records"] else []:
            if not isinstance(doc, dict) or key not in doc:
                raise FormatError(path, None, spec["records"], "records path not found in the JSON document")
            doc = doc[key]
        if not isinstance(doc, list):
            raise FormatError(path, None, spec["records"], "expected a list of records")
        for number, record in enumerate(doc, start=1):
            if isinstance(record, dict):
                yield number, record
            else:
                _skip_or_raise(
                    FormatError(path, number, spec["records"], f"expected an object, got {record!r:.40}"),
                    lenient,
                    skips,
                )
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            _skip_or_raise(FormatError(path, line_no, None, f"invalid JSON: {err.msg}"), lenient, skips)
            continue
        if (
            fmt == "bulk"
            and isinstance(record, dict)
            and set(record) <= {"index", "create", "update", "delete"}
        ):
            continue  # an OpenSearch/Elasticsearch bulk action line, the document follows
        if not isinstance(record, dict):
            _skip_or_raise(
                FormatError(path, line_no, None, f"expected a JSON object, got {record!r:.40}"),
                lenient,
                skips,
            )
            continue
        yield line_no, record


def _lookup(record, name: str) -> tuple[bool, object]:
    """(found, value) of a mapped field: the key as written first (CSV headers and JSON keys may contain dots),
    then a dotted path through nested objects (`product.title`, `specs.attributes`)."""
    if not isinstance(record, dict):
        return False, None
    if name in record:
        return True, record[name]
    dot = name.find(".")
    while dot != -1:
        head = name[:dot]
        if head in record:
            found, value = _lookup(record[head], name[dot + 1 :])
            if found:
                return True, value
        dot = name.find(".", dot + 1)
    return False, None


def _get(record: dict, field_name: str, path, line: int):
    found, value = _lookup(record, field_name)
    if not found:
        raise FormatError(path, line, field_name, "missing")
    return value


def _opt(record: dict, field_name: str | None):
    """An optional field's value; None when the mapping leaves it out or the record lacks it."""
    return _lookup(record, field_name)[1] if field_name else None


def _text(value, path, line: int, field_name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) or (
        isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
    ):
        # a dotted path that stops one level too early; str() of it would import as garbage text
        raise FormatError(path, line, field_name, f"expected text, got {type(value).__name__} {value!r:.60}")
    if isinstance(value, list):
        return "\n".join(str(v) for v in value if v not in (None, ""))
    return str(value)


def _is_blank(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _value_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # JSON's spelling, not Python's True
    if isinstance(value, float) and value.is_integer():
        # pandas writes an integer column with a gap in it as floats: 4.0 is the 4 the seller typed
        return str(int(value))
    return str(value)


def _is_pair(value) -> bool:
    # `values` as well: option lists such as Shopify's `{"name": "Color", "values": ["Red", "Blue"]}`
    return isinstance(value, dict) and "name" in value and ("value" in value or "values" in value)


def _attributes(value, name: str, named: bool, out: list[dict]) -> None:
    """Append the attributes of one mapped field's value, whatever its shape in this record.

    A plain value (text, number, bool) is one attribute called `name`; a list repeats it per element; an object
    with keys `name` and `value` (or `values`) is one pair; any other object gives one attribute per key. Once a
    name has come from the data (`named`), nested objects and pairs extend it with dots (`Dimensions.Width`).
    """
    if _is_blank(value):
        return
    if _is_pair(value):
        pair_name = "" if value["name"] is None else _value_text(value["name"])
        inner = value["value"] if "value" in value else value["values"]
        _attributes(inner, f"{name}.{pair_name}" if named else pair_name, True, out)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _attributes(inner, f"{name}.{key}" if named else str(key), True, out)
    elif isinstance(value, list):
        for element in value:
            _attributes(element, name, named, out)
    else:
        out.append({"name": name, "value": _value_text(value)})


def _attribute_sources(spec) -> dict[str, str]:
    """The mapping's `attributes` as {field: name for its plain values}; a name from the data wins over it."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return dict(spec)
    fields = [spec] if isinstance(spec, str) else spec
    return {f: f.rsplit(".", 1)[-1].replace("_", " ").title() for f in fields}


def _catalog_row(rec: dict, spec: dict, attr_sources: dict[str, str], line: int) -> dict:
    path = spec["path"]
    category = _opt(rec, spec["category"])
    if isinstance(category, str):
        category = [c.strip() for c in category.split(spec["category_separator"]) if c.strip()]
    elif isinstance(category, dict) or (
        isinstance(category, list) and any(isinstance(c, dict | list) for c in category)
    ):
        raise FormatError(
            path, line, spec["category"], f"expected a path (text or list), got {category!r:.60}"
        )
    elif not isinstance(category, list):
        category = [] if _is_blank(category) else [category]  # a lone number or flag: a one-level path
    description_fields = (
        [spec["description"]] if isinstance(spec["description"], str) else spec["description"]
    )
    attributes: list[dict] = []
    for fname, aname in attr_sources.items():
        _attributes(_opt(rec, fname), aname, False, attributes)
    return {
        "item_id": _text(_get(rec, spec["id"], path, line), path, line, spec["id"]),
        "title": _text(_get(rec, spec["title"], path, line), path, line, spec["title"]),
        "category": [str(c) for c in (category or []) if not _is_blank(c)],
        "attributes": attributes,
        "brand": _text(_opt(rec, spec["brand"]), path, line, spec["brand"]),
        "description": "\n".join(
            t for t in (_text(_opt(rec, f), path, line, f) for f in description_fields or []) if t
        ),
    }


def _query_row(rec: dict, spec: dict, line: int) -> tuple[str, int, str | None]:
    path = spec["path"]
    query = _text(_get(rec, spec["query"], path, line), path, line, spec["query"])
    raw = _get(rec, spec["frequency"], path, line) if spec["frequency"] else 1
    try:
        frequency = int(raw)
    except (TypeError, ValueError) as err:
        raise FormatError(path, line, spec["frequency"], f"not an integer: {raw!r:.40}") from err
    intent_id = (
        _text(_opt(rec, spec["intent_id"]), path, line, spec["intent_id"]) if spec["intent_id"] else ""
    )
    return query, frequency, intent_id or None


def import_mapped(
    mapping: dict, out: str | Path, *, lenient: bool = False, source: str = "jsonl"
) -> ImportReport:
    """Generic import: catalog + judgments (+ optional query log) through a field mapping (see load_mapping)."""
    validate_mapping(mapping)
    skips: Counter = Counter()
    cat_spec, q_spec, j_spec = mapping["catalog"], mapping["queries"], mapping["judgments"]
    for section, spec in (("catalog", cat_spec), ("judgments", j_spec)):
        if not spec["path"]:
            raise FormatError("mapping", None, f"{section}.path", "required")
    catalog = _Rows(formats.CATALOG_SCHEMA)
    attr_sources = _attribute_sources(cat_spec["attributes"])
    for line, rec in _records(cat_spec, lenient, skips):
        try:
            catalog.add(_catalog_row(rec, cat_spec, attr_sources, line), line)
        except FormatError as err:
            _skip_or_raise(err, lenient, skips)

    judgments = _Rows(formats.JUDGMENTS_SCHEMA)
    judged = []
    grade_map = {str(k): v for k, v in (j_spec["grade_map"] or {}).items()}
    j_path = j_spec["path"]
    n_ratings = 0  # with nested ratings, errors name the rating's ordinal across the file as its line
    for line, rec in _records(j_spec, lenient, skips):
        inner = _opt(rec, j_spec["ratings"]) if j_spec["ratings"] else [rec]
        if not isinstance(inner, list):
            problem = "missing" if inner is None else f"expected a list of ratings, got {inner!r:.60}"
            _skip_or_raise(FormatError(j_path, line, j_spec["ratings"], problem), lenient, skips)
            continue
        for rating in inner:
            n_ratings += 1
            where = n_ratings if j_spec["ratings"] else line
            try:
                query = _text(_get(rec, j_spec["query"], j_path, line), j_path, line, j_spec["query"])
                item_id = _text(
                    _get(rating, j_spec["item_id"], j_path, where), j_path, where, j_spec["item_id"]
                )
                raw_grade = _get(rating, j_spec["grade"], j_path, where)
                grade = _map_grade(raw_grade, grade_map, j_path, where, j_spec["grade"])
            except FormatError as err:
                _skip_or_raise(err, lenient, skips)
                continue
            judgments.add(
                {"query": query, "item_id": item_id, "grade": grade, "source": j_spec["source"]}, where
            )
            judged.append(query)

    frequency, intent = {}, {}
    if q_spec["path"]:
        for line, rec in _records(q_spec, lenient, skips):
            try:
                q, freq, intent_id = _query_row(rec, q_spec, line)
            except FormatError as err:
                _skip_or_raise(err, lenient, skips)
                continue
            frequency[q] = freq
            if q_spec["intent_id"]:
                intent[q] = intent_id
    # Queries of the query set without judgments are kept (they are part of the log); judged ones come first.
    queries = _query_log(judged + list(frequency), frequency, intent)
    names = (cat_spec["path"], q_spec["path"] or "queries (from judgments)", j_spec["path"])
    return _finish(
        out,
        source,
        catalog,
        queries,
        judgments,
        skips,
        lenient,
        names,
        {
            "mapping": {
                k: {kk: _json_safe(vv) for kk, vv in v.items() if vv is not None} for k, v in mapping.items()
            }
        },
    )


def _json_safe(value):
    return str(value) if isinstance(value, Path) else value


def _map_grade(raw, grade_map: dict, path, line: int, field_name: str) -> int:
    if grade_map:
        key = str(raw)
        if key not in grade_map:
            raise FormatError(path, line, field_name, f"value {raw!r} not in grade_map {list(grade_map)}")
        return grade_map[key]
    try:
        grade = int(raw)
    except (TypeError, ValueError) as err:
        raise FormatError(path, line, field_name, f"not an integer grade: {raw!r}") from err
    if isinstance(raw, float) and raw != grade:
        raise FormatError(path, line, field_name, f"not an integer grade: {raw!r}")
    return grade
