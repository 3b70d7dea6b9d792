"""Environments: games, rewards, the PettingZoo parallel/AEC env, registration, the Gymnasium single and vector envs."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import moralgym
from moralgym.envs import (
    ILLEGAL,
    NO_MOVE,
    PAPER_GAMES,
    MatrixGame,
    MatrixGameEnv,
    MoralRewardWrapper,
    RewardInputs,
    RewardSchedule,
    get_game,
    get_reward,
    list_rewards,
    make_opponent,
)
from moralgym.envs.registration import GYMNASIUM_IDS, PETTINGZOO_IDS
from moralgym.envs.single_agent import SingleAgentMatrixGameEnv
from moralgym.envs.vector import MatrixGameVectorEnv

C, D = 0, 1

PAPER_PAYOFFS = {
    "ipd": {(C, C): (3, 3), (C, D): (0, 4), (D, C): (4, 0), (D, D): (1, 1)},
    "stag_hunt": {(C, C): (4, 4), (C, D): (0, 3), (D, C): (3, 0), (D, D): (1, 1)},
    "chicken": {(C, C): (2, 2), (C, D): (1, 4), (D, C): (4, 1), (D, D): (0, 0)},
    "bach_or_stravinsky": {(C, C): (3, 2), (C, D): (0, 0), (D, C): (0, 0), (D, D): (2, 3)},
    "defective_coordination": {(C, C): (1, 1), (C, D): (0, 0), (D, C): (0, 0), (D, D): (4, 4)},
}


# --------------------------------------------------------------------------------------------------- games
@pytest.mark.parametrize("name", list(PAPER_PAYOFFS))
def test_paper_payoffs(name):
    game = get_game(name)
    for (row, col), expected in PAPER_PAYOFFS[name].items():
        assert game.payoff(row, col) == expected


@pytest.mark.parametrize("name", list(PAPER_PAYOFFS))
def test_env_pays_the_table_to_each_seat(name):
    env = MatrixGameEnv(name, num_rounds=4, initial_state="none")
    env.reset(seed=0)
    for (row, col), (pay_0, pay_1) in PAPER_PAYOFFS[name].items():
        _, rewards, _, _, infos = env.step({"player_0": row, "player_1": col})
        assert (rewards["player_0"], rewards["player_1"]) == (pay_0, pay_1)
        assert infos["player_0"]["game_payoff"] == pay_0 and infos["player_1"]["game_payoff"] == pay_1


def test_max_collective_payoffs_match_the_paper():
    assert [g.max_collective_payoff for g in PAPER_GAMES] == [6, 8, 5, 5, 8]


def test_game_lookup_by_alias_and_unknown_name():
    assert get_game("Prisoners-Dilemma") is get_game("ipd")
    assert get_game("BoS").name == "bach_or_stravinsky"
    with pytest.raises(KeyError, match=r"unknown game 'poker'.*ipd.*stag_hunt"):
        get_game("poker")


def test_custom_symmetric_and_asymmetric_tables():
    symmetric = get_game([[3, 0], [5, 1]])
    assert symmetric.payoff(C, D) == (0, 5) and symmetric.payoff(D, C) == (5, 0)
    asymmetric = MatrixGame("mine", [[(1, 2), (3, 4)], [(5, 6), (7, 8)]], action_names=("Left", "Right"))
    assert asymmetric.payoff(D, C) == (5, 6)
    assert asymmetric.payoff_table_for(1)[C, D].tolist() == [6, 5]  # player 1 plays C, player 0 plays D


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([[1, 2, 3], [4, 5, 6]], "shape"),
        ([[(1, 1), (2, 2)]], "shape"),
        ([[("a", 1), (0, 4)], [(4, 0), (1, 1)]], "'a' is not a number"),
        ([[(3, 3), (0, float("inf"))], [(4, 0), (1, 1)]], "finite"),
        ([[(3, 3), (0, float("nan"))], [(4, 0), (1, 1)]], "NaN"),
        ([[(True, 3), (0, 4)], [(4, 0), (1, 1)]], "True is not a number"),
        ("3,3,0,4", "unknown game"),
    ],
)
def test_malformed_payoff_tables_are_rejected(table, message):
    with pytest.raises((ValueError, KeyError), match=message):
        get_game(table)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=8, max_size=8))
def test_any_finite_table_round_trips(values):
    table = np.array(values).reshape(2, 2, 2)
    game = get_game(table.tolist())
    assert np.array_equal(game.payoffs, table)
    assert game.max_collective_payoff == pytest.approx(table.sum(axis=2).max())


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=12).filter(lambda v: len(v) not in (4, 8)))
def test_any_wrongly_sized_table_is_rejected(values):
    with pytest.raises(ValueError, match="payoffs must be"):
        get_game(values)


# --------------------------------------------------------------------------------------------------- rewards
def ipd_inputs(own, other, opponent_previous):
    game = get_game("ipd")
    own_payoff, opponent_payoff = game.payoff(own, other) if own != ILLEGAL else (0.0, game.payoff(C, other)[1])
    return RewardInputs(own, other, opponent_previous, own_payoff, opponent_payoff)


@pytest.mark.parametrize(
    ("own", "other", "opponent_previous", "expected"),
    [
        # own, other this round, other's previous move -> (game, deontological, utilitarian, game+deontological)
        (C, C, C, (3, 0, 6, 3)),
        (C, D, C, (0, 0, 4, 0)),
        (D, C, C, (4, -3, 4, 1)),
        (D, D, C, (1, -3, 2, -2)),
        (D, C, D, (4, 0, 4, 4)),
        (D, D, D, (1, 0, 2, 1)),
        (C, D, D, (0, 0, 4, 0)),
        (D, C, NO_MOVE, (4, 0, 4, 4)),
        (ILLEGAL, C, C, (-6, -6, -6, -6)),
    ],
)
def test_reward_formulas_on_hand_computed_cases(own, other, opponent_previous, expected):
    inputs = ipd_inputs(own, other, opponent_previous)
    names = ("game", "deontological", "utilitarian", "game_deontological")
    assert tuple(float(get_reward(name)(inputs)) for name in names) == expected


def test_reward_parameters_and_aliases():
    inputs = ipd_inputs(D, C, C)
    assert float(get_reward("De", penalty=5)(inputs)) == -5
    assert float(get_reward("game+de", penalty=1)(inputs)) == 3
    assert float(get_reward("selfish", illegal_reward=-100)(ipd_inputs(ILLEGAL, C, C))) == -100


def test_unknown_reward_lists_the_known_ones():
    with pytest.raises(KeyError) as error:
        get_reward("virtue")
    for name in list_rewards():
        assert name in str(error.value)


def test_schedules_switch_at_the_episode():
    schedule = get_reward("Game, then Deontological", switch_episode=3)
    assert [schedule.at(e).name for e in range(5)] == ["game"] * 3 + ["deontological"] * 2
    assert get_reward("game_then_utilitarian").at(500).name == "utilitarian"
    with pytest.raises(ValueError, match="start at episode 0"):
        RewardSchedule([(2, "game")])


def test_rewards_are_vectorised():
    own = np.array([C, D, D, ILLEGAL])
    inputs = RewardInputs(
        own, np.array([C, C, D, C]), np.array([C, C, D, C]), np.array([3, 4, 1, 0]), np.array([3, 0, 1, 0])
    )
    assert get_reward("deontological")(inputs).tolist() == [0, -3, 0, -6]
    assert get_reward("utilitarian")(inputs).tolist() == [6, 4, 2, -6]


# --------------------------------------------------------------------------------------------------- parallel env
@pytest.mark.parametrize("env_id", PETTINGZOO_IDS)
def test_pettingzoo_api_and_seed_tests(env_id):
    parallel_api_test(pettingzoo.make("parallel", env_id), num_cycles=200)
    parallel_seed_test(lambda: pettingzoo.make("parallel", env_id), num_cycles=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "obs space should be Box/Discrete": MultiDiscrete is intended
        api_test(pettingzoo.make("aec", env_id), num_cycles=200)


@pytest.mark.parametrize(
    "module_name", ["ipd_v0", "stag_hunt_v0", "chicken_v0", "bach_or_stravinsky_v0", "defective_coordination_v0"]
)
def test_versioned_module_trio(module_name):
    module = __import__(f"moralgym.envs.{module_name}", fromlist=["env"])
    assert module.parallel_env().game.name == module.GAME
    for factory in (module.env, module.raw_env):
        aec = factory(num_rounds=2)
        aec.reset(seed=0)
        assert aec.agent_selection == "player_0"


def rollout(env, seed, episodes=4):
    """Whole multi-episode trajectory: observations, rewards and infos of every step, actions from a seeded rng."""
    actions_rng = np.random.default_rng(seed)
    trajectory = []
    for episode in range(episodes):
        observations, _ = env.reset(seed=seed if episode == 0 else None)
        trajectory.append([o.tolist() for o in observations.values()])
        while env.agents:
            actions = {agent: int(actions_rng.integers(-1, 2)) for agent in env.agents}
            observations, rewards, _, _, infos = env.step(actions)
            trajectory.append(([o.tolist() for o in observations.values()], rewards, infos))
    return trajectory


def test_whole_runs_replay_with_the_same_seed_and_differ_with_another():
    first = rollout(MatrixGameEnv("chicken"), seed=7)
    again = rollout(MatrixGameEnv("chicken"), seed=7)
    other = rollout(MatrixGameEnv("chicken"), seed=8)
    assert first == again
    assert first != other


def test_initial_states_are_random_and_seeded():
    env = MatrixGameEnv()
    starts = {tuple(env.reset(seed=s)[0]["player_0"]) for s in range(40)}
    assert starts == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert MatrixGameEnv(initial_state="none").reset(seed=0)[0]["player_0"].tolist() == [NO_MOVE, NO_MOVE]


@pytest.mark.parametrize(("opponent", "move"), [("always_cooperate", C), ("always_defect", D), ("tit_for_tat", None)])
def test_always_cooperate_and_always_defect_start_from_their_own_move(opponent, move):
    """Spec §1.2: the opponent's round-one "previous move" is C for AC, D for AD, random for the others; the
    learner's stays random, from the same stream whatever the opponent."""
    env = SingleAgentMatrixGameEnv("ipd", opponent=opponent)
    vector = MatrixGameVectorEnv(40, "ipd", opponent=opponent)
    free = MatrixGameVectorEnv(40, "ipd", opponent="random")
    starts = np.array([env.reset(seed=s)[0] for s in range(40)])
    vector_starts, _ = vector.reset(seed=0)
    assert np.array_equal(vector_starts, starts)
    assert np.array_equal(vector_starts[:, 0], free.reset(seed=0)[0][:, 0])  # the learner's own move: unchanged
    assert set(starts[:, 0]) == {C, D}
    assert set(starts[:, 1]) == ({C, D} if move is None else {move})


def test_parallel_env_reset_can_fix_a_seats_previous_move():
    env = MatrixGameEnv()
    drawn = {tuple(env.reset(seed=s)[0]["player_0"]) for s in range(40)}
    fixed = {tuple(env.reset(seed=s, options={"previous_moves": {"player_1": D}})[0]["player_0"]) for s in range(40)}
    assert drawn == {(C, C), (C, D), (D, C), (D, D)} and fixed == {(C, D), (D, D)}
    observations, _ = MatrixGameEnv(initial_state="none").reset(seed=0, options={"previous_moves": {"player_0": C}})
    assert observations["player_1"].tolist() == [NO_MOVE, C]
    with pytest.raises(ValueError, match="unknown agent 'player_2'"):
        env.reset(seed=0, options={"previous_moves": {"player_2": C}})
    with pytest.raises(ValueError, match="must be 0 \\(C\\) or 1 \\(D\\)"):
        env.reset(seed=0, options={"previous_moves": {"player_1": 2}})


def test_observations_show_both_previous_moves_from_each_seat():
    env = MatrixGameEnv(initial_state="none")
    env.reset(seed=0)
    observations, *_ = env.step({"player_0": C, "player_1": D})
    assert observations["player_0"].tolist() == [C, D]
    assert observations["player_1"].tolist() == [D, C]
    assert env.state().tolist() == [C, D, 1]
    assert env.state_space.contains(env.state())


def test_episode_ends_by_truncation_after_num_rounds():
    env = MatrixGameEnv(num_rounds=3)
    env.reset(seed=0)
    for round_ in range(3):
        _, _, terminations, truncations, _ = env.step({"player_0": C, "player_1": C})
        assert not any(terminations.values())
        assert all(truncations.values()) == (round_ == 2)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"player_0": C, "player_1": C})


def test_illegal_action_event():
    env = MatrixGameEnv(initial_state="none", num_rounds=5)
    env.reset(seed=0)
    env.step({"player_0": D, "player_1": C})
    observations, rewards, _, _, infos = env.step({"player_0": ILLEGAL, "player_1": C})
    assert rewards["player_0"] == -6
    assert infos["player_0"]["illegal"] and not infos["player_1"]["illegal"]
    assert infos["player_0"]["moral_rewards"] == {
        "game": -6,
        "deontological": -6,
        "utilitarian": -6,
        "game_deontological": -6,
    }
    # The illegal player's last legal move (D) stands in its observation and for its partner's payoff.
    assert observations["player_0"].tolist() == [D, C]
    assert infos["player_1"]["game_payoff"] == 0  # C against (the standing) D
    assert infos["player_0"]["game_payoff"] == 0


def test_illegal_first_move_with_no_history_pays_nothing():
    env = MatrixGameEnv(initial_state="none")
    env.reset(seed=0)
    observations, rewards, *_ = env.step({"player_0": ILLEGAL, "player_1": C})
    assert rewards == {"player_0": -6, "player_1": 0}
    assert observations["player_0"].tolist() == [NO_MOVE, C]


@pytest.mark.parametrize("bad", [2, -2, 7, 0.5, "C", None])
def test_out_of_range_actions_are_clear_errors(bad):
    env = MatrixGameEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0 \\(cooperate\\), 1 \\(defect\\)"):
        env.step({"player_0": bad, "player_1": C})


def test_missing_agent_action_is_an_error():
    env = MatrixGameEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing \\['player_1'\\]"):
        env.step({"player_0": C})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_rounds": 0}, "num_rounds"),
        ({"initial_state": "zero"}, "initial_state"),
        ({"render_mode": "rgb"}, "render_mode"),
    ],
)
def test_bad_env_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MatrixGameEnv(**kwargs)


def test_render_modes(capsys):
    env = MatrixGameEnv(render_mode="ansi", initial_state="none")
    env.reset(seed=0)
    env.step({"player_0": C, "player_1": D})
    assert env.render() == "Iterated Prisoner's Dilemma round 1/5: CD | last moves CD"
    human = MatrixGameEnv(render_mode="human")
    human.reset(seed=0)
    human.step({"player_0": D, "player_1": D})
    assert "round 1/5" in capsys.readouterr().out


def test_env_pickles_mid_episode():
    env = MatrixGameEnv("stag_hunt")
    env.reset(seed=3)
    env.step({"player_0": C, "player_1": D})
    clone = pickle.loads(pickle.dumps(env))
    actions = {"player_0": D, "player_1": D}
    assert clone.step(actions)[1] == env.step(actions)[1]
    assert np.array_equal(clone.state(), env.state())


def test_bach_or_stravinsky_is_asymmetric_in_infos():
    env = MatrixGameEnv("bos", initial_state="none")
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({"player_0": C, "player_1": C})
    assert rewards == {"player_0": 3, "player_1": 2}
    assert infos["player_0"]["moral_rewards"]["utilitarian"] == 5


# --------------------------------------------------------------------------------------------------- wrapper
def test_wrapper_gives_each_agent_its_own_reward():
    env = MoralRewardWrapper(MatrixGameEnv(initial_state="none"), {"player_0": "deontological", "player_1": "game"})
    env.reset(seed=0)
    env.step({"player_0": C, "player_1": C})
    _, rewards, _, _, infos = env.step({"player_0": D, "player_1": C})
    assert rewards == {"player_0": -3.0, "player_1": 0.0}
    assert infos["player_0"]["game_payoff"] == 4 and infos["player_0"]["reward_name"] == "deontological"


def test_wrapper_schedule_and_custom_callable():
    env = MoralRewardWrapper(
        MatrixGameEnv(num_rounds=1, initial_state="none"),
        {"player_0": get_reward("game_then_utilitarian", switch_episode=2), "player_1": lambda x: x.own_payoff * 10},
    )
    seen = []
    for episode in range(3):
        env.reset(seed=episode)
        _, rewards, *_ = env.step({"player_0": D, "player_1": C})
        seen.append(rewards)
    assert [r["player_0"] for r in seen] == [4, 4, 4]  # game 4, game 4, utilitarian 4 + 0
    assert [r["player_1"] for r in seen] == [0, 0, 0]
    env.reset(seed=0)
    _, rewards, *_ = env.step({"player_0": C, "player_1": D})
    assert rewards == {"player_0": 4.0, "player_1": 40.0}  # utilitarian 0 + 4 after the switch


def test_wrapper_passes_api_test_and_rejects_unknown_agents():
    parallel_api_test(MoralRewardWrapper(MatrixGameEnv(), "utilitarian"), num_cycles=50)
    with pytest.raises(ValueError, match="unknown agents"):
        MoralRewardWrapper(MatrixGameEnv(), {"player_0": "game", "player_1": "game", "player_2": "game"})
    with pytest.raises(KeyError, match="unknown reward"):
        MoralRewardWrapper(MatrixGameEnv(), {"player_0": "kant", "player_1": "game"})


# --------------------------------------------------------------------------------------------------- registration
def test_registered_ids():
    for env_id in PETTINGZOO_IDS:
        assert env_id in pettingzoo.parallel_registry and env_id in pettingzoo.aec_registry
    for env_id in GYMNASIUM_IDS:
        assert env_id in gymnasium.registry
    env = pettingzoo.make("parallel", "moralgym/ipd_v0", num_rounds=4)
    assert env.num_rounds == 4 and env.game.name == "ipd"
    custom = pettingzoo.make("parallel", "moralgym/matrix_game-v0", game=[[2, 0], [3, 1]])
    assert custom.game.payoff(D, C) == (3, 0)


def test_import_moralgym_envs_does_not_import_torch():
    code = "import sys, moralgym.envs, moralgym.agents.strategies; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --------------------------------------------------------------------------------------------------- gymnasium
@pytest.mark.parametrize("env_id", GYMNASIUM_IDS)
def test_gymnasium_env_checker(env_id):
    env = gymnasium.make(env_id, opponent="random", reward="deontological")
    check_env(env.unwrapped, skip_render_check=True)


def test_single_agent_env_against_tit_for_tat():
    env = gymnasium.make("moralgym/IPD-v0", opponent="tit_for_tat", reward="utilitarian", initial_state="none")
    observation, _ = env.reset(seed=0)
    assert observation.tolist() == [NO_MOVE, NO_MOVE]
    moves = [D, C, D, C, C]
    transcript = []
    for move in moves:
        observation, reward, terminated, truncated, info = env.step(move)
        transcript.append((move, info["opponent_action"], reward))
    assert transcript == [(D, C, 4.0), (C, D, 4.0), (D, C, 4.0), (C, D, 4.0), (C, C, 6.0)]
    assert truncated and not terminated


def test_single_agent_unknown_opponent_lists_known_ones():
    with pytest.raises(KeyError, match="tit_for_tat"):
        gymnasium.make("moralgym/IPD-v0", opponent="nice_guy")


def test_stable_baselines3_trains_on_the_env():
    ppo = pytest.importorskip("stable_baselines3").PPO
    env = gymnasium.make("moralgym/StagHunt-v0", opponent="tit_for_tat", reward="game")
    model = ppo("MlpPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0, verbose=0)
    model.learn(64)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(int(action))


OPPONENT_MIX = ["random", "tit_for_tat", "generous_tit_for_tat", "always_defect", "grim_trigger", "tit_for_two_tats"]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), actions=st.lists(st.integers(-1, 1), min_size=6 * 13, max_size=6 * 13))
def test_vector_env_replays_the_single_env(seed, actions):
    """Sub-env i of a vector env seeded s == the single env seeded s + i, through autoresets and illegal moves."""
    n, steps = len(OPPONENT_MIX), 13
    actions = np.array(actions).reshape(steps, n)
    vector = MatrixGameVectorEnv(n, "chicken", opponent=OPPONENT_MIX, reward="game_deontological", num_rounds=4)
    singles = [
        SingleAgentMatrixGameEnv("chicken", opponent=o, reward="game_deontological", num_rounds=4) for o in OPPONENT_MIX
    ]
    vector_obs, _ = vector.reset(seed=seed)
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    assert np.array_equal(vector_obs, np.array(single_obs))
    done = np.zeros(n, dtype=bool)
    for step in range(steps):
        vector_obs, vector_rewards, _, vector_trunc, info = vector.step(actions[step])
        for i, env in enumerate(singles):
            if done[i]:  # NEXT_STEP autoreset: this step resets sub-env i
                observation, _ = env.reset()
                assert np.array_equal(vector_obs[i], observation) and vector_rewards[i] == 0
                continue
            observation, reward, _, truncated, single_info = env.step(int(actions[step, i]))
            assert np.array_equal(vector_obs[i], observation)
            assert vector_rewards[i] == reward and vector_trunc[i] == truncated
            assert info["opponent_action"][i] == single_info["opponent_action"]
            assert info["moral_rewards"]["utilitarian"][i] == single_info["moral_rewards"]["utilitarian"]
        done = vector_trunc


def test_vector_env_api_and_make_vec():
    env = gymnasium.make_vec("moralgym/IPD-v0", num_envs=16, vectorization_mode="vector_entry_point", opponent="random")
    observations, _ = env.reset(seed=0)
    assert observations.shape == (16, 2) and env.observation_space.contains(observations)
    observations, rewards, terminated, truncated, info = env.step(env.action_space.sample())
    assert rewards.shape == terminated.shape == truncated.shape == (16,)
    assert info["_game_payoff"].all() and set(np.unique(info["game_payoff"])) <= {0.0, 1.0, 3.0, 4.0}
    with pytest.raises(ValueError, match="expects 16 actions"):
        env.step(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.full(16, 5))


def test_vector_env_schedule_follows_each_sub_envs_episode():
    env = MatrixGameVectorEnv(
        2,
        opponent="always_cooperate",
        reward=get_reward("game_then_utilitarian", switch_episode=1),
        num_rounds=1,
        initial_state="none",
    )
    env.reset(seed=0)
    assert env.step(np.array([D, D]))[1].tolist() == [4, 4]  # episode 0: game reward
    env.step(np.array([D, D]))  # autoreset step
    assert env.step(np.array([D, C]))[1].tolist() == [4, 6]  # episode 1: utilitarian


def test_moralgym_version():
    assert moralgym.__version__


# --------------------------------------------------------------------------------------------------- registry keywords
@pytest.mark.parametrize(
    ("build", "bad", "accepted"),
    [
        (lambda: get_reward("deontological", penalt=5), "penalt", "'penalty', 'illegal_reward'"),
        (lambda: get_reward("utilitarian", ilegal_reward=-10), "ilegal_reward", "'illegal_reward', 'penalty'"),
        (lambda: get_reward("game_then_deontological", switch=3), "switch", "'switch_episode'"),
        (lambda: get_reward(lambda inputs: 0.0, nam="x"), "nam", "'name'"),
        (lambda: make_opponent("tit_for_tat", q=0.1), "q", "none"),
        (lambda: make_opponent("generous_tit_for_tat", qq=0.1), "qq", "'q'"),
        (lambda: make_opponent("memory_one", p_cc=1, p_cd=0, p_dc=1, pdd=0), "pdd", "'p_dd'"),
    ],
)
def test_registry_factories_reject_unknown_keywords(build, bad, accepted):
    with pytest.raises(TypeError, match=rf"unknown keyword argument '{bad}'.*accepted keyword arguments: .*{accepted}"):
        build()


def test_registry_factories_still_take_their_keywords():
    assert get_reward("utilitarian", penalty=3, illegal_reward=-10).illegal_reward == -10  # one kwargs set for all
    assert get_reward("game_then_deontological", switch_episode=3, penalty=1).at(3).penalty == 1
    assert make_opponent("generous_tit_for_tat", q=0.25).q == 0.25


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", ["penalty", "illegal_reward"])
def test_nan_and_infinite_penalties_are_rejected(name, value):
    for build in (
        lambda: get_reward("game_deontological", **{name: value}),
        lambda: get_reward("utilitarian", **{name: value}),
        lambda: MatrixGameEnv(**{name: value}),
        lambda: SingleAgentMatrixGameEnv(**{name: value}),
        lambda: MatrixGameVectorEnv(2, **{name: value}),
    ):
        with pytest.raises(ValueError, match=rf"{name} must be a finite number, got -?(nan|inf)"):
            build()


# --------------------------------------------------------------------------------------------------- actions
@pytest.mark.parametrize("wrap", [np.array, lambda a: np.array([a]), np.int64, np.int8, lambda a: np.array([[a]])])
def test_size_one_integer_arrays_are_actions(wrap):
    env = MatrixGameEnv(initial_state="none")
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({"player_0": wrap(1), "player_1": wrap(0)})
    assert rewards == {"player_0": 4.0, "player_1": 0.0} and infos["player_0"]["action"] == 1
    single = SingleAgentMatrixGameEnv(initial_state="none")
    single.reset(seed=0)
    assert single.step(wrap(1))[4]["action"] == 1


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (np.array([1, 0]), r"array\(\[1, 0\]\)"),
        (np.array([1.0]), r"array\(\[1.\]\)"),
        (1.0, "1.0"),
        (True, "True"),
        (np.array([5]), r"array\(\[5\]\)"),
        ("D", "'D'"),
    ],
)
def test_bad_actions_name_the_agent_and_the_value(bad, shown):
    env = MatrixGameEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"'player_1'.*{shown}|{shown}.*'player_1'"):
        env.step({"player_0": C, "player_1": bad})
    single = SingleAgentMatrixGameEnv()
    single.reset(seed=0)
    with pytest.raises(ValueError, match=shown):
        single.step(bad)


# --------------------------------------------------------------------------------------------------- reset needed
def test_stepping_before_reset_or_after_truncation_needs_reset():
    single = SingleAgentMatrixGameEnv(num_rounds=2)
    with pytest.raises(gymnasium.error.ResetNeeded, match=r"before reset\(\); call reset\(\)"):
        single.step(C)
    single.reset(seed=0)
    single.step(C)
    assert single.step(C)[3]
    with pytest.raises(gymnasium.error.ResetNeeded, match=r"truncated; call reset\(\)"):
        single.step(C)
    single.reset()
    single.step(C)  # fine again
    vector = MatrixGameVectorEnv(3)
    with pytest.raises(gymnasium.error.ResetNeeded, match=r"call reset\(\)"):
        vector.step(np.zeros(3, dtype=int))
    parallel = MatrixGameEnv()
    with pytest.raises(RuntimeError, match=r"before reset\(\); call reset\(\)"):
        parallel.step({"player_0": C, "player_1": C})
    with pytest.raises(moralgym.envs.ResetNeeded):
        parallel.step({"player_0": C, "player_1": C})


# --------------------------------------------------------------------------------------------------- rgb_array
def test_rgb_array_render_on_the_single_and_parallel_envs():
    for env_id in GYMNASIUM_IDS:
        assert "rgb_array" in gymnasium.spec(env_id).make().metadata["render_modes"]
    env = gymnasium.make("moralgym/IPD-v0", render_mode="rgb_array", initial_state="none")
    env.reset(seed=0)
    before = env.render()
    env.step(D)
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.shape == before.shape
    assert not np.array_equal(image, before)  # the round's moves are drawn
    parallel = MatrixGameEnv(render_mode="rgb_array", num_rounds=3)
    parallel.reset(seed=0)
    parallel.step({"player_0": C, "player_1": ILLEGAL})
    frame = parallel.render()
    assert frame.dtype == np.uint8 and frame.shape == (32, 64, 3)
    assert "rgb_array" in parallel.metadata["render_modes"]


# --------------------------------------------------------------------------------------------------- info keys
def test_reset_and_step_infos_have_the_same_keys():
    env = MoralRewardWrapper(MatrixGameEnv(), {"player_0": "deontological", "player_1": "game"})
    _, reset_infos = env.reset(seed=0)
    _, _, _, _, step_infos = env.step({"player_0": C, "player_1": D})
    for agent in env.possible_agents:
        assert set(reset_infos[agent]) == set(step_infos[agent])
        assert set(reset_infos[agent]["moral_rewards"]) == set(step_infos[agent]["moral_rewards"])
    assert reset_infos["player_0"]["reward_name"] == "deontological" and reset_infos["player_1"]["round"] == 0
    observations, infos = MatrixGameEnv().reset(seed=0)
    assert [infos["player_0"]["action"], infos["player_0"]["opponent_action"]] == observations["player_0"].tolist()


# --------------------------------------------------------------------------------------------------- seeding
def test_unseeded_first_reset_draws_fresh_entropy_in_copies():
    """Copies of an env that was never reset (cloudpickle, SuperSuit's vec envs) must not replay the same games."""
    for make in (MatrixGameEnv, lambda: SingleAgentMatrixGameEnv(opponent="random"), lambda: MatrixGameVectorEnv(8)):
        original = make()
        copies = [pickle.loads(pickle.dumps(original)) for _ in range(3)]
        starts = []
        for env in copies:
            observations = [env.reset()[0] for _ in range(16)]
            starts.append(np.array([list(o.values()) if isinstance(o, dict) else o for o in observations]).tolist())
        assert starts[0] != starts[1] or starts[1] != starts[2]


def test_seeded_resets_replay_the_same_games_as_before():
    env = MatrixGameEnv()
    starts = [env.reset(seed=s)[0]["player_0"].tolist() for s in range(8)]
    assert starts == [[0, 0], [1, 1], [0, 0], [1, 0], [1, 0], [1, 1], [1, 1], [0, 1]]
    single = SingleAgentMatrixGameEnv("ipd", opponent="random")
    single.reset(seed=3)
    opponent = []
    for _ in range(2):
        opponent += [single.step(k % 2)[4]["opponent_action"] for k in range(5)]
        single.reset()
    assert opponent == [1, 1, 0, 1, 1, 1, 1, 0, 1, 0]


# --------------------------------------------------------------------------------------------------- AEC rewards
def aec_transcript(reward_timing, moves):
    env = pettingzoo.make("aec", "moralgym/ipd-v0", num_rounds=len(moves), initial_state="none", **reward_timing)
    env.reset(seed=0)
    seen, round_of = [], {"player_0": 0, "player_1": 0}
    for agent in env.agent_iter():
        _, reward, termination, truncation, _ = env.last()
        seen.append((agent, reward, dict(env.rewards)))
        env.step(None if termination or truncation else moves[round_of[agent]][agent == "player_1"])
        round_of[agent] += 1
    return seen


def test_aec_last_gives_every_agent_its_round_reward_on_its_own_turn():
    moves = [(D, C), (C, D), (C, C)]  # IPD payoffs (4, 0), (0, 4), (3, 3)
    for timing in ({}, {"reward_timing": "own_turn"}):
        seen = aec_transcript(timing, moves)
        assert [r for a, r, _ in seen if a == "player_0"] == [0, 4, 0, 3]
        assert [r for a, r, _ in seen if a == "player_1"] == [0, 0, 4, 3]
    # own_turn: env.rewards agrees with last(): only the agent about to act is paid, each reward exactly once.
    for agent, reward, rewards in aec_transcript({"reward_timing": "own_turn"}, moves):
        assert rewards[agent] == reward and all(r == 0 for a, r in rewards.items() if a != agent)
    with pytest.raises(ValueError, match="reward_timing must be one of 'round', 'own_turn'"):
        moralgym.envs.ipd_v0.env(reward_timing="later")


def test_aec_own_turn_passes_the_api_test():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        api_test(moralgym.envs.ipd_v0.env(reward_timing="own_turn"), num_cycles=100)


# --------------------------------------------------------------------------------------------------- observation types
@pytest.mark.parametrize("observation_type", ["discrete", "one_hot", "multi_discrete"])
def test_observation_types_pass_the_checkers(observation_type):
    kwargs = {"observation_type": observation_type}
    parallel_api_test(pettingzoo.make("parallel", "moralgym/ipd-v0", **kwargs), num_cycles=100)
    parallel_seed_test(lambda: pettingzoo.make("parallel", "moralgym/stag_hunt-v0", **kwargs), num_cycles=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        api_test(pettingzoo.make("aec", "moralgym/chicken-v0", **kwargs), num_cycles=100)
    check_env(gymnasium.make("moralgym/IPD-v0", opponent="random", **kwargs).unwrapped)
    vector = gymnasium.make_vec("moralgym/IPD-v0", 4, vectorization_mode="vector_entry_point", **kwargs)
    sync = gymnasium.make_vec("moralgym/IPD-v0", 4, vectorization_mode="sync", **kwargs)
    assert vector.observation_space == sync.observation_space
    assert np.array_equal(vector.reset(seed=5)[0], sync.reset(seed=5)[0])
    assert vector.observation_space.contains(vector.step(np.ones(4, dtype=np.int64))[0])


def test_observation_type_values():
    spaces = gymnasium.spaces
    for observation_type, space, value in [
        ("discrete", spaces.Discrete(9), 1 * 3 + 0),
        ("one_hot", spaces.Box(0, 1, (6,), np.float32), [0, 1, 0, 1, 0, 0]),
    ]:
        env = MatrixGameEnv(initial_state="none", observation_type=observation_type)
        env.reset(seed=0)
        observations, *_ = env.step({"player_0": D, "player_1": C})
        assert env.observation_space("player_0") == space
        assert np.array_equal(observations["player_0"], value)
    with pytest.raises(ValueError, match="observation_type must be one of 'multi_discrete', 'discrete', 'one_hot'"):
        MatrixGameEnv(observation_type="box")
