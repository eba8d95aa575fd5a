"""Teachers: the rules teacher's decisions, and the OpenAI-compatible teacher against a real local HTTP server."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from leser.distill.teachers import FEW_SHOT, OpenAIError, OpenAITeacher, RulesTeacher
from leser.gate import Rules, check_completion


def _item(title, brand, category, **attributes):
    return {
        "title": title,
        "brand": brand,
        "category": ["home", category],
        "attributes": [{"name": n, "value": v} for n, v in attributes.items()],
    }


BROAD_ITEMS = [
    _item("Trail Running Shoes", "Salomon", "running shoes", color="black", terrain="trail", gender="men"),
    _item(
        "Road Running Shoe Pegasus", "Nike", "running shoes", color="white", terrain="road", gender="women"
    ),
    _item("Cushioned Running Sneakers", "Asics", "running shoes", color="blue", terrain="road", gender="men"),
    _item(
        "Waterproof Trail Runner", "Salomon", "running shoes", color="grey", terrain="trail", gender="women"
    ),
    _item(
        "Lightweight Running Shoes", "Adidas", "running shoes", color="black", terrain="track", gender="men"
    ),
]
SPECIFIC_ITEMS = [
    _item("Nike Pegasus 40 Black", "Nike", "running shoes", color="black", model="pegasus 40", size="10"),
    _item("Nike Pegasus 40 Black men", "Nike", "running shoes", color="black", model="pegasus 40", size="9"),
    _item("Pegasus 40 black Nike", "Nike", "running shoes", color="black", model="pegasus 40", size="11"),
]
UNIFORM_ITEMS = [
    _item("Running Shoes", "Acme", "running shoes", color="red"),
    _item("Running Shoes Red", "Acme", "running shoes", color="red"),
]


@pytest.mark.parametrize(
    ("query", "items", "expect_empty"),
    [
        ("running shoes", BROAD_ITEMS, False),  # broad: results differ in brand, terrain, color, gender
        ("black nike pegasus 40", SPECIFIC_ITEMS, True),  # names brand + color + model: specific
        ("wd19tb dock", SPECIFIC_ITEMS, True),  # an identifier token: specific
        ("running shoes", UNIFORM_ITEMS, True),  # nothing splits the results: nothing to clarify
        ("running shoes", [], True),  # no results: nothing to ground an expansion
    ],
)
def test_rules_teacher_decides_when_to_expand(query, items, expect_empty):
    out = RulesTeacher().teach(query, items)
    assert (out.expansions == []) == expect_empty
    assert out.reasoning
    gate = check_completion(out.completion, query, Rules())
    assert gate.valid, gate.reason


def test_rules_teacher_broad_query_gets_three_diverse_grounded_expansions():
    teacher = RulesTeacher()
    out = teacher.teach("running shoes", BROAD_ITEMS)
    assert 3 <= len(out.expansions) <= teacher.max_expansions
    assert len({frozenset(e.lower().split()) for e in out.expansions}) == len(out.expansions)
    values = {a["value"].lower() for item in BROAD_ITEMS for a in item["attributes"]}
    values |= {item["brand"].lower() for item in BROAD_ITEMS}
    for expansion in out.expansions:
        assert expansion.startswith("running shoes ")  # faithful: keeps the query
        added = expansion[len("running shoes ") :].lower()
        assert all(word in " ".join(values) for word in added.split())  # grounded in the results
    # Different attribute combinations: no single value is added by every expansion.
    added_words = [set(e.lower().split()) - {"running", "shoes"} for e in out.expansions]
    assert not set.intersection(*added_words)
    assert "broad" in out.reasoning


@pytest.mark.parametrize(
    ("query", "items", "evidence", "decision"),
    [
        ("running shoes", BROAD_ITEMS, "no attribute value of its results", "so it is broad"),
        ("nike running shoes", BROAD_ITEMS, 'only the brand "Nike"', "so it is broad"),
        (
            "black nike pegasus 40",
            SPECIFIC_ITEMS,
            'already names the brand "Nike" and the color "black"',
            "so it is already specific",
        ),
        ("wd19tb dock", SPECIFIC_ITEMS, 'the identifier "wd19tb"', "so it is already specific"),
        ("running shoes", UNIFORM_ITEMS, "no attribute value of its results", "hardly differ"),
    ],
)
def test_evidence_first_reasoning_states_what_the_query_names_before_deciding(
    query, items, evidence, decision
):
    intent_first = RulesTeacher().teach(query, items)
    out = RulesTeacher(reasoning="evidence_first").teach(query, items)
    assert out.expansions == intent_first.expansions  # the same answer, only the reasoning is reordered
    assert out.reasoning.startswith(f'The query "{query}" ')
    assert intent_first.reasoning.startswith("The shopper wants")
    assert evidence in out.reasoning
    assert (
        out.reasoning.index(evidence)
        < out.reasoning.index(decision)
        < out.reasoning.index("The shopper wants")
    )
    assert check_completion(out.completion, query, Rules()).valid


def test_rules_teacher_rejects_an_unknown_reasoning_order():
    with pytest.raises(ValueError, match="evidence_first"):
        RulesTeacher(reasoning="decision_first")


def test_rules_teacher_reasoning_does_not_depend_on_the_hash_seed():
    """The SFT rows are the same bytes on every run: named attributes in catalog order, not set order."""
    script = (
        "from tests.test_training_teachers import RulesTeacher, SPECIFIC_ITEMS\n"
        "print(RulesTeacher().teach('black nike pegasus 40', SPECIFIC_ITEMS).reasoning)"
    )
    root = Path(__file__).resolve().parent.parent
    texts = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(4)
    }
    assert len(texts) == 1
    assert 'names the brand "Nike" and the color "black" and the model "pegasus 40"' in texts.pop()


def test_rules_teacher_is_deterministic():
    a = RulesTeacher().complete_many(["running shoes"] * 2, [BROAD_ITEMS, BROAD_ITEMS])
    assert a[0] == a[1] == RulesTeacher().teach("running shoes", BROAD_ITEMS).completion


class _ChatServer(BaseHTTPRequestHandler):
    """A real chat-completions endpoint: answers with a completion naming the last user query.

    The first request for each query gets 429 (to exercise the retry), requests with a wrong key get 401."""

    requests: list[dict] = []
    seen: set[str] = set()
    key = "sk-test-secret"

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.headers.get("Authorization") != f"Bearer {self.key}":
            return self._send(401, {"error": {"message": "bad key"}})
        query = body["messages"][-1]["content"].split('Query: "')[1].split('"')[0]
        if query not in self.seen:
            self.seen.add(query)
            return self._send(429, {"error": {"message": "slow down"}})
        completion = f'<think>teacher</think>\n<answer>{{"expansion": ["{query} red", "{query} blue", "{query} xl"]}}</answer>'
        return self._send(200, {"choices": [{"message": {"role": "assistant", "content": completion}}]})

    def _send(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def chat_server():
    _ChatServer.requests, _ChatServer.seen = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_teacher_retries_caches_and_resumes(chat_server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LESER_TEACHER_BASE_URL", chat_server)
    monkeypatch.setenv("LESER_TEACHER_MODEL", "tiny-teacher")
    monkeypatch.setenv("OPENAI_API_KEY", _ChatServer.key)
    cache = tmp_path / "cache.jsonl"
    teacher = OpenAITeacher.from_env(cache, concurrency=2, backoff_s=0.01)
    queries = ["running shoes", "desk lamp", "usb hub"]
    out = teacher.complete_many(queries, [BROAD_ITEMS, [], UNIFORM_ITEMS])
    for q, completion in zip(queries, out, strict=True):
        gate = check_completion(completion, q, Rules())
        assert gate.valid and gate.expansions[0] == f"{q} red"
    assert len(_ChatServer.requests) == 6  # one 429 then one success per query
    # Few-shot: system, two example turns each (user + assistant), then the query.
    messages = _ChatServer.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * len(FEW_SHOT) + ["user"]
    assert _ChatServer.requests[-1]["model"] == "tiny-teacher"
    # Resume: a new teacher with the same cache makes no request.
    again = OpenAITeacher.from_env(cache, backoff_s=0.01).complete_many(
        queries, [BROAD_ITEMS, [], UNIFORM_ITEMS]
    )
    assert again == out and len(_ChatServer.requests) == 6
    # The key is never written to the cache, the log or the repr.
    assert _ChatServer.key not in cache.read_text()
    assert _ChatServer.key not in repr(teacher) and _ChatServer.key not in caplog.text


def test_openai_teacher_bad_key_is_an_error_without_the_key(chat_server, tmp_path):
    teacher = OpenAITeacher(chat_server, "m", "sk-wrong-key", tmp_path / "c.jsonl", backoff_s=0.01)
    with pytest.raises(OpenAIError, match="401") as err:
        teacher.complete("running shoes", BROAD_ITEMS)
    assert "sk-wrong-key" not in str(err.value)


def test_openai_teacher_gives_up_after_retries(tmp_path):
    # Nothing listens on this port: every attempt fails, the query is reported as None (the caller counts it).
    teacher = OpenAITeacher(
        "http://127.0.0.1:9/v1", "m", None, tmp_path / "c.jsonl", max_retries=1, backoff_s=0.01
    )
    assert teacher.complete_many(["running shoes"], [BROAD_ITEMS]) == [None]


class _Vocabulary:
    """The index vocabulary as the gate's container (what leser.reward passes it)."""

    def __init__(self, engine):
        self.engine = engine

    def __contains__(self, word: str) -> bool:
        return self.engine.vocabulary_contains(word)


def _engine_teacher(engine) -> RulesTeacher:
    return RulesTeacher(
        analyzer=engine.analyzer.analyze,
        vocabulary_contains=engine.vocabulary_contains,
        recall_sizes=lambda queries: [r.recall_size for r in engine.search_many(queries, k=1)],
    )


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        # nothing matches all words: relax by dropping the over-constraining word, keep the product noun
        ("purple wireless mouse", lambda exps: exps and all(e.endswith("mouse") for e in exps)),
        # a single unknown word: nothing to drop, nothing to ground -> empty list
        ("zzzqqq", lambda exps: exps == []),
    ],
)
def test_rules_teacher_relaxes_queries_the_engine_cannot_answer(engine_catalog_index, query, expect):
    from search_sim import SearchEngine

    engine = SearchEngine.load(engine_catalog_index)
    teacher = _engine_teacher(engine)
    items = engine.items(list(engine.search(query, k=5).item_ids))
    out = teacher.teach(query, items)
    assert expect(out.expansions), out
    gate = check_completion(out.completion, query, Rules(), _Vocabulary(engine), engine.analyzer)
    assert gate.valid, gate.reason
    # Every relaxed expansion finds more items than the raw query.
    raw = engine.search(query, k=1).recall_size
    assert all(engine.search(e, k=1).recall_size > raw for e in out.expansions)


def test_rules_teacher_with_engine_proposes_only_indexed_values(engine_catalog_index):
    from search_sim import SearchEngine

    engine = SearchEngine.load(engine_catalog_index)
    items = engine.items(list(engine.search("mouse", k=10).item_ids))
    out = _engine_teacher(engine).teach("mouse", items)
    assert len(out.expansions) >= 3
    gate = check_completion(out.completion, "mouse", Rules(), _Vocabulary(engine), engine.analyzer)
    assert gate.valid, gate.reason


def test_relaxation_keeps_a_negation_with_its_word(engine_catalog_index):
    from search_sim import SearchEngine

    engine = SearchEngine.load(engine_catalog_index)
    out = _engine_teacher(engine).teach("wireless mouse without cable", [])
    assert out.expansions
    # "cable" never appears without "without": relaxing must not ask for the thing the shopper excluded.
    assert all("cable" not in e.split() or "without cable" in e for e in out.expansions)
