"""The serving-cache exporter: head of the log, gate verdicts, atomic JSONL (`python -m leser.expand`)."""

import orjson
import pytest

import leser.expand
from leser.expand import head_queries, main
from leser.generation import GenerationResult
from leser.prompts import format_completion


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


class ScriptedGenerator:
    """Stands in for the model: answers the conversations in order with the given texts, keeping what it saw."""

    def __init__(self, texts: list[str]):
        self.texts, self.seen = list(texts), []

    def generate(self, conversations, sampling, progress=True):
        self.seen += conversations
        answers, self.texts = self.texts[: len(conversations)], self.texts[len(conversations) :]
        return GenerationResult(answers, 0.1, 0)


def test_expand_caches_valid_answers_and_drops_invalid_ones(
    small_synth_dir, small_index, small_engine, tmp_path, monkeypatch
):
    head = [q for q, _ in head_queries(small_synth_dir / "queries.parquet", 6)]
    # a valid answer for each query the engine finds items for: the query plus an attribute value of its top item
    # (a catalog value, so the gate's vocabulary check accepts it); a text without the tags for the others
    texts, wanted = [], {}
    for query in head:
        items = small_engine.items(small_engine.search(query, k=1).item_ids)
        words = set(query.lower().split())
        values = [
            a["value"]
            for item in items
            for a in item["attributes"]
            if not set(a["value"].lower().split()) <= words
        ]
        if values and len(wanted) < 3:
            wanted[query] = [f"{query} {values[0]}"]
            texts.append(format_completion("adds a value from the results", wanted[query]))
        else:
            texts.append("no tags")
    assert wanted and len(wanted) < len(head), (
        "the head of the small log has queries with and without results"
    )
    generator = ScriptedGenerator(texts)
    monkeypatch.setattr(leser.expand, "load_generator", lambda *args, **kwargs: generator)
    out = tmp_path / "cache.jsonl"
    code = main(
        [
            "--model", "scripted", "--index", str(small_index), "--queries", str(small_synth_dir / "queries.parquet"),
            "--out", str(out), "--top", str(len(head)), "--max-context-items", "3",
        ]
    )  # fmt: skip
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert code == 0
    assert [r["query"] for r in rows] == head
    for row in rows:
        if row["query"] in wanted:  # a valid answer ships its expansions
            assert (row["valid"], row["reason"], row["expansions"]) == (True, "ok", wanted[row["query"]])
        else:  # an answer that fails the gate ships none: serving falls back to the raw query
            assert (row["valid"], row["expansions"]) == (False, []) and row["reason"] != "ok"
    # the prompts are the shared builder's, with at most --max-context-items engine items
    for conversation, query in zip(generator.seen, head, strict=True):
        user = conversation[-1]["content"]
        assert f'Query: "{query}"' in user and "[4]" not in user
