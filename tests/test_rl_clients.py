"""The envs in the RL clients people use: Stable-Baselines3, SuperSuit, Gymnasium's vector wrappers.

The PettingZoo and Gymnasium checkers on every registered id (and every ``observation_type``) run in
tests/test_envs.py (``test_pettingzoo_api_and_seed_tests``, ``test_gymnasium_env_checker``,
``test_observation_types_pass_the_checkers``).
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers.vector import DictInfoToList, RecordEpisodeStatistics

import moralgym  # noqa: F401 - registers the envs
from moralgym.envs.registration import GYMNASIUM_IDS
from moralgym.envs.vector import MatrixGameVectorEnv


# --------------------------------------------------------------------------------------------------- SB3
def test_sb3_make_vec_env_and_ppo():
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    # make_vec_env passes render_mode="rgb_array" (and retries without it only on TypeError).
    envs = make_vec_env("moralgym/IPD-v0", n_envs=2, seed=0, env_kwargs={"opponent": "tit_for_tat"})
    assert envs.render_mode == "rgb_array"
    model = sb3.PPO("MlpPolicy", envs, n_steps=64, batch_size=32, n_epochs=2, seed=0, verbose=0).learn(384)
    observations = envs.reset()
    actions, _ = model.predict(observations, deterministic=True)
    observations, rewards, dones, infos = envs.step(actions)
    assert rewards.shape == (2,) and "moral_rewards" in infos[0]
    frames = envs.get_images()
    assert all(frame.dtype == np.uint8 and frame.ndim == 3 for frame in frames)
    envs.close()


@pytest.mark.parametrize("observation_type", ["discrete", "one_hot"])
def test_sb3_trains_with_flat_observations(observation_type):
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    envs = make_vec_env("moralgym/StagHunt-v0", n_envs=2, seed=1, env_kwargs={"observation_type": observation_type})
    sb3.PPO("MlpPolicy", envs, n_steps=32, batch_size=32, n_epochs=1, seed=0, verbose=0).learn(128)
    envs.close()


# --------------------------------------------------------------------------------------------------- SuperSuit
def test_supersuit_vec_env_from_the_parallel_env():
    ss = pytest.importorskip("supersuit")
    env = pettingzoo.make("parallel", "moralgym/ipd-v0", num_rounds=5)
    vec = ss.pettingzoo_env_to_vec_env_v1(env)
    observations, infos = vec.reset(seed=0)
    assert observations.shape == (2, 2) and len(infos) == 2
    for _ in range(12):  # past the end of an episode: the markov vec env resets itself
        observations, rewards, terminations, truncations, infos = vec.step(np.array([0, 1]))
    assert rewards.shape == (2,) and observations.shape == (2, 2)
    # Cloudpickled copies (SuperSuit's concat / multiprocess vec envs) must not replay the same games.
    fresh = ss.pettingzoo_env_to_vec_env_v1(pettingzoo.make("parallel", "moralgym/ipd-v0", num_rounds=5))
    many = ss.concat_vec_envs_v1(fresh, 3, num_cpus=0, base_class="gymnasium")
    observations, _ = many.reset()
    starts = [tuple(observations[2 * k].tolist()) for k in range(3)]
    for _ in range(10):
        for _ in range(5):
            observations, *_ = many.step(np.zeros(6, dtype=np.int64))
        starts += [tuple(observations[2 * k].tolist()) for k in range(3)]
    per_copy = [starts[k::3] for k in range(3)]
    assert len({tuple(s) for s in per_copy}) > 1
    many.close()


# --------------------------------------------------------------------------------------------------- Gymnasium vector
def rollout_stats(envs, steps=23):
    envs = RecordEpisodeStatistics(envs)
    envs.reset(seed=0)
    episodes = []
    for _ in range(steps):
        *_, infos = envs.step(np.zeros(envs.num_envs, dtype=np.int64))
        if "episode" in infos:
            episodes.append((infos["episode"]["r"][infos["_episode"]].tolist(), infos["episode"]["l"].tolist()))
    return episodes


def test_record_episode_statistics_on_the_native_and_the_sync_vector_envs():
    kwargs = {"opponent": "tit_for_tat", "num_rounds": 5}
    native = gymnasium.make_vec("moralgym/IPD-v0", 3, vectorization_mode="vector_entry_point", **kwargs)
    sync = gymnasium.make_vec("moralgym/IPD-v0", 3, vectorization_mode="sync", **kwargs)
    native_stats, sync_stats = rollout_stats(native), rollout_stats(sync)
    assert len(native_stats) == 4 and native_stats == sync_stats  # 4 x (5 rounds + 1 autoreset step) - 1


def test_native_vector_info_and_spaces_match_the_sync_vector_env():
    native = MatrixGameVectorEnv(4, "chicken", opponent="random", reward="game_deontological", num_rounds=2)
    sync = gymnasium.make_vec(
        "moralgym/Chicken-v0",
        4,
        vectorization_mode="sync",
        opponent="random",
        reward="game_deontological",
        num_rounds=2,
    )
    assert native.observation_space == sync.observation_space and native.action_space == sync.action_space
    native_obs, native_info = native.reset(seed=3)
    sync_obs, sync_info = sync.reset(seed=3)
    assert type(native_info) is dict and np.array_equal(native_obs, sync_obs)
    assert_same_info(native_info, sync_info)
    rng = np.random.default_rng(0)
    for step in range(5):
        actions = rng.integers(0, 2, 4)
        native_obs, native_rewards, _, native_trunc, native_info = native.step(actions)
        sync_obs, sync_rewards, _, sync_trunc, sync_info = sync.step(actions)
        assert type(native_info) is dict
        assert np.array_equal(native_obs, sync_obs) and np.array_equal(native_rewards, sync_rewards)
        assert np.array_equal(native_trunc, sync_trunc)
        if step != 2:  # step 2 autoresets: the sync env then reports the reset infos, the native one step keys
            assert_same_info(native_info, sync_info)
        for key in ("round", "action", "opponent_action", "game_payoff", "moral_rewards"):
            assert key in native_info and f"_{key}" in native_info
    per_env = DictInfoToList(MatrixGameVectorEnv(2, num_rounds=1))
    per_env.reset(seed=0)
    infos = per_env.step(np.array([0, 1]))[4]
    assert [info["action"] for info in infos] == [0, 1] and set(infos[0]["moral_rewards"]) == {
        "game",
        "deontological",
        "utilitarian",
        "game_deontological",
    }


def assert_same_info(native, sync, nested=False):
    """Same keys and values; inside ``moral_rewards`` the sync env's per-entry ``_game``, ... masks are extra."""
    assert set(native) == {key for key in sync if not (nested and key.startswith("_"))}
    for key, value in native.items():
        if isinstance(value, dict):
            assert_same_info(value, sync[key], nested=True)
        else:
            assert np.array_equal(value, sync[key]), key


# --------------------------------------------------------------------------------------------------- render checks
@pytest.mark.parametrize("env_id", GYMNASIUM_IDS)
def test_gymnasium_checker_with_rgb_array_render(env_id):
    check_env(gymnasium.make(env_id, render_mode="rgb_array").unwrapped)
