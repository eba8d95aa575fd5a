"""Off-target recall, the evaluation's reward-hacking audit: the share of R_exp minus R_orig (what Ret rewards) that
is off the query's target, by synthetic truth or by the head-noun proxy (leser/evaluation/harness.py)."""

import math

import numpy as np
import pytest

from leser.evaluation.harness import (
    EvalContext,
    HeadNounOffTarget,
    QueryEval,
    TrueCategoryOffTarget,
    evaluate_run,
    new_recall_rows,
    off_target_share,
    summarize_run,
)
from leser.evaluation.report import markdown_table
from leser.evaluation.systems import EvalQuery, Expansion


@pytest.fixture(scope="module")
def hand_engine(engine_catalog_index):
    from search_sim import SearchEngine

    return SearchEngine.load(engine_catalog_index)


@pytest.fixture(scope="module")
def proxy(hand_engine):
    from data_prep.formats import load_catalog
    from tests.fixtures_engine import ENGINE_CATALOG_DIR

    return HeadNounOffTarget.from_catalog(
        hand_engine.analyzer, load_catalog(ENGINE_CATALOG_DIR / "catalog.jsonl")
    )


def test_head_noun_is_the_last_query_term_naming_a_category(proxy):
    assert proxy.head_noun("wireless ergonomic mouse") == "mous"  # category "Mouse Pads"
    assert proxy.head_noun("dell docking station thunderbolt") == "station"  # "Docking Stations"
    assert proxy.head_noun("logitech vertical") is None  # no term of q names a category: not measured


def test_proxy_loose_expansion_recalls_items_without_the_noun(hand_engine, proxy):
    # q = "wireless ergonomic mouse" recalls m1, m3 (3 terms: all needed)
    ctx = EvalContext(hand_engine, None, None, [], off_target=proxy)
    q = "wireless ergonomic mouse"
    assert sorted(hand_engine.item_ids_at(hand_engine.match(q)[0])) == ["m1", "m3"]

    # precise: "wired mouse" adds m4 and m5, two mice
    precise = ["wired mouse"]
    assert sorted(hand_engine.item_ids_at(new_recall_rows(hand_engine, q, precise))) == ["m4", "m5"]
    assert off_target_share(ctx, q, precise) == (0.0, 2)

    # loose: 5 terms need 3 (default "3<75%"), so wireless black bluetooth headphones h1, h3 come in without "mouse",
    # next to the trackball mouse m2 (wireless, mouse, black)
    loose = ["wireless bluetooth black silent mouse"]
    assert sorted(hand_engine.item_ids_at(new_recall_rows(hand_engine, q, loose))) == ["h1", "h3", "m2"]
    share, examined = off_target_share(ctx, q, loose)
    assert share == pytest.approx(2 / 3) and examined == 3
    # the new items are exactly what dRet counts
    assert examined == hand_engine.recall_size([q, *loose]) - hand_engine.recall_size([q])

    # nothing new, no head noun, or no definition: not measured
    assert math.isnan(off_target_share(ctx, q, ["vertical wireless ergonomic mouse"])[0])
    assert math.isnan(off_target_share(ctx, "logitech vertical", ["wireless bluetooth black"])[0])
    assert math.isnan(off_target_share(EvalContext(hand_engine, None, None, []), q, loose)[0])


def test_a_large_increment_is_sampled_deterministically(hand_engine, proxy):
    ctx = EvalContext(hand_engine, None, None, [], off_target=proxy, off_target_sample=2)
    q, loose = "wireless ergonomic mouse", ["wireless bluetooth black silent mouse"]
    first = off_target_share(ctx, q, loose)
    assert first[1] == 2 and first[0] in (0.0, 0.5, 1.0)
    assert off_target_share(ctx, q, loose) == first  # fixed seed: reruns agree


@pytest.fixture(scope="module")
def truth_ctx(small_synth_dir, small_engine):
    from data_prep.synth import Oracle

    oracle = Oracle.load(small_synth_dir)
    return EvalContext(small_engine, None, None, [], off_target=TrueCategoryOffTarget(oracle)), oracle


def _brute_force_off_target(engine, oracle, query, expansions):
    """Every item recalled by an expansion and not by q, graded by its true category (no sampling)."""
    everything = engine.num_items
    orig = set(engine.search(query, k=everything).item_ids)
    new = sorted({i for y in expansions for i in engine.search(y, k=everything).item_ids} - orig)
    return float(np.mean(~oracle.in_target_category(query, new))), len(new)


def test_truth_loose_vs_precise_expansion(truth_ctx, small_engine):
    ctx, oracle = truth_ctx
    q = "fleece sweatshirt"  # a broad query of the small marketplace; its intent targets the hoodies category
    assert oracle.intent(q)["categories"] == {"hoodies": 4}
    # a bare attribute value also recalls fleece items of other categories
    precise, loose = ["fleece hoodie"], ["fleece"]
    got_precise = off_target_share(ctx, q, precise)
    got_loose = off_target_share(ctx, q, loose)
    assert got_precise[0] == 0.0 and got_precise[1] > 0
    assert got_loose[0] > 0.5
    for expansions, got in ((precise, got_precise), (loose, got_loose)):
        share, n_new = _brute_force_off_target(small_engine, oracle, q, expansions)
        assert got == (pytest.approx(share), n_new)


def test_run_summary_and_table(truth_ctx):
    ctx, _ = truth_ctx
    ctx.queries = [EvalQuery("fleece sweatshirt", None), EvalQuery("hoodie", None)]
    ctx.relevance = _ZeroRelevance()
    ctx.judge = _NoGrades()
    expansions = [Expansion(["fleece"], None, True, "ok"), Expansion([], None, True, "ok")]
    rows = evaluate_run(ctx, expansions, 0, "test")
    assert rows[0].off_target_examined > 0 and rows[0].off_target_share > 0.5
    assert math.isnan(rows[1].off_target_share) and rows[1].off_target_examined == 0  # abstained
    summary = summarize_run(rows, 1.0)
    # the abstention is left out of the mean
    assert summary["off_target_recall"] == pytest.approx(100 * rows[0].off_target_share)
    assert summary["off_target_answers"] == 1
    abstaining = summarize_run([rows[1]], 1.0)
    assert math.isnan(abstaining["off_target_recall"]) and abstaining["off_target_answers"] == 0

    from leser.evaluation.harness import SystemReport

    reports = [
        SystemReport("rules", "-", [summary], False, 2, {}, 0),
        SystemReport("none", "-", [abstaining], False, 2, {}, 0),
    ]
    table = markdown_table(reports, "t").splitlines()
    header = table[2].split(" | ")
    column = header.index("off-target recall (%)")
    assert "answers with new items" not in table[2]  # shown as n= inside the off-target cell
    assert table[4].split(" | ")[column].endswith("(n=1)")
    assert table[5].split(" | ")[column] == "-"
    assert set(QueryEval.__dataclass_fields__) >= {"off_target_share", "off_target_examined"}


class _ZeroRelevance:
    def score_many(self, queries, lists):
        return [np.zeros(len(ids)) for ids in lists]


class _NoGrades:
    def grades(self, query, ids):
        return np.zeros(len(ids), dtype=np.int64)

    def judged(self, query, ids):
        return np.ones(len(ids), dtype=bool)

    def ideal(self, query, k):
        return np.zeros(0, dtype=np.int64)

    def level(self, query):
        return None
