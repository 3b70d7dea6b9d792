"""# Native vector env: thousands of learner-vs-opponent games in numpy

``MatrixGameVectorEnv(num_envs, game="ipd", opponent="tit_for_tat", reward="game", ...)`` or
``gymnasium.make_vec("moralgym/IPD-v0", num_envs=4096, vectorization_mode="vector_entry_point", opponent=...)``.

Gymnasium ``VectorEnv`` semantics with ``AutoresetMode.NEXT_STEP`` (Gymnasium's default): the step after a sub-env
ends resets it (its action is ignored, its reward is 0). Sub-env ``i`` of an env reset with ``seed=s`` replays
exactly the single-agent env reset with ``seed=s + i``. ``opponent`` may be one strategy or a list with one per
sub-env; each distinct strategy acts on all its sub-envs in one array call. ``info`` holds arrays (one entry per
sub-env) with the same keys as the single env, each with the usual ``_key`` mask; entries are gathered only when
read (:class:`~moralgym.envs.batch.RoundInfo`), so unused diagnostics cost nothing. ``partner_illegal`` is the
rule of :mod:`moralgym.envs.matrix_game` (it only matters for an opponent strategy that answers ``ILLEGAL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from moralgym.envs.batch import MatrixGameBatch, OpponentSpec
from moralgym.envs.games import MatrixGame
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PARTNER_ILLEGAL, DEFAULT_PENALTY, MoralReward


class MatrixGameVectorEnv(VectorEnv):
    """``num_envs`` independent games of one learner against fixed opponents, stepped with array operations."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        game: str | MatrixGame | Any = "ipd",
        opponent: OpponentSpec | Sequence[OpponentSpec] = "tit_for_tat",
        reward: str | MoralReward | Any = "game",
        num_rounds: int = 5,
        initial_state: str = "random",
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        moral_components: bool = True,
        render_mode: str | None = None,
        partner_illegal: str = DEFAULT_PARTNER_ILLEGAL,
    ) -> None:
        self.core = MatrixGameBatch(
            num_envs, game, opponent, reward, num_rounds, initial_state, penalty, illegal_reward, partner_illegal
        )
        self.num_envs = self.core.n
        self.game = self.core.game
        self.moral_components = moral_components
        self.render_mode = render_mode
        self.single_observation_space = spaces.MultiDiscrete([3, 3], dtype=np.int64)
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = spaces.MultiDiscrete(np.full((self.num_envs, 2), 3), dtype=np.int64)
        self.action_space = spaces.MultiDiscrete(np.full(self.num_envs, 2), dtype=np.int64)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict | None = None):
        if seed is not None:
            self.core.seed(seed)
        observations = self.core.reset()
        self._autoreset[:] = False
        return observations, {"round": self.core.rounds.copy(), "_round": np.ones(self.num_envs, dtype=bool)}

    def step(self, actions: np.ndarray):
        if not self._autoreset.any():
            observations, rewards, truncated, info = self.core.step(actions, with_components=self.moral_components)
        else:
            # NEXT_STEP autoreset: sub-envs that ended last step reset now and ignore their action.
            resetting = self._autoreset
            playing = ~resetting
            actions = np.where(resetting, 0, np.asarray(actions))
            _, rewards, truncated, info = self.core.step(actions, mask=playing, with_components=self.moral_components)
            observations = self.core.reset(mask=resetting)
            rewards = np.where(resetting, 0.0, rewards)
            truncated = truncated & playing
            info.valid = playing
        self._autoreset = truncated
        return observations, rewards, np.zeros(self.num_envs, dtype=bool), truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        pass
