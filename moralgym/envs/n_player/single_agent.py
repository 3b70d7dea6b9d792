"""# Learner vs N - 1 fixed co-players (Gymnasium API)

``gymnasium.make("moralgym/PublicGoods-v0", num_players=4, co_players="conditional_cooperator",
reward="deontological")`` — one id per game (``PublicGoods``, ``NPlayerIPD``, ``ThresholdPublicGood``,
``VolunteersDilemma``, ``NPlayerSnowdrift``; ``NPlayerGame`` takes ``game=``).

| Property | Value |
|---|---|
| Action space | ``Discrete(2)``: 0 = cooperate, 1 = defect (``ILLEGAL`` = -1 also accepted) |
| Observation space | ``MultiDiscrete([3, N + 1])``: ``[own previous move, others who cooperated last round]``, ``N`` = none of them has moved yet (default; see ``observation_type``) |
| Reward | the chosen N-player moral reward (default ``"game"``); every component is in ``info["moral_rewards"]`` |
| Episode end | truncated after ``num_rounds`` rounds (default 5); ``step`` then (or before ``reset``) raises ``ResetNeeded`` |
| Render modes | ``"ansi"``, ``"human"``, ``"rgb_array"`` |

``SingleAgentNPlayerGameEnv(game="public_goods", num_players=None, co_players="conditional_cooperator",
reward="game", num_rounds=5, initial_state="random", penalty=3.0, illegal_reward=-6.0, norm="share",
render_mode=None, observation_type="count", game_params=None)``. The learner is seat 0 (``player_0``).

- ``co_players``: one strategy for every co-player seat, or a list of ``N - 1`` (seats 1 .. N - 1 in order); each
  a name registered in :data:`~moralgym.envs.n_player.opponents.N_PLAYER_OPPONENTS` or an object implementing
  :class:`~moralgym.envs.n_player.opponents.NPlayerStrategy`. A strategy that declares an ``initial_move`` is shown
  having made it before round one when ``initial_state="random"`` (:mod:`moralgym.envs.openings`).
- ``reward``: an N-player reward name (:func:`~moralgym.envs.n_player.rewards.list_n_player_rewards`), an N-player
  reward or schedule, or a callable of :class:`~moralgym.envs.n_player.rewards.NPlayerRewardInputs`; schedules
  advance with the number of resets.
- The other arguments are those of :class:`~moralgym.envs.n_player.env.NPlayerGameEnv`.

``info`` at ``reset``: ``round`` (0) and ``episode_index``. At ``step``: ``round``, ``action``,
``co_player_actions`` (the ``N - 1`` co-players' actions, seat order), ``illegal``, ``game_payoff``,
``others_cooperated``, ``others_previous_cooperated``, ``payoffs`` (seat order, the learner first),
``total_payoff``, ``cumulative_payoffs`` and ``moral_rewards``. Seeding follows Gymnasium, as in the two-player env.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from moralgym.envs._rng import CounterRNG
from moralgym.envs._validation import ResetNeeded, check_render_mode
from moralgym.envs.games import MOVE_LETTERS
from moralgym.envs.matrix_game import RENDER_MODES, agent_action
from moralgym.envs.n_player.batch import CoPlayerSpec, NPlayerGameBatch
from moralgym.envs.n_player.env import GameSpec
from moralgym.envs.n_player.observations import DEFAULT_N_PLAYER_OBSERVATION_TYPE, n_player_observation_space
from moralgym.envs.n_player.rewards import DEFAULT_NORM
from moralgym.envs.rendering import render_rgb
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PENALTY, MoralReward


class SingleAgentNPlayerGameEnv(gymnasium.Env):
    """One learner (seat 0) against ``N - 1`` fixed co-player strategies; see the module docstring."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": 1}

    def __init__(
        self,
        game: GameSpec = "public_goods",
        num_players: int | None = None,
        co_players: CoPlayerSpec | Sequence[CoPlayerSpec] = "conditional_cooperator",
        reward: str | MoralReward | Any = "game",
        num_rounds: int = 5,
        initial_state: str = "random",
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        norm: str = DEFAULT_NORM,
        render_mode: str | None = None,
        observation_type: str = DEFAULT_N_PLAYER_OBSERVATION_TYPE,
        game_params: Mapping[str, Any] | None = None,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.core = NPlayerGameBatch(
            1,
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
        self.game = self.core.game
        self.num_players = self.core.num_players
        self.render_mode = render_mode
        self.observation_space = n_player_observation_space(self.core.observation_type, self.num_players)
        self.action_space = spaces.Discrete(2)
        self._start: tuple[int, ...] = ()
        self._history: list[tuple[int, ...]] = []
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        elif self.core.episodes[0] < 0:
            # No seed yet: derive the game's stream from Gymnasium's (entropy-seeded) np_random.
            self.core.rng = CounterRNG.from_seed(int(self.np_random.integers(2**63)), 1)
        observation = self.core.reset()[0]
        self._start, self._history = tuple(int(m) for m in self.core.previous[0]), []
        self._needs_reset = False
        return observation, {"round": 0, "episode_index": int(self.core.episodes[0])}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._needs_reset:
            when = "before reset()" if not self.core.started else "after the episode was truncated"
            raise ResetNeeded(f"SingleAgentNPlayerGameEnv.step() called {when}; call reset() first")
        move = agent_action(action, "player_0", "SingleAgentNPlayerGameEnv.step")
        observations, rewards, truncated, info = self.core.step(np.array([move], dtype=np.int64))
        co_players = [int(a) for a in info["co_player_actions"][0]]
        step_info = {
            "round": int(info["round"][0]),
            "action": move,
            "co_player_actions": co_players,
            "illegal": bool(info["illegal"][0]),
            "game_payoff": float(info["game_payoff"][0]),
            "others_cooperated": int(info["others_cooperated"][0]),
            "others_previous_cooperated": int(info["others_previous_cooperated"][0]),
            "payoffs": info["payoffs"][0].copy(),
            "total_payoff": float(info["total_payoff"][0]),
            "cumulative_payoffs": info["cumulative_payoffs"][0].copy(),
            "moral_rewards": {k: float(v[0]) for k, v in info["moral_rewards"].items()},
        }
        self._history.append((move, *co_players))
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
            return render_rgb(self._start or (2,) * self.num_players, self._history, self.core.num_rounds)
        last = "".join(MOVE_LETTERS[m] for m in self._history[-1]) if self._history else "-"
        played = f"round {int(self.core.rounds[0])}/{self.core.num_rounds}"
        text = f"{self.game.title} ({self.num_players} players) {played}: {last}"
        if self.render_mode == "human":
            print(text)
            return None
        return text
