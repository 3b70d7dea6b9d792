"""# Iterated N-player social dilemmas (PettingZoo parallel API)

One environment class serves every symmetric N-player C/D game (:mod:`moralgym.envs.n_player.games`): ``N`` agents
move simultaneously for ``num_rounds`` rounds; each sees its own previous move and how many of the others
cooperated.

| Property | Value |
|---|---|
| Import | ``pettingzoo.make("parallel", "moralgym/public_goods-v0", num_players=4)`` or ``moralgym.envs.public_goods_v0.parallel_env()`` |
| Agents | ``["player_0", ..., "player_{N-1}"]`` |
| Action space | ``Discrete(2)``: 0 = cooperate, 1 = defect; ``ILLEGAL`` (-1) is also accepted, see below |
| Observation space | ``MultiDiscrete([3, N + 1])``: ``[own previous move, others who cooperated last round]``, ``N`` = none of them has moved yet (default; see ``observation_type``) |
| State space | ``MultiDiscrete([3] * N + [num_rounds + 1])``: every seat's previous move, then rounds played |

## Arguments

``NPlayerGameEnv(game="public_goods", num_players=None, num_rounds=5, initial_state="random", penalty=3.0,
illegal_reward=-6.0, norm="share", render_mode=None, observation_type="count", game_params=None)``

- ``game``: a registered name (``public_goods``, ``n_player_ipd``, ``threshold_public_good``,
  ``volunteers_dilemma``, ``n_player_snowdrift``), a :class:`~moralgym.envs.n_player.games.SchellingGame`, a
  ``(cooperate_payoffs, defect_payoffs)`` pair, or a symmetric 2x2 ``MatrixGame`` (``N = 2``).
- ``num_players``: ``N >= 2``; for a name, the game is built for it (default 4); otherwise it must match the
  game's own (or be left out).
- ``game_params``: the named game's parameters, e.g. ``{"multiplier": 3.0}`` for ``public_goods`` (a ``TypeError``
  lists the accepted ones).
- ``num_rounds``: rounds per episode (default 5).
- ``initial_state``: ``"random"`` draws every seat's round-one "previous move" uniformly from the env's seeded
  stream (one uniform per seat, in seat order, ``u < 0.5`` is D), as the two-player envs do; ``"none"`` starts from
  "no move yet". ``reset(options={"previous_moves": {"player_2": 1}})`` fixes seats' round-one previous moves.
- ``penalty`` / ``illegal_reward`` / ``norm``: the Deontological ``xi``, the illegal-move reward and the
  Deontological norm (``"share"``, ``"any"``, ``"majority"``) of the rewards reported in ``infos``.
- ``render_mode``: ``None``, ``"ansi"`` (``render()`` returns a line of text), ``"human"`` (prints it every step)
  or ``"rgb_array"`` (one row of cells per seat, :mod:`moralgym.envs.rendering`).
- ``observation_type``: how a seat's view is encoded (:mod:`moralgym.envs.n_player.observations`):

| ``observation_type`` | Observation space | Value |
|---|---|---|
| ``"count"`` (default) | ``MultiDiscrete([3, N + 1])`` | ``[own, others]`` (int64) |
| ``"discrete"`` | ``Discrete(3 (N + 1))`` | ``own * (N + 1) + others`` |
| ``"one_hot"`` | ``Box(0, 1, (N + 4,), float32)`` | one-hot of ``own`` (3) then of ``others`` (``N + 1``) |
| ``"full"`` | ``MultiDiscrete([3] * N)`` | own previous move, then every other seat's in seat order |

## Actions

``step`` takes ``{agent: action}`` with ``0``, ``1`` or ``ILLEGAL`` as a Python ``int``, a numpy integer or a
size-1 integer array; anything else raises ``ValueError`` naming the agent and the value. ``step`` before
``reset`` or after the episode ended raises ``moralgym.envs.ResetNeeded``.

## Rewards and infos

``rewards[agent]`` is the Game reward (own payoff, or ``illegal_reward`` after an illegal move). Moral rewards are
given per agent by :class:`~moralgym.envs.n_player.wrappers.NPlayerMoralRewardWrapper`. ``infos[agent]`` carries
``round``, ``action``, ``illegal``, ``game_payoff``, ``others_cooperated`` (others choosing C this round),
``others_previous_cooperated`` (others whose previous move, as this agent saw it, was C), ``payoffs`` (every
seat's payoff this round, seat order), ``total_payoff`` (their sum), ``cumulative_payoffs`` (every seat's payoffs
summed over the episode, this round included) and ``moral_rewards``, every component reward of
:mod:`moralgym.envs.n_player.rewards`. ``reset`` returns the same keys: ``round`` 0, ``action`` the seat's
round-one previous move (2 = none), ``others_cooperated`` the others' round-one cooperators, payoffs and rewards 0.

## Illegal moves

An LLM that answers something that is not a move plays ``ILLEGAL``. That player gets ``illegal_reward`` under
every reward and a game payoff of 0; the others are paid, and see it next round, as if it had repeated its last
legal move. If it has none yet (round one with ``initial_state="none"``), the round cannot be scored and every
payoff is 0. This is the two-player rule (with its default ``partner_illegal="last_legal"``).

## Two players

With ``N = 2`` and a symmetric paper game (``game=moralgym.envs.n_player.from_matrix_game("stag_hunt")``) this env
plays exactly like ``MatrixGameEnv`` with the same seed: the same round-one draws, payoffs, rewards and
``moral_rewards`` components, step for step. Observations translate as ``"full"`` = the two-player
``[own, other]``; in ``"count"``, ``others`` = 1 where the two-player env shows the other's C (0), 0 for its D (1)
and 2 for no move yet (2).

## Episode end

After ``num_rounds`` rounds every agent is *truncated* (not terminated), as in the two-player envs.

## Version history

- v0: initial release.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from moralgym.envs._rng import CounterRNG, entropy_seed
from moralgym.envs._validation import ResetNeeded, check_finite, check_render_mode
from moralgym.envs.games import COOPERATE, ILLEGAL, MOVE_LETTERS, NO_MOVE, MatrixGame
from moralgym.envs.matrix_game import RENDER_MODES, agent_action, fixed_previous_moves, validate_env_arguments
from moralgym.envs.n_player.games import SchellingGame, get_n_player_game
from moralgym.envs.n_player.observations import (
    DEFAULT_N_PLAYER_OBSERVATION_TYPE,
    check_n_player_observation_type,
    count_view_table,
    full_view_order,
    n_player_observation_space,
    others_cooperated_view,
)
from moralgym.envs.n_player.rewards import DEFAULT_NORM, check_norm, n_player_component_rewards
from moralgym.envs.n_player.rounds import cumulative_floor, payoff_table, resolve_round, seat_reward_inputs
from moralgym.envs.rendering import render_rgb
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PENALTY

GameSpec = str | SchellingGame | MatrixGame | tuple[Any, Any]


def build_game(game: GameSpec, num_players: int | None, game_params: Mapping[str, Any] | None) -> SchellingGame:
    """The env's game from its ``game``, ``num_players`` and ``game_params`` arguments (see the module docstring)."""
    if game_params is not None and not isinstance(game_params, Mapping):
        raise ValueError(f"game_params must be a dict of the game's parameters, got {game_params!r}")
    return get_n_player_game(game, num_players, **dict(game_params or {}))


class NPlayerGameEnv(ParallelEnv):
    """An iterated symmetric N-player game as a PettingZoo ``ParallelEnv``; see the module docstring."""

    metadata = {
        "name": "moralgym_n_player_game_v0",
        "render_modes": RENDER_MODES,
        "is_parallelizable": True,
        "render_fps": 1,
    }

    def __init__(
        self,
        game: GameSpec = "public_goods",
        num_players: int | None = None,
        num_rounds: int = 5,
        initial_state: str = "random",
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        norm: str = DEFAULT_NORM,
        render_mode: str | None = None,
        observation_type: str = DEFAULT_N_PLAYER_OBSERVATION_TYPE,
        game_params: Mapping[str, Any] | None = None,
    ) -> None:
        validate_env_arguments(num_rounds, initial_state)
        self.observation_type = check_n_player_observation_type(observation_type)
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.game = build_game(game, num_players, game_params)
        self.num_players = self.game.num_players
        self.num_rounds = int(num_rounds)
        self.initial_state = initial_state
        self.penalty = check_finite("penalty", penalty)
        self.illegal_reward = check_finite("illegal_reward", illegal_reward)
        self.norm = check_norm(norm)
        self.render_mode = render_mode
        self._payoffs = payoff_table(self.game)
        self._components = n_player_component_rewards(self.penalty, self.illegal_reward, self.norm)
        self._order = full_view_order(self.num_players)
        self._encode = None if self.observation_type == "full" else count_view_table(observation_type, self.num_players)
        self.possible_agents = [f"player_{seat}" for seat in range(self.num_players)]
        self.agents: list[str] = []
        # Built once: PettingZoo expects the same space object on every call.
        self._observation_spaces = {
            a: n_player_observation_space(self.observation_type, self.num_players) for a in self.possible_agents
        }
        self._action_spaces = {a: spaces.Discrete(2) for a in self.possible_agents}
        self.metadata = {**self.metadata, "name": f"moralgym_{self.game.name}_v0"}
        # Seeded on the first reset (never here), so copies of an unreset env (cloudpickle, SuperSuit) differ.
        self._rng: CounterRNG | None = None
        self._previous = np.full(self.num_players, NO_MOVE, dtype=np.int64)
        self._start = self._previous.copy()
        self._cumulative = np.zeros(self.num_players)
        self._round = 0
        self._history: list[tuple[int, ...]] = []
        self._needs_reset = True

    #: Attributes a copy shares with its original: read-only after construction.
    _SHARED_ON_COPY = ("game", "_payoffs", "_components", "_order", "_encode")

    def __deepcopy__(self, memo: dict) -> NPlayerGameEnv:
        """An independent copy that shares the game and its read-only tables (the episode runner scores
        counterfactual answers on such copies)."""
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in vars(self).items():
            setattr(clone, key, value if key in self._SHARED_ON_COPY else copy.deepcopy(value, memo))
        return clone

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    @property
    def state_space(self) -> spaces.MultiDiscrete:
        return spaces.MultiDiscrete([3] * self.num_players + [self.num_rounds + 1], dtype=np.int64)

    def _observations(self) -> dict[str, np.ndarray]:
        if self._encode is None:
            views = self._previous[self._order]
        else:
            views = np.take(
                self._encode,
                self._previous * (self.num_players + 1) + others_cooperated_view(self._previous, self.num_players),
                axis=0,
            )
        return dict(zip(self.possible_agents, views, strict=True))

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None:
            self._rng = CounterRNG.from_seed(seed)
        elif self._rng is None:  # first reset without a seed: fresh entropy (drawn now, not in __init__)
            self._rng = CounterRNG.from_seed(entropy_seed())
        # N uniforms are always drawn, so the stream stays aligned with the vector env whatever initial_state is.
        draws = self._rng.bits(self.num_players)[0]
        if self.initial_state == "random":
            self._previous = (draws < 0.5).astype(np.int64)  # u < 0.5 -> DEFECT (1), else COOPERATE (0)
        else:
            self._previous = np.full(self.num_players, NO_MOVE, dtype=np.int64)
        for agent, move in fixed_previous_moves(options, self.possible_agents).items():
            self._previous[self.possible_agents.index(agent)] = move
        self.agents = list(self.possible_agents)
        self._round = 0
        self._history = []
        self._start = self._previous.copy()
        self._cumulative = np.zeros(self.num_players)
        self._needs_reset = False
        return self._observations(), self._reset_infos()

    def _reset_infos(self) -> dict[str, dict]:
        """The step infos' keys (see the module docstring), for the round-one state."""
        cooperated = self._previous == COOPERATE
        others = cooperated.sum() - cooperated
        zeros = np.zeros(self.num_players)
        return {
            agent: {
                "round": 0,
                "action": int(self._previous[seat]),
                "illegal": False,
                "game_payoff": 0.0,
                "others_cooperated": int(others[seat]),
                "others_previous_cooperated": 0,
                "payoffs": zeros.copy(),
                "total_payoff": 0.0,
                "cumulative_payoffs": zeros.copy(),
                "moral_rewards": dict.fromkeys(self._components, 0.0),
            }
            for seat, agent in enumerate(self.possible_agents)
        }

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            when = "before reset()" if self._needs_reset else "on a finished episode"
            raise ResetNeeded(f"NPlayerGameEnv.step() called {when}; call reset() first")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"step() needs an action for every live agent; missing {missing}, got {sorted(actions)}")
        joint = np.array(
            [agent_action(actions[agent], agent, "NPlayerGameEnv.step") for agent in self.possible_agents],
            dtype=np.int64,
        )
        payoffs, moves = resolve_round(self._payoffs, joint, self._previous)
        self._cumulative = self._cumulative + payoffs
        floor = cumulative_floor(self.game, self._round + 1)
        inputs = seat_reward_inputs(joint, self._previous, payoffs, self._cumulative, self._order, floor)
        components = {name: reward(inputs) for name, reward in self._components.items()}
        total = float(payoffs.sum())
        rewards: dict[str, float] = {}
        infos: dict[str, dict] = {}
        for seat, agent in enumerate(self.possible_agents):
            moral_rewards = {name: float(values[seat]) for name, values in components.items()}
            rewards[agent] = moral_rewards["game"]
            infos[agent] = {
                "round": self._round + 1,
                "action": int(joint[seat]),
                "illegal": bool(joint[seat] == ILLEGAL),
                "game_payoff": float(payoffs[seat]),
                "others_cooperated": int(inputs.others_cooperated[seat]),
                "others_previous_cooperated": int(inputs.others_previous_cooperated[seat]),
                "payoffs": payoffs.copy(),
                "total_payoff": total,
                "cumulative_payoffs": self._cumulative.copy(),
                "moral_rewards": moral_rewards,
            }
        self._previous = moves
        self._history.append(tuple(int(a) for a in joint))
        self._round += 1
        done = self._round >= self.num_rounds
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: done for agent in self.agents}
        observations = self._observations()
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return np.append(self._previous, self._round).astype(np.int64)

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            import gymnasium

            gymnasium.logger.warn(
                "render() called without render_mode; pass render_mode='ansi', 'human' or 'rgb_array'"
            )
            return None
        if self.render_mode == "rgb_array":
            return render_rgb(self._start, self._history, self.num_rounds)
        moves = " ".join("".join(MOVE_LETTERS[a] for a in joint) for joint in self._history) or "(no rounds yet)"
        last = "".join(MOVE_LETTERS[int(m)] for m in self._previous)
        text = (
            f"{self.game.title} ({self.num_players} players) round {self._round}/{self.num_rounds}: {moves} | "
            f"last moves {last}"
        )
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return (
            f"NPlayerGameEnv(game={self.game.name!r}, num_players={self.num_players}, num_rounds={self.num_rounds}, "
            f"initial_state={self.initial_state!r})"
        )
