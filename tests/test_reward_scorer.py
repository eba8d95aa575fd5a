"""LeserScorer on a real index + relevance model of 30 hand-written items; expected values computed by hand.

Recall sets below are read off tests/fixtures/engine_catalog/catalog.jsonl: the index's default
minimum_should_match "3<75%" requires every term of a query of at most three terms.
"""

import json
import logging
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leser.reward import LeserScorer, RewardBackendError, dcg_top_k_relevance
from leser.settings import load_settings, open_backend
from search_sim import open_engine
from tests.fixtures_reward import free_port, write_settings

EPS, LAM, REL_FLOOR, CAP = 1e-4, 0.1, 0.05, 10.0


def completion(*expansions: str) -> str:
    return f"<think>narrow it down</think>\n<answer>{json.dumps({'expansion': list(expansions)})}</answer>"


@pytest.fixture(scope="module")
def scorer(reward_tiny_backend, tmp_path_factory):
    b = reward_tiny_backend
    path = write_settings(tmp_path_factory.mktemp("cfg") / "s.yaml", str(b / "index"), str(b / "relevance"))
    settings_ = load_settings(path)
    return LeserScorer(*open_backend(settings_), settings_)


def mean_judged(scorer, query: str, item_ids: list[str]) -> float:
    """Mean judge score of an item set: Rel when the set has at most k items (order does not matter then)."""
    return float(np.clip(scorer.judge.score_many([query], [item_ids])[0], 0, 1).mean())


def test_reward_with_expansions(scorer):
    # q = "ergonomic mouse" recalls m1, m3 (vertical ergonomic), m6 (ergonomic mouse pad): Ret(q) = 3.
    # "vertical mouse" adds nothing new (m1, m3); "trackball" adds m2 -> Y recalls {m1, m2, m3, m6}: Ret(Y) = 4.
    # Both sets are below k = 10, so Rel is the plain mean over the set.
    rel_q = mean_judged(scorer, "ergonomic mouse", ["m1", "m3", "m6"])
    rel_y = mean_judged(scorer, "ergonomic mouse", ["m1", "m2", "m3", "m6"])
    expected = rel_y / (rel_q + EPS) + LAM * 4 / (3 + EPS)
    [b] = scorer.score_batch(["ergonomic mouse"], [completion("vertical mouse", "trackball")])
    assert (b.valid, b.reason, b.n_expansions, b.ret_q, b.ret_y) == (True, "ok", 2, 3, 4)
    assert b.rel_q == pytest.approx(rel_q) and b.rel_y == pytest.approx(rel_y)
    assert b.reward == pytest.approx(expected, rel=1e-6)
    assert rel_q > REL_FLOOR  # so the paper's unguarded formula applies


def test_empty_expansion_scores_q_alone(scorer):
    # Y = {q}: r = Rel(q) / (Rel(q) + eps) + 0.1 * 3 / (3 + eps), just under 1.1
    rel_q = mean_judged(scorer, "ergonomic mouse", ["m1", "m3", "m6"])
    [b] = scorer.score_batch(["ergonomic mouse"], [completion()])
    assert b.reward == pytest.approx(rel_q / (rel_q + EPS) + LAM * 3 / (3 + EPS), rel=1e-6)
    assert (b.ret_y, b.n_expansions) == (3, 0)


def test_zero_recall_query_uses_the_floors(scorer):
    # q = "wireless dock" recalls nothing: Rel(q) = 0, Ret(q) = 0. "dock" recalls d1-d4: Ret(Y) = 4.
    # Paper's Eq. 2 would give Rel(Y) / 1e-4 + 0.1 * 4 / 1e-4 = thousands; the guard gives
    # Rel(Y) / (0.05 + 1e-4) + 0.1 * 4 / (1 + 1e-4).
    rel_y = mean_judged(scorer, "wireless dock", ["d1", "d2", "d3", "d4"])
    [b] = scorer.score_batch(["wireless dock"], [completion("dock")])
    assert (b.rel_q, b.ret_q, b.ret_y) == (0.0, 0, 4)
    assert b.reward == pytest.approx(rel_y / (REL_FLOOR + EPS) + LAM * 4 / (1 + EPS), rel=1e-6)


def test_size_ratio_is_capped(scorer):
    # q = "melatonin" recalls s1 only. "wireless" m1 m2 m3 h1 h3 h5 p4, "black" adds m4 m6 (m2 h1 h3 already),
    # "charger" adds p1 p2 p3 (p4 already): with s1, 7 + 2 + 3 + 1 = 13 items; 13 / 1 > 10 -> capped at 10.
    [b] = scorer.score_batch(["melatonin"], [completion("wireless", "black", "charger")])
    assert (b.ret_q, b.ret_y, b.size_ratio) == (1, 13, CAP)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # missing think block
        ('<answer>{"expansion": []}</answer>', "missing_think"),
        # an attribute value the catalog never had
        (completion("holographic mouse"), "unsupported_term"),
        # a duplicate of the query in other words order
        (completion("mouse ergonomic"), "duplicate_of_query"),
    ],
)
def test_invalid_completion_scores_zero_with_reason(scorer, text, reason):
    before = scorer.stats.totals[reason]
    [b] = scorer.score_batch(["ergonomic mouse"], [text])
    assert (b.reward, b.valid, b.reason) == (0.0, False, reason)
    assert scorer.stats.totals[reason] == before + 1


class CountingEngine:
    """The real engine, counting the queries it is asked to run (to check deduplication)."""

    def __init__(self, engine):
        self.engine, self.searched, self.merged_sets = engine, 0, 0
        self.analyzer = engine.analyzer

    def search_many(self, queries, **kwargs):
        self.searched += len(queries)
        return self.engine.search_many(queries, **kwargs)

    def merged_many(self, query_sets, **kwargs):
        self.merged_sets += len(query_sets)
        return self.engine.merged_many(query_sets, **kwargs)

    def vocabulary_contains(self, word):
        return self.engine.vocabulary_contains(word)


def test_batch_deduplicates_and_caches_searches(scorer):
    counting = CountingEngine(scorer.engine)
    fresh = LeserScorer(counting, scorer.judge, scorer.settings)
    # two groups of 4 (GRPO: N = 4 per prompt); the first group repeats an expansion set
    queries = ["ergonomic mouse"] * 4 + ["dock"] * 4
    completions = [
        completion("trackball"),
        completion("trackball"),
        completion("vertical mouse"),
        "junk",
        completion("wd19tb"),
        completion(),
        completion("thunderbolt dock"),
        completion("wd19tb"),
    ]
    out = fresh.score_batch(queries, completions)
    assert counting.searched == 2  # Rel(q), Ret(q) once per distinct q
    # distinct valid non-empty sets: trackball, vertical mouse, wd19tb, thunderbolt dock
    assert counting.merged_sets == 4
    assert out[0] == out[1] and out[4] == out[7]
    fresh.score_batch(queries[:1], completions[:1])
    assert counting.searched == 2  # Rel(q) and Ret(q) come from the cache on later batches


def test_gate_failures_are_logged_as_one_periodic_summary(scorer, caplog):
    quiet = LeserScorer(scorer.engine, scorer.judge, scorer.settings)  # log_every_s = 60
    with caplog.at_level(logging.WARNING, logger="leser.reward"):
        quiet.score_batch(["dock"] * 16, ["junk"] * 16)
    assert not caplog.records  # inside the period: counted, not logged
    quiet.stats._last_log -= 3600  # the period has passed
    with caplog.at_level(logging.WARNING, logger="leser.reward"):
        quiet.score_batch(["dock"] * 16, ["junk"] * 16)
    [record] = caplog.records
    assert "32 of 32 completions invalid" in record.getMessage() and "missing_think 32" in record.getMessage()


def test_backend_down_raises_after_retries(reward_tiny_backend, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    path = write_settings(tmp_path / "s.yaml", url, "service", retries=1, retry_wait_s=0.0)
    settings_ = load_settings(path)
    client = open_engine(url, retries=0, backoff_s=0.0, timeout_s=2.0)
    from leser.settings import ServiceJudge

    with pytest.raises(RewardBackendError, match="failed 2 times"):
        LeserScorer(client, ServiceJudge(client), settings_)


def test_service_backend_matches_local(scorer, reward_tiny_service, tmp_path):
    path = write_settings(tmp_path / "s.yaml", reward_tiny_service, "service")
    settings_ = load_settings(path)
    remote = LeserScorer(*open_backend(settings_), settings_)
    queries = ["ergonomic mouse", "dock", "melatonin"]
    completions = [completion("trackball"), completion("wd19tb", "thunderbolt dock"), completion("wireless")]
    local = scorer.score_batch(queries, completions)
    for a, b in zip(local, remote.score_batch(queries, completions), strict=True):
        assert (a.valid, a.ret_q, a.ret_y) == (b.valid, b.ret_q, b.ret_y)
        assert a.reward == pytest.approx(b.reward, rel=1e-5)


_WORDS = ["mouse", "wireless", "dock", "black", "usb", "c", "trackball", "sleep", "zzz", "", "the", "WD-19TB"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.sampled_from(["ergonomic mouse", "dock", "melatonin", "wireless dock", "t shirt"]),
    expansions=st.lists(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3).map(" ".join), max_size=5),
    noise=st.text(max_size=20),
)
def test_reward_is_finite_and_in_range(scorer, query, expansions, noise):
    text = completion(*expansions) if not noise else completion(*expansions) + noise
    [b] = scorer.score_batch([query], [text])
    assert math.isfinite(b.reward)
    assert 0.0 <= b.reward <= 1 / (REL_FLOOR + EPS) + LAM * CAP
    assert b.valid or b.reward == 0.0


def test_expansion_cost_is_charged_once_to_answers_that_expand(scorer, reward_tiny_backend, tmp_path):
    b = reward_tiny_backend
    path = write_settings(tmp_path / "s.yaml", str(b / "index"), str(b / "relevance"), expansion_cost=0.05)
    settings_ = load_settings(path)
    charged = LeserScorer(*open_backend(settings_), settings_)
    texts = [completion("vertical mouse", "trackball"), completion("trackball"), completion()]
    paper = scorer.score_batch(["ergonomic mouse"] * 3, texts)
    costed = charged.score_batch(["ergonomic mouse"] * 3, texts)
    assert [c.reward for c in costed] == pytest.approx([paper[0].reward - 0.05, paper[1].reward - 0.05,
                                                        paper[2].reward])  # fmt: skip
    # the parts of Eq. 1 are reported unchanged
    assert [(c.rel_ratio, c.size_ratio) for c in costed] == [(p.rel_ratio, p.size_ratio) for p in paper]


def test_dcg_rel_measure_scores_the_judged_dcg_of_the_same_rankings(scorer, reward_tiny_backend, tmp_path):
    b = reward_tiny_backend
    path = write_settings(tmp_path / "s.yaml", str(b / "index"), str(b / "relevance"), rel_measure="dcg")
    settings_ = load_settings(path)
    dcg_scorer = LeserScorer(*open_backend(settings_), settings_)
    texts = [completion("vertical mouse", "trackball"), completion()]
    paper = scorer.score_batch(["ergonomic mouse"] * 2, texts)
    by_dcg = dcg_scorer.score_batch(["ergonomic mouse"] * 2, texts)
    # the same ranking as the paper's Rel, each item's score through the DCG form, in the engine's order
    [ranked_q] = dcg_scorer.engine.search_many(["ergonomic mouse"], k=10)
    [merged] = dcg_scorer.engine.merged_many([["ergonomic mouse", "vertical mouse", "trackball"]], k=10,
                                             policy=settings_.merge_policy)  # fmt: skip
    judge = dcg_scorer.judge.score_many
    rel_q = dcg_top_k_relevance(judge(["ergonomic mouse"], [list(ranked_q.item_ids[:10])])[0], 10)
    rel_y = dcg_top_k_relevance(judge(["ergonomic mouse"], [list(merged.item_ids[:10])])[0], 10)
    assert (by_dcg[0].rel_q, by_dcg[0].rel_y) == (pytest.approx(rel_q), pytest.approx(rel_y))
    assert by_dcg[0].rel_y != pytest.approx(paper[0].rel_y)
    assert by_dcg[0].reward == pytest.approx(
        rel_y / (max(rel_q, REL_FLOOR) + EPS) + LAM * 4 / (3 + EPS), rel=1e-6
    )
    # the size term and the gate do not change
    assert [x.size_ratio for x in by_dcg] == pytest.approx([x.size_ratio for x in paper])


@pytest.fixture(scope="module")
def relevance_scorer(reward_tiny_backend, tmp_path_factory):
    b = reward_tiny_backend
    path = write_settings(
        tmp_path_factory.mktemp("cfg") / "s.yaml",
        str(b / "index"),
        str(b / "relevance"),
        size_measure="relevance",
    )
    settings_ = load_settings(path)
    return LeserScorer(*open_backend(settings_), settings_)


def judged_sum(scorer, query: str, item_ids: list[str]) -> float:
    return float(np.clip(scorer.judge.score_many([query], [item_ids])[0], 0, 1).sum())


def test_relevance_size_measure_sums_judge_scores_over_the_recall_union(relevance_scorer):
    # the recall sets of test_reward_with_expansions: q -> {m1, m3, m6}; Y -> {m1, m2, m3, m6}
    s = relevance_scorer
    rel_q = mean_judged(s, "ergonomic mouse", ["m1", "m3", "m6"])
    rel_y = mean_judged(s, "ergonomic mouse", ["m1", "m2", "m3", "m6"])
    size_q = judged_sum(s, "ergonomic mouse", ["m1", "m3", "m6"])
    size_y = judged_sum(s, "ergonomic mouse", ["m1", "m2", "m3", "m6"])
    expected = rel_y / (rel_q + EPS) + LAM * min(size_y / (max(size_q, 1) + EPS), CAP)
    [b] = s.score_batch(["ergonomic mouse"], [completion("vertical mouse", "trackball")])
    assert (b.valid, b.ret_q, b.ret_y) == (True, 3, 4)  # the counts are still reported
    assert b.size_ratio == pytest.approx(min(size_y / (max(size_q, 1) + EPS), CAP), rel=1e-6)
    assert b.reward == pytest.approx(expected, rel=1e-6)


def test_relevance_size_measure_pays_little_for_off_target_recall(scorer, relevance_scorer):
    # "melatonin" + wireless / black / charger recalls 12 items that are not sleep aids: the count caps the size
    # ratio at 10, the judge's sum pays a fraction of that
    text = completion("wireless", "black", "charger")
    [by_count] = scorer.score_batch(["melatonin"], [text])
    [by_relevance] = relevance_scorer.score_batch(["melatonin"], [text])
    assert by_count.size_ratio == pytest.approx(CAP)
    expected = min(judged_sum(relevance_scorer, "melatonin", ["s1", "m1", "m2", "m3", "h1", "h3", "h5", "p4",
                                                              "m4", "m6", "p1", "p2", "p3"])  # fmt: skip
                   / (max(judged_sum(relevance_scorer, "melatonin", ["s1"]), 1) + EPS), CAP)  # fmt: skip
    assert by_relevance.size_ratio == pytest.approx(expected, rel=1e-6)
    assert by_relevance.size_ratio < by_count.size_ratio / 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"size_measure": "items"}, "'size_measure' out of range"),
        ({"size_measure": "relevance"}, "local index"),
    ],
)
def test_size_measure_is_validated(tmp_path, overrides, message):
    search = "http://127.0.0.1:9" if overrides["size_measure"] == "relevance" else str(tmp_path)
    relevance = "service" if search.startswith("http") else str(tmp_path)
    path = write_settings(tmp_path / "s.yaml", search, relevance, **overrides)
    with pytest.raises(ValueError, match=message):
        load_settings(path)


def test_relevance_size_measure_of_a_group_equals_each_set_alone(relevance_scorer):
    # one pooled judge call serves a whole group: each sample's Ret_rel must still be the sum over its own union
    s = relevance_scorer
    texts = [
        completion("vertical mouse", "trackball"),
        completion("trackball"),
        completion(),
        completion("dock"),
    ]
    unions = [
        ["m1", "m2", "m3", "m6"],
        ["m1", "m2", "m3", "m6"],
        ["m1", "m3", "m6"],
        ["m1", "m3", "m6", "d1", "d2", "d3", "d4"],
    ]
    size_q = judged_sum(s, "ergonomic mouse", ["m1", "m3", "m6"])
    breakdowns = s.score_batch(["ergonomic mouse"] * 4, texts)
    for b, union in zip(breakdowns, unions, strict=True):
        assert b.valid, b.reason
        expected = min(judged_sum(s, "ergonomic mouse", union) / (max(size_q, 1) + EPS), CAP)
        assert b.size_ratio == pytest.approx(expected, rel=1e-6)
