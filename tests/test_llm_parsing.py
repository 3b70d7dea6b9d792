"""The paper's strict answer rule: legal iff the stripped answer is exactly one action token."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moralgym.agents.llm.parsing import COOPERATE, DEFECT, ILLEGAL, parse_action
from moralgym.agents.llm.prompts import ACTION_TOKENS, ActionTokens

PAIRS = list(ACTION_TOKENS.values())


@pytest.mark.parametrize("tokens", PAIRS, ids=list(ACTION_TOKENS))
def test_exact_tokens_with_surrounding_whitespace_are_legal(tokens):
    assert parse_action(f" \n{tokens.cooperate}\n ", tokens) == COOPERATE
    assert parse_action(f"{tokens.defect}\t", tuple(tokens)) == DEFECT


@pytest.mark.parametrize("text", ["action", "action1.", "I choose action1", "**", "action1 action2", "Action1", ""])
def test_near_misses_are_illegal(text):
    assert parse_action(text, ACTION_TOKENS["action12"]) == ILLEGAL


@given(st.text(), st.sampled_from(PAIRS))
def test_never_raises_and_is_legal_only_for_an_exact_token(text, tokens):
    action = parse_action(text, tokens)
    assert action in (COOPERATE, DEFECT, ILLEGAL)
    assert (action != ILLEGAL) == (text.strip() in (tokens.cooperate, tokens.defect))
    if action != ILLEGAL:
        assert text.strip() == tokens.token(action)


@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_non_strings_are_illegal(value):
    assert parse_action(value, ("action1", "action2")) == ILLEGAL


@given(st.text(min_size=1).filter(lambda s: s.strip() == s), st.text(min_size=1).filter(lambda s: s.strip() == s))
def test_any_custom_pair_round_trips(cooperate, defect):
    if cooperate == defect:
        with pytest.raises(ValueError):
            ActionTokens(cooperate, defect)
        return
    tokens = ActionTokens(cooperate, defect)
    assert parse_action(cooperate, tokens) == COOPERATE
    assert parse_action(f" {defect} ", tokens) == DEFECT


def test_bad_token_pairs_are_rejected():
    with pytest.raises(ValueError):
        parse_action("a", ("a", "a"))
    with pytest.raises(TypeError):
        parse_action("a", "ab")
