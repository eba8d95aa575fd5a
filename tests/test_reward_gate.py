"""Validation gate (leser.gate): table-driven cases, rules loading, and fuzzing."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leser.gate import REASONS, Rules, check_completion

RULES = Rules(
    max_expansions=4,
    max_chars=40,
    max_tokens=6,
    blocked_terms=("replica", "free shipping"),
    blocked_patterns=(r"https?://",),
)
QUERY = "ergonomic mouse"
VOCAB = {
    "wireless",
    "vertical",
    "logitech",
    "trackball",
    "café",
    "black",
    "free",
    "shipping",
}  # surface words


def answer(payload, think="the user wants a mouse") -> str:
    body = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"<think>{think}</think>\n<answer>{body}</answer>"


CASES = [
    # a well-formed answer with two grounded expansions
    (answer({"expansion": ["wireless vertical mouse", "logitech trackball"]}), "ok"),
    # empty list: "already specific, do not expand" is a valid answer
    (answer({"expansion": []}), "ok"),
    # whitespace around the whole completion and between the blocks is tolerated
    ('\n  <think>x</think>\n\n<answer> {"expansion": ["wireless mouse"]} </answer>\n', "ok"),
    # no think block at all
    ('<answer>{"expansion": []}</answer>', "missing_think"),
    # think opened but never closed
    ('<think>x <answer>{"expansion": []}</answer>', "missing_think"),
    # no answer block
    ("<think>x</think>", "missing_answer"),
    # answer before think (swapped blocks)
    ('<answer>{"expansion": []}</answer><think>x</think>', "tag_order"),
    # closing tag before opening tag
    ('</think>x<think><answer>{"expansion": []}</answer>', "tag_order"),
    # two answers
    (answer({"expansion": []}) + '<answer>{"expansion": []}</answer>', "multiple_answer"),
    # two think blocks
    ("<think>a</think>" + answer({"expansion": []}), "multiple_think"),
    # trailing text after the answer
    (answer({"expansion": []}) + " hope this helps", "text_outside_tags"),
    # leading text before the think block
    ("Sure! " + answer({"expansion": []}), "text_outside_tags"),
    # text between the blocks
    ('<think>x</think> so: <answer>{"expansion": []}</answer>', "text_outside_tags"),
    # answer is not JSON
    (answer("expansion: wireless mouse"), "bad_json"),
    # JSON with a trailing comma
    (answer('{"expansion": ["wireless mouse",]}'), "bad_json"),
    # JSON array instead of an object
    (answer(["wireless mouse"]), "not_object"),
    # object without "expansion"
    (answer({"expansions": ["wireless mouse"]}), "missing_expansion"),
    # extra keys are rejected by default
    (answer({"expansion": ["wireless mouse"], "note": "x"}), "extra_keys"),
    # "expansion" is a string, not a list
    (answer({"expansion": "wireless mouse"}), "expansion_not_list"),
    # non-string item
    (answer({"expansion": ["wireless mouse", 3]}), "non_string_expansion"),
    # nested list item
    (answer({"expansion": [["wireless mouse"]]}), "non_string_expansion"),
    # more than max_expansions (4)
    (
        answer(
            {"expansion": ["wireless mouse", "vertical mouse", "logitech mouse", "black mouse", "café mouse"]}
        ),
        "too_many_expansions",
    ),
    # whitespace-only item
    (answer({"expansion": ["   "]}), "empty_expansion"),
    # item made of stop words only has no index term
    (answer({"expansion": ["the and of"]}), "empty_expansion"),
    # over max_chars (40)
    (answer({"expansion": ["wireless " * 5 + "mouse"]}), "too_long_expansion"),
    # over max_tokens (6) while under max_chars
    (answer({"expansion": ["black black black black black black mouse"]}), "too_long_expansion"),
    # same as the query after normalisation (case, order, stemming)
    (answer({"expansion": ["Mouse Ergonomics"]}), "duplicate_of_query"),
    # full-width unicode folds (NFKC) to the query
    (answer({"expansion": ["ｅｒｇｏｎｏｍｉｃ ｍｏｕｓｅ"]}), "duplicate_of_query"),
    # two expansions equal after normalisation
    (answer({"expansion": ["wireless mouse", "Wireless  MOUSES"]}), "duplicate_expansion"),
    # a blocked single term
    (answer({"expansion": ["replica logitech mouse"]}), "blocked_term"),
    # a blocked two-word term (token sequence)
    (answer({"expansion": ["mouse free shipping"]}), "blocked_term"),
    # the same words not adjacent are not the blocked phrase
    (answer({"expansion": ["free black mouse shipping"]}), "ok"),
    # a blocked regex pattern
    (answer({"expansion": ["mouse http://x.io"]}), "blocked_term"),
    # a token the catalog never saw: an invented attribute value
    (answer({"expansion": ["quantum mouse"]}), "unsupported_term"),
    # query words are allowed even when the vocabulary lacks them; "Ergonomics" analyses like "ergonomic"
    (answer({"expansion": ["Ergonomics wireless MOUSE"]}), "ok"),
    # "wrist" is unknown to the catalog (stop words "for the" are not checked)
    (answer({"expansion": ["mouse for the wrist"]}), "unsupported_term"),
    # stop words need no vocabulary entry
    (answer({"expansion": ["mouse with a trackball"]}), "ok"),
    # a JSON escape that decodes to a lone surrogate: not text any engine could receive
    (answer('{"expansion": ["mouse \\ud800"]}'), "invalid_unicode"),
    # unicode attribute value that the catalog has
    (answer({"expansion": ["café mouse"]}), "ok"),
    # tags inside the think block content (a nested answer) count as a second answer
    ('<think><answer></answer></think><answer>{"expansion": []}</answer>', "multiple_answer"),
    # upper-case tags are not tags
    ('<THINK>x</THINK><answer>{"expansion": []}</answer>', "missing_think"),
]


@pytest.mark.parametrize(("text", "reason"), CASES)
def test_gate_cases(text, reason):
    result = check_completion(text, QUERY, RULES, vocabulary=VOCAB)
    assert result.reason == reason
    assert result.valid == (reason == "ok")
    assert reason in REASONS
    if not result.valid:
        assert result.expansions == []


def test_valid_expansions_are_returned_normalised():
    text = answer({"expansion": ["  ｗireless mouse ", "logitech trackball"]})
    result = check_completion(text, QUERY, RULES, vocabulary=VOCAB)
    assert result == (True, "ok", ["wireless mouse", "logitech trackball"])


def test_vocabulary_check_is_skipped_without_vocabulary():
    text = answer({"expansion": ["quantum mouse"]})
    assert check_completion(text, QUERY, RULES).valid
    assert not check_completion(text, QUERY, RULES, vocabulary=VOCAB).valid


def test_extra_keys_allowed_when_configured():
    text = answer({"expansion": ["wireless mouse"], "note": "x"})
    assert check_completion(text, QUERY, Rules(allow_extra_keys=True)).valid


def test_rules_load_from_repo_yaml():
    rules = Rules.load("configs/rules.yaml")
    assert rules.max_expansions >= 3
    assert (
        check_completion(answer({"expansion": ["see https://x.io"]}), QUERY, rules).reason == "blocked_term"
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        # a misspelt key names the key
        ("max_expansion: 3\n", "unknown key"),
        # a broken regex names the pattern
        ("blocked_patterns: ['([']\n", "invalid regex"),
        # a non-positive limit
        ("max_chars: 0\n", "max_chars"),
        # blocked terms must be a list of strings
        ("blocked_terms: fake\n", "blocked_terms"),
    ],
)
def test_rules_load_errors_name_the_problem(tmp_path, yaml_text, message):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=message) as info:
        Rules.load(path)
    assert str(path) in str(info.value)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), query=st.text(max_size=40))
def test_gate_never_raises_on_any_text(text, query):
    result = check_completion(text, query, RULES, vocabulary=VOCAB)
    assert result.reason in REASONS


_ITEM = st.one_of(
    st.text(max_size=50),
    st.text(
        st.characters(categories=["Cs", "Ll", "Zs"]), max_size=10
    ),  # lone surrogates, as JSON escapes decode
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(_ITEM, max_size=6),
    think=st.text(max_size=50),
    query=st.text(max_size=30),
)
def test_gate_never_raises_on_structured_answers(items, think, query):
    result = check_completion(answer({"expansion": items}, think=think), query, RULES, vocabulary=VOCAB)
    assert result.reason in REASONS
    if result.valid:
        assert len(result.expansions) == len(items) <= RULES.max_expansions
        assert all(isinstance(e, str) and e for e in result.expansions)


def test_prompt_builder_format_passes_the_gate():
    from leser.prompts import format_completion

    text = format_completion(
        "the shopper wants a wrist-friendly mouse", ["wireless vertical mouse", "café mouse"]
    )
    assert check_completion(text, QUERY, RULES, vocabulary=VOCAB) == (
        True,
        "ok",
        ["wireless vertical mouse", "café mouse"],
    )
    assert check_completion(format_completion("specific already", []), QUERY, RULES).valid
