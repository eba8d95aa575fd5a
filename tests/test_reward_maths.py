"""Eq. 1-2 as plain functions (leser.reward) and the settings loader (leser.settings)."""

import dataclasses
import math
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leser.reward import (
    charge_expansion,
    combined_reward,
    dcg_top_k_relevance,
    mean_top_k_relevance,
    relevance_ratio,
    size_ratio,
)
from leser.settings import load_settings

EPS = 1e-4


@pytest.mark.parametrize(
    ("scores", "k", "expected"),
    [
        # plain mean of the first k
        ([1.0, 0.5, 0.0], 10, 0.5),
        # only the first k count
        ([1.0, 1.0, 0.0, 0.0], 2, 1.0),
        # fewer than k items: mean over what was returned
        ([0.2], 10, 0.2),
        # nothing retrieved: Rel = 0
        ([], 10, 0.0),
        # judge overshoot clipped into [0, 1]: (1 + 0 + 0.5) / 3
        ([1.3, -0.2, 0.5], 10, 0.5),
    ],
)
def test_mean_top_k_relevance(scores, k, expected):
    assert mean_top_k_relevance(scores, k) == pytest.approx(expected)


IDEAL_DCG_10 = 15 * sum(1 / math.log2(i + 2) for i in range(10))


@pytest.mark.parametrize(
    ("scores", "k", "expected"),
    [
        # k perfect items: 1; nothing retrieved: 0
        ([1.0] * 10, 10, 1.0),
        ([], 10, 0.0),
        # one perfect item on top of a ranking of 10 slots: its gain 15 / log2(2), over the ideal's
        ([1.0], 10, 15 / IDEAL_DCG_10),
        # the same item second: discounted by log2(3); a half score (grade 2) gains 2^2 - 1 = 3
        ([0.0, 1.0], 10, 15 / math.log2(3) / IDEAL_DCG_10),
        ([0.5], 10, 3 / IDEAL_DCG_10),
        # judge overshoot clipped, and only the first k count
        ([1.4, -0.3, 1.0], 2, 15 / (15 + 15 / math.log2(3))),
    ],
)
def test_dcg_top_k_relevance(scores, k, expected):
    assert dcg_top_k_relevance(scores, k) == pytest.approx(expected)


def test_dcg_relevance_weighs_the_top_and_counts_empty_slots_unlike_the_mean():
    assert mean_top_k_relevance([1.0, 0.0], 10) == mean_top_k_relevance([0.0, 1.0], 10)
    assert dcg_top_k_relevance([1.0, 0.0], 10) > dcg_top_k_relevance([0.0, 1.0], 10)
    # one perfect item alone: the mean says 1.0 (a full ranking of perfect items), the DCG form says 10 slots
    # hold one relevant item
    assert mean_top_k_relevance([1.0], 10) == 1.0 and dcg_top_k_relevance([1.0], 10) < 0.25


@given(st.lists(st.floats(-1, 2, allow_nan=False), max_size=15), st.integers(1, 12))
def test_dcg_relevance_in_unit_range(scores, k):
    assert 0.0 <= dcg_top_k_relevance(scores, k) <= 1.0 + 1e-12


@pytest.mark.parametrize(
    ("rel_y", "rel_q", "floor", "expected"),
    [
        # paper's formula when Rel(q) is above the floor: 0.6 / (0.4 + 1e-4)
        (0.6, 0.4, 0.05, 0.6 / 0.4001),
        # Rel(q) = 0: the floor replaces it, 0.5 / 0.0501 ~ 9.98 instead of 5000
        (0.5, 0.0, 0.05, 0.5 / 0.0501),
        # Y no better than q: ratio just below 1
        (0.3, 0.3, 0.05, 0.3 / 0.3001),
    ],
)
def test_relevance_ratio(rel_y, rel_q, floor, expected):
    assert relevance_ratio(rel_y, rel_q, EPS, floor) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ret_y", "ret_q", "expected"),
    [
        # paper's formula: 30 / (12 + 1e-4)
        (30, 12, 30 / 12.0001),
        # Ret(q) = 0: floored at 1, 7 / 1.0001
        (7, 0, 7 / 1.0001),
        # huge gain capped at 10
        (5000, 3, 10.0),
        # nothing anywhere
        (0, 0, 0.0),
    ],
)
def test_size_ratio(ret_y, ret_q, expected):
    assert size_ratio(ret_y, ret_q, EPS, ret_floor=1, cap=10.0) == pytest.approx(expected)


def test_combined_reward_worked_example():
    # q finds 12 items, top-10 mean relevance 0.4; Y finds 30, top-10 mean 0.6; lambda 0.1:
    # r = 0.6 / 0.4001 + 0.1 * 30 / 12.0001 = 1.49963 + 0.24998 = 1.74960
    r = combined_reward(relevance_ratio(0.6, 0.4, EPS, 0.05), size_ratio(30, 12, EPS, 1, 10.0), 0.1)
    assert r == pytest.approx(0.6 / 0.4001 + 0.1 * 30 / 12.0001)
    assert r == pytest.approx(1.7496, abs=1e-4)


@pytest.mark.parametrize(
    ("reward", "n_expansions", "cost", "expected"),
    [
        (1.7496, 3, 0.05, 1.6996),  # an answer that expands pays the cost once, whatever M
        (1.7496, 1, 0.05, 1.6996),
        (1.1, 0, 0.05, 1.1),  # abstaining (Y = {q}) is never charged
        (0.03, 2, 0.05, 0.0),  # floored at a failed gate's 0
        (1.7496, 3, 0.0, 1.7496),  # cost 0 is the paper's Eq. 1
    ],
)
def test_charge_expansion(reward, n_expansions, cost, expected):
    assert charge_expansion(reward, n_expansions, cost) == pytest.approx(expected)


def test_expansion_cost_turns_a_reorder_only_tie_into_a_win_for_abstaining():
    # q and Y recall the same 40 items (Ret ratio 1); Y's reranked top 10 is judged 0.801 instead of 0.8: under
    # Eq. 1 expanding beats abstaining by 0.00125, with cost 0.05 abstaining wins by ~0.049
    abstain = combined_reward(relevance_ratio(0.8, 0.8, EPS, 0.05), size_ratio(40, 40, EPS, 1, 10.0), 0.1)
    expand = combined_reward(relevance_ratio(0.801, 0.8, EPS, 0.05), size_ratio(40, 40, EPS, 1, 10.0), 0.1)
    assert expand > abstain
    assert charge_expansion(expand, 2, 0.05) < charge_expansion(abstain, 0, 0.05)


@given(
    scores_y=st.lists(st.floats(-5, 5), max_size=20),
    scores_q=st.lists(st.floats(-5, 5), max_size=20),
    ret_y=st.integers(0, 10**7),
    ret_q=st.integers(0, 10**7),
)
def test_reward_is_finite_and_bounded(scores_y, scores_q, ret_y, ret_q):
    floor, cap, lam = 0.05, 10.0, 0.1
    rel_y, rel_q = mean_top_k_relevance(scores_y, 10), mean_top_k_relevance(scores_q, 10)
    assert 0.0 <= rel_y <= 1.0 and 0.0 <= rel_q <= 1.0
    r = combined_reward(relevance_ratio(rel_y, rel_q, EPS, floor), size_ratio(ret_y, ret_q, EPS, 1, cap), lam)
    assert math.isfinite(r)
    assert 0.0 <= r <= 1 / (floor + EPS) + lam * cap


def test_settings_resolve_against_yaml_folder(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "rules.yaml").write_text("max_expansions: 3\n")
    path = tmp_path / "cfg" / "s.yaml"
    path.write_text("search: ../idx\nrelevance: ../rel\nrules: rules.yaml\nlambda_size: 0.2\n")
    monkeypatch.setenv("LESER_CONFIG", str(path))
    monkeypatch.chdir("/")
    settings = load_settings()
    assert settings.search == str(tmp_path / "idx")
    assert settings.relevance == str(tmp_path / "rel")
    assert settings.rules.max_expansions == 3
    assert (settings.lambda_size, settings.eps, settings.k) == (0.2, 1e-4, 10)


def test_repo_configs_load():
    for name in ("leser.synth.yaml", "leser.esci.yaml"):
        settings = load_settings(os.path.join("configs", name))
        assert settings.search.endswith(os.path.join("artifacts", name.split(".")[1], "index"))
        assert settings.rules.max_expansions >= 3


def test_float_keys_take_yaml_exponents_without_a_dot(tmp_path):
    # YAML 1.1 reads 1e-4 as the string "1e-4"
    path = tmp_path / "s.yaml"
    path.write_text("search: a\nrelevance: b\neps: 1e-4\nexpansion_cost: 5e-2\n")
    settings = load_settings(path)
    assert (settings.eps, settings.expansion_cost) == (1e-4, 0.05)


def test_cost_config_differs_from_the_paper_config_only_in_expansion_cost():
    paper = load_settings(os.path.join("configs", "leser.synth.yaml"))
    cost = load_settings(os.path.join("configs", "leser.synth.cost.yaml"))
    assert (paper.expansion_cost, cost.expansion_cost) == (0.0, 0.05)
    assert dataclasses.replace(cost, expansion_cost=0.0, rules_path=paper.rules_path) == paper


def test_dcg_cost_config_differs_from_the_paper_config_only_in_rel_measure_and_expansion_cost():
    paper = load_settings(os.path.join("configs", "leser.synth.yaml"))
    aligned = load_settings(os.path.join("configs", "leser.synth.dcg_cost.yaml"))
    assert (paper.rel_measure, aligned.rel_measure, aligned.expansion_cost) == ("mean", "dcg", 0.05)
    restored = dataclasses.replace(
        aligned, rel_measure="mean", expansion_cost=0.0, rules_path=paper.rules_path
    )
    assert restored == paper


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        # a misspelt key is named
        ("search: a\nrelevance: b\nlamda: 0.1\n", "unknown key"),
        # search is required
        ("relevance: b\n", "'search' is required"),
        # eps must be positive
        ("search: a\nrelevance: b\neps: 0\n", "'eps' out of range"),
        # a service URL needs the service's relevance model
        ("search: http://127.0.0.1:8765\nrelevance: rel\n", "relevance: service"),
        # the cost of expanding cannot be negative, and a number must be a number
        ("search: a\nrelevance: b\nexpansion_cost: -0.1\n", "'expansion_cost' out of range"),
        ("search: a\nrelevance: b\nrel_measure: ndcg\n", "'rel_measure' out of range"),
        ("search: a\nrelevance: b\nlambda_size: abc\n", "'lambda_size' must be a number, got 'abc'"),
        ("search: a\nrelevance: b\nk: 2.5\n", "'k' must be an integer"),
    ],
)
def test_settings_errors(tmp_path, yaml_text, message):
    path = tmp_path / "s.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=message):
        load_settings(path)


def test_settings_need_the_env_var(monkeypatch):
    monkeypatch.delenv("LESER_CONFIG", raising=False)
    with pytest.raises(RuntimeError, match="LESER_CONFIG"):
        load_settings()
