"""Index directory: round trip, manifest, and clear errors for missing, partial, corrupt or foreign indexes."""

import json
import shutil

import numpy as np
import pytest

from search_sim import IndexConfig, IndexCorruptError, SearchEngine, build_index
from search_sim.__main__ import main as cli
from search_sim.index import INDEX_FORMAT_VERSION
from tests.fixtures_engine import ENGINE_CATALOG_DIR


def test_round_trip_same_results_and_settings(engine_catalog_index, tmp_path):
    config = IndexConfig(
        k1=0.9, b=0.4, minimum_should_match="2<50%", field_weights={"title": 3.0, "category": 0.0}
    )
    build_index(ENGINE_CATALOG_DIR, tmp_path / "custom", config)
    engine = SearchEngine.load(tmp_path / "custom")
    assert engine.config == config
    assert engine.minimum_should_match == "2<50%"
    # rebuilding into the same directory replaces it atomically and gives identical arrays
    build_index(ENGINE_CATALOG_DIR, tmp_path / "custom", config)
    again = SearchEngine.load(tmp_path / "custom")
    for q in ["ergonomic mouse", "dell wd19 dock", "sleep"]:
        a, b = engine.search(q, k=10), again.search(q, k=10)
        assert a.item_ids == b.item_ids and a.recall_size == b.recall_size
        np.testing.assert_array_equal(a.scores, b.scores)
    manifest = json.loads((tmp_path / "custom" / "manifest.json").read_text())
    assert manifest["format_version"] == INDEX_FORMAT_VERSION
    assert manifest["counts"]["items"] == 30
    assert "catalog.parquet" in manifest["files"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind


def test_arrays_are_memory_mapped(engine_catalog_index):
    engine = SearchEngine.load(engine_catalog_index)
    assert isinstance(engine._docs.base, np.memmap) or isinstance(engine._docs.base.base, np.memmap)


@pytest.fixture
def index_copy(engine_catalog_index, tmp_path):
    out = tmp_path / "index"
    shutil.copytree(engine_catalog_index, out)
    return out


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _set_version(path):
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 999
    (path / "manifest.json").write_text(json.dumps(manifest))


CORRUPTIONS = [
    # (damage, expected message fragment)
    (lambda p: (p / "manifest.json").unlink(), "manifest.json: missing"),
    (lambda p: (p / "manifest.json").write_text("{not json"), "not valid JSON"),
    (_set_version, "index format version 999"),
    (lambda p: (p / "postings_docs.npy").unlink(), "postings_docs.npy: missing file"),
    (
        lambda p: (p / "postings_impacts.npy").write_bytes((p / "postings_impacts.npy").read_bytes()[:-8]),
        "truncated",
    ),
    (lambda p: _flip_byte(p / "postings_impacts.npy"), "sha256 does not match"),
    (lambda p: shutil.rmtree(p), "no such index directory"),
]


@pytest.mark.parametrize(("damage", "message"), CORRUPTIONS)
def test_damaged_index_is_refused(index_copy, damage, message):
    damage(index_copy)
    with pytest.raises(IndexCorruptError, match=message):
        SearchEngine.load(index_copy)


def test_cli_build_search_verify(tmp_path, capsys):
    assert cli(["build", "--catalog", str(ENGINE_CATALOG_DIR), "--out", str(tmp_path / "idx")]) == 0
    assert cli(["search", str(tmp_path / "idx"), "WD-19TB", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "recall size: 3" in out and "Dell WD19 TB Dock refurbished" in out
    assert cli(["verify", str(tmp_path / "idx")]) == 0
    _flip_byte(tmp_path / "idx" / "doc_len.npy")
    with pytest.raises(IndexCorruptError):
        cli(["verify", str(tmp_path / "idx")])


def test_bad_catalog_names_the_file(tmp_path):
    (tmp_path / "catalog.jsonl").write_text('{"item_id": "a", "title": ""}\n')
    with pytest.raises(ValueError, match=r"catalog.jsonl:1"):
        build_index(tmp_path, tmp_path / "idx")
