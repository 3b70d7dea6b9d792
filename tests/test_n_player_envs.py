"""N-player envs: the PettingZoo and Gymnasium checkers on every id, the N = 2 equivalence with the two-player envs,
the round rules (illegal moves, observations, infos), the single-agent and vector envs against fixed co-players,
and their agreement with each other (tables against the general rules, vector against single)."""

from __future__ import annotations

import copy
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

import moralgym
from moralgym.envs import ILLEGAL, NO_MOVE, MatrixGameEnv, ResetNeeded, make_opponent
from moralgym.envs.n_player import (
    N_PLAYER_COMPONENT_NAMES,
    N_PLAYER_OBSERVATION_TYPES,
    NPlayerGameEnv,
    NPlayerGameVectorEnv,
    NPlayerMoralRewardWrapper,
    SingleAgentNPlayerGameEnv,
    from_matrix_game,
    get_n_player_game,
    get_n_player_reward,
)
from moralgym.envs.openings import opening_options
from moralgym.envs.registration import N_PLAYER_GYMNASIUM_IDS, N_PLAYER_PETTINGZOO_IDS
from moralgym.envs.single_agent import SingleAgentMatrixGameEnv

C, D = 0, 1
SYMMETRIC_PAPER_GAMES = ["ipd", "stag_hunt", "chicken", "defective_coordination"]


# --------------------------------------------------------------------------------------------------- test strategies
class Fixed:
    """Always plays ``move``; shows it before round one (``initial_move``), like Always Cooperate / Defect."""

    stochastic = False

    def __init__(self, move: int) -> None:
        self.move, self.initial_move, self.name = move, move, f"always_{'cd'[move]}"

    def initial_memory(self, n):
        return np.zeros((n, 0), dtype=np.int64)

    def act_batch(self, observations, memory, uniforms, game):
        return np.full(len(observations), self.move, dtype=np.int64), memory


class Conditional:
    """Cooperates iff at least ``threshold`` others cooperated last round, or nobody has moved yet."""

    name = "conditional"
    stochastic = False

    def __init__(self, threshold: int = 1) -> None:
        self.threshold = threshold

    def initial_memory(self, n):
        return np.zeros((n, 0), dtype=np.int64)

    def act_batch(self, observations, memory, uniforms, game):
        others = observations[:, 1]
        cooperate = (others >= self.threshold) | (others == game.num_players)
        return np.where(cooperate, C, D).astype(np.int64), memory


class Flaky:
    """A stochastic co-player that answers ILLEGAL when its uniform is below 0.3, else C or D: drives the general
    path of the vector env (co-players' illegal answers)."""

    name = "flaky"
    stochastic = True

    def initial_memory(self, n):
        return np.zeros((n, 0), dtype=np.int64)

    def act_batch(self, observations, memory, uniforms, game):
        return np.where(uniforms < 0.3, ILLEGAL, np.where(uniforms < 0.65, C, D)).astype(np.int64), memory


class TwoPlayerAsNPlayer:
    """A two-player strategy through the N-player protocol (N = 2): ``others_cooperated`` 1 is the other's C,
    0 its D and 2 "no move yet"."""

    def __init__(self, strategy) -> None:
        self.strategy = make_opponent(strategy)
        self.name = self.strategy.name
        self.stochastic = getattr(self.strategy, "stochastic", True)
        self.initial_move = getattr(self.strategy, "initial_move", None)

    def initial_memory(self, n):
        return self.strategy.initial_memory(n)

    def act_batch(self, observations, memory, uniforms, game):
        other = np.select([observations[:, 1] == 1, observations[:, 1] == 0], [C, D], NO_MOVE)
        return self.strategy.act_batch(np.stack([observations[:, 0], other], axis=1), memory, uniforms)


def count_to_two_player(observation: np.ndarray) -> list[int]:
    """The mapping of the module docstring: ``[own, others]`` -> ``[own, other]``."""
    own, others = (int(v) for v in observation)
    return [own, {1: C, 0: D, 2: NO_MOVE}[others]]


# --------------------------------------------------------------------------------------------------- checkers
@pytest.mark.parametrize("env_id", N_PLAYER_PETTINGZOO_IDS)
def test_pettingzoo_api_and_seed_tests(env_id):
    parallel_api_test(pettingzoo.make("parallel", env_id, num_players=3), num_cycles=60)
    parallel_seed_test(lambda: pettingzoo.make("parallel", env_id, num_players=5), num_cycles=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "obs space should be Box/Discrete": MultiDiscrete is intended
        api_test(pettingzoo.make("aec", env_id, num_players=4), num_cycles=60)
        seed_test(lambda: pettingzoo.make("aec", env_id, num_players=3), num_cycles=60)


@pytest.mark.parametrize("env_id", N_PLAYER_GYMNASIUM_IDS)
def test_gymnasium_env_checker(env_id):
    env = gymnasium.make(env_id, num_players=4, co_players=Flaky(), reward="deontological")
    check_env(env.unwrapped, skip_render_check=True)
    default = gymnasium.make(env_id)  # the registered default co-players resolve by name
    assert default.reset(seed=0)[0].shape == (2,)


@pytest.mark.parametrize("observation_type", N_PLAYER_OBSERVATION_TYPES)
def test_observation_types_pass_the_checkers(observation_type):
    kwargs = {"observation_type": observation_type, "num_players": 4}
    parallel_api_test(pettingzoo.make("parallel", "moralgym/public_goods-v0", **kwargs), num_cycles=40)
    parallel_seed_test(lambda: pettingzoo.make("parallel", "moralgym/volunteers_dilemma-v0", **kwargs), num_cycles=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        api_test(pettingzoo.make("aec", "moralgym/n_player_ipd-v0", **kwargs), num_cycles=40)
    check_env(gymnasium.make("moralgym/PublicGoods-v0", co_players=Conditional(), **kwargs).unwrapped)
    make = {"co_players": Conditional(), **kwargs}
    vector = gymnasium.make_vec("moralgym/PublicGoods-v0", 4, vectorization_mode="vector_entry_point", **make)
    sync = gymnasium.make_vec("moralgym/PublicGoods-v0", 4, vectorization_mode="sync", **make)
    assert vector.observation_space == sync.observation_space
    assert np.array_equal(vector.reset(seed=5)[0], sync.reset(seed=5)[0])
    assert vector.observation_space.contains(vector.step(np.ones(4, dtype=np.int64))[0])


def test_registered_ids_trio_modules_and_game_parameters():
    for env_id in N_PLAYER_PETTINGZOO_IDS:
        assert env_id in pettingzoo.parallel_registry and env_id in pettingzoo.aec_registry
    for env_id in N_PLAYER_GYMNASIUM_IDS:
        assert env_id in gymnasium.registry and gymnasium.spec(env_id).vector_entry_point
    env = pettingzoo.make("parallel", "moralgym/public_goods-v0", num_players=6, game_params={"multiplier": 3})
    assert env.num_players == 6 and env.game.parameters["multiplier"] == 3 and len(env.possible_agents) == 6
    custom = pettingzoo.make("parallel", "moralgym/n_player_game-v0", game=([0, 3, 6], [1, 4, 7]))
    assert custom.num_players == 3 and custom.metadata["name"] == "moralgym_custom_v0"
    for name in ["public_goods", "n_player_ipd", "threshold_public_good", "volunteers_dilemma", "n_player_snowdrift"]:
        module = __import__(f"moralgym.envs.{name}_v0", fromlist=["env"])
        assert module.parallel_env(num_players=3).game.name == module.GAME == name
        for factory in (module.env, module.raw_env):
            aec = factory(num_players=3, num_rounds=2)
            aec.reset(seed=0)
            assert aec.agent_selection == "player_0"
    with pytest.raises(TypeError, match="unknown keyword argument 'multiplyer'"):
        NPlayerGameEnv("public_goods", game_params={"multiplyer": 2})
    with pytest.raises(ValueError, match="has 3 players, got num_players=4"):
        NPlayerGameEnv(([0, 3, 6], [1, 4, 7]), num_players=4)


def test_import_moralgym_envs_does_not_import_torch():
    code = "import sys, moralgym.envs.n_player, moralgym.envs.public_goods_v0; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --------------------------------------------------------------------------------------------------- N = 2
@pytest.mark.parametrize("name", SYMMETRIC_PAPER_GAMES)
@pytest.mark.parametrize("initial_state", ["random", "none"])
def test_two_players_replay_the_two_player_env_step_for_step(name, initial_state):
    """Same seed, same random actions (ILLEGAL included): the same observations (``"full"`` equal, ``"count"``
    translated), rewards, truncations and every moral reward component, over whole multi-episode runs."""
    two = MatrixGameEnv(name, num_rounds=4, initial_state=initial_state)
    full = NPlayerGameEnv(from_matrix_game(name), num_rounds=4, initial_state=initial_state, observation_type="full")
    count = NPlayerGameEnv(from_matrix_game(name), num_rounds=4, initial_state=initial_state)
    actions_rng = np.random.default_rng(len(name))
    for episode in range(30):
        options = {"previous_moves": {"player_1": episode % 2}} if episode % 3 == 0 else None
        seed = None if episode % 2 else episode  # seeded and unseeded resets alternate (the first is seeded)
        observed = [env.reset(seed=seed, options=options)[0] for env in (two, full, count)]
        while two.agents:
            for agent in two.possible_agents:
                assert observed[1][agent].tolist() == observed[0][agent].tolist()
                assert count_to_two_player(observed[2][agent]) == observed[0][agent].tolist()
            actions = {agent: int(actions_rng.integers(-1, 2)) for agent in two.agents}
            steps = [env.step(actions) for env in (two, full, count)]
            observed = [step[0] for step in steps]
            (_, rewards, _, truncations, infos), (_, n_rewards, _, n_truncations, n_infos) = steps[0], steps[2]
            assert n_rewards == rewards and n_truncations == truncations
            for agent, info in infos.items():
                n_info = n_infos[agent]
                assert n_info["moral_rewards"] | info["moral_rewards"] == n_info["moral_rewards"]
                assert n_info["game_payoff"] == info["game_payoff"] and n_info["illegal"] == info["illegal"]
                assert n_info["payoffs"].tolist() == [
                    infos["player_0"]["game_payoff"],
                    infos["player_1"]["game_payoff"],
                ]
                assert n_info["others_previous_cooperated"] == (info["opponent_previous"] == C)


@pytest.mark.parametrize("opponent", ["tit_for_tat", "random", "always_defect", "grim_trigger"])
def test_two_player_single_agent_env_is_replayed_with_a_two_player_strategy(opponent):
    """The Gymnasium env at N = 2 draws the two-player env's random numbers: with the same strategy seen through the
    N-player protocol, the same games (initial states, the opponent's moves, rewards, components)."""
    two = SingleAgentMatrixGameEnv("stag_hunt", opponent=opponent, reward="game_deontological", num_rounds=3)
    n = SingleAgentNPlayerGameEnv(
        from_matrix_game("stag_hunt"), co_players=TwoPlayerAsNPlayer(opponent), reward="game+de", num_rounds=3
    )
    actions_rng = np.random.default_rng(0)
    for seed in range(12):
        observation, _ = two.reset(seed=seed)
        n_observation, _ = n.reset(seed=seed)
        for _ in range(3):
            assert count_to_two_player(n_observation) == observation.tolist()
            action = int(actions_rng.integers(-1, 2))
            observation, reward, _, truncated, info = two.step(action)
            n_observation, n_reward, _, n_truncated, n_info = n.step(action)
            assert (n_reward, n_truncated) == (reward, truncated)
            assert n_info["co_player_actions"] == [info["opponent_action"]]
            assert n_info["moral_rewards"] | info["moral_rewards"] == n_info["moral_rewards"]


# --------------------------------------------------------------------------------------------------- round rules
def test_illegal_moves_keep_the_last_legal_move_and_pay_the_others_as_if_repeated():
    """Public goods, N = 3, e = 1, r = 1.5: C with k others contributing gets 0.5 (k + 1), D gets 1 + 0.5 k."""
    env = NPlayerGameEnv(get_n_player_game("public_goods", 3, multiplier=1.5), initial_state="none", num_rounds=3)
    env.reset(seed=0)
    observations, rewards, _, _, infos = env.step({"player_0": C, "player_1": C, "player_2": D})
    assert rewards == {"player_0": 1.0, "player_1": 1.0, "player_2": 2.0}
    # player_1 answers illegally: it is taken to repeat its C, so player_0 (C) sees 1 other C and player_2 2.
    observations, rewards, _, _, infos = env.step({"player_0": C, "player_1": ILLEGAL, "player_2": D})
    assert rewards == {"player_0": 1.0, "player_1": -6.0, "player_2": 2.0}
    assert infos["player_1"]["illegal"] and infos["player_1"]["game_payoff"] == 0.0
    assert infos["player_1"]["payoffs"].tolist() == [1.0, 0.0, 2.0]
    assert set(infos["player_1"]["moral_rewards"].values()) == {-6.0}  # every reward of the illegal player
    assert infos["player_0"]["others_cooperated"] == 0  # an illegal answer is not C
    assert infos["player_0"]["moral_rewards"]["utilitarian"] == 3.0  # its 0 counts in the sum
    assert observations["player_1"].tolist() == [C, 1] and observations["player_2"].tolist() == [D, 2]
    assert infos["player_0"]["cumulative_payoffs"].tolist() == [2.0, 1.0, 4.0]


def test_a_round_with_an_illegal_player_that_never_moved_pays_nothing():
    env = NPlayerGameEnv("volunteers_dilemma", num_players=3, initial_state="none")
    env.reset(seed=0)
    observations, rewards, _, _, infos = env.step({"player_0": C, "player_1": ILLEGAL, "player_2": D})
    assert rewards == {"player_0": 0.0, "player_1": -6.0, "player_2": 0.0}
    assert observations["player_1"].tolist() == [NO_MOVE, 1]  # it still has no move; one of its others cooperated
    assert observations["player_0"].tolist() == [C, 0]  # its others: one D, one with no move (not a cooperator)


def test_observation_values_of_each_type():
    previous = {"player_0": C, "player_1": D, "player_2": C, "player_3": C}
    expected = {
        "count": {"player_0": [C, 2], "player_1": [D, 3], "player_3": [C, 2]},
        "discrete": {"player_0": 0 * 5 + 2, "player_1": 1 * 5 + 3},
        "one_hot": {"player_1": [0, 1, 0, 0, 0, 0, 1, 0]},
        "full": {"player_0": [C, D, C, C], "player_1": [D, C, C, C], "player_2": [C, C, D, C]},
    }
    for observation_type, values in expected.items():
        env = NPlayerGameEnv("public_goods", num_players=4, observation_type=observation_type)
        observations, _ = env.reset(seed=0, options={"previous_moves": previous})
        for agent, value in values.items():
            assert np.asarray(observations[agent]).tolist() == value
            assert env.observation_space(agent).contains(observations[agent])
    none = NPlayerGameEnv("public_goods", num_players=4, initial_state="none")
    observations, _ = none.reset(seed=0, options={"previous_moves": {"player_2": D}})
    assert observations["player_0"].tolist() == [NO_MOVE, 0]  # one other has moved (D): a count, not "no move yet"
    assert observations["player_2"].tolist() == [D, 4]  # none of its others has moved: N = 4


def test_initial_states_draw_every_seat_and_fixed_moves_override():
    env = NPlayerGameEnv("n_player_ipd", num_players=3)
    starts = {tuple(env.reset(seed=s)[0]["player_0"]) for s in range(60)}
    assert starts == {(own, others) for own in (C, D) for others in (0, 1, 2)}
    assert env.state().tolist()[-1] == 0 and len(env.state()) == 4
    for seed in range(10):
        observations, _ = env.reset(seed=seed, options={"previous_moves": {"player_1": C, "player_2": C}})
        assert observations["player_0"][1] == 2
    with pytest.raises(ValueError, match="unknown agent 'player_3'"):
        env.reset(seed=0, options={"previous_moves": {"player_3": C}})


def test_reset_and_step_infos_have_the_same_keys():
    env = NPlayerMoralRewardWrapper(NPlayerGameEnv("threshold_public_good", num_players=3), "virtue_mixed")
    _, reset_infos = env.reset(seed=0)
    _, _, _, _, step_infos = env.step(dict.fromkeys(env.possible_agents, C))
    for agent in env.possible_agents:
        assert set(reset_infos[agent]) == set(step_infos[agent])
        assert set(reset_infos[agent]["moral_rewards"]) == set(step_infos[agent]["moral_rewards"])
    assert reset_infos["player_0"]["reward_name"] == "virtue_mixed"


def test_episode_ends_by_truncation_and_misuse_is_a_clear_error():
    env = NPlayerGameEnv(num_players=3, num_rounds=2)
    with pytest.raises(ResetNeeded, match="before reset"):
        env.step(dict.fromkeys(env.possible_agents, C))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"missing \['player_2'\]"):
        env.step({"player_0": C, "player_1": C})
    with pytest.raises(ValueError, match=r"action 2 for 'player_1' is out of range"):
        env.step({"player_0": C, "player_1": 2, "player_2": C})
    _, _, terminations, truncations, _ = env.step(dict.fromkeys(env.possible_agents, np.array([1])))
    assert not any(truncations.values())
    _, _, terminations, truncations, _ = env.step(dict.fromkeys(env.possible_agents, np.int8(0)))
    assert all(truncations.values()) and not any(terminations.values()) and env.agents == []
    with pytest.raises(ResetNeeded, match="finished episode"):
        env.step(dict.fromkeys(env.possible_agents, C))
    for bad, message in [
        ({"num_players": 1}, "integer >= 2"),
        ({"num_rounds": 0}, "num_rounds"),
        ({"initial_state": "zero"}, "initial_state"),
        ({"norm": "most"}, "norm must be one of"),
        ({"observation_type": "graph"}, "observation_type must be one of"),
        ({"penalty": float("inf")}, "penalty must be a finite number"),
    ]:
        with pytest.raises(ValueError, match=message):
            NPlayerGameEnv(**bad)


def test_whole_runs_replay_with_the_same_seed_and_differ_with_another():
    def rollout(seed):
        env, rng, trajectory = NPlayerGameEnv("n_player_snowdrift", num_players=5), np.random.default_rng(seed), []
        for episode in range(4):
            observations, _ = env.reset(seed=seed if episode == 0 else None)
            trajectory.append([o.tolist() for o in observations.values()])
            while env.agents:
                step = env.step({agent: int(rng.integers(-1, 2)) for agent in env.agents})
                trajectory.append(([o.tolist() for o in step[0].values()], step[1]))
        return trajectory

    assert rollout(7) == rollout(7) and rollout(7) != rollout(8)


def test_render_state_copies_and_pickles():
    env = NPlayerGameEnv("public_goods", num_players=3, render_mode="ansi", initial_state="none")
    env.reset(seed=0)
    assert env.render() == "Public Goods (3 players) round 0/5: (no rounds yet) | last moves ---"
    env.step({"player_0": C, "player_1": D, "player_2": ILLEGAL})
    assert env.render() == "Public Goods (3 players) round 1/5: CD! | last moves CD-"
    assert env.state().tolist() == [C, D, NO_MOVE, 1]
    clone = copy.deepcopy(env)
    assert clone.game is env.game and clone._payoffs is env._payoffs and clone._previous is not env._previous
    restored = pickle.loads(pickle.dumps(env))
    actions = {"player_0": D, "player_1": D, "player_2": C}
    assert restored.step(actions)[1] == clone.step(actions)[1] == env.step(actions)[1]
    image = NPlayerGameEnv(num_players=4, render_mode="rgb_array")
    image.reset(seed=0)
    image.step(dict.fromkeys(image.possible_agents, C))
    assert image.render().shape == (4 * 16, 6 * 16, 3)  # a row per seat; the start, then 5 rounds


def test_wrapper_gives_each_agent_its_own_n_player_reward():
    rewards = {"player_0": "deontological", "player_1": "utilitarian", "player_2": get_n_player_reward("ia", alpha=1)}
    env = NPlayerMoralRewardWrapper(NPlayerGameEnv("public_goods", num_players=3), rewards)
    env.reset(seed=3)
    for _ in range(5):
        _, paid, _, _, infos = env.step({"player_0": D, "player_1": C, "player_2": ILLEGAL})
        assert paid["player_0"] == infos["player_0"]["moral_rewards"]["deontological"]
        assert paid["player_1"] == infos["player_1"]["moral_rewards"]["utilitarian"]
        assert paid["player_2"] == -6.0 and infos["player_1"]["reward_name"] == "utilitarian"
    with pytest.raises(ValueError, match="unknown agents"):
        NPlayerMoralRewardWrapper(NPlayerGameEnv(num_players=2), {"player_0": "game", "player_5": "game"})
    with pytest.raises(TypeError, match="two-player reward"):
        NPlayerMoralRewardWrapper(NPlayerGameEnv(num_players=2), moralgym.envs.get_reward("deontological"))
    parallel_api_test(NPlayerMoralRewardWrapper(NPlayerGameEnv(num_players=3), "game_then_deontological"), 30)


def test_aec_last_gives_every_agent_its_round_reward_once():
    for timing in ({}, {"reward_timing": "own_turn"}):
        env = pettingzoo.make(
            "aec", "moralgym/volunteers_dilemma-v0", num_players=3, num_rounds=2, initial_state="none", **timing
        )
        env.reset(seed=0)
        totals = dict.fromkeys(env.possible_agents, 0.0)
        for agent in env.agent_iter():
            _, reward, termination, truncation, _ = env.last()
            totals[agent] += reward
            env.step(None if termination or truncation else int(agent == "player_0"))  # player_0 abstains
        assert totals == {"player_0": 6.0, "player_1": 4.0, "player_2": 4.0}  # b = 3, c = 1, two rounds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        api_test(moralgym.envs.public_goods_v0.env(num_players=3, reward_timing="own_turn"), num_cycles=30)


# --------------------------------------------------------------------------------------------------- single agent
def test_single_agent_transcript_against_conditional_cooperators():
    """Public goods N = 3 (e = 1, r = 1.6) against two cooperators who need one other C. Learner D, D, C, C."""
    env = gymnasium.make(
        "moralgym/PublicGoods-v0", num_players=3, co_players=Conditional(1), initial_state="none", reward="utilitarian"
    )
    observation, info = env.reset(seed=0)
    assert observation.tolist() == [NO_MOVE, 3] and info == {"round": 0, "episode_index": 0}
    transcript = []
    for move in (D, D, C, C):
        observation, reward, terminated, truncated, info = env.step(move)
        transcript.append(
            (observation.tolist(), info["co_player_actions"], round(info["game_payoff"], 4), round(reward, 4))
        )
    assert transcript == [
        ([D, 2], [C, C], 2.0667, 4.2),  # nobody moved: both cooperate; 1 + 1.6 * 2 / 3, plus 2 * 1.6 * 2 / 3
        ([D, 2], [C, C], 2.0667, 4.2),  # each cooperator saw the other's C
        ([C, 2], [C, C], 1.6, 4.8),
        ([C, 2], [C, C], 1.6, 4.8),
    ]
    assert not terminated and not truncated


def test_co_players_by_name_list_and_their_openings():
    env = SingleAgentNPlayerGameEnv(
        "public_goods", num_players=4, co_players=[Fixed(D), "conditional_cooperator", Fixed(D)]
    )
    assert [len(seats) for _, seats in env.core.co_player_groups] == [1, 1, 1]
    for seed in range(8):
        observation, _ = env.reset(seed=seed)
        assert env.core.previous[0, 1] == D and env.core.previous[0, 3] == D  # Always D shows its D before round one
    shared = Fixed(C)
    grouped = SingleAgentNPlayerGameEnv("public_goods", num_players=4, co_players=[shared, "random", shared])
    assert [seats.tolist() for _, seats in grouped.core.co_player_groups] == [[1, 3], [2]]
    with pytest.raises(ValueError, match="got 2 co-players for 3 co-player seats"):
        SingleAgentNPlayerGameEnv(num_players=4, co_players=["random", "random"])
    with pytest.raises(KeyError, match="unknown N-player strategy 'nice_guy'"):
        SingleAgentNPlayerGameEnv(co_players="nice_guy")
    with pytest.raises(TypeError, match="two-player reward"):
        SingleAgentNPlayerGameEnv(co_players=Fixed(C), reward=moralgym.envs.get_reward("game"))


@pytest.mark.parametrize("name", ["public_goods", "threshold_public_good", "n_player_snowdrift"])
@pytest.mark.parametrize("reward", ["deontological", "inequity_aversion", "virtue_mixed"])
def test_the_table_path_equals_the_rules_of_the_parallel_env(name, reward):
    """The Gymnasium env (per-round tables) against the parallel env stepped with the same co-players (the general
    rules): the same games, payoffs, rewards and components, illegal learner moves included."""
    co_players = [Conditional(2), Fixed(D), Conditional(1), Fixed(C)]
    single = SingleAgentNPlayerGameEnv(name, num_players=5, co_players=co_players, reward=reward, num_rounds=4)
    parallel = NPlayerMoralRewardWrapper(
        NPlayerGameEnv(name, num_players=5, num_rounds=4),
        {**{f"player_{seat}": "game" for seat in range(1, 5)}, "player_0": reward},
    )
    agents = parallel.possible_agents
    actions_rng = np.random.default_rng(0)
    options = opening_options(dict(zip(agents[1:], co_players, strict=True)), "random")
    for seed in range(10):
        observation, _ = single.reset(seed=seed)
        observations, _ = parallel.reset(seed=seed, options=options)
        for _ in range(4):
            assert observation.tolist() == observations["player_0"].tolist()
            action = int(actions_rng.integers(-1, 2))
            joint = {"player_0": action}
            for agent, strategy in zip(agents[1:], co_players, strict=True):
                joint[agent] = int(
                    strategy.act_batch(observations[agent][None], None, np.zeros(1), parallel.game)[0][0]
                )
            observation, paid, _, truncated, info = single.step(action)
            observations, rewards, _, truncations, infos = parallel.step(joint)
            assert info["co_player_actions"] == [joint[agent] for agent in agents[1:]]
            assert paid == pytest.approx(rewards["player_0"], abs=1e-12) and truncated == truncations["player_0"]
            assert info["payoffs"].tolist() == infos["player_0"]["payoffs"].tolist()
            assert info["moral_rewards"] == pytest.approx(infos["player_0"]["moral_rewards"], abs=1e-12)


# --------------------------------------------------------------------------------------------------- vector env
CO_PLAYER_MIX = [Flaky(), Conditional(2), Fixed(D)]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32), actions=st.lists(st.integers(-1, 1), min_size=5 * 11, max_size=5 * 11))
def test_vector_env_replays_the_single_env(seed, actions):
    """Sub-env i of a vector env seeded s == the single env seeded s + i, through autoresets and illegal moves of
    the learner and of a co-player."""
    n, steps = 5, 11
    actions = np.array(actions).reshape(steps, n)
    kwargs = {"num_players": 4, "co_players": CO_PLAYER_MIX, "reward": "game_then_deontological", "num_rounds": 3}
    reward = get_n_player_reward("game_then_deontological", switch_episode=2)
    vector = NPlayerGameVectorEnv(n, "threshold_public_good", **{**kwargs, "reward": reward})
    singles = [SingleAgentNPlayerGameEnv("threshold_public_good", **{**kwargs, "reward": reward}) for _ in range(n)]
    vector_obs, _ = vector.reset(seed=seed)
    assert np.array_equal(vector_obs, np.array([env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]))
    done = np.zeros(n, dtype=bool)
    for step in range(steps):
        vector_obs, vector_rewards, _, vector_trunc, info = vector.step(actions[step])
        for i, env in enumerate(singles):
            if done[i]:  # NEXT_STEP autoreset: this step resets sub-env i
                observation, _ = env.reset()
                assert np.array_equal(vector_obs[i], observation) and vector_rewards[i] == 0
                assert info["round"][i] == 0 and not info["_payoffs"][i]
                continue
            observation, reward, _, truncated, single_info = env.step(int(actions[step, i]))
            assert np.array_equal(vector_obs[i], observation)
            assert vector_rewards[i] == reward and vector_trunc[i] == truncated
            assert info["co_player_actions"][i].tolist() == single_info["co_player_actions"]
            for name, value in single_info["moral_rewards"].items():
                assert info["moral_rewards"][name][i] == value
        done = vector_trunc


def test_vector_env_api_make_vec_and_info_layout():
    env = gymnasium.make_vec(
        "moralgym/NPlayerIPD-v0",
        num_envs=16,
        vectorization_mode="vector_entry_point",
        num_players=8,
        co_players="random",
    )
    observations, infos = env.reset(seed=0)
    assert observations.shape == (16, 2) and env.observation_space.contains(observations)
    observations, rewards, terminated, truncated, info = env.step(env.action_space.sample())
    assert rewards.shape == terminated.shape == truncated.shape == (16,)
    assert info["payoffs"].shape == info["cumulative_payoffs"].shape == (16, 8)
    assert info["co_player_actions"].shape == (16, 7) and info["_co_player_actions"].all()
    assert np.allclose(info["total_payoff"], info["payoffs"].sum(axis=1))
    assert set(info["moral_rewards"]) == set(N_PLAYER_COMPONENT_NAMES)
    with pytest.raises(ValueError, match="expects 16 actions"):
        env.step(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.full(16, 5))
    quiet = NPlayerGameVectorEnv(4, co_players=Fixed(C), moral_components=False)
    quiet.reset(seed=0)
    assert "moral_rewards" not in quiet.step(np.zeros(4, dtype=int))[4]


def test_vector_env_schedule_follows_each_sub_envs_episode():
    env = NPlayerGameVectorEnv(
        2,
        "public_goods",
        num_players=3,
        co_players=Fixed(C),
        num_rounds=1,
        reward=get_n_player_reward("game_then_utilitarian", switch_episode=1),
        initial_state="none",
        game_params={"multiplier": 1.5},
    )
    env.reset(seed=0)
    assert env.step(np.array([D, D]))[1].tolist() == [2.0, 2.0]  # episode 0, game: D with 2 C others, 1 + 1.5 * 2 / 3
    env.step(np.array([D, D]))  # autoreset step
    # Episode 1, utilitarian: D gives 2 + 1 + 1 (each C gets 1.5 * 2 / 3); all C gives 3 * 1.5.
    assert env.step(np.array([D, C]))[1].tolist() == [4.0, 4.5]


def test_unseeded_first_reset_draws_fresh_entropy_in_copies():
    for make in (
        lambda: NPlayerGameEnv(num_players=3),
        lambda: SingleAgentNPlayerGameEnv(co_players=Flaky()),
        lambda: NPlayerGameVectorEnv(8, co_players=Fixed(C)),
    ):
        copies = [pickle.loads(pickle.dumps(make())) for _ in range(3)]
        starts = []
        for env in copies:
            observations = [env.reset()[0] for _ in range(16)]
            starts.append(np.array([list(o.values()) if isinstance(o, dict) else o for o in observations]).tolist())
        assert starts[0] != starts[1] or starts[1] != starts[2]


def test_the_n_player_docs_examples_run():
    """Every python block of the N-player section of docs/envs.md runs (so the documented values cannot rot)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "envs.md").read_text()
    section = text[text.index("## N-player games") : text.index("## RL libraries")]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    assert blocks
    for index, block in enumerate(blocks):
        exec(compile(block, f"docs/envs.md[N-player python block {index}]", "exec"), {"__name__": "__docs__"})
