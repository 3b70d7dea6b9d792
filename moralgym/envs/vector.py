"""# Native vector env: thousands of learner-vs-opponent games in numpy

``MatrixGameVectorEnv(num_envs, game="ipd", opponent="tit_for_tat", reward="game", ...)`` or
``gymnasium.make_vec("moralgym/IPD-v0", num_envs=4096, vectorization_mode="vector_entry_point", opponent=...)``.

Gymnasium ``VectorEnv`` semantics with ``AutoresetMode.NEXT_STEP`` (Gymnasium's default): the step after a sub-env
ends resets it (its action is ignored, its reward is 0). Sub-env ``i`` of an env reset with ``seed=s`` replays
exactly the single-agent env reset with ``seed=s + i``. ``opponent`` may be one strategy or a list with one per
sub-env; each distinct strategy acts on all its sub-envs in one array call. ``partner_illegal`` is the rule of
:mod:`moralgym.envs.matrix_game` (it only matters for an opponent strategy that answers ``ILLEGAL``).

``info`` is a plain ``dict`` of arrays (one entry per sub-env) with the single env's keys, each with Gymnasium's
``_key`` mask, as ``gymnasium.make_vec(..., vectorization_mode="sync")`` builds it: at ``reset`` ``round`` and
``episode_index``; at ``step`` ``round``, ``action``, ``opponent_action``, ``opponent_previous``, ``illegal``,
``game_payoff``, ``opponent_payoff`` and ``moral_rewards`` (a dict of the four reward arrays, covered by the
``_moral_rewards`` mask; the sync env also puts ``_game``, ... masks inside it; left out with
``moral_components=False``). On the step that autoresets a sub-env its ``round`` is 0 and
its other entries are masked out. ``observation_space`` is the batched space Gymnasium's sync vector env reports
(``Box(0, 2, (num_envs, 2), int64)`` for the default ``observation_type="multi_discrete"``; ``"discrete"`` and
``"one_hot"`` as in :mod:`moralgym.envs.observations`). ``step`` before ``reset`` raises
``moralgym.envs.ResetNeeded`` (``gymnasium.error.ResetNeeded``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from moralgym.envs.batch import MatrixGameBatch, OpponentSpec
from moralgym.envs.games import MatrixGame
from moralgym.envs.observations import DEFAULT_OBSERVATION_TYPE, observation_space
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
        observation_type: str = DEFAULT_OBSERVATION_TYPE,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"MatrixGameVectorEnv has no render modes; render_mode must be None, got {render_mode!r}")
        self.core = MatrixGameBatch(
            num_envs,
            game,
            opponent,
            reward,
            num_rounds,
            initial_state,
            penalty,
            illegal_reward,
            partner_illegal,
            observation_type,
        )
        self.num_envs = self.core.n
        self.game = self.core.game
        self.moral_components = moral_components
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.core.observation_type)
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


def with_masks(info: dict[str, Any], valid: np.ndarray | None) -> dict[str, Any]:
    """Gymnasium's vector info layout: after each ``key`` its ``_key`` mask (``valid``, or all true; ``round`` is
    always valid). Every mask is its own memory (a row of one allocation), so a wrapper writing to one mask changes
    no other. ``moral_rewards`` stays a dict of the four arrays (its ``_moral_rewards`` mask covers them)."""
    if valid is None:
        masks = np.ones((len(info), len(info["round"])), dtype=bool)
    else:
        masks = np.tile(valid, (len(info), 1))
        masks[0] = True  # "round" (the first key) is valid everywhere, 0 where the sub-env was reset
    out: dict[str, Any] = {}
    for index, (key, value) in enumerate(info.items()):
        out[key] = value
        out[f"_{key}"] = masks[index]
    return out
