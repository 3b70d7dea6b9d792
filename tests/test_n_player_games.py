"""N-player games: the built-in Schelling diagrams against their textbook formulas, their equilibria and optima worked
by hand, the two-player games as diagrams, validation errors and the registry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moralgym.envs import get_game
from moralgym.envs.n_player import (
    N_PLAYER_GAMES,
    SchellingDiagram,
    SchellingGame,
    from_matrix_game,
    get_n_player_game,
    linear_public_goods,
    list_n_player_games,
    n_player_prisoners_dilemma,
    n_player_snowdrift,
    register_n_player_game,
    threshold_public_good,
    volunteers_dilemma,
)

C, D = 0, 1
SIZES = [2, 3, 4, 8]


# --------------------------------------------------------------------------------------------------- diagrams by hand
def test_public_goods_pays_kept_plus_the_shared_pot():
    # N = 4, e = 10, r = 2: C with k others contributing gets 2 * 10 * (k + 1) / 4 = 5 (k + 1); D gets 10 + 5 k.
    game = linear_public_goods(4, endowment=10, multiplier=2)
    assert game.cooperate_payoffs.tolist() == [5, 10, 15, 20]
    assert game.defect_payoffs.tolist() == [10, 15, 20, 25]
    assert game.action_names == ("Contribute", "Keep")
    assert game.parameters == {"num_players": 4, "endowment": 10.0, "multiplier": 2.0}


def test_n_player_ipd_is_the_mean_of_the_pairwise_games_and_the_ipd_at_two():
    # N = 3, the paper's T, R, P, S = 4, 3, 1, 0: C with k others cooperating gets (3 k + 0 (2 - k)) / 2.
    game = n_player_prisoners_dilemma(3)
    assert game.cooperate_payoffs.tolist() == [0, 1.5, 3]
    assert game.defect_payoffs.tolist() == [1, 2.5, 4]
    two = n_player_prisoners_dilemma(2)
    assert np.array_equal(two.cooperate_payoffs, from_matrix_game("ipd").cooperate_payoffs)
    assert np.array_equal(two.defect_payoffs, from_matrix_game("ipd").defect_payoffs)


def test_threshold_public_good_needs_m_contributors():
    # N = 4, M = 3, b = 3, c = 1: C gets 3 - 1 once 2 others contribute (else -1); D gets 3 once 3 others do.
    game = threshold_public_good(4, threshold=3)
    assert game.cooperate_payoffs.tolist() == [-1, -1, 2, 2]
    assert game.defect_payoffs.tolist() == [0, 0, 0, 3]
    assert threshold_public_good(5).parameters["threshold"] == 3  # default: a majority, N // 2 + 1


def test_volunteers_dilemma_and_snowdrift():
    volunteers = volunteers_dilemma(3, benefit=4, cost=1)
    assert volunteers.cooperate_payoffs.tolist() == [3, 3, 3]
    assert volunteers.defect_payoffs.tolist() == [0, 4, 4]
    # Snowdrift, b = 3, c = 2: the shovellers share the work, 3 - 2 / (k + 1).
    snowdrift = n_player_snowdrift(4)
    assert snowdrift.cooperate_payoffs.tolist() == pytest.approx([1, 2, 3 - 2 / 3, 2.5])
    assert snowdrift.defect_payoffs.tolist() == [0, 3, 3, 3]


@pytest.mark.parametrize(
    ("name", "cooperate", "defect"),
    [
        ("ipd", [0, 3], [1, 4]),
        ("stag_hunt", [0, 4], [1, 3]),
        ("chicken", [1, 2], [0, 4]),
        ("defective_coordination", [0, 1], [4, 0]),
    ],
)
def test_symmetric_paper_games_are_two_player_diagrams(name, cooperate, defect):
    """C = [u(C, D), u(C, C)], D = [u(D, D), u(D, C)] from the paper's tables."""
    game = from_matrix_game(name)
    assert (game.cooperate_payoffs.tolist(), game.defect_payoffs.tolist()) == (cooperate, defect)
    assert game.name == name and game.action_names == get_game(name).action_names
    matrix = get_game(name)
    for row in (C, D):
        for col in (C, D):
            assert tuple(game.payoffs([row, col])) == matrix.payoff(row, col)


def test_asymmetric_games_are_refused():
    with pytest.raises(ValueError, match=r"'bach_or_stravinsky' is not symmetric.*same table"):
        from_matrix_game("bach_or_stravinsky")
    with pytest.raises(ValueError, match="not symmetric"):
        get_n_player_game(get_game([[(3, 3), (0, 5)], [(4, 0), (1, 1)]]))


# --------------------------------------------------------------------------------------------------- theory
@pytest.mark.parametrize("num_players", SIZES)
def test_linear_public_goods_full_defection_is_the_unique_equilibrium_and_full_contribution_the_optimum(num_players):
    for multiplier in (1.01, (1 + num_players) / 2, num_players - 0.01):
        game = linear_public_goods(num_players, multiplier=multiplier)
        assert game.defection_dominates()
        assert game.nash_equilibria() == (0,) and game.nash_equilibria(strict=True) == (0,)
        assert game.social_optima() == (num_players,)
        assert game.max_collective_payoff == pytest.approx(num_players * multiplier)  # everyone gets r e = r


@pytest.mark.parametrize("num_players", SIZES)
def test_n_player_prisoners_dilemma_equilibrium_and_optimum(num_players):
    game = n_player_prisoners_dilemma(num_players)
    assert game.defection_dominates()
    assert game.nash_equilibria() == (0,) and game.social_optima() == (num_players,)
    assert game.max_collective_payoff == 3 * num_players and (game.min_payoff, game.max_payoff) == (0, 4)


@pytest.mark.parametrize("num_players", SIZES)
def test_threshold_public_good_equilibria_are_nobody_or_exactly_m(num_players):
    for threshold in range(1, num_players + 1):
        game = threshold_public_good(num_players, threshold=threshold)
        # M = 1: nobody contributing is not stable (a lone contributor gains b - c > 0): a Volunteer's Dilemma.
        assert game.nash_equilibria() == ((1,) if threshold == 1 else (0, threshold))
        assert game.social_optima() == (threshold,)
        assert game.max_collective_payoff == 3 * num_players - threshold  # N b - M c


def test_threshold_public_good_by_hand():
    # N = 4, M = 3, b = 3, c = 1. Three contributors: each pays 1 and gets 3 (2); the keeper gets 3. A contributor
    # who keeps instead leaves 2 contributors: the good fails, 0 < 2. The keeper joining gets 2 < 3. Stable.
    # Two contributors: each gets -1 and would get 0 by keeping. Not stable.
    game = threshold_public_good(4, threshold=3)
    assert game.payoffs([C, C, C, D]).tolist() == [2, 2, 2, 3]
    assert game.payoffs([C, C, D, D]).tolist() == [-1, -1, 0, 0]
    assert game.collective_payoffs.tolist() == [0, -1, -2, 9, 8]
    assert game.nash_equilibria() == (0, 3)


@pytest.mark.parametrize("num_players", SIZES)
def test_volunteers_dilemma_has_one_volunteer_in_equilibrium_and_at_the_optimum(num_players):
    game = volunteers_dilemma(num_players)
    assert game.nash_equilibria() == (1,) and game.social_optima() == (1,)
    assert not game.defection_dominates()


def test_volunteers_dilemma_collective_payoffs_by_hand():
    # N = 3, b = 3, c = 1: nobody 0; one volunteer 2 + 3 + 3 = 8; two 2 + 2 + 3 = 7; three 6.
    game = volunteers_dilemma(3)
    assert game.collective_payoffs.tolist() == [0, 8, 7, 6]
    assert (game.max_collective_payoff, game.max_payoff, game.min_payoff) == (8, 3, 0)


@pytest.mark.parametrize("num_players", SIZES)
def test_snowdrift_one_shoveller_in_equilibrium_and_any_positive_number_optimal(num_players):
    game = n_player_snowdrift(num_players)
    assert game.nash_equilibria() == (1,)
    assert game.social_optima() == tuple(range(1, num_players + 1))  # the work c is shared: N b - c for any m >= 1
    assert game.max_collective_payoff == pytest.approx(3 * num_players - 2)


@pytest.mark.parametrize(
    ("name", "equilibria", "optima"),
    [
        ("ipd", (0,), (2,)),
        ("stag_hunt", (0, 2), (2,)),
        ("chicken", (1,), (1,)),
        ("defective_coordination", (0, 2), (0,)),
    ],
)
def test_paper_game_equilibria_from_their_diagrams(name, equilibria, optima):
    """Stag Hunt: both hunt stag or both hare; Chicken: one swerves; Defective Coordination: both C or both D, and
    mutual D (4 + 4) beats mutual C (1 + 1)."""
    game = from_matrix_game(name)
    assert game.nash_equilibria() == equilibria and game.social_optima() == optima
    assert game.max_collective_payoff == get_game(name).max_collective_payoff


def test_weak_and_strict_equilibria_differ_on_ties():
    # Every payoff equal: every profile is a weak equilibrium, none is strict.
    flat = SchellingGame("flat", [1, 1, 1], [1, 1, 1])
    assert flat.nash_equilibria() == (0, 1, 2, 3) and flat.nash_equilibria(strict=True) == ()


@settings(max_examples=40, deadline=None)
@given(
    num_players=st.integers(2, 6),
    data=st.data(),
)
def test_payoffs_of_joint_actions_match_the_diagram_entry_by_entry(num_players, data):
    values = st.floats(-10, 10, allow_nan=False)
    cooperate = data.draw(st.lists(values, min_size=num_players, max_size=num_players))
    defect = data.draw(st.lists(values, min_size=num_players, max_size=num_players))
    joint = data.draw(st.lists(st.integers(0, 1), min_size=num_players, max_size=num_players))
    game = SchellingGame("custom", cooperate, defect)
    expected = []
    for seat, action in enumerate(joint):
        others = sum(1 for other, a in enumerate(joint) if other != seat and a == C)
        expected.append(game.payoff(action, others))
    assert game.payoffs(joint).tolist() == expected
    assert game.payoffs(np.array([joint, joint])).shape == (2, num_players)  # vectorised over games
    assert game.collective_payoffs[joint.count(C)] == pytest.approx(sum(expected))


def test_payoff_helpers_reject_bad_moves():
    game = linear_public_goods(3)
    with pytest.raises(ValueError, match=r"actions must be 0 \(C\) or 1 \(D\), got \[0, 2, 1\]"):
        game.payoffs([0, 2, 1])
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        game.payoffs([0, 1])
    with pytest.raises(ValueError, match=r"others_cooperating must be in 0\.\.2, got 3"):
        game.payoff(C, 3)
    with pytest.raises(ValueError, match="action must be 0"):
        game.payoff(-1, 0)


# --------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("cooperate", "defect", "message"),
    [
        ([[0, 1], [2, 3]], [1, 2], r"game 'custom': cooperate_payoffs must be N >= 2 .* shape \(2, 2\)"),
        ([3], [4], r"cooperate_payoffs must be N >= 2 .* shape \(1,\)"),
        ([0, 1, 2], [1, 2], r"the same length N\); got 3 and 2"),
        ([0, float("nan")], [1, 2], "NaN is not a payoff"),
        ([0, float("inf")], [1, 2], r"cooperate_payoffs must be finite numbers; got \[0.0, inf\]"),
        ([0, 1], ["1", 2], r"defect_payoffs must be .*; got \['1', 2\] \('1' is not a number\)"),
        ([0, 1], [True, 2], r"defect_payoffs must be .*\(True is not a number\)"),
        (np.array(["a", "b"]), [1, 2], "dtype <U1 is not numeric"),
    ],
)
def test_malformed_diagrams_are_rejected_with_the_value_and_what_is_expected(cooperate, defect, message):
    with pytest.raises(ValueError, match=message):
        SchellingGame("custom", cooperate, defect)


def test_diagrams_are_read_only_and_games_compare_by_value():
    game = SchellingGame("g", [0, 3], [1, 4])
    with pytest.raises(ValueError, match="read-only"):
        game.cooperate_payoffs[0] = 9
    assert game == SchellingGame("g", (0.0, 3.0), np.array([1, 4]))
    assert hash(game) == hash(SchellingGame("g", [0, 3], [1, 4]))
    assert game != SchellingGame("g", [0, 3], [1, 5])
    assert repr(game) == "SchellingGame('g', N=2: C=[0, 3], D=[1, 4])"
    assert isinstance(game, SchellingDiagram)  # what the co-player strategies read


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: linear_public_goods(4, multiplier=4), r"1 < r < num_players = 4.*got 4"),
        (lambda: linear_public_goods(4, multiplier=1), r"1 < r < num_players"),
        (lambda: linear_public_goods(4, endowment=0), "endowment must be greater than 0"),
        (lambda: linear_public_goods(1), "num_players must be an integer >= 2, got 1"),
        (lambda: n_player_prisoners_dilemma(3, temptation=2), r"temptation > reward > punishment > sucker, got T=2"),
        (lambda: threshold_public_good(4, threshold=5), r"threshold must be an integer in 1\.\.num_players = 4, got 5"),
        (lambda: threshold_public_good(4, threshold=0), "threshold must be an integer"),
        (lambda: volunteers_dilemma(3, benefit=1, cost=1), "benefit must be greater than the cost 1, got 1"),
        (lambda: n_player_snowdrift(3, cost=-1), "cost must be greater than 0"),
        (lambda: volunteers_dilemma(3, benefit=float("nan")), "benefit must be a finite number, got nan"),
    ],
)
def test_builder_parameters_out_of_range_are_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# --------------------------------------------------------------------------------------------------- registry
def test_registry_builds_every_game_for_any_size():
    assert list_n_player_games() == [
        "public_goods",
        "n_player_ipd",
        "threshold_public_good",
        "volunteers_dilemma",
        "n_player_snowdrift",
    ]
    for name in list_n_player_games():
        for num_players in SIZES:
            assert get_n_player_game(name, num_players).num_players == num_players
    assert get_n_player_game("public_goods").num_players == 4  # the default group size


def test_registry_names_aliases_parameters_and_errors():
    assert get_n_player_game("N-player Stag Hunt", 3).name == "threshold_public_good"
    assert get_n_player_game("PGG", 3, multiplier=2.5).parameters["multiplier"] == 2.5
    with pytest.raises(KeyError, match=r"unknown N-player game 'poker'.*public_goods.*or pass a SchellingGame"):
        get_n_player_game("poker")
    with pytest.raises(TypeError, match=r"unknown keyword argument 'multiplyer' \(did you mean 'multiplier'\?\)"):
        get_n_player_game("public_goods", 4, multiplyer=2)
    with pytest.raises(TypeError, match="only apply to game names"):
        get_n_player_game(linear_public_goods(3), multiplier=2)
    with pytest.raises(ValueError, match=r"has 3 players, got num_players=4"):
        get_n_player_game(linear_public_goods(3), num_players=4)
    with pytest.raises(TypeError, match="an N-player game must be"):
        get_n_player_game(42)


def test_registry_accepts_diagram_pairs_matrix_games_and_new_builders():
    pair = get_n_player_game(([0, 3, 6], [1, 4, 7]))
    assert pair.name == "custom" and pair.num_players == 3
    assert get_n_player_game(get_game("stag_hunt")) == from_matrix_game("stag_hunt")
    try:
        register_n_player_game("tiny_public_goods", lambda num_players: linear_public_goods(num_players, 0.5, 1.5))
        assert get_n_player_game("tiny public goods", 3).cooperate_payoffs[0] == pytest.approx(0.25)
        with pytest.raises(ValueError, match="already registered"):
            register_n_player_game("pgg", linear_public_goods)
    finally:
        del N_PLAYER_GAMES["tiny_public_goods"]
