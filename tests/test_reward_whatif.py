"""scripts/reward_whatif.py: the variant syntax and the within-group agreement it reports, computed by hand."""

import importlib.util
import math

import numpy as np
import pytest

from tests.fixtures_recipes import REPO_ROOT


@pytest.fixture(scope="module")
def whatif():
    spec = importlib.util.spec_from_file_location("reward_whatif", REPO_ROOT / "scripts" / "reward_whatif.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variant_parses_numeric_reward_settings(whatif):
    assert whatif.parse_variant("small:lambda_size=0.02,size_ratio_cap=2") == (
        "small",
        {"lambda_size": 0.02, "size_ratio_cap": 2.0},
    )
    assert whatif.parse_variant("floor:ret_floor=5") == ("floor", {"ret_floor": 5})
    assert whatif.parse_variant("rel:size_measure=relevance") == ("rel", {"size_measure": "relevance"})
    assert whatif.parse_variant("cost:expansion_cost=0.05") == ("cost", {"expansion_cost": 0.05})
    assert whatif.parse_variant("o:judge=oracle,lambda_size=0") == (
        "o",
        {"judge": "oracle", "lambda_size": 0.0},
    )


def test_oracle_as_judge_scores_true_grade_over_four(whatif):
    class Grades:
        def grade(self, query, item_ids):
            return np.array([{"a": 4, "b": 2, "c": 0}[i] for i in item_ids], dtype=np.int8)

    scores = whatif.OracleAsJudge(Grades()).score_many(["q", "q"], [["a", "b", "c"], []])
    assert scores[0].tolist() == [1.0, 0.5, 0.0] and scores[1].size == 0


@pytest.mark.parametrize(
    "text",
    [
        "nocolon",
        ":lambda_size=1",
        "x:",
        "x:k=3",
        "x:lambda_size=big",
        "x:merge_policy=rrf",
        "x:size_measure=items",
        "x:judge=bm25",
    ],
)
def test_bad_variant_is_refused(whatif, text):
    with pytest.raises(ValueError, match="--variant"):
        whatif.parse_variant(text)


def test_pairwise_agreement_counts_concordant_pairs_and_half_ties(whatif):
    truth = np.array([0.3, 0.0, -0.1, 0.0, 0.2, 0.2])
    reward = np.array([2.0, 1.1, 0.0, 1.1, 1.0, 3.0])
    # group 1 = samples 0-3: pairs with different truth: (0,1) ok, (0,2) ok, (0,3) ok, (1,2) ok, (2,3) ok; (1,3) equal
    # truth -> skipped. group 2 = samples 4-5: equal truth -> no pair.
    assert whatif.pairwise_agreement([[0, 1, 2, 3], [4, 5]], reward, truth) == (1.0, 5)
    reward_tie = np.array([1.1, 1.1, 0.0, 1.1, 1.0, 3.0])  # (0,1) and (0,3) become ties: 1/2 each
    agreement, pairs = whatif.pairwise_agreement([[0, 1, 2, 3]], reward_tie, truth)
    assert pairs == 5 and agreement == pytest.approx(4 / 5)
    reversed_reward = -reward
    assert whatif.pairwise_agreement([[0, 1, 2, 3]], reversed_reward, truth) == (0.0, 5)
    agreement, pairs = whatif.pairwise_agreement([[4, 5]], reward, truth)
    assert pairs == 0 and math.isnan(agreement)


def test_agreement_gain_interval_is_paired_over_groups(whatif):
    truth = np.array([0.3, 0.0, -0.1, 0.2, 0.0, 0.1])
    right = np.array([3.0, 2.0, 1.0, 3.0, 1.0, 2.0])  # orders both groups as the truth does
    wrong = -right
    groups = [[0, 1, 2], [3, 4, 5]]
    g = whatif.agreement_gain_interval(groups, right, wrong, truth, resamples=200)
    # every resample holds only fully right vs fully wrong groups: +1 everywhere
    assert g["mean"] == pytest.approx(1.0) and g["ci95"] == pytest.approx([1.0, 1.0])
    same = whatif.agreement_gain_interval(groups, right, right, truth, resamples=200)
    assert same["mean"] == 0.0 and same["ci95"] == [0.0, 0.0]
    # one group right, one wrong: the mean gain is 0.5 and the interval spans the groups' own gains (0 and 1)
    mixed = np.array([3.0, 2.0, 1.0, -3.0, -1.0, -2.0])
    g = whatif.agreement_gain_interval(groups, mixed, wrong, truth, resamples=500)
    assert g["mean"] == pytest.approx(0.5) and g["ci95"][0] < 0.5 < g["ci95"][1]
    assert g["ci95"][0] >= 0.0 and g["ci95"][1] <= 1.0
