"""Tests for the social-preference formulas: hand-computed values for 2 and 4 players, edge cases, vectorisation and
parameter checks. Every expected number below is worked out in the comment next to it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moralgym.envs.games import COOPERATE as C
from moralgym.envs.games import DEFECT as D
from moralgym.envs.games import ILLEGAL
from moralgym.envs.social_preferences import (
    DEFAULT_EQUALITY_WEIGHT,
    DEFAULT_INEQUITY_ALPHA,
    DEFAULT_INEQUITY_BETA,
    DEFAULT_KINDNESS_BONUS,
    gini,
    inequity_aversion,
    virtue_equality,
    virtue_kindness,
    virtue_mixed,
)


# ------------------------------------------------------------------------------------------------- inequity aversion
def test_defaults_are_hughes_et_al_and_tennant_et_al():
    assert (DEFAULT_INEQUITY_ALPHA, DEFAULT_INEQUITY_BETA) == (5.0, 0.05)
    assert (DEFAULT_KINDNESS_BONUS, DEFAULT_EQUALITY_WEIGHT) == (5.0, 0.5)


def test_inequity_aversion_two_players_by_hand():
    # IPD, C against D: (S, T) = (0, 4). The sucker envies: 0 - 5 * 4 / 1 = -20. The defector feels guilt:
    # 4 - 0.05 * 4 / 1 = 3.8.
    assert inequity_aversion([0, 4], 0) == pytest.approx(-20.0)
    assert inequity_aversion([0, 4], 1) == pytest.approx(3.8)
    # Payoffs (1, 3), alpha 2, beta 0.5: 1 - 2 * 2 = -3 and 3 - 0.5 * 2 = 2.
    assert inequity_aversion([1, 3], 0, alpha=2, beta=0.5) == pytest.approx(-3.0)
    assert inequity_aversion([1, 3], 1, alpha=2, beta=0.5) == pytest.approx(2.0)


def test_inequity_aversion_four_players_by_hand():
    payoffs = [1.0, 2.0, 3.0, 4.0]
    # Player 1 (x = 2): behind by 1 + 2 = 3, ahead by 1. 2 - 5 * 3 / 3 - 0.05 * 1 / 3 = -3.01666...
    assert inequity_aversion(payoffs, 1) == pytest.approx(2 - 5 - 0.05 / 3)
    # Player 3 (x = 4): ahead by 3 + 2 + 1 = 6. 4 - 0.05 * 6 / 3 = 3.9.
    assert inequity_aversion(payoffs, 3) == pytest.approx(3.9)
    # Player 0 (x = 1), alpha 1, beta 1: behind by 1 + 2 + 3 = 6. 1 - 6 / 3 = -1.
    assert inequity_aversion(payoffs, 0, alpha=1, beta=1) == pytest.approx(-1.0)


def test_inequity_aversion_without_inequity_or_aversion_is_the_own_payoff():
    assert inequity_aversion([2.5, 2.5, 2.5, 2.5], 2) == pytest.approx(2.5)
    assert inequity_aversion([1.0, 7.0, 3.0], 0, alpha=0, beta=0) == pytest.approx(1.0)


def test_inequity_aversion_is_vectorised_over_games_and_seats():
    rng = np.random.default_rng(0)
    payoffs = rng.uniform(0, 4, size=(3, 5, 4))
    seats = rng.integers(0, 4, size=(3, 5))
    batch = inequity_aversion(payoffs, seats, alpha=1.5, beta=0.3)
    assert batch.shape == (3, 5) and batch.dtype == np.float64
    for index in np.ndindex(3, 5):
        x, i = payoffs[index], seats[index]
        others = np.delete(x, i)
        expected = x[i] - 1.5 * np.maximum(others - x[i], 0).mean() - 0.3 * np.maximum(x[i] - others, 0).mean()
        assert batch[index] == pytest.approx(expected)
    # One seat for every game broadcasts.
    np.testing.assert_allclose(
        inequity_aversion(payoffs, 2), [[inequity_aversion(g, 2) for g in row] for row in payoffs]
    )


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: inequity_aversion([1, 2], 0, alpha=-1), r"alpha .* must be a finite non-negative number, got -1"),
        (lambda: inequity_aversion([1, 2], 0, beta=float("nan")), r"beta .* got nan"),
        (lambda: inequity_aversion([1, 2], 0, alpha=float("inf")), r"alpha .* got inf"),
        (lambda: inequity_aversion([1, 2], 0, alpha=True), r"alpha .* got True"),
        (lambda: inequity_aversion([1, 2], 2), r"player must be an integer seat in 0 \.\. 1, got 2"),
        (lambda: inequity_aversion([1, 2], -1), r"got -1"),
        (lambda: inequity_aversion([1, 2], 0.5), r"got 0.5"),
        (lambda: inequity_aversion([3.0], 0), r"at least 2, got shape \(1,\)"),
        (lambda: inequity_aversion([1, float("nan")], 0), r"payoffs must be finite numbers, got nan"),
    ],
)
def test_inequity_aversion_rejects_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# ------------------------------------------------------------------------------------------------- gini, equality
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3, 3], 0.0),  # all equal
        ([1, 3], 0.25),  # sum |diffs| = 2 + 2 = 4; 2 * N * total = 2 * 2 * 4 = 16
        ([0, 4], 0.5),  # one has everything: (N - 1) / N
        ([1, 2, 3, 4], 0.25),  # pair diffs 1+2+3+1+2+1 = 10, both orders 20; 2 * 4 * 10 = 80
        ([0, 0, 0, 4], 0.75),  # 3 pairs of 4, both orders 24; 2 * 4 * 4 = 32
        ([0, 0, 0, 0], 0.0),  # zero cumulative payoffs: perfect equality, not 0/0
        ([7], 0.0),  # one player
    ],
)
def test_gini_by_hand(values, expected):
    assert gini(values) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3, 3], 1.0),
        ([1, 3], 0.5),  # authors: 1 - |1 - 3| / (1 + 3)
        ([0, 4], 0.0),
        ([1, 2, 3, 4], 2 / 3),  # 1 - 4/3 * 0.25
        ([0, 0, 0, 4], 0.0),  # 1 - 4/3 * 0.75
        ([0, 0, 0, 0], 1.0),
        ([5, 5, 5, 5], 1.0),
    ],
)
def test_virtue_equality_by_hand(values, expected):
    assert virtue_equality(values) == pytest.approx(expected)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, 100), st.floats(0.01, 100))
def test_virtue_equality_is_the_authors_formula_at_two_players(mine, theirs):
    # liza-tennant/moral_choice_dyadic, player.py: 1 - abs(pay1 - pay2) / (pay1 + pay2).
    assert virtue_equality([mine, theirs]) == pytest.approx(1 - abs(mine - theirs) / (mine + theirs))


def test_gini_and_equality_are_vectorised_and_order_free():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 10, size=(4, 6, 5))
    values[0, 0] = 0.0
    batch = gini(values)
    assert batch.shape == (4, 6)
    for index in np.ndindex(4, 6):
        x = values[index]
        total = x.sum()
        expected = np.abs(x[:, None] - x[None, :]).sum() / (2 * 5 * total) if total else 0.0
        assert batch[index] == pytest.approx(expected)
    np.testing.assert_allclose(gini(values[..., ::-1]), batch)
    np.testing.assert_allclose(virtue_equality(values), 1 - batch * 5 / 4)
    assert np.all((virtue_equality(values) >= -1e-12) & (virtue_equality(values) <= 1 + 1e-12))


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: gini([1, -1]), r"gini needs non-negative values, got -1"),
        (lambda: gini([1, float("inf")]), r"values must be finite numbers, got inf"),
        (lambda: gini(3.0), r"last axis, at least 1, got shape \(\)"),
        (lambda: virtue_equality([4.0]), r"cumulative_payoffs must have the players on its last axis, at least 2"),
        (lambda: virtue_equality([[1, 2], [3, -0.5]]), r"non-negative values, got -0.5"),
    ],
)
def test_gini_and_equality_reject_bad_values(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# ------------------------------------------------------------------------------------------------- kindness, mixed
def test_virtue_kindness_rewards_cooperation_only():
    np.testing.assert_array_equal(virtue_kindness([C, D, ILLEGAL]), [5.0, 0.0, 0.0])
    np.testing.assert_array_equal(virtue_kindness(np.array([[C, C], [D, C]]), bonus=3), [[3.0, 3.0], [0.0, 3.0]])
    assert virtue_kindness(C, bonus=0) == 0.0


def test_virtue_mixed_by_hand():
    # Payoffs (1, 3): equality 0.5. C: 0.5 * 0.5 + 0.5 * 1 = 0.75. D: 0.5 * 0.5 = 0.25.
    assert virtue_mixed([1, 3], C) == pytest.approx(0.75)
    assert virtue_mixed([1, 3], D) == pytest.approx(0.25)
    # Four players (1, 2, 3, 4): equality 2/3. w = 0.25, C: 0.25 * 2/3 + 0.75 = 0.91666...
    assert virtue_mixed([1, 2, 3, 4], C, equality_weight=0.25) == pytest.approx(0.25 * 2 / 3 + 0.75)
    # The ends of the mix are the two virtues.
    assert virtue_mixed([1, 2, 3, 4], D, equality_weight=1) == pytest.approx(virtue_equality([1, 2, 3, 4]))
    assert virtue_mixed([1, 2, 3, 4], C, equality_weight=0) == pytest.approx(virtue_kindness(C) / 5)


def test_virtue_mixed_is_vectorised():
    payoffs = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(virtue_mixed(payoffs, np.array([C, D, ILLEGAL])), [0.75, 0.5, 0.5])


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: virtue_kindness(C, bonus=-5), r"bonus .* must be a finite non-negative number, got -5"),
        (lambda: virtue_kindness(C, bonus=float("nan")), r"got nan"),
        (lambda: virtue_kindness([0, 2]), r"own_action must be 0 \(C\), 1 \(D\) or -1 \(illegal\), got 2"),
        (lambda: virtue_mixed([1, 3], C, equality_weight=1.5), r"equality_weight .* must be a weight in \[0, 1\]"),
        (lambda: virtue_mixed([1, 3], C, equality_weight=float("nan")), r"got nan"),
        (lambda: virtue_mixed([1, 3], 3), r"own_action must be .* got 3"),
    ],
)
def test_virtue_rewards_reject_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_formulas_do_not_warn_on_zero_totals():
    with np.errstate(all="raise"):
        assert math.isclose(float(virtue_equality(np.zeros((1, 3)))[0]), 1.0)
        assert float(gini(np.zeros(4))) == 0.0
