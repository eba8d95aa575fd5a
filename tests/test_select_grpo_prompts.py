"""scripts/select_grpo_prompts.py: keeps exactly the rows whose query recalls at most --max-recall items, in order,
with every column; bad input is one line and a non-zero exit, and nothing is written."""

import importlib.util
import json

import pytest

from search_sim import open_engine
from tests.fixtures_recipes import REPO_ROOT
from tests.fixtures_reward import write_settings


@pytest.fixture(scope="module")
def selector():
    spec = importlib.util.spec_from_file_location(
        "select_grpo_prompts", REPO_ROOT / "scripts" / "select_grpo_prompts.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_split(path, queries):
    path.write_text(
        "".join(json.dumps({"messages": [], "query": q, "extra": i}) + "\n" for i, q in enumerate(queries))
    )
    return path


QUERIES = ["wireless mouse", "xyzzy plugh", "logitech", "frobnicate the quux", "mouse"]


def test_keeps_rows_up_to_max_recall_in_order(selector, reward_tiny_backend, tmp_path):
    config = write_settings(
        tmp_path / "leser.yaml", str(reward_tiny_backend / "index"), str(reward_tiny_backend / "relevance")
    )
    split = write_split(tmp_path / "grpo.jsonl", QUERIES)
    engine = open_engine(str(reward_tiny_backend / "index"))
    recall = {q: r.recall_size for q, r in zip(QUERIES, engine.search_many(QUERIES, k=1), strict=True)}
    assert recall["xyzzy plugh"] == 0 and recall["frobnicate the quux"] == 0 and recall["wireless mouse"] > 0

    for max_recall in (0, recall["logitech"]):
        out = tmp_path / f"kept_{max_recall}.jsonl"
        assert selector.main(["--config", str(config), "--split", str(split), "--max-recall", str(max_recall),
                              "--out", str(out)]) == 0  # fmt: skip
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        expected = [(i, q) for i, q in enumerate(QUERIES) if recall[q] <= max_recall]
        assert [(r["extra"], r["query"]) for r in rows] == expected
        assert all(r["messages"] == [] for r in rows)
        assert [p.name for p in tmp_path.glob("*.tmp")] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"query": "mouse"}\nnot json\n', ":2: not JSON"),
        ('{"messages": []}\n', ':1: needs a non-empty string "query"'),
        ("\n", "no rows"),
    ],
)
def test_bad_split_is_one_line_and_writes_nothing(selector, tmp_path, content, message):
    split = tmp_path / "grpo.jsonl"
    split.write_text(content)
    out = tmp_path / "kept.jsonl"
    with pytest.raises(ValueError, match=message):
        selector.main(["--split", str(split), "--out", str(out)])
    assert not out.exists()


def test_nothing_selected_is_an_error_not_an_empty_file(selector, reward_tiny_backend, tmp_path):
    config = write_settings(
        tmp_path / "leser.yaml", str(reward_tiny_backend / "index"), str(reward_tiny_backend / "relevance")
    )
    split = write_split(tmp_path / "grpo.jsonl", ["wireless mouse"])
    out = tmp_path / "kept.jsonl"
    with pytest.raises(ValueError, match="raise --max-recall"):
        selector.main(["--config", str(config), "--split", str(split), "--out", str(out)])
    assert not out.exists()


def test_refuses_to_overwrite_its_input(selector, tmp_path):
    split = write_split(tmp_path / "grpo.jsonl", ["mouse"])
    with pytest.raises(ValueError, match="overwrite the input"):
        selector.main(["--split", str(split), "--out", str(split)])
