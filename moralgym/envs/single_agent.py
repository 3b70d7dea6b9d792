"""# Learner vs a fixed opponent (Gymnasium API)

``gymnasium.make("moralgym/IPD-v0", opponent="tit_for_tat", reward="deontological")`` — one id per game
(``IPD``, ``StagHunt``, ``Chicken``, ``BachOrStravinsky``, ``DefectiveCoordination``; ``MatrixGame`` takes ``game=``).

| Property | Value |
|---|---|
| Action space | ``Discrete(2)``: 0 = cooperate, 1 = defect (``ILLEGAL`` = -1 also accepted) |
| Observation space | ``MultiDiscrete([3, 3])``: ``[own previous move, opponent's previous move]``, 2 = no move yet (default; see ``observation_type``) |
| Reward | the chosen moral reward (default ``"game"``); all four components are in ``info["moral_rewards"]`` |
| Episode end | truncated after ``num_rounds`` rounds (default 5); ``step`` then (or before ``reset``) raises ``ResetNeeded`` |
| Render modes | ``"ansi"``, ``"human"``, ``"rgb_array"`` (a small uint8 image, :mod:`moralgym.envs.rendering`) |

``SingleAgentMatrixGameEnv(game="ipd", opponent="tit_for_tat", reward="game", num_rounds=5, initial_state="random",
penalty=3.0, illegal_reward=-6.0, render_mode=None, partner_illegal="last_legal", observation_type="multi_discrete")``

| ``observation_type`` | Observation space | Value |
|---|---|---|
| ``"multi_discrete"`` (default) | ``MultiDiscrete([3, 3])`` | ``[own, opponent]`` (int64) |
| ``"discrete"`` | ``Discrete(9)`` | ``own * 3 + opponent`` (int64), e.g. for RLlib without a flattening connector |
| ``"one_hot"`` | ``Box(0, 1, (6,), float32)`` | one-hot of ``own`` (3) then of ``opponent`` (3) |

``step`` takes ``0``, ``1`` or ``ILLEGAL`` as an ``int``, a numpy integer or a size-1 integer array (what SB3 and
other batched policies return); anything else raises ``ValueError`` naming the value. ``step`` before ``reset`` or
after truncation raises ``moralgym.envs.ResetNeeded``, i.e. ``gymnasium.error.ResetNeeded`` (also a
``RuntimeError``). ``info`` at ``reset``: ``round`` (0) and ``episode_index`` (the reward schedule's episode count;
not ``episode``, the key Gymnasium's and SB3's episode-statistics wrappers own); at
``step``: ``round``, ``action``, ``opponent_action``, ``opponent_previous``, ``illegal``, ``game_payoff``,
``opponent_payoff``, ``moral_rewards``.

Seeding follows Gymnasium: ``reset(seed=s)`` replays exactly; the first ``reset()`` without a seed draws fresh
entropy at that moment (not in ``__init__``), so pickled copies of an unreset env play different games.

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
from moralgym.envs._validation import ResetNeeded, check_render_mode
from moralgym.envs.batch import MatrixGameBatch
from moralgym.envs.games import MOVE_LETTERS, MatrixGame
from moralgym.envs.matrix_game import RENDER_MODES, agent_action
from moralgym.envs.observations import DEFAULT_OBSERVATION_TYPE, observation_space
from moralgym.envs.opponents import OpponentStrategy
from moralgym.envs.rendering import render_rgb
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PARTNER_ILLEGAL, DEFAULT_PENALTY, MoralReward


class SingleAgentMatrixGameEnv(gymnasium.Env):
    """One learner (player 0, the row player) against a fixed opponent strategy."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": 1}

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
        observation_type: str = DEFAULT_OBSERVATION_TYPE,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.core = MatrixGameBatch(
            1,
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
        self.game = self.core.game
        self.render_mode = render_mode
        self.observation_space = observation_space(self.core.observation_type)
        self.action_space = spaces.Discrete(2)
        self._last = ""
        self._start: tuple[int, int] = (2, 2)
        self._history: list[tuple[int, int]] = []
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        elif self.core.episodes[0] < 0:
            # No seed yet: derive the game's stream from Gymnasium's (entropy-seeded) np_random.
            self.core.rng = CounterRNG.from_seed(int(self.np_random.integers(2**63)), 1)
        observation = self.core.reset()[0]
        self._last = ""
        state = int(self.core.states[0])
        self._start, self._history = (state // 3, state % 3), []
        self._needs_reset = False
        return observation, {"round": 0, "episode_index": int(self.core.episodes[0])}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._needs_reset:
            when = "before reset()" if not self.core.started else "after the episode was truncated"
            raise ResetNeeded(f"SingleAgentMatrixGameEnv.step() called {when}; call reset() first")
        move = agent_action(action, "player_0", "SingleAgentMatrixGameEnv.step")
        observations, rewards, truncated, info = self.core.step(np.array([move], dtype=np.int64))
        step_info = {
            "round": int(self.core.rounds[0]),
            "action": move,
            "opponent_action": int(info["opponent_action"][0]),
            "opponent_previous": int(info["opponent_previous"][0]),
            "illegal": bool(info["illegal"][0]),
            "game_payoff": float(info["game_payoff"][0]),
            "opponent_payoff": float(info["opponent_payoff"][0]),
            "moral_rewards": {k: float(v[0]) for k, v in info["moral_rewards"].items()},
        }
        self._last = f"{MOVE_LETTERS[step_info['action']]}{MOVE_LETTERS[step_info['opponent_action']]}"
        self._history.append((move, step_info["opponent_action"]))
        self._needs_reset = bool(truncated[0])
        if self.render_mode == "human":
            self.render()
        return observations[0], float(rewards[0]), False, bool(truncated[0]), step_info

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() called without render_mode; pass render_mode='ansi', 'human' or 'rgb_array'"
            )
            return None
        if self.render_mode == "rgb_array":
            return render_rgb(self._start, self._history, self.core.num_rounds)
        text = f"{self.game.title} round {int(self.core.rounds[0])}/{self.core.num_rounds}: {self._last or '-'}"
        if self.render_mode == "human":
            print(text)
            return None
        return text
