"""Classical (non-LLM) baselines: tabular Q-learning and a Stable-Baselines3 adapter. No torch at import."""

from moralgym.agents.baselines.q_learning import (
    QLearningAgent,
    QLearningConfig,
    QLearningResult,
    train_q_learning,
)
from moralgym.agents.baselines.sb3 import SB3Agent

__all__ = ["QLearningAgent", "QLearningConfig", "QLearningResult", "SB3Agent", "train_q_learning"]
