"""Canonical dataset formats: schemas, loaders with validation, atomic writers.

The formats are documented once, in data_prep/README.md ("Formats"). Every loader accepts parquet or `.jsonl`
with the same field names, checks the contract and raises `FormatError` naming the file, the line (1-based row
for parquet, line number for JSONL) and the field. With `lenient=True` bad rows are skipped instead, and every
skip is counted in the `skips` Counter the caller passes (and logged with its count): never a silent drop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
GRADE_NAMES = ("Bad", "Fair", "Good", "Excellent", "Perfect")  # stored as 0..4 (the paper's five levels)

ATTRIBUTE_TYPE = pa.struct([("name", pa.string()), ("value", pa.string())])
CATALOG_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("category", pa.list_(pa.string())),
        ("attributes", pa.list_(ATTRIBUTE_TYPE)),
        ("brand", pa.string()),
        ("description", pa.string()),
    ]
)
QUERIES_SCHEMA = pa.schema([("query", pa.string()), ("frequency", pa.int64()), ("intent_id", pa.string())])
JUDGMENTS_SCHEMA = pa.schema(
    [("query", pa.string()), ("item_id", pa.string()), ("grade", pa.int8()), ("source", pa.string())]
)
# Fields a file may omit (filled with the default); all others are required.
OPTIONAL_DEFAULTS = {"brand": "", "description": "", "intent_id": None, "category": [], "attributes": []}

# Fixed writer settings so that the same table gives byte-identical files.
PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True, write_statistics=True)


class FormatError(ValueError):
    """Bad input: names the file, the line (or row) and the field."""

    def __init__(self, file: str | os.PathLike, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field = str(file), line, field
        where = self.file + (f":{line}" if line is not None else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {message}")


class Dataset(NamedTuple):
    """A loaded dataset directory (see ARCHITECTURE.md, "Dataset directory")."""

    root: Path
    manifest: dict
    catalog: pa.Table
    queries: pa.Table
    judgments: pa.Table


# ----------------------------------------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_write_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; the result should look like any written file
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to `path` (mode 0755, shared like any output); on success swap it in
    for `path` (an existing folder is moved aside first and deleted only once the new one is in place), on error
    delete it, so `path` is never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp creates 0700
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_table(table: pa.Table, path: str | os.PathLike, row_group_size: int = 100_000) -> None:
    """Write a table as parquet (or JSONL when the name ends in .jsonl), atomically and deterministically."""
    path = Path(path)
    with atomic_write_path(path) as tmp:
        if path.suffix == ".jsonl":
            with open(tmp, "wb") as f:
                for row in table.to_pylist():
                    f.write(orjson.dumps(row) + b"\n")
        else:
            pq.write_table(table, tmp, row_group_size=row_group_size, **PARQUET_OPTIONS)


def write_json(obj, path: str | os.PathLike) -> None:
    """Write JSON atomically with sorted keys (stable bytes)."""
    with atomic_write_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_dataset(
    root: str | os.PathLike, catalog: pa.Table, queries: pa.Table, judgments: pa.Table, manifest: dict
):
    """Write the three tables, then manifest.json last (its presence marks a complete directory)."""
    root = Path(root)
    write_table(catalog, root / "catalog.parquet")
    write_table(queries, root / "queries.parquet")
    write_table(judgments, root / "judgments.parquet")
    write_json(manifest_for(manifest, catalog.num_rows, queries, judgments), root / "manifest.json")


def manifest_for(extra: dict, n_items: int, queries: pa.Table, judgments: pa.Table) -> dict:
    """The manifest: format version, counts (items, queries, judgments, grade histogram) and `extra`."""
    grades = np.bincount(judgments.column("grade").to_numpy().astype(np.int64), minlength=5)
    counts = {
        "items": n_items,
        "queries": queries.num_rows,
        "judgments": judgments.num_rows,
        "judged_queries": len(pc.unique(judgments.column("query"))),
        "grades": {GRADE_NAMES[g]: int(grades[g]) for g in range(5)},
    }
    return {"format_version": FORMAT_VERSION, **extra, "counts": counts}


# ----------------------------------------------------------------------------------------------- reading


def _read_jsonl(path: Path, schema: pa.Schema, lenient: bool, skips: Counter) -> tuple[pa.Table, np.ndarray]:
    """Parse JSONL into `schema`; return the table and the 1-based line number of every kept row."""
    columns: dict[str, list] = {name: [] for name in schema.names}
    lines = []
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = _parse_json_row(path, line_no, raw, schema)
            except FormatError as err:
                if not lenient:
                    raise
                skips[f"{path.name}: {err.args[0].split(': ', 1)[-1]}"] += 1
                continue
            for name in schema.names:
                columns[name].append(row[name])
            lines.append(line_no)
    try:
        table = pa.table(columns, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:  # a type mismatch _parse_json_row did not foresee
        raise FormatError(path, None, None, f"cannot build table: {err}") from err
    return table, np.asarray(lines, dtype=np.int64)


def _parse_json_row(path: Path, line_no: int, raw: bytes, schema: pa.Schema) -> dict:
    try:
        raw.decode("utf-8")
        row = orjson.loads(raw)
    except UnicodeDecodeError as err:
        raise FormatError(path, line_no, None, f"not UTF-8 ({err.reason} at byte {err.start})") from err
    except orjson.JSONDecodeError as err:
        raise FormatError(path, line_no, None, f"invalid JSON: {err}") from err
    if not isinstance(row, dict):
        raise FormatError(path, line_no, None, "a line must hold one JSON object")
    out = {}
    for field in schema:
        if field.name not in row:
            if field.name in OPTIONAL_DEFAULTS:
                out[field.name] = OPTIONAL_DEFAULTS[field.name]
                continue
            raise FormatError(path, line_no, field.name, "missing")
        value = row[field.name]
        if field.name == "attributes" and isinstance(value, dict):  # {"Color": "black"} is accepted too
            value = [{"name": k, "value": v} for k, v in value.items()]
        if not _json_value_fits(value, field.type):
            raise FormatError(path, line_no, field.name, f"expected {field.type}, got {value!r:.60}")
        out[field.name] = value
    return out


def _json_value_fits(value, type_: pa.DataType) -> bool:
    if value is None:
        return type_ == pa.string()  # nullable strings only (intent_id); others are checked later
    if pa.types.is_string(type_):
        return isinstance(value, str)
    if pa.types.is_integer(type_):
        return isinstance(value, int) and not isinstance(value, bool)
    if pa.types.is_list(type_):
        return isinstance(value, list) and all(_json_value_fits(v, type_.value_type) for v in value)
    if pa.types.is_struct(type_):
        return isinstance(value, dict) and all(
            isinstance(value.get(type_.field(i).name), str) for i in range(type_.num_fields)
        )
    return False


def _read_parquet(path: Path, schema: pa.Schema) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise FormatError(path, None, None, f"not a readable parquet file: {err}") from err
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            if field.name not in OPTIONAL_DEFAULTS:
                raise FormatError(path, None, field.name, "missing column")
            default = OPTIONAL_DEFAULTS[field.name]
            columns.append(pa.array([default] * table.num_rows, type=field.type))
            continue
        try:
            columns.append(table.column(field.name).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            bad = _first_uncastable_row(table.column(field.name), field.type)
            raise FormatError(path, bad, field.name, f"expected {field.type}: {err}") from err
    return pa.table(columns, schema=schema)


def _first_uncastable_row(column: pa.ChunkedArray, type_: pa.DataType) -> int | None:
    for i, value in enumerate(column.to_pylist()):
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            pa.array([value]).cast(type_)
            continue
        return i + 1
    return None


def _read(path: Path, schema: pa.Schema, lenient: bool, skips: Counter) -> tuple[pa.Table, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise FormatError(path, None, None, "no such file")
    if path.suffix == ".jsonl":
        return _read_jsonl(path, schema, lenient, skips)
    table = _read_parquet(path, schema)
    return table, np.arange(1, table.num_rows + 1, dtype=np.int64)


def _apply_checks(path, table, lines, checks, lenient, skips) -> tuple[pa.Table, np.ndarray]:
    """checks: list of (field, message, bad_mask). Raise on the first bad row, or drop and count them all."""
    keep = np.ones(table.num_rows, dtype=bool)
    for field, message, bad in checks:
        bad = np.asarray(bad, dtype=bool) & keep
        if not bad.any():
            continue
        if not lenient:
            first = int(np.flatnonzero(bad)[0])
            raise FormatError(path, int(lines[first]), field, message)
        skips[f"{Path(path).name}: field '{field}' {message}"] += int(bad.sum())
        keep &= ~bad
    if keep.all():
        return table, lines
    return table.filter(pa.array(keep)), lines[keep]


def _empty_string_mask(column: pa.ChunkedArray) -> np.ndarray:
    null = column.is_null().to_numpy(zero_copy_only=False)
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column.fill_null(""))), 0)
    return null | empty.to_numpy(zero_copy_only=False)


def _duplicate_mask(column: pa.ChunkedArray) -> np.ndarray:
    """True for every occurrence after the first of a value."""
    codes = column.dictionary_encode().combine_chunks().indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)
    dup = np.ones(len(codes), dtype=bool)
    dup[first] = False
    return dup


def _log_skips(path, skips: Counter, before: int) -> None:
    n = sum(skips.values()) - before
    if n:
        log.warning("%s: skipped %d bad rows (lenient mode): %s", path, n, dict(skips))


def load_catalog(path: str | os.PathLike, *, lenient: bool = False, skips: Counter | None = None) -> pa.Table:
    """Load and validate a catalog (parquet or .jsonl) into CATALOG_SCHEMA."""
    skips = Counter() if skips is None else skips
    table, lines = _read(Path(path), CATALOG_SCHEMA, lenient, skips)
    return validate_catalog(table, lines, path, lenient=lenient, skips=skips)


def validate_catalog(table, lines, path, *, lenient=False, skips: Counter | None = None) -> pa.Table:
    """Check a CATALOG_SCHEMA table; `lines[i]` is the source line of row i (for error messages)."""
    skips = Counter() if skips is None else skips
    before = sum(skips.values())
    table = table.set_column(4, "brand", table.column("brand").fill_null(""))
    table = table.set_column(5, "description", table.column("description").fill_null(""))
    attr_names = pc.list_flatten(table.column("attributes")).combine_chunks()
    attr_rows = pc.list_parent_indices(table.column("attributes")).to_numpy(zero_copy_only=False)
    bad_attr = np.zeros(table.num_rows, dtype=bool)
    if len(attr_names):
        names = attr_names.field("name")
        bad_attr[attr_rows[_empty_string_mask(pa.chunked_array([names]))]] = True
    checks = [
        ("item_id", "is empty", _empty_string_mask(table.column("item_id"))),
        ("title", "is empty", _empty_string_mask(table.column("title"))),
        ("category", "is null", table.column("category").is_null().to_numpy(zero_copy_only=False)),
        ("attributes", "has an attribute with an empty name", bad_attr),
    ]
    table, lines = _apply_checks(path, table, lines, checks, lenient, skips)
    table, _ = _apply_checks(
        path,
        table,
        lines,
        [("item_id", "is a duplicate", _duplicate_mask(table.column("item_id")))],
        lenient,
        skips,
    )
    _log_skips(path, skips, before)
    return table


def load_queries(path: str | os.PathLike, *, lenient: bool = False, skips: Counter | None = None) -> pa.Table:
    """Load and validate a query log (parquet or .jsonl) into QUERIES_SCHEMA."""
    skips = Counter() if skips is None else skips
    table, lines = _read(Path(path), QUERIES_SCHEMA, lenient, skips)
    return validate_queries(table, lines, path, lenient=lenient, skips=skips)


def validate_queries(table, lines, path, *, lenient=False, skips: Counter | None = None) -> pa.Table:
    """Check a QUERIES_SCHEMA table; `lines[i]` is the source line of row i."""
    skips = Counter() if skips is None else skips
    before = sum(skips.values())
    freq = table.column("frequency")
    checks = [
        ("query", "is empty", _empty_string_mask(table.column("query"))),
        ("frequency", "must be >= 1", pc.fill_null(pc.less(freq, 1), True).to_numpy(zero_copy_only=False)),
    ]
    table, lines = _apply_checks(path, table, lines, checks, lenient, skips)
    table, _ = _apply_checks(
        path,
        table,
        lines,
        [("query", "is a duplicate", _duplicate_mask(table.column("query")))],
        lenient,
        skips,
    )
    _log_skips(path, skips, before)
    return table


def load_judgments(
    path: str | os.PathLike,
    *,
    item_ids: pa.Array | pa.ChunkedArray | None = None,
    lenient: bool = False,
    skips: Counter | None = None,
) -> pa.Table:
    """Load and validate judgments; with `item_ids` (the catalog's), unknown item ids are errors too."""
    skips = Counter() if skips is None else skips
    table, lines = _read(Path(path), JUDGMENTS_SCHEMA, lenient, skips)
    return validate_judgments(table, lines, path, item_ids=item_ids, lenient=lenient, skips=skips)


def validate_judgments(
    table, lines, path, *, item_ids=None, lenient=False, skips: Counter | None = None
) -> pa.Table:
    """Check a JUDGMENTS_SCHEMA table; `lines[i]` is the source line of row i."""
    skips = Counter() if skips is None else skips
    before = sum(skips.values())
    grade = table.column("grade")
    bad_grade = pc.fill_null(pc.or_(pc.less(grade, 0), pc.greater(grade, 4)), True)
    checks = [
        ("query", "is empty", _empty_string_mask(table.column("query"))),
        ("item_id", "is empty", _empty_string_mask(table.column("item_id"))),
        ("grade", "must be an integer in 0..4", bad_grade.to_numpy(zero_copy_only=False)),
        ("source", "is empty", _empty_string_mask(table.column("source"))),
    ]
    if item_ids is not None:
        if isinstance(item_ids, pa.ChunkedArray):
            item_ids = item_ids.combine_chunks() if item_ids.num_chunks else pa.array([], pa.string())
        known = pc.is_in(table.column("item_id"), value_set=item_ids.cast(pa.string()))
        checks.append(("item_id", "is not in the catalog", ~known.to_numpy(zero_copy_only=False)))
    table, _ = _apply_checks(path, table, lines, checks, lenient, skips)
    _log_skips(path, skips, before)
    return table


def find_file(root: str | os.PathLike, stem: str) -> Path:
    """`root/stem.parquet`, else `root/stem.jsonl`; FormatError when neither exists."""
    root = Path(root)
    for suffix in (".parquet", ".jsonl"):
        if (root / f"{stem}{suffix}").exists():
            return root / f"{stem}{suffix}"
    raise FormatError(root / f"{stem}.parquet", None, None, "no such file (nor .jsonl)")


def load_dataset(root: str | os.PathLike, *, lenient: bool = False, skips: Counter | None = None) -> Dataset:
    """Load a dataset directory: manifest.json, catalog, queries, judgments (item ids checked against the catalog)."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        raise FormatError(manifest_path, None, None, "no such file (is this a dataset directory?)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(manifest_path, None, None, f"invalid JSON: {err}") from err
    if manifest.get("format_version") != FORMAT_VERSION:
        raise FormatError(manifest_path, None, "format_version", f"expected {FORMAT_VERSION}")
    catalog = load_catalog(find_file(root, "catalog"), lenient=lenient, skips=skips)
    queries = load_queries(find_file(root, "queries"), lenient=lenient, skips=skips)
    judgments = load_judgments(
        find_file(root, "judgments"), item_ids=catalog.column("item_id"), lenient=lenient, skips=skips
    )
    return Dataset(root, manifest, catalog, queries, judgments)


def attributes_dict(row_attributes: list[dict]) -> dict[str, str]:
    """[{"name": n, "value": v}, ...] -> {n: v} (first value wins), for prompt building and display."""
    out: dict[str, str] = {}
    for pair in row_attributes:
        out.setdefault(pair["name"], pair["value"])
    return out
