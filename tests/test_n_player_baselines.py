"""Tabular Q-learning and Stable-Baselines3 on the N-player games, learning what the diagram says they should.

The game: the 3-player linear public goods game (endowment e = 1, multiplier r = 1.6), the learner in seat 0 and
two Random co-players. Random co-players ignore the history, so the learner's move changes only its own next
"previous move", which nothing reads: the future is the same whatever it does, and at any discount the greedy
action in each state is the one with the higher expected reward *this round*. With k of the others cooperating:

- Game reward: D - C = (e + r e k / N) - r e (k + 1) / N = e (1 - r / N) = 0.467 > 0 for every k: defect.
- Utilitarian: the collective payoff gains r e - e = 0.6 > 0 from a contribution (the r e shared by all, minus the
  e kept): cooperate, for every k, because the co-players' share (r e (N - 1) / N = 1.07) outweighs the own
  loss (0.467).
- Game+Deontological (share norm, xi = 3): D - C = 0.467 - 3 k' / 2, k' the others who cooperated last round (what
  the learner sees): defect only after nobody cooperated (k' = 0), cooperate after one or two did.
- Deontological: C is 0, D is -1.5 k' (a tie at k' = 0, which greedy ties give to C): cooperate.

States ``own * (N + 1) + others``; from random initial states the learner sees own in {C, D} and others in 0..2.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import moralgym  # noqa: F401 - registers the envs
from moralgym.agents.baselines import QLearningAgent, QLearningConfig, SB3Agent, train_q_learning
from moralgym.agents.runner import run_episodes
from moralgym.envs.n_player import NPlayerGameEnv, get_n_player_game
from moralgym.evaluation import evaluate

PLAYERS = 3
#: States (own, others) = (C, 0), (C, 1), (C, 2), (D, 0), (D, 1), (D, 2): own * 4 + others.
PLAYED_STATES = [0, 1, 2, 4, 5, 6]
SETTINGS = {"game": "public_goods", "num_players": PLAYERS, "opponent": "random", "discount": 0.95}


def greedy(result) -> list[int]:
    return result.agent().greedy_actions()[PLAYED_STATES].tolist()


@pytest.mark.parametrize("backend", ["vector", "numpy"])
@pytest.mark.parametrize(
    ("reward", "expected"),
    [
        ("game", [1, 1, 1, 1, 1, 1]),
        ("utilitarian", [0, 0, 0, 0, 0, 0]),
        ("game_deontological", [1, 0, 0, 1, 0, 0]),
        ("deontological", [0, 0, 0, 0, 0, 0]),
    ],
)
def test_learns_what_the_diagram_says_against_random_co_players(backend, reward, expected):
    result = train_q_learning(reward=reward, backend=backend, total_steps=20_000, seed=3, **SETTINGS)
    assert greedy(result) == expected
    assert result.q_tables[0].shape == (3 * (PLAYERS + 1), 2)


def test_the_learned_values_are_the_diagram_s_differences():
    # Deontological: Q(s, D) - Q(s, C) = -3 k' / 2 exactly once learned (the future is the same either way).
    result = train_q_learning(reward="deontological", backend="numpy", total_steps=20_000, seed=0, **SETTINGS)
    q = result.q_tables[0]
    assert (q[PLAYED_STATES, 1] - q[PLAYED_STATES, 0]) == pytest.approx([0, -1.5, -3, 0, -1.5, -3], abs=1e-6)


@pytest.mark.parametrize("backend", ["vector", "numpy"])
def test_a_reward_schedule_advances_with_the_episodes(backend):
    # Game for the first 500 episodes, Utilitarian after: 100,000 steps over 64 games of 2 rounds are 781 episodes
    # each, so the learner ends up cooperating, which it does only if finished games are reset (episodes counted).
    settings = {**SETTINGS, "num_rounds": 2, "num_envs": 64}
    result = train_q_learning(reward="game_then_utilitarian", backend=backend, total_steps=100_000, seed=0, **settings)
    assert greedy(result) == [0, 0, 0, 0, 0, 0]
    assert result.metrics[-1]["reward"] > 3.6  # collective payoffs: 3.6 .. 4.8 when the learner contributes


def test_single_agent_env_backend_learns_too():
    settings = {**SETTINGS, "discount": 0.5}
    result = train_q_learning(reward="game_deontological", backend="single", total_steps=4_000, seed=0, **settings)
    assert greedy(result) == [1, 0, 0, 1, 0, 0]


def test_seeded_training_is_reproducible_and_the_config_records_the_game_size():
    a = train_q_learning(reward="game", backend="numpy", total_steps=3_000, seed=7, game="public_goods")
    b = train_q_learning(reward="game", backend="numpy", total_steps=3_000, seed=7, game="public_goods")
    np.testing.assert_array_equal(a.q_tables[0], b.q_tables[0])
    assert a.metrics == b.metrics and a.config.num_players == 4 and a.agent().num_players == 4


def test_a_trained_learner_is_a_seat_and_a_co_player(tmp_path):
    agent = train_q_learning(reward="utilitarian", total_steps=10_000, seed=0, **SETTINGS).agent()
    result = evaluate(agent, games=("public_goods",), num_players=PLAYERS, num_episodes=3, num_rounds=3)
    (row,) = result.summary
    assert row["cooperation_rate"] == 1.0 and row["regret_deontological"] == 0.0 and row["num_players"] == PLAYERS
    # As a co-player in the runner: three copies of the cooperating learner keep contributing.
    seats = {f"player_{seat}": agent for seat in range(PLAYERS)}
    records = run_episodes([NPlayerGameEnv("public_goods", PLAYERS, num_rounds=2)], seats, seeds=[0])
    assert {r.action for r in records} == {0}
    loaded = QLearningAgent.load(agent.save(tmp_path / "q.json"))
    np.testing.assert_array_equal(loaded.q_table, agent.q_table)
    assert loaded.num_players == PLAYERS and "num_players=3" in repr(loaded)


def test_a_table_is_refused_by_a_game_of_another_kind_or_size():
    two_player = train_q_learning(reward="game", total_steps=1_000, seed=0).agent()
    with pytest.raises(ValueError, match="trained on a two-player game and cannot read the states of a 3-player"):
        evaluate(two_player, games=("public_goods",), num_players=3, num_episodes=1, num_rounds=1)
    four = QLearningAgent(np.zeros((15, 2)), num_players=4)
    with pytest.raises(ValueError, match="trained on 4-player games.*num_players=3"):
        four.act([get_n_player_game("public_goods", 3)], np.zeros((1, 2), dtype=int))
    with pytest.raises(ValueError, match=r"shape \(12, 2\) \(3 \(N \+ 1\) states for N = 3"):
        QLearningAgent(np.zeros((9, 2)), num_players=3)


def test_config_errors_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match="'ipd' has two players, got num_players=3"):
        QLearningConfig(game="ipd", num_players=3)
    with pytest.raises(ValueError, match="opponent='self'.*name the co-players' strategy"):
        QLearningConfig(game="public_goods", opponent="self")
    with pytest.raises(KeyError, match="known two-player games: ipd.*N-player games: public_goods"):
        QLearningConfig(game="tennis")
    with pytest.raises(KeyError, match="unknown N-player strategy 'suspicious_tit_for_tat'"):
        QLearningConfig(game="public_goods", opponent="suspicious_tit_for_tat")
    with pytest.raises(ValueError, match="num_players must be an integer >= 2, got 1"):
        QLearningConfig(game="public_goods", num_players=1)


@pytest.mark.parametrize("algo", ["PPO", "DQN"])
def test_sb3_trains_on_an_n_player_id_and_is_evaluated_like_any_agent(algo):
    sb3 = pytest.importorskip("stable_baselines3")
    env = gymnasium.make("moralgym/PublicGoods-v0", num_players=PLAYERS, co_players="random", reward="utilitarian")
    kwargs = {"n_steps": 64, "batch_size": 32, "n_epochs": 1} if algo == "PPO" else {"learning_starts": 32}
    model = getattr(sb3, algo)("MlpPolicy", env, seed=0, device="cpu", **kwargs).learn(total_timesteps=128)
    agent = SB3Agent(model, name=algo.lower())
    actions = agent.act(None, np.array([[0, 0], [0, 2], [1, 1], [2, 3]]))
    assert actions.shape == (4,) and set(actions.tolist()) <= {0, 1}
    result = evaluate(agent, games=("public_goods",), num_players=PLAYERS, num_episodes=2, num_rounds=3)
    assert [row["num_players"] for row in result.summary] == [PLAYERS] and len(result.decisions) == 6


def test_sb3_vector_training_on_an_n_player_id():
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    envs = make_vec_env("moralgym/VolunteersDilemma-v0", n_envs=4, seed=0, env_kwargs={"num_players": 5})
    model = sb3.PPO("MlpPolicy", envs, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu").learn(64)
    assert model.num_timesteps == 64 and model.observation_space.nvec.tolist() == [3, 6]
