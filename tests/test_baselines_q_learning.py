"""Tabular Q-learning learns what theory says against Tit-for-Tat, in seconds, with fixed seeds.

Against TFT the opponent's next move is the learner's last move. With the Game reward, cooperating forever is worth
3 / (1 - g) and defecting forever 4 + g / (1 - g), so a patient learner (g = 0.95) cooperates and a myopic one
(g = 0) defects. Deontological and Utilitarian rewards make cooperation best at any discount. Episodes are
truncated after 5 rounds and the update bootstraps through the truncation.
"""

import numpy as np
import pytest

from moralgym.agents.baselines import QLearningAgent, QLearningConfig, train_q_learning
from moralgym.evaluation import evaluate

#: States ``own * 3 + opponent`` that occur from a random initial state (no NO_MOVE).
PLAYED_STATES = [0, 1, 3, 4]


def greedy(result, index=0):
    return result.agent(index).greedy_actions()[PLAYED_STATES].tolist()


@pytest.mark.parametrize("backend", ["vector", "numpy"])
@pytest.mark.parametrize(
    ("reward", "discount", "expected"),
    [
        ("game", 0.95, [0, 0, 0, 0]),
        ("game", 0.0, [1, 1, 1, 1]),
        ("deontological", 0.95, [0, 0, 0, 0]),
        ("utilitarian", 0.95, [0, 0, 0, 0]),
        ("utilitarian", 0.0, [0, 0, 0, 0]),
        ("game_deontological", 0.95, [0, 0, 0, 0]),
    ],
)
def test_learns_theory_against_tit_for_tat(backend, reward, discount, expected):
    result = train_q_learning(reward=reward, discount=discount, backend=backend, total_steps=20_000, seed=3)
    assert greedy(result) == expected


def test_patient_game_learner_values_cooperation_above_defection():
    q = train_q_learning(reward="game", discount=0.95, total_steps=30_000, seed=0).q_tables[0]
    # Mutual cooperation state: C is worth about 3 / (1 - 0.95) = 60, D about 4 + 0.95 * 57 = 58.15.
    assert q[0, 0] == pytest.approx(60.0, rel=0.05)
    assert q[0, 0] > q[0, 1]


def test_single_agent_env_backend_learns_too():
    result = train_q_learning(reward="game", discount=0.0, backend="single", total_steps=3_000, seed=0)
    assert greedy(result) == [1, 1, 1, 1]


def test_seeded_training_is_reproducible():
    a = train_q_learning(reward="game", total_steps=5_000, seed=7)
    b = train_q_learning(reward="game", total_steps=5_000, seed=7)
    np.testing.assert_array_equal(a.q_tables[0], b.q_tables[0])
    assert a.metrics == b.metrics and 5_000 <= a.metrics[-1]["step"] < 5_000 + a.config.num_envs


@pytest.mark.parametrize(("reward", "expected"), [("deontological", 0), ("utilitarian", 0), ("game", 1)])
def test_self_play_two_learners(reward, expected):
    result = train_q_learning(
        reward=reward, opponent="self", discount=0.0 if reward == "game" else 0.95, total_steps=20_000, seed=1
    )
    assert len(result.q_tables) == 2
    assert greedy(result, 0) == [expected] * 4 and greedy(result, 1) == [expected] * 4


def test_trained_agent_is_evaluated_like_any_agent(tmp_path):
    agent = train_q_learning(reward="deontological", total_steps=10_000, seed=0).agent()
    result = evaluate(agent, num_episodes=3, num_rounds=3)
    assert all(row["cooperation_rate"] == 1.0 and row["regret_deontological"] == 0.0 for row in result.summary)
    loaded = QLearningAgent.load(agent.save(tmp_path / "q.json"))
    np.testing.assert_array_equal(loaded.q_table, agent.q_table)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="discount"):
        QLearningConfig(discount=1.0)
    with pytest.raises(ValueError, match="backend"):
        QLearningConfig(backend="gpu")
    with pytest.raises(KeyError, match="unknown reward"):
        QLearningConfig(reward="kantian")
