"""Stable-Baselines3 models trained on moralgym's Gymnasium envs are evaluated like any agent."""

import gymnasium
import numpy as np
import pytest

import moralgym  # noqa: F401 - registers the envs
from moralgym.evaluation import evaluate, make_agent

sb3 = pytest.importorskip("stable_baselines3")


@pytest.fixture(scope="module")
def ppo_model():
    env = gymnasium.make("moralgym/IPD-v0", opponent="tit_for_tat", reward="utilitarian")
    model = sb3.PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    return model


def test_sb3_adapter_plays_a_batch(ppo_model):
    from moralgym.agents.baselines import SB3Agent

    agent = SB3Agent(ppo_model, name="ppo")
    actions = agent.act(None, np.array([[0, 0], [0, 1], [1, 0], [1, 1]]))
    assert actions.shape == (4,) and set(actions.tolist()) <= {0, 1}
    result = evaluate(agent, num_episodes=2, num_rounds=3)
    assert len(result.summary) == 5 and {row["agent"] for row in result.summary} == {"ppo"}


def test_saved_sb3_model_loads_from_a_spec(ppo_model, tmp_path):
    path = tmp_path / "ppo_ipd.zip"
    ppo_model.save(path)
    agent = make_agent(f"sb3:ppo:{path}")
    observations = np.array([[0, 0], [1, 1]])
    expected, _ = ppo_model.predict(observations, deterministic=True)
    np.testing.assert_array_equal(agent.act(None, observations), expected)
