"""Tests for the classic fixed strategies: transcripts, vectorised = single game, metadata, lookup, validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moralgym.agents.strategies import (
    DEFAULT_GENEROSITY,
    STRATEGIES,
    Alternator,
    AlwaysCooperate,
    AlwaysDefect,
    GenerousTitForTat,
    GrimTrigger,
    MemoryOne,
    Random,
    Strategy,
    SuspiciousTitForTat,
    TitForTat,
    TitForTwoTats,
    WinStayLoseShift,
    get_strategy,
    list_strategies,
    nowak_sigmund_generosity,
)
from moralgym.envs.games import COOPERATE as C
from moralgym.envs.games import DEFECT as D
from moralgym.envs.games import NO_MOVE, get_game
from moralgym.envs.opponents import OpponentStrategy, make_opponent

README = Path(__file__).resolve().parents[1] / "README.md"


def play(strategy: Strategy, other_moves, uniforms=None, start=(NO_MOVE, NO_MOVE)) -> list[tuple[int, int]]:
    """One game through the single-game API: ``strategy`` against a fixed sequence of the other's moves.

    ``start`` is the round-one observation (``NO_MOVE`` twice, or the paper's random fake history).
    """
    strategy.reset()
    uniforms = [0.5] * len(other_moves) if uniforms is None else uniforms
    observation, transcript = start, []
    for other, uniform in zip(other_moves, uniforms, strict=True):
        own = strategy.act(observation, uniform=uniform)
        transcript.append((own, other))
        observation = (own, other)
    return transcript


def build(name: str) -> Strategy:
    """A default instance of each registered class (the generic memory-one one needs its probabilities)."""
    if name == "memory_one":
        return MemoryOne(0.9, 0.2, 0.6, 0.1, p_first=0.5)
    return STRATEGIES[name]()


OTHER = [C, D, C, D, D, C, C]


# ------------------------------------------------------------------------------------------------- transcripts
def test_always_cooperate_transcript():
    assert play(AlwaysCooperate(), OTHER) == [(C, C), (C, D), (C, C), (C, D), (C, D), (C, C), (C, C)]


def test_always_defect_transcript():
    assert play(AlwaysDefect(), OTHER) == [(D, C), (D, D), (D, C), (D, D), (D, D), (D, C), (D, C)]


def test_random_transcript_cooperates_iff_uniform_below_p():
    uniforms = [0.1, 0.7, 0.49, 0.5, 0.99, 0.0, 0.3]
    assert play(Random(), OTHER, uniforms) == [(C, C), (D, D), (C, C), (D, D), (D, D), (C, C), (C, C)]
    assert play(Random(p=0.2), OTHER, uniforms) == [(C, C), (D, D), (D, C), (D, D), (D, D), (C, C), (D, C)]


def test_tit_for_tat_transcript():
    assert play(TitForTat(), OTHER) == [(C, C), (C, D), (D, C), (C, D), (D, D), (D, C), (C, C)]


def test_suspicious_tit_for_tat_transcript():
    assert play(SuspiciousTitForTat(), OTHER) == [(D, C), (C, D), (D, C), (C, D), (D, D), (D, C), (C, C)]


def test_tit_for_two_tats_transcript():
    assert play(TitForTwoTats(), OTHER) == [(C, C), (C, D), (C, C), (C, D), (C, D), (D, C), (C, C)]
    # Three defections in a row: the second and third are each answered, one round later.
    assert play(TitForTwoTats(), [D, D, D, C, C]) == [(C, D), (C, D), (D, D), (D, C), (C, C)]


def test_generous_tit_for_tat_transcript():
    uniforms = [0.9, 0.2, 0.9, 0.5, 0.3, 0.1, 0.9]
    # After the other's D: forgives iff u < q = 1/3 (rounds 5 and 6), retaliates otherwise (round 3).
    assert play(GenerousTitForTat(q=1 / 3), OTHER, uniforms) == [
        (C, C),
        (C, D),
        (D, C),
        (C, D),
        (C, D),
        (C, C),
        (C, C),
    ]


def test_grim_trigger_transcript():
    assert play(GrimTrigger(), OTHER) == [(C, C), (C, D), (D, C), (D, D), (D, D), (D, C), (D, C)]
    assert play(GrimTrigger(), [C, C, C]) == [(C, C), (C, C), (C, C)]


def test_win_stay_lose_shift_transcript():
    # CC win: stay C; CD loss: shift to D; DC win: stay D; DD loss: shift to C; CD loss: shift to D; DC: stay D.
    assert play(WinStayLoseShift(), OTHER) == [(C, C), (C, D), (D, C), (D, D), (C, D), (D, C), (D, C)]


def test_alternator_transcript():
    assert play(Alternator(), OTHER) == [(C, C), (D, D), (C, C), (D, D), (C, D), (D, C), (C, C)]


def test_memory_one_transcript():
    strategy = MemoryOne(p_cc=0.9, p_cd=0.2, p_dc=0.6, p_dd=0.1, p_first=0.5)
    uniforms = [0.4, 0.85, 0.5, 0.15, 0.05, 0.3, 0.95]
    # Thresholds used: p_first .5 -> C; after CC .9 -> C; after CD .2 -> D (u=.5); after DC .6 -> C (u=.15);
    # after CD .2 -> C (u=.05); after CD .2 -> D (u=.3); after DC .6 -> D (u=.95).
    assert play(strategy, OTHER, uniforms) == [(C, C), (C, D), (D, C), (C, D), (C, D), (D, C), (D, C)]


# ------------------------------------------------------------------------------------------------- opening moves
@pytest.mark.parametrize(
    ("strategy", "opening"),
    [
        (TitForTat(), C),
        (SuspiciousTitForTat(), D),
        (Alternator(), C),
        (WinStayLoseShift(), C),
        (GenerousTitForTat(), C),
        (TitForTwoTats(), C),
        (GrimTrigger(), C),
        (AlwaysCooperate(), C),
        (AlwaysDefect(), D),
    ],
)
def test_opening_move_without_history(strategy, opening):
    strategy.reset()
    assert strategy.act([NO_MOVE, NO_MOVE], uniform=0.99) == opening


@pytest.mark.parametrize("strategy", [TitForTat(), SuspiciousTitForTat()])
@pytest.mark.parametrize("own_fake", [C, D])
@pytest.mark.parametrize("other_fake", [C, D])
def test_tit_for_tat_copies_the_random_fake_history(strategy, own_fake, other_fake):
    strategy.reset()
    assert strategy.act([own_fake, other_fake]) == other_fake


def test_fake_history_is_treated_as_real():
    fake = (C, D)  # the other "defected" in the fake round before round one
    assert play(GrimTrigger(), [C, C], start=fake) == [(D, C), (D, C)]
    assert play(TitForTwoTats(), [D, C], start=fake) == [(C, D), (D, C)]
    assert play(WinStayLoseShift(), [C, C], start=fake) == [(D, C), (D, C)]
    assert play(Alternator(), [C, C], start=fake) == [(D, C), (C, C)]


def test_no_move_for_the_other_only_replays_the_opening():
    # The other's every move so far was illegal: the env still reports "no move yet" for them.
    for strategy, opening in [(TitForTat(), C), (SuspiciousTitForTat(), D), (WinStayLoseShift(), C)]:
        strategy.reset()
        assert strategy.act([D, NO_MOVE]) == opening


# ------------------------------------------------------------------------------------------------- vectorised
@st.composite
def games(draw):
    n = draw(st.integers(1, 6))
    rounds = draw(st.integers(1, 8))
    other = draw(st.lists(st.lists(st.sampled_from([C, D]), min_size=rounds, max_size=rounds), min_size=n, max_size=n))
    unit = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)
    uniforms = draw(st.lists(st.lists(unit, min_size=rounds, max_size=rounds), min_size=n, max_size=n))
    starts = draw(
        st.lists(st.sampled_from([(NO_MOVE, NO_MOVE), (C, C), (C, D), (D, C), (D, D)]), min_size=n, max_size=n)
    )
    return np.array(other), np.array(uniforms), np.array(starts)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(max_examples=60, deadline=None)
@given(data=games())
def test_act_batch_equals_one_game_at_a_time(name, data):
    other, uniforms, starts = data
    n, rounds = other.shape
    strategy = build(name)

    observations, memory, batch_actions = starts, strategy.initial_memory(n), []
    for t in range(rounds):
        actions, memory = strategy.act_batch(observations, memory, uniforms[:, t])
        assert actions.dtype == np.int64 and actions.shape == (n,)
        batch_actions.append(actions)
        observations = np.stack([actions, other[:, t]], axis=1)
    batch_transcripts = np.stack(batch_actions, axis=1)

    for i in range(n):
        transcript = play(strategy, list(other[i]), list(uniforms[i]), start=tuple(starts[i]))
        assert [own for own, _ in transcript] == list(batch_transcripts[i])


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_act_batch_is_pure(name):
    strategy = build(name)
    rng = np.random.default_rng(0)
    observations = rng.integers(0, 3, size=(50, 2))
    memory = strategy.initial_memory(50)
    if memory.shape[1]:
        memory[:] = rng.integers(0, 2, size=memory.shape)
    saved_observations, saved_memory = observations.copy(), memory.copy()
    uniforms = rng.random(50)
    first = strategy.act_batch(observations, memory, uniforms)
    second = strategy.act_batch(observations, memory, uniforms)
    np.testing.assert_array_equal(observations, saved_observations)
    np.testing.assert_array_equal(memory, saved_memory)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert set(np.unique(first[0])) <= {C, D}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_deterministic_strategies_ignore_the_uniforms(name):
    strategy = build(name)
    observations = np.array([[a, b] for a in (C, D, NO_MOVE) for b in (C, D, NO_MOVE)])
    memory = strategy.initial_memory(len(observations))
    low, _ = strategy.act_batch(observations, memory, np.zeros(len(observations)))
    high, _ = strategy.act_batch(observations, memory, np.full(len(observations), 0.999))
    assert np.array_equal(low, high) == (not strategy.stochastic)


def test_act_batch_handles_zero_games():
    strategy = GrimTrigger()
    actions, memory = strategy.act_batch(np.zeros((0, 2), dtype=np.int64), strategy.initial_memory(0), np.zeros(0))
    assert actions.shape == (0,) and memory.shape == (0, 1)


def test_seeded_single_game_is_reproducible():
    first, second = Random(), Random()
    first.reset(seed=7)
    second.reset(seed=7)
    moves = [first.act([C, C]) for _ in range(30)]
    assert moves == [second.act([C, C]) for _ in range(30)]
    assert set(moves) == {C, D}


def test_bad_batch_inputs_are_rejected():
    strategy = TitForTwoTats()
    memory = strategy.initial_memory(2)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        strategy.act_batch(np.zeros((2, 3), dtype=np.int64), memory, np.zeros(2))
    with pytest.raises(ValueError, match="got -1"):
        strategy.act_batch(np.array([[0, -1], [0, 0]]), memory, np.zeros(2))
    with pytest.raises(ValueError, match="initial_memory"):
        strategy.act_batch(np.zeros((2, 2), dtype=np.int64), np.zeros((2, 0), dtype=np.int64), np.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        strategy.act_batch(np.zeros((2, 2), dtype=np.int64), memory, np.array([0.5, 1.0]))


# ------------------------------------------------------------------------------------------------- metadata
EXPECTED_METADATA = {
    "always_cooperate": (0, False),
    "always_defect": (0, False),
    "random": (0, True),
    "tit_for_tat": (1, False),
    "suspicious_tit_for_tat": (1, False),
    "generous_tit_for_tat": (1, True),
    "win_stay_lose_shift": (1, False),
    "alternator": (1, False),
    "memory_one": (1, True),
    "tit_for_two_tats": (2, False),
    "grim_trigger": (float("inf"), False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_METADATA))
def test_metadata(name):
    cls = STRATEGIES[name]
    assert cls.name == name
    assert (cls.memory_depth, cls.stochastic) == EXPECTED_METADATA[name]
    assert cls.__doc__ and len(cls.__doc__.split()) > 15
    assert isinstance(build(name), OpponentStrategy)


def test_every_strategy_is_listed():
    assert set(STRATEGIES) == set(EXPECTED_METADATA)
    assert list_strategies() == sorted(EXPECTED_METADATA)


def test_filter_by_metadata():
    assert list_strategies(stochastic=True) == ["generous_tit_for_tat", "memory_one", "random"]
    assert list_strategies(memory_depth=0) == ["always_cooperate", "always_defect", "random"]
    assert list_strategies(memory_depth=float("inf")) == ["grim_trigger"]
    assert list_strategies(memory_depth=1, stochastic=False) == [
        "alternator",
        "suspicious_tit_for_tat",
        "tit_for_tat",
        "win_stay_lose_shift",
    ]


def test_memory_one_instance_knows_whether_it_is_stochastic():
    assert MemoryOne(1, 0, 1, 0).stochastic is False
    assert MemoryOne(1, 0.5, 1, 0).stochastic is True
    assert Random(p=1.0).stochastic is False
    assert TitForTat().four_vector == (1.0, 0.0, 1.0, 0.0)
    assert WinStayLoseShift().four_vector == (1.0, 0.0, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------- lookup
@pytest.mark.parametrize(
    ("key", "cls"),
    [
        ("tit_for_tat", TitForTat),
        ("TFT", TitForTat),
        ("Tit-for-Tat", TitForTat),
        ("tit for tat", TitForTat),
        ("stft", SuspiciousTitForTat),
        ("TF2T", TitForTwoTats),
        ("gtft", GenerousTitForTat),
        ("grudger", GrimTrigger),
        ("Spiteful", GrimTrigger),
        ("pavlov", WinStayLoseShift),
        ("WSLS", WinStayLoseShift),
        ("allc", AlwaysCooperate),
        ("alld", AlwaysDefect),
        ("alternator", Alternator),
        ("random", Random),
    ],
)
def test_lookup_by_name_and_alias(key, cls):
    assert type(get_strategy(key)) is cls
    assert type(make_opponent(key)) is cls


def test_lookup_with_parameters_and_objects():
    assert get_strategy("random", p=0.3).p == 0.3
    assert get_strategy("gtft", q=0.1).four_vector == (1.0, 0.1, 1.0, 0.1)
    assert get_strategy("memory_one", p_cc=1, p_cd=0, p_dc=0, p_dd=1).four_vector == (1.0, 0.0, 0.0, 1.0)
    tft = TitForTat()
    assert get_strategy(tft) is tft


def test_unknown_name_lists_known_names():
    with pytest.raises(KeyError) as error:
        get_strategy("tit_for_three_tats")
    message = str(error.value)
    assert "tit_for_three_tats" in message
    for name in STRATEGIES:
        assert name in message


# ------------------------------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: Random(p=1.5), r"p \(probability of cooperating\) must be a probability in \[0, 1\], got 1.5"),
        (lambda: Random(p=-0.1), r"got -0.1"),
        (lambda: Random(p=float("nan")), r"got nan"),
        (lambda: Random(p="0.5"), r"got '0.5'"),
        (lambda: Random(p=True), r"got True"),
        (lambda: GenerousTitForTat(q=2), r"q .* must be a probability in \[0, 1\], got 2"),
        (lambda: MemoryOne(1, 0, 1, 1.2), r"p_dd must be a probability in \[0, 1\], got 1.2"),
        (lambda: MemoryOne(1, 0, 1, 0, p_first=-1), r"p_first .* got -1"),
        (lambda: get_strategy("random", p=3), r"got 3"),
    ],
)
def test_bad_parameters_raise_value_error(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_repr_shows_parameters():
    assert repr(TitForTat()) == "TitForTat()"
    assert repr(Random(p=0.3)) == "Random(p=0.3)"
    assert repr(GenerousTitForTat(q=0.25)) == "GenerousTitForTat(q=0.25)"
    assert repr(MemoryOne(1, 0, 0, 1)) == "MemoryOne(p_cc=1.0, p_cd=0.0, p_dc=0.0, p_dd=1.0, p_first=1.0)"


def test_generous_tit_for_tat_default_follows_nowak_sigmund():
    # min(1 - (T-R)/(R-S), (R-P)/(T-P)) with moralgym's IPD T=4, R=3, P=1, S=0 = min(2/3, 2/3).
    assert math.isclose(DEFAULT_GENEROSITY, 2 / 3)
    assert math.isclose(GenerousTitForTat().q, 2 / 3)
    assert math.isclose(GenerousTitForTat.for_game("ipd").q, 2 / 3)
    # Axelrod's payoffs (T=5) give the better known 1/3.
    assert math.isclose(nowak_sigmund_generosity(temptation=5, reward=3, punishment=1, sucker=0), 1 / 3)
    with pytest.raises(ValueError, match="stag_hunt"):
        GenerousTitForTat.for_game(get_game("stag_hunt"))


# ------------------------------------------------------------------------------------------------- docs
def test_readme_lists_every_strategy():
    """The README's strategy table names every registered strategy (its examples run in tests/test_readme.py)."""
    text = README.read_text()
    for name in STRATEGIES:
        assert f"`{name}`" in text
