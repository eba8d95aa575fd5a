"""The serving-cache exporter: head of the log, gate verdicts, atomic JSONL (`python -m leser.expand`)."""

import orjson
import pytest

from leser.expand import head_queries, main


def test_head_queries_orders_by_frequency(small_synth_dir):
    rows = head_queries(small_synth_dir / "queries.parquet", 5)
    frequencies = [f for _, f in rows]
    # the head of the log, most frequent first, exactly `top` rows
    assert len(rows) == 5
    assert frequencies == sorted(frequencies, reverse=True)


@pytest.mark.slow
def test_expand_writes_gated_cache(small_synth_dir, small_index, base_model_dir, tmp_path):
    out = tmp_path / "cache.jsonl"
    code = main(
        [
            "--model", str(base_model_dir), "--index", str(small_index),
            "--queries", str(small_synth_dir / "queries.parquet"), "--out", str(out),
            "--top", "2", "--max-new-tokens", "24", "--max-context-items", "3", "--backend", "transformers",
        ]
    )  # fmt: skip
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert code == 0
    assert [r["query"] for r in rows] == [q for q, _ in head_queries(small_synth_dir / "queries.parquet", 2)]
    for row in rows:
        # an answer that fails the gate ships no expansions: serving falls back to the raw query
        assert row["valid"] or row["expansions"] == []
        assert set(row) == {"query", "frequency", "expansions", "valid", "reason"}
