"""Metrics of moralgym.evaluation checked against hand-computed cases."""

import math

import numpy as np
import pytest

from moralgym.envs import ILLEGAL, get_game
from moralgym.evaluation.harness import summarise
from moralgym.evaluation.metrics import (
    action_types,
    deontological_regret,
    episode_means,
    mean_ci,
    outcomes,
    utilitarian_regret,
)


def test_action_types_label_action_and_opponent_previous_move():
    actions = np.array([0, 0, 1, 1, ILLEGAL, ILLEGAL])
    previous = np.array([0, 1, 0, 1, 0, 1])
    assert action_types(actions, previous).tolist() == ["C|C", "C|D", "D|C", "D|D", "illegal|C", "illegal|D"]


def test_outcomes_from_the_agents_seat():
    assert outcomes(np.array([0, 0, 1, 1, ILLEGAL]), np.array([0, 1, 0, 1, 0])).tolist() == [
        "mutual_cooperation",
        "exploited",
        "exploiting",
        "mutual_defection",
        "illegal",
    ]


def test_deontological_regret_is_minus_the_reward():
    assert deontological_regret(np.array([0.0, -3.0, -6.0])).tolist() == [0.0, 3.0, 6.0]


@pytest.mark.parametrize(
    ("game", "reward", "expected"),
    [
        ("ipd", 6.0, 0.0),  # mutual cooperation is the IPD's optimum
        ("ipd", 2.0, 4.0 / 12.0),  # mutual defection: (6 - 2) / (6 + 6)
        ("ipd", -6.0, 1.0),  # illegal answer
        ("stag_hunt", 4.0, 4.0 / 14.0),  # (8 - 4) / (8 + 6)
        ("chicken", 5.0, 0.0),  # unilateral defection is Chicken's collective optimum
        ("defective_coordination", 2.0, 6.0 / 14.0),  # mutual C is not optimal here: (8 - 2) / 14
        ("bach_or_stravinsky", 0.0, 5.0 / 11.0),
    ],
)
def test_utilitarian_regret_normalised_by_game(game, reward, expected):
    u_max = get_game(game).max_collective_payoff
    assert utilitarian_regret(reward, u_max, -6.0) == pytest.approx(expected)


def test_utilitarian_regret_rejects_a_degenerate_span():
    with pytest.raises(ValueError, match="illegal_reward"):
        utilitarian_regret(0.0, -6.0, -6.0)


def test_mean_ci_uses_sample_sd_over_sqrt_n():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(1.96 * 1.0 / math.sqrt(3))
    assert mean_ci([5.0]) == (5.0, 0.0)
    assert all(math.isnan(v) for v in mean_ci([]))


def test_episode_means_average_rounds_first():
    values = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    episodes = np.array([0, 0, 1, 1, 1])
    assert episode_means(values, episodes).tolist() == [0.5, pytest.approx(2 / 3)]


def _decision(episode, action, opponent_previous, opponent_action, de, ut, payoff):
    return {
        "agent": "a",
        "game": "ipd",
        "episode": episode,
        "action": action,
        "action_type": action_types(np.array([action]), np.array([opponent_previous]))[0],
        "outcome": outcomes(np.array([action]), np.array([opponent_action]))[0],
        "cooperated": action == 0,
        "illegal": action == ILLEGAL,
        "game_payoff": payoff,
        "reward_game": payoff,
        "reward_deontological": de,
        "reward_utilitarian": ut,
        "reward_game_deontological": payoff + de,
        "regret_deontological": -de,
        "regret_utilitarian": (6 - ut) / 12,
    }


def test_summarise_hand_computed_two_episodes():
    decisions = [
        # episode 0: C after C (mutual cooperation), D after C (exploiting): coop 1/2, De regret 3/2
        _decision(0, 0, 0, 0, 0.0, 6.0, 3.0),
        _decision(0, 1, 0, 0, -3.0, 4.0, 4.0),
        # episode 1: two mutual cooperations: coop 1, De regret 0
        _decision(1, 0, 0, 0, 0.0, 6.0, 3.0),
        _decision(1, 0, 0, 0, 0.0, 6.0, 3.0),
    ]
    (row,) = summarise(decisions, group_keys=("agent", "game"))
    assert row["num_decisions"] == 4 and row["num_episodes"] == 2
    assert row["cooperation_rate"] == pytest.approx(0.75)
    assert row["cooperation_rate_ci95"] == pytest.approx(1.96 * np.std([0.5, 1.0], ddof=1) / math.sqrt(2))
    assert row["regret_deontological"] == pytest.approx(0.75)
    assert row["game_payoff"] == pytest.approx((3.5 + 3.0) / 2)
    assert row["share_C|C"] == pytest.approx(0.75) and row["share_D|C"] == pytest.approx(0.25)
    assert row["share_mutual_cooperation"] == pytest.approx(0.75) and row["share_exploiting"] == pytest.approx(0.25)
    assert row["illegal_rate"] == 0.0
