"""# Native N-player vector env: thousands of learner-vs-co-players games in numpy

``NPlayerGameVectorEnv(num_envs, game="public_goods", num_players=None, co_players="conditional_cooperator", ...)``
or ``gymnasium.make_vec("moralgym/PublicGoods-v0", num_envs=4096, vectorization_mode="vector_entry_point",
num_players=8, co_players=...)``. Arguments as in :mod:`moralgym.envs.n_player.single_agent`, plus
``moral_components`` (``False`` leaves ``info["moral_rewards"]`` out).

Gymnasium ``VectorEnv`` semantics with ``AutoresetMode.NEXT_STEP``, as the two-player vector env: the step after a
sub-env ends resets it (its action is ignored, its reward is 0). Sub-env ``i`` of an env reset with ``seed=s``
replays exactly the single-agent env reset with ``seed=s + i``. Each step is a fixed number of array operations
over ``(num_envs, N)`` arrays, and each distinct co-player strategy acts on all its (game, seat) pairs in one call.

``info`` is a plain ``dict`` of arrays with the single env's keys, each with Gymnasium's ``_key`` mask
(``co_player_actions``, ``payoffs`` and ``cumulative_payoffs`` are ``(num_envs, ...)``); on the step that
autoresets a sub-env its ``round`` is 0 and its other entries are masked out. ``observation_space`` is the batched
space Gymnasium's sync vector env reports for the single space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from moralgym.envs.n_player.batch import CoPlayerSpec, NPlayerGameBatch
from moralgym.envs.n_player.env import GameSpec
from moralgym.envs.n_player.observations import DEFAULT_N_PLAYER_OBSERVATION_TYPE, n_player_observation_space
from moralgym.envs.n_player.rewards import DEFAULT_NORM
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PENALTY, MoralReward
from moralgym.envs.vector import with_masks


class NPlayerGameVectorEnv(VectorEnv):
    """``num_envs`` independent N-player games of one learner against fixed co-players, stepped with array ops."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        game: GameSpec = "public_goods",
        num_players: int | None = None,
        co_players: CoPlayerSpec | Sequence[CoPlayerSpec] = "conditional_cooperator",
        reward: str | MoralReward | Any = "game",
        num_rounds: int = 5,
        initial_state: str = "random",
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        norm: str = DEFAULT_NORM,
        moral_components: bool = True,
        render_mode: str | None = None,
        observation_type: str = DEFAULT_N_PLAYER_OBSERVATION_TYPE,
        game_params: Mapping[str, Any] | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"NPlayerGameVectorEnv has no render modes; render_mode must be None, got {render_mode!r}")
        self.core = NPlayerGameBatch(
            num_envs,
            game,
            num_players,
            co_players,
            reward,
            num_rounds,
            initial_state,
            penalty,
            illegal_reward,
            norm,
            observation_type,
            game_params,
        )
        self.num_envs = self.core.n
        self.game = self.core.game
        self.num_players = self.core.num_players
        self.moral_components = moral_components
        self.render_mode = render_mode
        self.single_observation_space = n_player_observation_space(self.core.observation_type, self.num_players)
        self.single_action_space = spaces.Discrete(2)
        # What Gymnasium's sync/async vector envs report for the same single spaces.
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict | None = None):
        if seed is not None:
            self.core.seed(seed)
        observations = self.core.reset()
        self._autoreset[:] = False
        n = self.num_envs
        infos = {
            "round": self.core.rounds.copy(),
            "_round": np.ones(n, dtype=bool),
            "episode_index": self.core.episodes.copy(),
            "_episode_index": np.ones(n, dtype=bool),
        }
        return observations, infos

    def step(self, actions: np.ndarray):
        if not self._autoreset.any():
            observations, rewards, truncated, info = self.core.step(actions, with_components=self.moral_components)
            playing = None
        else:
            # NEXT_STEP autoreset: sub-envs that ended last step reset now and ignore their action.
            resetting = self._autoreset
            playing = ~resetting
            actions = np.where(resetting, 0, np.asarray(actions))
            _, rewards, truncated, info = self.core.step(actions, mask=playing, with_components=self.moral_components)
            observations = self.core.reset(mask=resetting)
            rewards = np.where(resetting, 0.0, rewards)
            truncated = truncated & playing
            info["round"] = self.core.rounds.copy()  # 0 where the sub-env was reset
        self._autoreset = truncated
        return observations, rewards, np.zeros(self.num_envs, dtype=bool), truncated, with_masks(info, playing)

    def close_extras(self, **kwargs: Any) -> None:
        pass
