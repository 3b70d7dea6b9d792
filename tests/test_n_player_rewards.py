"""N-player moral rewards: each is the two-player reward at N = 2 on every input, hand-computed values for more
players, the Deontological norms, the social-preference rewards, the registry and the per-round tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from moralgym.envs import ILLEGAL, NO_MOVE, MatrixGameEnv, MoralRewardWrapper, RewardInputs, get_reward
from moralgym.envs.n_player import (
    N_PLAYER_COMPONENT_NAMES,
    NPlayerRewardInputs,
    get_n_player_game,
    get_n_player_reward,
    list_n_player_rewards,
    n_player_reward_components,
)
from moralgym.envs.n_player.rewards import NPlayerReward, reads_n_player_inputs
from moralgym.envs.n_player.rounds import LearnerRounds
from moralgym.envs.rewards import reward_components
from moralgym.envs.single_agent import SingleAgentMatrixGameEnv
from moralgym.envs.social_preferences import virtue_mixed

C, D = 0, 1
TWO_PLAYER_NAMES = [
    "game",
    "deontological",
    "utilitarian",
    "game_deontological",
    "inequity_aversion",
    "virtue_kindness",
    "virtue_equality",
    "virtue_mixed",
]


def every_two_player_round(seed: int = 0) -> RewardInputs:
    """Every (own action, partner action, partner's previous move) with random payoffs and episode sums."""
    own, other, previous = (
        np.array(v) for v in zip(*itertools.product([ILLEGAL, C, D], [ILLEGAL, C, D], [C, D, NO_MOVE]), strict=True)
    )
    rng = np.random.default_rng(seed)
    own_payoff = np.where(own == ILLEGAL, 0.0, rng.uniform(0, 5, own.shape))
    opponent_payoff = np.where(other == ILLEGAL, 0.0, rng.uniform(0, 5, own.shape))
    return RewardInputs(
        own,
        other,
        previous,
        own_payoff,
        opponent_payoff,
        own_cumulative_payoff=own_payoff + rng.uniform(0, 10, own.shape),
        opponent_cumulative_payoff=opponent_payoff + rng.uniform(0, 10, own.shape),
    )


# --------------------------------------------------------------------------------------------------- N = 2
@pytest.mark.parametrize("name", TWO_PLAYER_NAMES)
@pytest.mark.parametrize("norm", ["share", "any", "majority"])
def test_every_reward_is_the_two_player_reward_at_two_players(name, norm):
    inputs = every_two_player_round()
    two = get_reward(name, penalty=4.0, illegal_reward=-7.0)(inputs)
    n = get_n_player_reward(name, penalty=4.0, illegal_reward=-7.0, norm=norm)(
        NPlayerRewardInputs.from_two_player(inputs)
    )
    assert np.array_equal(n, two)
    assert n.shape == (27,)


@pytest.mark.parametrize("name", ["game_then_deontological", "game_then_utilitarian"])
def test_schedules_are_the_two_player_schedules_at_two_players(name):
    inputs = every_two_player_round(1)
    two = get_reward(name, switch_episode=3)
    n = get_n_player_reward(name, switch_episode=3)
    assert n.name == two.name
    for episode in (0, 2, 3, 10):
        assert n.at(episode).name == two.at(episode).name
        assert np.array_equal(n.at(episode)(NPlayerRewardInputs.from_two_player(inputs)), two.at(episode)(inputs))


def test_components_at_two_players_contain_the_two_player_components():
    inputs = every_two_player_round(2)
    components = n_player_reward_components(NPlayerRewardInputs.from_two_player(inputs))
    assert tuple(components) == N_PLAYER_COMPONENT_NAMES
    for name, values in reward_components(inputs).items():
        assert np.array_equal(components[name], values)


# --------------------------------------------------------------------------------------------------- by hand
def four_player_round(own, others_previous, payoffs, others_now=1, cumulative=None, floor=0.0):
    return NPlayerRewardInputs(
        own_action=own,
        others_cooperated=others_now,
        others_previous_cooperated=others_previous,
        num_others=3,
        own_payoff=payoffs[0],
        payoffs=np.array(payoffs, dtype=float),
        cumulative_payoffs=None if cumulative is None else np.array(cumulative, dtype=float),
        cumulative_floor=floor,
    )


@pytest.mark.parametrize(
    ("norm", "two_of_three", "one_of_three", "none"),
    [("share", -2.0, -1.0, 0.0), ("any", -3.0, -3.0, 0.0), ("majority", -3.0, 0.0, 0.0)],
)
def test_deontological_norms_with_three_others(norm, two_of_three, one_of_three, none):
    """xi = 3; the player defects after 2, 1 or 0 of its 3 others cooperated: share = -3 c'/3, any = -3 if c' >= 1,
    majority = -3 if c' > 1.5. Cooperating never costs anything."""
    de = get_n_player_reward("deontological", norm=norm)
    payoffs = [2.2, 1.2, 1.2, 2.2]
    assert [float(de(four_player_round(D, c, payoffs))) for c in (2, 1, 0)] == [two_of_three, one_of_three, none]
    assert float(de(four_player_round(C, 3, payoffs))) == 0.0
    assert float(de(four_player_round(ILLEGAL, 3, [0, 1, 1, 1]))) == -6.0
    game_de = get_n_player_reward("game+de", norm=norm, penalty=3)
    assert float(game_de(four_player_round(D, 2, payoffs))) == pytest.approx(2.2 + two_of_three)


def test_game_utilitarian_and_illegal_moves_by_hand():
    # Public goods N = 4, e = 1, r = 1.6: the player keeps (D) while 2 others contribute: 1 + 1.6 * 2 / 4 = 1.8.
    payoffs = [1.8, 0.8, 0.8, 1.8]
    round_ = four_player_round(D, 2, payoffs)
    assert float(get_n_player_reward("game")(round_)) == 1.8
    assert float(get_n_player_reward("utilitarian")(round_)) == pytest.approx(5.2)
    for name in list_n_player_rewards():
        illegal = four_player_round(ILLEGAL, 2, [0.0, 0.8, 0.8, 1.8], cumulative=[0, 1, 1, 2])
        assert float(get_n_player_reward(name, illegal_reward=-9.0)(illegal)) == -9.0


def test_inequity_aversion_and_virtues_by_hand():
    payoffs = [1.0, 2.0, 3.0, 4.0]
    # IA, alpha 5, beta 0.05, the player first (x = 1): three others ahead by 1 + 2 + 3 = 6: 1 - 5 * 6 / 3 = -9.
    assert float(get_n_player_reward("ia")(four_player_round(D, 0, payoffs))) == pytest.approx(-9.0)
    assert float(get_n_player_reward("ia", alpha=1, beta=0)(four_player_round(D, 0, [4.0, 1, 2, 3]))) == 4.0
    # Kindness: 5 for C, 0 for D.
    kindness = get_n_player_reward("kindness")
    assert [float(kindness(four_player_round(a, 0, payoffs))) for a in (C, D)] == [5.0, 0.0]
    # Equality over the episode's sums: (0, 0, 0, 8) is one player having everything: 0; all equal: 1.
    equality = get_n_player_reward("virtue_equality")
    assert float(equality(four_player_round(C, 0, payoffs, cumulative=[0, 0, 0, 8]))) == pytest.approx(0.0)
    assert float(equality(four_player_round(C, 0, payoffs, cumulative=[3, 3, 3, 3]))) == pytest.approx(1.0)
    # Mixed, w = 0.5: 0.5 * 1 + 0.5 * [C] = 1 for C with equal sums, 0.5 for D.
    mixed = get_n_player_reward("virtue_mixed")
    equal = [3, 3, 3, 3]
    assert [float(mixed(four_player_round(a, 0, payoffs, cumulative=equal))) for a in (C, D)] == [1.0, 0.5]


def test_equality_reads_the_sums_above_the_games_floor():
    """Threshold public good (lowest payoff -1) after 2 rounds: sums (-2, -2, -2, -2) are equal, (-2, 4, 4, 4) are
    not; above the floor -2 they are (0, 0, 0, 0) and (0, 6, 6, 6): the |x_i - x_j| sum over ordered pairs is
    2 * 3 * 6 = 36, Gini 36 / (2 * 4 * 18) = 1/4, equality 1 - (4/3) (1/4) = 2/3."""
    equality = get_n_player_reward("virtue_equality")
    round_ = four_player_round(C, 0, [-1, -1, -1, -1], cumulative=[-2, -2, -2, -2], floor=-2.0)
    assert float(equality(round_)) == 1.0
    unequal = four_player_round(C, 0, [-1, 2, 2, 2], cumulative=[-2, 4, 4, 4], floor=-2.0)
    assert float(equality(unequal)) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="needs the episode's cumulative payoffs"):
        equality(four_player_round(C, 0, [1, 1, 1, 1]))


def test_mixed_virtue_is_the_shared_formula():
    rng = np.random.default_rng(3)
    cumulative = rng.uniform(0, 10, (50, 5))
    actions = rng.integers(-1, 2, 50)
    inputs = NPlayerRewardInputs(actions, 0, 0, 4, cumulative[:, 0], cumulative, cumulative)
    for weight in (0.0, 0.3, 1.0):
        reward = get_n_player_reward("virtue_mixed", equality_weight=weight)(inputs)
        assert np.allclose(reward, np.where(actions == ILLEGAL, -6.0, virtue_mixed(cumulative, actions, weight)))


def test_rewards_are_vectorised_over_games():
    rng = np.random.default_rng(4)
    payoffs = rng.uniform(0, 3, (100, 6))
    inputs = NPlayerRewardInputs(
        rng.integers(-1, 2, 100), 2, rng.integers(0, 6, 100), 5, payoffs[:, 0], payoffs, payoffs
    )
    for name in list_n_player_rewards():
        assert get_n_player_reward(name)(inputs).shape == (100,)


# --------------------------------------------------------------------------------------------------- registry
def test_registry_names_aliases_and_errors():
    assert list_n_player_rewards() == [
        "game",
        "deontological",
        "utilitarian",
        "game_deontological",
        "inequity_aversion",
        "virtue_kindness",
        "virtue_equality",
        "virtue_mixed",
        "game_then_deontological",
        "game_then_utilitarian",
    ]
    assert get_n_player_reward("Game, then Deontological").name == "game_then_deontological"
    assert get_n_player_reward("Fehr-Schmidt").name == "inequity_aversion"
    with pytest.raises(KeyError, match=r"unknown N-player reward 'kant'.*game, deontological"):
        get_n_player_reward("kant")
    with pytest.raises(TypeError, match=r"unknown keyword argument 'penalt' \(did you mean 'penalty'\?\)"):
        get_n_player_reward("deontological", penalt=5)
    with pytest.raises(TypeError, match=r"'alpha', 'beta', 'penalty', 'illegal_reward', 'norm'"):
        get_n_player_reward("ia", gamma=1)
    with pytest.raises(ValueError, match="norm must be one of 'share', 'any', 'majority', got 'most'"):
        get_n_player_reward("utilitarian", norm="most")
    with pytest.raises(ValueError, match="penalty must be a finite number, got nan"):
        get_n_player_reward("game", penalty=float("nan"))
    with pytest.raises(ValueError, match="alpha"):
        get_n_player_reward("ia", alpha=-1)


def test_two_player_reward_objects_are_refused_and_n_player_ones_pass():
    with pytest.raises(
        TypeError, match=r"DeontologicalReward is a two-player reward.*get_n_player_reward\('deontological'\)"
    ):
        get_n_player_reward(get_reward("deontological"))
    with pytest.raises(TypeError, match="RewardSchedule is a two-player reward"):
        get_n_player_reward(get_reward("game_then_utilitarian"))
    schedule = get_n_player_reward("game_then_utilitarian")
    assert get_n_player_reward(schedule) is schedule and reads_n_player_inputs(schedule)
    custom = get_n_player_reward(lambda inputs: np.asarray(inputs.others_cooperated, dtype=float), name="others")
    assert custom.name == "others" and float(custom(four_player_round(C, 0, [1, 1, 1, 1], others_now=2))) == 2.0
    with pytest.raises(TypeError, match="only apply to reward names"):
        get_n_player_reward(schedule, penalty=2)


# --------------------------------------------------------------------------------------------------- per-round tables
@pytest.mark.parametrize("num_players", [2, 3, 8])
def test_per_round_tables_hold_each_rounds_reward(num_players):
    """LearnerRounds' inputs are the real rounds: each code's payoffs are the game's payoffs for a joint action with
    that many cooperating others, and a per-round reward's table is the reward evaluated there."""
    game = get_n_player_game("threshold_public_good", num_players)
    rounds = LearnerRounds(game)
    inputs = rounds.inputs
    for code in range(3 * num_players**2):
        action, others = int(inputs.own_action[code]), int(inputs.others_cooperated[code])
        if action == ILLEGAL:
            continue
        joint = [action] + [C] * others + [D] * (num_players - 1 - others)
        assert inputs.payoffs[code].tolist() == game.payoffs(joint).tolist()
        assert rounds.code(np.array(action), np.array(others), inputs.others_previous_cooperated[code]) == code
    for name in list_n_player_rewards():
        reward = get_n_player_reward(name).at(0)
        table = rounds.reward_table(reward)
        if name in ("virtue_equality", "virtue_mixed"):
            assert table is None  # they read the episode's sums: evaluated on their inputs every step
        else:
            assert isinstance(reward, NPlayerReward) and np.array_equal(table, reward(inputs))
    assert rounds.reward_table(get_n_player_reward(lambda inputs: 0.0)) is None  # a callable is never tabulated


# --------------------------------------------------------------------------------------------------- two-player envs
def test_two_player_envs_report_episode_sums_and_take_the_new_rewards():
    env = MoralRewardWrapper(
        MatrixGameEnv("ipd", initial_state="none"), {"player_0": "virtue_equality", "player_1": "inequity_aversion"}
    )
    _, infos = env.reset(seed=0)
    assert infos["player_0"]["cumulative_payoff"] == 0.0 and infos["player_1"]["opponent_cumulative_payoff"] == 0.0
    rewards = []
    for joint in [(C, D), (D, D), (C, C)]:  # IPD payoffs (0, 4), (1, 1), (3, 3): sums (0, 4), (1, 5), (4, 8)
        _, reward, _, _, infos = env.step({"player_0": joint[0], "player_1": joint[1]})
        rewards.append((reward["player_0"], reward["player_1"]))
    assert [r[0] for r in rewards] == pytest.approx([0.0, 1 - 4 / 6, 1 - 4 / 12])  # 1 - |U_0 - U_1| / (U_0 + U_1)
    assert [r[1] for r in rewards] == pytest.approx([4 - 0.05 * 4, 1.0, 3.0])  # 4 - beta * 4, then equal payoffs
    assert (infos["player_0"]["cumulative_payoff"], infos["player_0"]["opponent_cumulative_payoff"]) == (4.0, 8.0)
    kindness = SingleAgentMatrixGameEnv("ipd", opponent="always_defect", reward="virtue_kindness")
    kindness.reset(seed=0)
    assert kindness.step(C)[1] == 5.0 and kindness.step(D)[1] == 0.0


def test_two_player_tables_refuse_the_sum_based_virtues_with_the_way_out():
    env = SingleAgentMatrixGameEnv("ipd", opponent="tit_for_tat", reward="virtue_equality")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="cumulative payoffs.*N-player envs with num_players=2"):
        env.step(C)
