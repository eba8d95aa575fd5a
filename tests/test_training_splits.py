"""Split assignment (disjoint, held-out intents) and the full `training` pipeline on a tiny marketplace."""

import json

import pytest

from leser.distill.splits import (
    PROFILES,
    REJECTION_STAGES,
    Profile,
    build_splits,
    cap_abstentions,
    last_stage_passed,
    resolve_profile,
    split_queries,
)
from leser.prompts import PromptStats, prompt_length, prompt_sizing
from tests.fixtures_training import SMALL_PROFILE_KW

SMALL = Profile("small", **SMALL_PROFILE_KW)


def _log(n_queries: int, n_intents: int | None):
    queries = [f"query {i}" for i in range(n_queries)]
    intents = [f"intent {i % n_intents}" if n_intents else None for i in range(n_queries)]
    return queries, intents


@pytest.mark.parametrize(
    ("n_queries", "n_intents", "profile"),
    [
        (1000, 50, SMALL),  # synthetic-like log with intents: held-out intents in eval
        (1000, None, SMALL),  # imported log without intents: random eval
        (150, 10, SMALL),  # small log: shortfalls, still disjoint
        (5000, 200, PROFILES["cpu"]),  # the cpu profile on a 5,000-query log
    ],
)
def test_splits_are_disjoint_and_hold_out_intents(n_queries, n_intents, profile):
    queries, intents = _log(n_queries, n_intents)
    splits, held_out, shortfalls = split_queries(queries, intents, profile, seed=3)
    sets = {name: set(rows) for name, rows in splits.items()}
    assert all(len(sets[name]) == len(splits[name]) for name in splits)  # no duplicates inside a split
    assert (
        not sets["eval"] & sets["sft"] and not sets["eval"] & sets["grpo"] and not sets["sft"] & sets["grpo"]
    )
    assert len(splits["eval"]) <= max(1, int(n_queries * profile.eval_share_cap))
    intent_of = dict(zip(queries, intents, strict=True))
    train_intents = {intent_of[q] for q in sets["sft"] | sets["grpo"]}
    assert not held_out & train_intents  # held-out intents never reach training
    if n_intents:
        assert held_out and any(intent_of[q] in held_out for q in splits["eval"])
    for name in ("eval", "sft", "grpo"):
        wanted = getattr(profile, f"{name}_queries")
        assert len(splits[name]) == wanted or shortfalls[name] == wanted - len(splits[name])


def test_probe_split_is_disjoint_and_leaves_other_profiles_alone():
    queries, intents = _log(3000, 100)
    with_probe = Profile("probe", **{**SMALL_PROFILE_KW, "probe_queries": 40})
    splits, held_out, shortfalls = split_queries(queries, intents, with_probe, seed=3)
    assert len(splits["probe"]) == 40 and "probe" not in shortfalls
    sets = {name: set(rows) for name, rows in splits.items()}
    for a in sets:
        for b in sets:
            assert a == b or not sets[a] & sets[b], (a, b)
    intent_of = dict(zip(queries, intents, strict=True))
    assert not held_out & {intent_of[q] for q in sets["probe"]}  # held-out intents stay eval-only
    # a probe takes queries after eval is drawn: the eval split is the same with or without it
    plain, _, _ = split_queries(queries, intents, SMALL, seed=3)
    assert "probe" not in plain and plain["eval"] == splits["eval"]


def test_learn_profile_is_sized_for_the_experiment():
    learn = PROFILES["learn"]
    assert learn.eval_queries >= 150 and learn.probe_queries == 50 and learn.max_context_items == 3
    # evidence-first reasoning where it was measured (docs/experiment/sft_evidence_first/); elsewhere unchanged
    assert learn.teacher_reasoning == "evidence_first"
    assert {p.teacher_reasoning for name, p in PROFILES.items() if name != "learn"} == {"intent_first"}


def test_split_is_deterministic_per_seed():
    queries, intents = _log(500, 20)
    assert split_queries(queries, intents, SMALL, 1) == split_queries(queries, intents, SMALL, 1)
    assert split_queries(queries, intents, SMALL, 1)[0] != split_queries(queries, intents, SMALL, 2)[0]


@pytest.mark.slow
def test_training_pipeline_writes_swift_rows_and_resumes(training_world, small_splits):
    out = small_splits
    stats = json.loads((out / "stats.json").read_text())
    names = ("sft.jsonl", "sft_llm.jsonl", "grpo.jsonl", "eval.jsonl")
    rows = {name: [json.loads(line) for line in (out / name).open()] for name in names}
    assert stats["rows"] == {name: len(r) for name, r in rows.items()}
    assert list(stats["rejection_sampling_stages"]) == list(REJECTION_STAGES)
    stages = list(stats["rejection_sampling_stages"].values())
    assert stages == sorted(stages, reverse=True) and stages[0] == SMALL.sft_queries  # each stage keeps fewer
    assert stats["rows"]["sft_llm.jsonl"] == stages[-1] > 0
    # the retrieval stage rejects every abstention: the rules teacher's empty answers stay in sft.jsonl only
    assert all('{"expansion": []}' not in row["messages"][-1]["content"] for row in rows["sft_llm.jsonl"])
    assert any('{"expansion": []}' in row["messages"][-1]["content"] for row in rows["sft.jsonl"])
    assert stats["teacher_gate_pass_rate"] >= 0.95
    assert stats["teacher_mean_reward"] > stats["no_expansion_mean_reward"]
    # No tokenizer: the estimate plus the template margin, and how many prompts lost items to the budget.
    assert stats["prompt_sizing"] == prompt_sizing()
    drops = stats["prompt_context_drops"]
    assert set(drops) == {"sft", "grpo", "eval"}
    assert (
        drops["grpo"]["prompts"] == len(rows["grpo.jsonl"]) and drops["sft"]["prompts"] == SMALL.sft_queries
    )
    for counts in drops.values():
        assert counts["prompts_with_dropped_items"] <= counts["items_dropped"]
        assert counts["prompts_with_dropped_items"] <= counts["prompts"]
    for row in rows["sft.jsonl"]:
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert f'Query: "{row["query"]}"' in row["messages"][1]["content"]
    for name in ("grpo.jsonl", "eval.jsonl"):
        assert all([m["role"] for m in r["messages"]] == ["system", "user"] for r in rows[name])
    queries = {name: {r["query"] for r in rs} for name, rs in rows.items()}
    assert queries["sft_llm.jsonl"] <= queries["sft.jsonl"]
    assert not queries["eval.jsonl"] & (queries["sft.jsonl"] | queries["grpo.jsonl"])
    assert not queries["sft.jsonl"] & queries["grpo.jsonl"]
    # Resume: the work file holds every candidate, so a second run asks the teacher nothing and writes the same.
    args = (training_world["dataset"], training_world["index"], training_world["relevance"], out, SMALL)
    before = (out / "sft.jsonl").read_bytes()
    assert build_splits(*args)["rows"] == stats["rows"]
    assert (out / "sft.jsonl").read_bytes() == before


@pytest.mark.slow
def test_training_pipeline_with_an_openai_compatible_teacher(training_world, tmp_path, monkeypatch):
    import threading
    from http.server import ThreadingHTTPServer

    from tests.test_training_teachers import _ChatServer

    _ChatServer.requests, _ChatServer.seen = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("LESER_TEACHER_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
        monkeypatch.setenv("LESER_TEACHER_MODEL", "tiny-teacher")
        monkeypatch.setenv("OPENAI_API_KEY", _ChatServer.key)
        profile = Profile("tiny", sft_queries=8, grpo_queries=8, eval_queries=8, max_context_items=3)
        w = training_world
        stats = build_splits(
            w["dataset"], w["index"], w["relevance"], tmp_path, profile, teacher_name="openai"
        )
    finally:
        server.shutdown()
        server.server_close()
    stages = stats["rejection_sampling_stages"]
    assert stages["0_candidates"] == stages["1_teacher_answered"] == 8
    assert len(_ChatServer.requests) == 16  # a 429 then an answer for each query
    # The server's answers add words ("xl", "blue") the index may lack: the gate decides, and says why.
    assert sum(stats["gate_reasons"].values()) == 8
    assert stats["rows"]["sft.jsonl"] == stages.get("2_gate_pass", 0)
    assert (tmp_path / ".work" / "openai_cache.jsonl").is_file()


@pytest.mark.slow
def test_splits_sized_with_the_backbone_tokenizer_record_it(training_world, base_model_dir, tmp_path):
    from transformers import AutoTokenizer

    profile = Profile("tiny", sft_queries=6, grpo_queries=6, eval_queries=6, max_context_items=10)
    w = training_world
    stats = build_splits(
        w["dataset"], w["index"], w["relevance"], tmp_path, profile, tokenizer_dir=base_model_dir
    )
    assert stats["prompt_sizing"] == {
        "tokenizer": str(base_model_dir),
        "template": "exact",
        "max_prompt_tokens": 2048,
    }
    # Ten short catalog items fit in 2048 SmolLM2 tokens: nothing dropped, and the count says so.
    assert stats["prompt_context_drops"]["grpo"] == PromptStats(6, 0, 0).as_dict()
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    for line in (tmp_path / "grpo.jsonl").open():
        assert prompt_length(json.loads(line)["messages"], tokenizer) <= 2048


def _breakdown(valid=True, rel_y=0.5, rel_q=0.5, ret_y=10, ret_q=10):
    return {"valid": valid, "rel_y": rel_y, "rel_q": rel_q, "ret_y": ret_y, "ret_q": ret_q}


@pytest.mark.parametrize(
    ("breakdown", "last"),
    [
        (_breakdown(valid=False, rel_y=0.0, ret_y=0), "1_teacher_answered"),  # the gate fails
        (_breakdown(rel_y=0.4, ret_y=50), "2_gate_pass"),  # more recall bought with a less relevant top k
        (
            _breakdown(),
            "3_relevance_not_lower_than_query",
        ),  # an abstention: Y = {q}, nothing retrieved beyond q
        (_breakdown(rel_y=0.7, ret_y=10), "3_relevance_not_lower_than_query"),  # better ranking, no new items
        (_breakdown(ret_y=11), "4_retrieval_larger_than_query"),  # relevance kept, one more item
        (_breakdown(rel_y=0.9, ret_y=40), "4_retrieval_larger_than_query"),
    ],
)
def test_rejection_sampling_follows_the_paper_stages(breakdown, last):
    """SFT-LLM keeps an answer when the gate passes, Rel(Y) >= Rel(q) and Ret(Y) > Ret(q) (paper Sec. 4)."""
    assert last_stage_passed(breakdown) == last
    assert (last == REJECTION_STAGES[-1]) == (
        breakdown["valid"]
        and breakdown["rel_y"] >= breakdown["rel_q"]
        and breakdown["ret_y"] > breakdown["ret_q"]
    )


@pytest.mark.parametrize(
    ("is_empty", "share", "kept_empty", "dropped"),
    [
        ([True, False, True, False, True, True], 1.0, 4, 0),  # 1.0 keeps the teacher's mix
        ([True, False, True, False, True, True], 0.5, 2, 2),  # 2 expanding rows allow 2 abstentions
        ([True, False, False, False, True, True], 0.25, 1, 2),  # 3 expanding rows: floor(0.25 * 3 / 0.75) = 1
        ([True, True, True], 0.25, 0, 3),  # no expanding row: no abstention either
        ([False, False], 0.25, 0, 0),  # nothing to drop
    ],
)
def test_cap_abstentions(is_empty, share, kept_empty, dropped):
    rows = [{"i": i} for i in range(len(is_empty))]
    kept, n_dropped = cap_abstentions(rows, is_empty, share)
    assert n_dropped == dropped and len(kept) == len(rows) - dropped
    assert sum(is_empty[r["i"]] for r in kept) == kept_empty
    assert [r["i"] for r in kept] == sorted(r["i"] for r in kept)  # order kept
    assert all(r in kept for r, e in zip(rows, is_empty, strict=True) if not e)  # every expansion kept


def test_cap_abstentions_rejects_a_bad_share():
    with pytest.raises(ValueError, match="max_abstention_share"):
        cap_abstentions([], [], 0.0)


def test_resolve_profile_overrides_only_the_abstention_cap():
    assert resolve_profile("learn") == PROFILES["learn"]
    uncapped = resolve_profile("learn", 1.0)
    assert uncapped.max_abstention_share == 1.0 and PROFILES["learn"].max_abstention_share < 1.0
    assert {k: v for k, v in vars(uncapped).items() if k != "max_abstention_share"} == {
        k: v for k, v in vars(PROFILES["learn"]).items() if k != "max_abstention_share"
    }
    with pytest.raises(ValueError, match="--max-abstention-share"):
        resolve_profile("learn", 1.5)


def test_evidence_first_splits_differ_from_the_default_only_in_the_reasoning(
    training_world, small_splits, tmp_path
):
    w = training_world
    stats = build_splits(
        w["dataset"], w["index"], w["relevance"], tmp_path, SMALL, teacher_reasoning="evidence_first"
    )
    assert stats["teacher_reasoning"] == "evidence_first"
    assert json.loads((small_splits / "stats.json").read_text())["teacher_reasoning"] == "intent_first"
    for name in ("grpo.jsonl", "eval.jsonl"):
        assert (tmp_path / name).read_bytes() == (small_splits / name).read_bytes()
    default = [json.loads(line) for line in (small_splits / "sft.jsonl").open()]
    evidence = [json.loads(line) for line in (tmp_path / "sft.jsonl").open()]
    assert [r["query"] for r in evidence] == [r["query"] for r in default]
    answer = lambda row: row["messages"][-1]["content"].split("</think>")[1]  # noqa: E731
    assert [answer(r) for r in evidence] == [answer(r) for r in default]
    assert [r["messages"][:-1] for r in evidence] == [r["messages"][:-1] for r in default]
    # The rule's decisions are reordered; relaxation and empty-result answers keep their own wording.
    n_reordered = 0
    for old, new in zip(default, evidence, strict=True):
        old_text, new_text = old["messages"][-1]["content"], new["messages"][-1]["content"]
        if old_text.startswith("<think>The shopper wants"):
            assert new_text.startswith('<think>The query "') and "The shopper wants" in new_text
            n_reordered += 1
        else:
            assert new_text == old_text
    assert n_reordered > 0


@pytest.mark.parametrize(
    ("teacher", "reasoning", "message"),
    [
        ("openai", "evidence_first", "applies to the rules teacher"),
        ("rules", "verdict_first", "must be one of"),
    ],
)
def test_build_splits_rejects_a_reasoning_order_it_cannot_apply(
    training_world, tmp_path, teacher, reasoning, message
):
    w = training_world
    with pytest.raises(ValueError, match=message):
        build_splits(
            w["dataset"],
            w["index"],
            w["relevance"],
            tmp_path,
            SMALL,
            teacher_name=teacher,
            teacher_reasoning=reasoning,
        )
    assert not (tmp_path / "sft.jsonl").exists()
