"""Tests for the N-player strategies: transcripts for N = 3, 4, 5, the N = 2 equivalences with the two-player
strategies, vectorised = one game, metadata, lookup and validation.

The games are tiny stand-ins for the Schelling diagrams of :mod:`moralgym.envs.n_player` (a dataclass with the three
fields the strategies read), with payoffs worked out by hand below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moralgym.agents.strategies import (
    N_PLAYER_STRATEGIES,
    ConditionalCooperator,
    GrimTrigger,
    NPlayerAlwaysCooperate,
    NPlayerAlwaysDefect,
    NPlayerGrimTrigger,
    NPlayerRandom,
    NPlayerStrategyBase,
    NPlayerWinStayLoseShift,
    Random,
    Strategy,
    TitForTat,
    WinStayLoseShift,
    get_n_player_strategy,
    get_strategy,
    list_n_player_strategies,
)
from moralgym.envs.games import COOPERATE as C
from moralgym.envs.games import DEFECT as D
from moralgym.envs.games import NO_MOVE
from moralgym.envs.n_player.opponents import NPlayerStrategy, make_n_player_opponent


@dataclass(frozen=True)
class Diagram:
    """A stand-in Schelling diagram: payoff of C / D when k of the other players cooperate (k = 0 .. N - 1)."""

    num_players: int
    cooperate_payoffs: np.ndarray
    defect_payoffs: np.ndarray


#: moralgym's IPD (T=4, R=3, P=1, S=0) as a diagram: C earns S with no cooperating other, R with one; D earns P, T.
IPD = Diagram(2, np.array([0.0, 3.0]), np.array([1.0, 4.0]))
#: Volunteer's Dilemma, benefit 2, cost 1: a volunteer gets 1 whatever; a bystander gets 2 iff someone volunteers.
VOLUNTEER_3 = Diagram(3, np.array([1.0, 1.0, 1.0]), np.array([0.0, 2.0, 2.0]))
#: Linear public goods, N = 4, endowment 1, multiplier 2: C keeps 0 and gets 2(k+1)/4, D keeps 1 and gets 2k/4.
PUBLIC_GOODS_4 = Diagram(4, np.array([0.5, 1.0, 1.5, 2.0]), np.array([1.0, 1.5, 2.0, 2.5]))
#: Linear public goods, N = 5, endowment 1, multiplier 2.5: C gets (k+1)/2, D gets 1 + k/2.
PUBLIC_GOODS_5 = Diagram(5, np.array([0.5, 1.0, 1.5, 2.0, 2.5]), np.array([1.0, 1.5, 2.0, 2.5, 3.0]))
GAMES = {2: IPD, 3: VOLUNTEER_3, 4: PUBLIC_GOODS_4, 5: PUBLIC_GOODS_5}


def play(strategy: NPlayerStrategyBase, game: Diagram, others, uniforms=None, start=None) -> list[tuple[int, int]]:
    """One game through the one-game API against a fixed sequence of "how many others cooperated" per round.

    Returns the transcript ``[(own move, others cooperating), ...]``; ``start`` is the round-one observation
    (default "no move yet" on both sides).
    """
    strategy.reset()
    uniforms = [0.5] * len(others) if uniforms is None else uniforms
    observation = (NO_MOVE, game.num_players) if start is None else start
    transcript = []
    for count, uniform in zip(others, uniforms, strict=True):
        own = strategy.act(observation, game, uniform=uniform)
        transcript.append((own, count))
        observation = (own, count)
    return transcript


def build(name: str) -> NPlayerStrategyBase:
    """A default instance of each registered class."""
    return N_PLAYER_STRATEGIES[name]()


# ------------------------------------------------------------------------------------------------- transcripts
def test_always_cooperate_transcript():
    assert play(NPlayerAlwaysCooperate(), VOLUNTEER_3, [2, 0, 1, 2]) == [(C, 2), (C, 0), (C, 1), (C, 2)]


def test_always_defect_transcript():
    assert play(NPlayerAlwaysDefect(), PUBLIC_GOODS_4, [3, 3, 0, 1]) == [(D, 3), (D, 3), (D, 0), (D, 1)]


def test_random_transcript_cooperates_iff_uniform_below_p():
    uniforms = [0.1, 0.7, 0.29, 0.3, 0.0]
    others = [4, 0, 2, 3, 1]
    assert play(NPlayerRandom(p=0.3), PUBLIC_GOODS_5, others, uniforms) == [(C, 4), (D, 0), (C, 2), (D, 3), (C, 1)]
    assert play(NPlayerRandom(), PUBLIC_GOODS_5, others, uniforms) == [(C, 4), (D, 0), (C, 2), (C, 3), (C, 1)]


def test_conditional_cooperator_transcripts():
    # N = 3, K = 1: C while at least one other cooperated; D after the round where none did, C again after one did.
    transcript = play(ConditionalCooperator(threshold=1), VOLUNTEER_3, [2, 1, 0, 0, 1, 2])
    assert transcript == [(C, 2), (C, 1), (C, 0), (D, 0), (D, 1), (C, 2)]
    # N = 4, default K = all 3 others: one defection (2 of 3 cooperated) is answered once, then forgiven.
    transcript = play(ConditionalCooperator(), PUBLIC_GOODS_4, [3, 2, 3, 3, 1])
    assert transcript == [(C, 3), (C, 2), (D, 3), (C, 3), (C, 1)]
    # N = 5, K = 2.
    transcript = play(ConditionalCooperator(threshold=2), PUBLIC_GOODS_5, [4, 1, 2, 0, 3])
    assert transcript == [(C, 4), (C, 1), (D, 2), (C, 0), (D, 3)]


def test_grim_trigger_transcripts():
    # N = 4, default K = all 3 others: the round where only 2 cooperated triggers defection for good.
    transcript = play(NPlayerGrimTrigger(), PUBLIC_GOODS_4, [3, 3, 2, 3, 3])
    assert transcript == [(C, 3), (C, 3), (C, 2), (D, 3), (D, 3)]
    # N = 5, K = 2: two cooperating others are enough; one is not, and it never forgives.
    transcript = play(NPlayerGrimTrigger(threshold=2), PUBLIC_GOODS_5, [4, 2, 1, 4, 4])
    assert transcript == [(C, 4), (C, 2), (C, 1), (D, 4), (D, 4)]
    # N = 3: never triggered while everyone cooperates.
    assert play(NPlayerGrimTrigger(), VOLUNTEER_3, [2, 2, 2]) == [(C, 2), (C, 2), (C, 2)]


def test_win_stay_lose_shift_transcripts():
    # N = 4 public goods, default aspiration = mean of the 8 diagram payoffs = 12 / 8 = 1.5.
    # C,k=3 pays 2: stay C. C,k=1 pays 1: shift to D. D,k=0 pays 1: shift to C. C,k=1 pays 1: shift to D.
    # D,k=2 pays 2: stay D.
    transcript = play(NPlayerWinStayLoseShift(), PUBLIC_GOODS_4, [3, 1, 0, 1, 2, 3])
    assert transcript == [(C, 3), (C, 1), (D, 0), (C, 1), (D, 2), (D, 3)]
    # N = 3 Volunteer's Dilemma, aspiration 1.5: volunteering (1) is a loss; free-riding on a volunteer (2) a win;
    # nobody volunteering (0) a loss.
    transcript = play(NPlayerWinStayLoseShift(aspiration=1.5), VOLUNTEER_3, [0, 2, 0, 1, 0])
    assert transcript == [(C, 0), (D, 2), (D, 0), (C, 1), (D, 0)]
    # N = 5, aspiration 1: C,k=0 pays 0.5 (shift); D,k=0 pays 1 (stay); D,k=4 pays 3 (stay).
    transcript = play(NPlayerWinStayLoseShift(aspiration=1), PUBLIC_GOODS_5, [0, 0, 4, 1])
    assert transcript == [(C, 0), (D, 0), (D, 4), (D, 1)]


def test_fake_history_is_treated_as_real():
    # A random initial state showing 0 of 3 others cooperating "before" round one.
    assert play(ConditionalCooperator(threshold=1), PUBLIC_GOODS_4, [3, 3], start=(C, 0)) == [(D, 3), (C, 3)]
    assert play(NPlayerGrimTrigger(), PUBLIC_GOODS_4, [3, 3], start=(C, 0)) == [(D, 3), (D, 3)]
    # Own fake D while all 3 others "cooperated" pays 2.5 >= 1.5: stay D.
    assert play(NPlayerWinStayLoseShift(), PUBLIC_GOODS_4, [3], start=(D, 3)) == [(D, 3)]


@pytest.mark.parametrize("name", sorted(set(N_PLAYER_STRATEGIES) - {"random"}))
@pytest.mark.parametrize("observation", [(NO_MOVE, 4), (D, 4), (C, 4)])
def test_no_move_yet_from_the_others_plays_the_opening_move(name, observation):
    strategy = build(name)
    strategy.reset()
    assert strategy.act(observation, PUBLIC_GOODS_4, uniform=0.99) == (D if name == "always_defect" else C)


def test_no_own_move_yet_opens_where_the_behaviour_reads_the_previous_round():
    # Memory-one like the two-player TFT and Pavlov: "no move yet" on either side means nothing to react to.
    assert ConditionalCooperator().act([NO_MOVE, 0], PUBLIC_GOODS_4) == C
    assert NPlayerWinStayLoseShift().act([NO_MOVE, 0], PUBLIC_GOODS_4) == C
    # Grim Trigger, like the two-player one, reads the others alone: 0 of 3 cooperating others triggers it.
    assert NPlayerGrimTrigger().act([NO_MOVE, 0], PUBLIC_GOODS_4) == D


# ------------------------------------------------------------------------------------------------- N = 2
def to_n_player(observation: tuple[int, int]) -> tuple[int, int]:
    """A two-player observation ``[own, opponent]`` as an N = 2 one ``[own, others_cooperated]``."""
    own, opponent = observation
    return own, {C: 1, D: 0, NO_MOVE: 2}[opponent]


EQUIVALENT_AT_TWO = [
    (lambda: ConditionalCooperator(threshold=1), TitForTat),
    (ConditionalCooperator, TitForTat),  # default threshold = all others = 1
    (NPlayerGrimTrigger, GrimTrigger),
    (lambda: NPlayerGrimTrigger(threshold=1), GrimTrigger),
    (NPlayerWinStayLoseShift, WinStayLoseShift),  # default aspiration = (0 + 3 + 1 + 4) / 4 = 2
    (lambda: NPlayerWinStayLoseShift(aspiration=3), WinStayLoseShift),  # any aspiration in (P, R] = (1, 3]
    (lambda: NPlayerWinStayLoseShift(aspiration=1.01), WinStayLoseShift),
    (NPlayerAlwaysCooperate, lambda: get_strategy("always_cooperate")),
    (NPlayerAlwaysDefect, lambda: get_strategy("always_defect")),
    (lambda: NPlayerRandom(p=0.3), lambda: Random(p=0.3)),
]
ALL_OBSERVATIONS = [(own, opponent) for own in (C, D, NO_MOVE) for opponent in (C, D, NO_MOVE)]


@st.composite
def two_player_games(draw):
    rounds = draw(st.integers(1, 10))
    opponent = draw(st.lists(st.sampled_from([C, D]), min_size=rounds, max_size=rounds))
    uniforms = draw(st.lists(st.floats(0.0, 1.0, exclude_max=True, allow_nan=False), min_size=rounds, max_size=rounds))
    start = draw(st.sampled_from(ALL_OBSERVATIONS))
    return opponent, uniforms, start


@pytest.mark.parametrize(("make_n_player", "make_two_player"), EQUIVALENT_AT_TWO)
@settings(max_examples=50, deadline=None)
@given(data=two_player_games())
def test_n_equals_two_plays_as_the_two_player_strategy(make_n_player, make_two_player, data):
    opponent_moves, uniforms, start = data
    n_player, two_player = make_n_player(), make_two_player()
    n_player.reset()
    two_player.reset()
    observation = start
    for opponent, uniform in zip(opponent_moves, uniforms, strict=True):
        expected = two_player.act(observation, uniform=uniform)
        assert n_player.act(to_n_player(observation), IPD, uniform=uniform) == expected
        observation = (expected, opponent)


@pytest.mark.parametrize(("make_n_player", "make_two_player"), EQUIVALENT_AT_TWO)
def test_n_equals_two_agrees_on_every_observation(make_n_player, make_two_player):
    n_player, two_player = make_n_player(), make_two_player()
    observations = np.array(ALL_OBSERVATIONS)
    translated = np.array([to_n_player(o) for o in ALL_OBSERVATIONS])
    for u in (0.0, 0.29, 0.31, 0.99):
        uniforms = np.full(len(observations), u)
        expected, _ = two_player.act_batch(observations, two_player.initial_memory(len(observations)), uniforms)
        actions, _ = n_player.act_batch(translated, n_player.initial_memory(len(translated)), uniforms, IPD)
        np.testing.assert_array_equal(actions, expected)


@pytest.mark.parametrize("aspiration", [0.5, 1.0, 3.5])
def test_win_stay_lose_shift_is_pavlov_only_for_an_aspiration_in_p_r(aspiration):
    # At or below P = 1 mutual defection is a "win" (it stays D); above R = 3 mutual cooperation is a "loss".
    n_player = NPlayerWinStayLoseShift(aspiration=aspiration)
    observations = np.array([to_n_player(o) for o in ALL_OBSERVATIONS])
    actions, _ = n_player.act_batch(observations, n_player.initial_memory(9), np.zeros(9), IPD)
    pavlov, _ = WinStayLoseShift().act_batch(np.array(ALL_OBSERVATIONS), np.zeros((9, 0), np.int64), np.zeros(9))
    assert not np.array_equal(actions, pavlov)


# ------------------------------------------------------------------------------------------------- vectorised
@st.composite
def n_player_games(draw):
    num_players = draw(st.sampled_from([3, 4, 5]))
    n = draw(st.integers(1, 6))
    rounds = draw(st.integers(1, 8))
    counts = st.integers(0, num_players - 1)
    others = draw(st.lists(st.lists(counts, min_size=rounds, max_size=rounds), min_size=n, max_size=n))
    unit = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)
    uniforms = draw(st.lists(st.lists(unit, min_size=rounds, max_size=rounds), min_size=n, max_size=n))
    start = st.one_of(st.just((NO_MOVE, num_players)), st.tuples(st.sampled_from([C, D]), counts))
    starts = draw(st.lists(start, min_size=n, max_size=n))
    return GAMES[num_players], np.array(others), np.array(uniforms), np.array(starts)


STRATEGY_FACTORIES = {
    "always_cooperate": NPlayerAlwaysCooperate,
    "always_defect": NPlayerAlwaysDefect,
    "random": lambda: NPlayerRandom(p=0.4),
    "conditional_cooperator(K=1)": lambda: ConditionalCooperator(threshold=1),
    "conditional_cooperator": ConditionalCooperator,
    "grim_trigger(K=2)": lambda: NPlayerGrimTrigger(threshold=2),
    "grim_trigger": NPlayerGrimTrigger,
    "win_stay_lose_shift": NPlayerWinStayLoseShift,
    "win_stay_lose_shift(1.2)": lambda: NPlayerWinStayLoseShift(aspiration=1.2),
}


@pytest.mark.parametrize("label", sorted(STRATEGY_FACTORIES))
@settings(max_examples=40, deadline=None)
@given(data=n_player_games())
def test_act_batch_equals_one_game_at_a_time(label, data):
    game, others, uniforms, starts = data
    n, rounds = others.shape
    strategy = STRATEGY_FACTORIES[label]()

    observations, memory, batch_actions = starts, strategy.initial_memory(n), []
    for t in range(rounds):
        actions, memory = strategy.act_batch(observations, memory, uniforms[:, t], game)
        assert actions.dtype == np.int64 and actions.shape == (n,)
        batch_actions.append(actions)
        observations = np.stack([actions, others[:, t]], axis=1)
    batch_transcripts = np.stack(batch_actions, axis=1)

    for i in range(n):
        transcript = play(strategy, game, list(others[i]), list(uniforms[i]), start=tuple(starts[i]))
        assert [own for own, _ in transcript] == list(batch_transcripts[i])


@pytest.mark.parametrize("name", sorted(N_PLAYER_STRATEGIES))
def test_act_batch_is_pure(name):
    strategy = build(name)
    rng = np.random.default_rng(0)
    observations = np.stack([rng.integers(0, 3, size=50), rng.integers(0, 5, size=50)], axis=1)
    memory = strategy.initial_memory(50)
    if memory.shape[1]:
        memory[:] = rng.integers(0, 2, size=memory.shape)
    saved_observations, saved_memory = observations.copy(), memory.copy()
    uniforms = rng.random(50)
    first = strategy.act_batch(observations, memory, uniforms, PUBLIC_GOODS_4)
    second = strategy.act_batch(observations, memory, uniforms, PUBLIC_GOODS_4)
    np.testing.assert_array_equal(observations, saved_observations)
    np.testing.assert_array_equal(memory, saved_memory)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert set(np.unique(first[0])) <= {C, D}


@pytest.mark.parametrize("name", sorted(N_PLAYER_STRATEGIES))
def test_deterministic_strategies_ignore_the_uniforms(name):
    strategy = build(name)
    observations = np.array([[own, k] for own in (C, D, NO_MOVE) for k in range(5)])
    memory = strategy.initial_memory(len(observations))
    low, _ = strategy.act_batch(observations, memory, np.zeros(len(observations)), PUBLIC_GOODS_4)
    high, _ = strategy.act_batch(observations, memory, np.full(len(observations), 0.999), PUBLIC_GOODS_4)
    assert np.array_equal(low, high) == (not strategy.stochastic)


def test_stochastic_strategy_reproduces_with_the_same_uniforms():
    uniforms = np.random.default_rng(3).random((200,))
    observations = np.tile([[C, 2]], (200, 1))
    first, _ = NPlayerRandom(p=0.6).act_batch(observations, np.zeros((200, 0), np.int64), uniforms, PUBLIC_GOODS_4)
    second, _ = NPlayerRandom(p=0.6).act_batch(observations, np.zeros((200, 0), np.int64), uniforms, PUBLIC_GOODS_4)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, (uniforms >= 0.6).astype(np.int64))
    # The one-game API draws its own uniforms from the reset seed: same seed, same moves.
    a, b = NPlayerRandom(), NPlayerRandom()
    a.reset(seed=11)
    b.reset(seed=11)
    moves = [a.act([C, 2], PUBLIC_GOODS_4) for _ in range(40)]
    assert moves == [b.act([C, 2], PUBLIC_GOODS_4) for _ in range(40)]
    assert set(moves) == {C, D}


def test_one_instance_plays_games_of_different_sizes():
    strategy = NPlayerGrimTrigger()  # threshold "all others" is resolved per game
    assert strategy.act_batch(np.array([[C, 2]]), strategy.initial_memory(1), np.zeros(1), VOLUNTEER_3)[0][0] == C
    assert strategy.act_batch(np.array([[C, 2]]), strategy.initial_memory(1), np.zeros(1), PUBLIC_GOODS_4)[0][0] == D


def test_act_batch_handles_zero_games():
    strategy = NPlayerGrimTrigger()
    actions, memory = strategy.act_batch(
        np.zeros((0, 2), dtype=np.int64), strategy.initial_memory(0), np.zeros(0), PUBLIC_GOODS_4
    )
    assert actions.shape == (0,) and memory.shape == (0, 1)


# ------------------------------------------------------------------------------------------------- validation
def test_bad_batch_inputs_are_rejected():
    strategy = NPlayerGrimTrigger()
    memory = strategy.initial_memory(2)
    zeros = np.zeros(2)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        strategy.act_batch(np.zeros((2, 3), dtype=np.int64), memory, zeros, PUBLIC_GOODS_4)
    with pytest.raises(ValueError, match="integers"):
        strategy.act_batch(np.zeros((2, 2)), memory, zeros, PUBLIC_GOODS_4)
    with pytest.raises(ValueError, match=r"others_cooperated must be in 0 \.\. 3 or 4 .* got 5"):
        strategy.act_batch(np.array([[0, 5], [0, 0]]), memory, zeros, PUBLIC_GOODS_4)
    with pytest.raises(ValueError, match="got -1"):
        strategy.act_batch(np.array([[0, -1], [0, 0]]), memory, zeros, PUBLIC_GOODS_4)
    with pytest.raises(ValueError, match=r"own_previous must be 0 \(C\), 1 \(D\) or 2 .* got 3"):
        strategy.act_batch(np.array([[3, 0], [0, 0]]), memory, zeros, PUBLIC_GOODS_4)
    with pytest.raises(ValueError, match="initial_memory"):
        strategy.act_batch(np.zeros((2, 2), dtype=np.int64), np.zeros((2, 0), np.int64), zeros, PUBLIC_GOODS_4)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        strategy.act_batch(np.zeros((2, 2), dtype=np.int64), memory, np.array([0.5, 1.0]), PUBLIC_GOODS_4)
    with pytest.raises(TypeError, match="Schelling diagram"):
        strategy.act_batch(np.zeros((2, 2), dtype=np.int64), memory, zeros, object())
    with pytest.raises(ValueError, match="num_players must be an integer >= 2, got 1"):
        strategy.act_batch(np.zeros((2, 2), dtype=np.int64), memory, zeros, Diagram(1, np.zeros(1), np.zeros(1)))


def test_win_stay_lose_shift_rejects_a_diagram_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"num_players = 4 entries, got shapes \(3,\) and \(4,\)"):
        NPlayerWinStayLoseShift().act([C, 1], Diagram(4, np.zeros(3), np.zeros(4)))


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: NPlayerRandom(p=1.5), r"p \(probability of cooperating\) must be a probability in \[0, 1\], got 1.5"),
        (lambda: NPlayerRandom(p=float("nan")), r"got nan"),
        (lambda: ConditionalCooperator(threshold=-1), r"threshold \(K\) must be a non-negative integer .* got -1"),
        (lambda: ConditionalCooperator(threshold=1.5), r"got 1.5"),
        (lambda: ConditionalCooperator(threshold=True), r"got True"),
        (lambda: NPlayerGrimTrigger(threshold="all"), r"got 'all'"),
        (lambda: NPlayerWinStayLoseShift(aspiration=float("inf")), r"aspiration must be a finite number .* got inf"),
        (lambda: NPlayerWinStayLoseShift(aspiration="2"), r"got '2'"),
        (lambda: get_n_player_strategy("conditional_cooperator", threshold=-2), r"got -2"),
    ],
)
def test_bad_parameters_raise_value_error(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize("strategy", [ConditionalCooperator(threshold=3), NPlayerGrimTrigger(threshold=3)])
def test_threshold_above_the_number_of_others_is_rejected_when_played(strategy):
    with pytest.raises(ValueError, match=r"threshold must be at most the number of other players, 2 .* got 3"):
        strategy.act([C, 2], VOLUNTEER_3)
    assert strategy.act([C, 3], PUBLIC_GOODS_4) == C  # fine in a 4-player game


def test_repr_shows_parameters():
    assert repr(NPlayerAlwaysDefect()) == "NPlayerAlwaysDefect()"
    assert repr(NPlayerRandom(p=0.3)) == "NPlayerRandom(p=0.3)"
    assert repr(ConditionalCooperator()) == "ConditionalCooperator(threshold=None)"
    assert repr(NPlayerGrimTrigger(threshold=2)) == "NPlayerGrimTrigger(threshold=2)"
    assert repr(NPlayerWinStayLoseShift(aspiration=2)) == "NPlayerWinStayLoseShift(aspiration=2.0)"


# ------------------------------------------------------------------------------------------------- metadata, lookup
EXPECTED_METADATA = {
    "always_cooperate": (0, False, C),
    "always_defect": (0, False, D),
    "random": (0, True, None),
    "conditional_cooperator": (1, False, None),
    "win_stay_lose_shift": (1, False, None),
    "grim_trigger": (float("inf"), False, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_METADATA))
def test_metadata(name):
    cls = N_PLAYER_STRATEGIES[name]
    assert cls.name == name
    assert (cls.memory_depth, cls.stochastic, cls.initial_move) == EXPECTED_METADATA[name]
    assert cls.__doc__ and len(cls.__doc__.split()) > 15
    strategy = build(name)
    assert isinstance(strategy, NPlayerStrategy)
    assert not isinstance(strategy, Strategy)  # a different family, not a two-player strategy


def test_every_strategy_is_listed_and_filtered():
    assert list_n_player_strategies() == sorted(EXPECTED_METADATA)
    assert list_n_player_strategies(stochastic=True) == ["random"]
    assert list_n_player_strategies(memory_depth=0) == ["always_cooperate", "always_defect", "random"]
    assert list_n_player_strategies(memory_depth=1, stochastic=False) == [
        "conditional_cooperator",
        "win_stay_lose_shift",
    ]
    assert NPlayerRandom(p=1.0).stochastic is False


@pytest.mark.parametrize(
    ("key", "cls"),
    [
        ("conditional cooperator", ConditionalCooperator),
        ("Reciprocator", ConditionalCooperator),
        ("tit-for-tat", ConditionalCooperator),
        ("grudger", NPlayerGrimTrigger),
        ("Pavlov", NPlayerWinStayLoseShift),
        ("allc", NPlayerAlwaysCooperate),
        ("free_rider", NPlayerAlwaysDefect),
        ("random", NPlayerRandom),
    ],
)
def test_lookup_by_name_and_alias_in_both_registries(key, cls):
    assert type(get_n_player_strategy(key)) is cls
    assert type(make_n_player_opponent(key)) is cls  # registered with the envs by importing the package


def test_lookup_with_parameters_objects_and_unknown_names():
    assert get_n_player_strategy("grim_trigger", threshold=2).threshold == 2
    assert get_n_player_strategy("wsls", aspiration=1.5).aspiration == 1.5
    strategy = ConditionalCooperator()
    assert get_n_player_strategy(strategy) is strategy
    with pytest.raises(TypeError, match="'treshold' \\(did you mean 'threshold'\\?\\)"):
        get_n_player_strategy("conditional_cooperator", treshold=2)
    with pytest.raises(KeyError) as error:
        get_n_player_strategy("tit_for_two_tats")
    for name in N_PLAYER_STRATEGIES:
        assert name in str(error.value)
