"""Stable-Baselines3 models as evaluation agents.

Any SB3 model trained on moralgym's Gymnasium envs (observation ``MultiDiscrete([3, 3])``, action ``Discrete(2)``)
plays through ``model.predict`` on the whole batch of observations. Importing this module does not import SB3.

>>> import gymnasium, moralgym
>>> from stable_baselines3 import PPO
>>> model = PPO("MlpPolicy", gymnasium.make("moralgym/IPD-v0"), n_steps=64, batch_size=64, seed=0)
>>> agent = SB3Agent(model, name="ppo")
>>> agent.act(None, np.array([[0, 0], [1, 1]])).shape
(2,)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moralgym.envs.games import MatrixGame

ALGORITHMS = ("ppo", "a2c", "dqn")


class SB3Agent:
    """Wraps ``model`` (anything with SB3's ``predict(observations, deterministic=...)``)."""

    def __init__(self, model: Any, name: str = "sb3", deterministic: bool = True) -> None:
        if not callable(getattr(model, "predict", None)):
            raise TypeError(f"an SB3 agent needs a model with predict(), got {type(model).__name__}")
        self.model = model
        self.name = name
        self.deterministic = deterministic

    @classmethod
    def load(cls, path: str | Path, algo: str = "ppo", name: str | None = None, deterministic: bool = True) -> SB3Agent:
        """Load a saved model (``model.save(path)``) of algorithm ``algo`` (ppo, a2c, dqn)."""
        import stable_baselines3

        key = algo.lower()
        if key not in ALGORITHMS:
            raise ValueError(f"unknown SB3 algorithm {algo!r}; use one of {', '.join(ALGORITHMS)}")
        model = getattr(stable_baselines3, key.upper()).load(str(path), device="cpu")
        return cls(model, name=name or f"sb3:{key}:{Path(path).stem}", deterministic=deterministic)

    def reset(self, n: int, seed: int | None = None) -> None:
        if seed is not None and not self.deterministic and hasattr(self.model, "set_random_seed"):
            self.model.set_random_seed(seed)  # sampling then replays under the evaluation seed

    def act(self, games: Sequence[MatrixGame] | None, observations: np.ndarray, seat: int = 0) -> np.ndarray:
        actions, _ = self.model.predict(np.asarray(observations, dtype=np.int64), deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(-1)

    def __repr__(self) -> str:
        return f"SB3Agent(name={self.name!r}, model={type(self.model).__name__})"
