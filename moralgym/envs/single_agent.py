"""# Learner vs a fixed opponent (Gymnasium API)

``gymnasium.make("moralgym/IPD-v0", opponent="tit_for_tat", reward="deontological")`` — one id per game
(``IPD``, ``StagHunt``, ``Chicken``, ``BachOrStravinsky``, ``DefectiveCoordination``; ``MatrixGame`` takes ``game=``).

| Property | Value |
|---|---|
| Action space | ``Discrete(2)``: 0 = cooperate, 1 = defect (``ILLEGAL`` = -1 also accepted) |
| Observation space | ``MultiDiscrete([3, 3])``: ``[own previous move, opponent's previous move]``, 2 = no move yet |
| Reward | the chosen moral reward (default ``"game"``); all four components are in ``info["moral_rewards"]`` |
| Episode end | truncated after ``num_rounds`` rounds (default 5) |

``opponent`` is a strategy name from :mod:`moralgym.agents.strategies` (``tit_for_tat``, ``random``, ...) or any
object implementing :class:`~moralgym.envs.opponents.OpponentStrategy`. ``reward`` is a name, a
:class:`~moralgym.envs.rewards.MoralReward` or a callable; schedules advance with the number of resets.
``partner_illegal`` is the rule of :mod:`moralgym.envs.matrix_game` (it only matters for an opponent strategy that
answers ``ILLEGAL``).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from moralgym.envs._rng import CounterRNG
from moralgym.envs.batch import MatrixGameBatch
from moralgym.envs.games import MOVE_LETTERS, MatrixGame
from moralgym.envs.opponents import OpponentStrategy
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PARTNER_ILLEGAL, DEFAULT_PENALTY, MoralReward


class SingleAgentMatrixGameEnv(gymnasium.Env):
    """One learner (player 0, the row player) against a fixed opponent strategy."""

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 1}

    def __init__(
        self,
        game: str | MatrixGame | Any = "ipd",
        opponent: str | OpponentStrategy = "tit_for_tat",
        reward: str | MoralReward | Any = "game",
        num_rounds: int = 5,
        initial_state: str = "random",
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        render_mode: str | None = None,
        partner_illegal: str = DEFAULT_PARTNER_ILLEGAL,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.core = MatrixGameBatch(
            1, game, opponent, reward, num_rounds, initial_state, penalty, illegal_reward, partner_illegal
        )
        self.game = self.core.game
        self.render_mode = render_mode
        self.observation_space = spaces.MultiDiscrete([3, 3], dtype=np.int64)
        self.action_space = spaces.Discrete(2)
        self._last = ""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        elif self.core.episodes[0] < 0:
            # No seed yet: derive the game's stream from Gymnasium's (entropy-seeded) np_random.
            self.core.rng = CounterRNG.from_seed(int(self.np_random.integers(2**63)), 1)
        observation = self.core.reset()[0]
        self._last = ""
        return observation, {"round": 0, "episode": int(self.core.episodes[0])}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        observations, rewards, truncated, info = self.core.step(np.array([action]).reshape(1))
        step_info = {
            "round": int(self.core.rounds[0]),
            "action": int(np.asarray(action).reshape(-1)[0]),
            "opponent_action": int(info["opponent_action"][0]),
            "opponent_previous": int(info["opponent_previous"][0]),
            "illegal": bool(info["illegal"][0]),
            "game_payoff": float(info["game_payoff"][0]),
            "opponent_payoff": float(info["opponent_payoff"][0]),
            "moral_rewards": {k: float(v[0]) for k, v in info["moral_rewards"].items()},
        }
        self._last = f"{MOVE_LETTERS[step_info['action']]}{MOVE_LETTERS[step_info['opponent_action']]}"
        if self.render_mode == "human":
            self.render()
        return observations[0], float(rewards[0]), False, bool(truncated[0]), step_info

    def render(self) -> str | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without render_mode; pass render_mode='ansi' or 'human'")
            return None
        text = f"{self.game.title} round {int(self.core.rounds[0])}/{self.core.num_rounds}: {self._last or '-'}"
        if self.render_mode == "human":
            print(text)
            return None
        return text
