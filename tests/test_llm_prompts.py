"""Prompt rendering: the paper's prompt, every registered variant, shuffles, chat template and answer prefix."""

import numpy as np
import pytest

from moralgym.agents.llm.prompts import (
    ACTION_TOKENS,
    PERSONAS,
    PHRASINGS,
    TABLE_ORDERS,
    PromptBuilder,
    apply_chat_template,
    get_action_tokens,
    register_phrasing,
)
from moralgym.agents.llm.testing import tiny_tokenizer
from moralgym.envs.games import NO_MOVE, PAPER_GAMES

GAMES = [g.name for g in PAPER_GAMES]
PAYOFF_PHRASINGS = ["paper", "unstructured"]


def _numbers(text):
    return {token.strip(",.|") for token in text.split()}


@pytest.mark.parametrize("game", PAPER_GAMES, ids=GAMES)
@pytest.mark.parametrize("phrasing", PAYOFF_PHRASINGS)
@pytest.mark.parametrize("seat", [0, 1])
def test_every_payoff_and_the_previous_round_appear(game, phrasing, seat):
    builder = PromptBuilder(phrasing=phrasing)
    for own in (0, 1):
        for other in (0, 1):
            text = builder.user_text(game, [own, other], (0, 0), seat=seat)
            table = game.payoff_table_for(seat)
            for row in (0, 1):
                for col in (0, 1):
                    if phrasing == "paper":
                        assert f"{table[row, col, 0]:g}, {table[row, col, 1]:g}" in text
            own_points, other_points = table[own, other]
            assert f"you got {own_points:g} points" in text
            assert f"got {other_points:g} points" in text
            assert f"you played action{own + 1} and they played action{other + 1}" in text


def test_paper_prompt_has_the_papers_structure():
    text = PromptBuilder().user_text("ipd", [0, 1], (0, 0))
    assert text.startswith("You are playing a game with another agent A.")
    assert "| action1 | 3, 3 | 0, 4 |" in text and "| action2 | 4, 0 | 1, 1 |" in text
    assert text.index("|  | action1 | action2 |") < text.index("| action1 | 3, 3")
    assert text.endswith("Do not explain your reasoning. Your answer: ")
    for word in ("Prisoner", "cooperate", "defect"):
        assert word not in text  # an implicit game (paper §3.1)


@pytest.mark.parametrize("phrasing", sorted(PHRASINGS))
@pytest.mark.parametrize("tokens", sorted(ACTION_TOKENS))
def test_each_variant_mentions_both_tokens_and_ends_with_the_answer_format(phrasing, tokens):
    pair = get_action_tokens(tokens)
    text = PromptBuilder(tokens=tokens, phrasing=phrasing).user_text("stag_hunt", [1, 0], (1, 0))
    assert f"either action {pair.defect} or action {pair.cooperate}" in text  # first mention swapped
    assert text.endswith(
        f"choose either {pair.cooperate} or {pair.defect}. Do not explain your reasoning. Your answer: "
    )


def test_the_two_mentions_are_shuffled_independently_by_the_bits():
    builder = PromptBuilder()
    seen = set()
    for bits in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        ctx = builder.context("ipd", [0, 0], bits)
        seen.add((ctx.first, ctx.second))
        assert ctx.first == (("action2", "action1") if bits[0] else ("action1", "action2"))
        assert ctx.second == (("action2", "action1") if bits[1] else ("action1", "action2"))
    assert len(seen) == 4
    # The table always lists the cooperate token first (training layout) whatever the shuffle.
    assert builder.context("ipd", [0, 0], (1, 1)).pipe_table().index("action1") < builder.context(
        "ipd", [0, 0], (1, 1)
    ).pipe_table().index("action2")


def test_shuffle_bits_come_from_the_seeded_stream():
    builder = PromptBuilder()
    a = builder.draw_order_bits(np.random.default_rng(3), 64)
    b = builder.draw_order_bits(np.random.default_rng(3), 64)
    c = builder.draw_order_bits(np.random.default_rng(4), 64)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(np.unique(a)) == {0, 1}
    assert PromptBuilder(shuffle=False).context("ipd", [0, 0], (1, 1)).first == ("action1", "action2")


@pytest.mark.parametrize("order", sorted(TABLE_ORDERS))
def test_table_orders_keep_cells_consistent(order):
    rows, cols = TABLE_ORDERS[order]
    ctx = PromptBuilder(tokens="action34", table_order=order).context("chicken", [0, 0])
    lines = ctx.pipe_table().strip().splitlines()
    header = [cell.strip() for cell in lines[0].split("|")[2:4]]
    assert header == [f"action{3 + c}" for c in cols]
    for line, row in zip(lines[2:], rows, strict=True):
        cells = [cell.strip() for cell in line.split("|")[1:4]]
        assert cells[0] == f"action{3 + row}"
        for cell, col in zip(cells[1:], cols, strict=True):
            payoff = ctx.table[row, col]
            assert cell == f"{payoff[0]:g}, {payoff[1]:g}"


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_persona_is_the_first_sentence_of_the_user_turn(persona):
    text = PromptBuilder(persona=persona).user_text("ipd", [0, 0])
    assert text.startswith(PERSONAS[persona]) and "You are playing a game" in text


def test_first_round_has_a_defined_sentence_instead_of_history():
    text = PromptBuilder().user_text("ipd", [NO_MOVE, NO_MOVE])
    assert "first round" in text and "Last time" not in text
    partial = PromptBuilder().user_text("ipd", [NO_MOVE, 1])
    assert "did not choose a valid action" in partial and "they played action2" in partial


def test_chat_template_single_user_turn_and_answer_prefix():
    tokenizer = tiny_tokenizer()
    rendered = PromptBuilder(answer_prefix="action").render(tokenizer, "ipd", [0, 1])
    user = PromptBuilder().user_text("ipd", [0, 1])
    assert rendered.startswith("<|im_start|> user ") and user in rendered
    assert rendered.endswith("<|im_start|> assistant action")
    assert "system" not in rendered  # never a system message (Gemma-2 has no system role)


def test_tokenizer_without_or_with_a_broken_template_falls_back_to_raw_text():
    assert apply_chat_template(tiny_tokenizer(chat_template=False), "hello", "ans") == "helloans"
    broken = tiny_tokenizer()
    broken.chat_template = "{{ raise_exception('no user turns here') }}"
    assert apply_chat_template(broken, "hello") == "hello"


def test_a_user_registers_a_phrasing_in_one_line():
    register_phrasing("test_terse", "Pick {first_x} or {first_y}. {history} {answer_format}")
    text = PromptBuilder(phrasing="test_terse").user_text("ipd", [1, 1], (0, 0))
    assert text.startswith("Pick action1 or action2. You have played") and "you got 1 points" in text
    callable_builder = PromptBuilder(phrasing=lambda ctx: f"{ctx.game.title}: {ctx.tokens.cooperate}?")
    assert callable_builder.user_text("chicken", [0, 0]) == "Iterated Chicken: action1?"


def test_unknown_names_are_clear_errors():
    with pytest.raises(KeyError, match="known"):
        PromptBuilder(phrasing="nope")
    with pytest.raises(KeyError, match="table order"):
        PromptBuilder(table_order="diagonal")
    with pytest.raises(KeyError, match="persona"):
        PromptBuilder(persona="nihilist")
    with pytest.raises(KeyError, match="action12"):
        get_action_tokens("nonsense")
    assert get_action_tokens("left, right").defect == "right"
