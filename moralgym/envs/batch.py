"""The numpy core shared by the Gymnasium single-agent env and the native vector env: ``n`` games of one learner
against fixed opponent strategies, advanced together with array operations (no Python loop over games).

The single-agent env is this core with ``n = 1``, so a vector env seeded ``s`` replays, in sub-env ``i``, exactly
the single env seeded ``s + i`` (see :mod:`moralgym.envs._rng`).

Random draws per game: two uniforms at each reset (the random "previous moves" of round one: learner, opponent) and
one per step (for a stochastic opponent), whatever the opponent and ``initial_state``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from moralgym.envs._rng import CounterRNG, entropy_seed
from moralgym.envs._validation import ResetNeeded, check_finite
from moralgym.envs.games import MatrixGame, get_game
from moralgym.envs.matrix_game import NO_MOVE, check_actions, validate_env_arguments
from moralgym.envs.observations import DEFAULT_OBSERVATION_TYPE, check_observation_type, observation_table
from moralgym.envs.openings import opening_move
from moralgym.envs.opponents import OpponentStrategy, make_opponent
from moralgym.envs.outcomes import (
    STATE_TO_SWAPPED_OBSERVATION,
    OutcomeTable,
    round_code,
    state_code,
)
from moralgym.envs.rewards import (
    DEFAULT_ILLEGAL_REWARD,
    DEFAULT_PARTNER_ILLEGAL,
    DEFAULT_PENALTY,
    MoralReward,
    check_partner_illegal,
    get_reward,
)

OpponentSpec = str | OpponentStrategy


def resolve_opponents(
    opponent: OpponentSpec | Sequence[OpponentSpec], n: int
) -> list[tuple[OpponentStrategy, np.ndarray]]:
    """Group games by opponent: ``[(strategy, game_indices), ...]``; one shared strategy object per distinct spec."""
    if isinstance(opponent, (str, OpponentStrategy)):
        return [(make_opponent(opponent), np.arange(n))]
    specs = list(opponent)
    if len(specs) != n:
        raise ValueError(f"got {len(specs)} opponents for {n} games; pass one opponent or one per game")
    groups: dict[Any, tuple[OpponentStrategy, list[int]]] = {}
    for index, spec in enumerate(specs):
        key = spec if isinstance(spec, str) else id(spec)
        if key not in groups:
            groups[key] = (make_opponent(spec), [])
        groups[key][1].append(index)
    return [(strategy, np.array(indices, dtype=np.int64)) for strategy, indices in groups.values()]


class MatrixGameBatch:
    """``n`` learner-vs-opponent games. Arrays are indexed by game; the learner is the row player (player 0).

    The state of game ``i`` is one small int (``previous_learner * 3 + previous_opponent``, see
    :mod:`moralgym.envs.outcomes`), so a step is a few integer operations and gathers from the game's
    :class:`OutcomeTable`.
    """

    def __init__(
        self,
        num_games: int,
        game: str | MatrixGame | Any = "ipd",
        opponent: OpponentSpec | Sequence[OpponentSpec] = "tit_for_tat",
        reward: str | MoralReward | Any = "game",
        num_rounds: int = 5,
        initial_state: str = "random",
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        partner_illegal: str = DEFAULT_PARTNER_ILLEGAL,
        observation_type: str = DEFAULT_OBSERVATION_TYPE,
    ) -> None:
        validate_env_arguments(num_rounds, initial_state)
        self.partner_illegal = check_partner_illegal(partner_illegal)
        self.observation_type = check_observation_type(observation_type)
        self._encode = observation_table(self.observation_type)
        if isinstance(num_games, bool) or not isinstance(num_games, (int, np.integer)) or num_games < 1:
            raise ValueError(f"num_games must be a positive integer, got {num_games!r}")
        self.n = int(num_games)
        self.game = get_game(game)
        self.reward = get_reward(reward)
        self.num_rounds = int(num_rounds)
        self.initial_state = initial_state
        self.penalty = check_finite("penalty", penalty)
        self.illegal_reward = check_finite("illegal_reward", illegal_reward)
        self.table = OutcomeTable(self.game, self.penalty, self.illegal_reward, self.partner_illegal)
        # Every per-round info entry of each of the 81 rounds as one record: step() gathers them with one np.take.
        self._info_tables = (self._round_records(False), self._round_records(True))
        self.opponent_groups = resolve_opponents(opponent, self.n)
        self._single_group = len(self.opponent_groups) == 1
        # Deterministic opponents ignore their uniforms: advance the streams without computing them.
        self._stochastic = any(getattr(strategy, "stochastic", True) for strategy, _ in self.opponent_groups)
        self._no_uniforms = np.zeros(self.n)
        # Seeded by seed() or on the first reset (never here), so copies of an unreset batch draw different games.
        self.rng: CounterRNG | None = None
        self.started = False  # reset() has run: step() is allowed
        self.states = np.full(self.n, state_code(NO_MOVE, NO_MOVE), dtype=np.int64)
        self.rounds = np.zeros(self.n, dtype=np.int64)
        self.episodes = np.full(self.n, -1, dtype=np.int64)
        self.memory = [strategy.initial_memory(len(idx)) for strategy, idx in self.opponent_groups]

    def _round_records(self, with_components: bool) -> np.ndarray:
        table = self.table
        columns = {
            "opponent_previous": table.previous_1,
            "illegal": table.illegal_0,
            "game_payoff": table.payoff_0,
            "opponent_payoff": table.payoff_1,
            **({f"moral_rewards/{k}": v for k, v in table.components_0.items()} if with_components else {}),
        }
        records = np.zeros(81, dtype=[(name, values.dtype) for name, values in columns.items()])
        for name, values in columns.items():
            records[name] = values
        return records

    @property
    def observations(self) -> np.ndarray:
        """Learner observations, ``(n, 2)`` ``[own previous, opponent previous]`` for ``"multi_discrete"`` (one row
        per game of the ``observation_type`` encoding, :mod:`moralgym.envs.observations`)."""
        return np.take(self._encode, self.states, axis=0)  # np.take: ~10x faster than fancy indexing here

    # -- reset ---------------------------------------------------------------------------------------------------
    def seed(self, seeds: int | Sequence[int]) -> None:
        """Game ``i`` gets seed ``seeds + i`` (an int) or ``seeds[i]`` (a sequence)."""
        if isinstance(seeds, (int, np.integer)):
            self.rng = CounterRNG.from_seed(int(seeds), self.n)
            return
        seeds = list(seeds)
        if len(seeds) != self.n:
            raise ValueError(f"got {len(seeds)} seeds for {self.n} games")
        self.rng = CounterRNG(np.concatenate([CounterRNG.from_seed(int(s), 1).keys for s in seeds]))

    def reset(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Start a new episode in every game (or where ``mask``); returns learner observations ``(n, 2)``."""
        if self.rng is None:  # first reset without a seed: fresh entropy (drawn now, not in __init__)
            self.rng = CounterRNG.from_seed(entropy_seed(), self.n)
        if mask is None:
            self.started = True
        first, second = self.rng.uniform(mask), self.rng.uniform(mask)
        if self.initial_state == "random":
            fresh = state_code(first < 0.5, second < 0.5)  # u < 0.5 -> DEFECT (1), else COOPERATE (0)
            for strategy, indices in self.opponent_groups:
                move = opening_move(strategy)
                if move is not None:  # e.g. Always Defect: its round-one "previous move" is D (moralgym.envs.openings)
                    fresh[indices] = state_code(first[indices] < 0.5, move)
        else:
            fresh = np.full(self.n, state_code(NO_MOVE, NO_MOVE), dtype=np.int64)
        where = slice(None) if mask is None else mask
        self.states[where] = fresh[where]
        self.rounds[where] = 0
        self.episodes[where] += 1
        for group, (strategy, indices) in enumerate(self.opponent_groups):
            if mask is None:
                self.memory[group] = strategy.initial_memory(len(indices))
            else:
                reset_here = mask[indices]
                if reset_here.any():
                    self.memory[group][reset_here] = strategy.initial_memory(int(reset_here.sum()))
        return self.observations

    # -- step ----------------------------------------------------------------------------------------------------
    def opponent_actions(self, uniforms: np.ndarray) -> np.ndarray:
        opponent_view = np.take(STATE_TO_SWAPPED_OBSERVATION, self.states, axis=0)
        if self._single_group:
            strategy, _ = self.opponent_groups[0]
            actions, self.memory[0] = strategy.act_batch(opponent_view, self.memory[0], uniforms)
            return np.asarray(actions, dtype=np.int64)
        actions = np.empty(self.n, dtype=np.int64)
        for group, (strategy, indices) in enumerate(self.opponent_groups):
            actions[indices], self.memory[group] = strategy.act_batch(
                opponent_view[indices], self.memory[group], uniforms[indices]
            )
        return actions

    def step(
        self, actions: np.ndarray, mask: np.ndarray | None = None, with_components: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Play one round in every game (or where ``mask``; other games are left untouched).

        Returns ``(observations, rewards, truncated, info)``; ``info`` is a dict of arrays with one entry per game:
        ``round`` (rounds played, after this one), ``action``, ``opponent_action``, ``opponent_previous``,
        ``illegal``, ``game_payoff``, ``opponent_payoff`` and, if ``with_components``, ``moral_rewards`` (a dict of
        the four fixed rewards).
        """
        if not self.started:
            raise ResetNeeded("step() called before reset(); call reset() first")
        learner = check_actions(actions, "step")
        if learner.shape != (self.n,):
            raise ValueError(f"step() expects {self.n} actions (one per game), got shape {learner.shape}")
        if self._stochastic:
            uniforms = self.rng.uniform(mask)
        else:
            self.rng.counters += np.uint64(1) if mask is None else mask.astype(np.uint64)
            uniforms = self._no_uniforms
        opponent = self.opponent_actions(uniforms)
        table = self.table
        codes = round_code(learner, opponent, self.states)
        rewards = self._rewards(codes)
        if mask is None:
            self.states = np.take(table.next_state, codes)
            self.rounds += 1
        else:
            self.states[mask] = table.next_state[codes[mask]]
            self.rounds[mask] += 1
        truncated = self.rounds >= self.num_rounds
        # One gather for every entry that the round code determines; each entry is a field (a view) of the records.
        records = np.take(self._info_tables[with_components], codes)
        info: dict[str, Any] = {"round": self.rounds.copy(), "action": learner.copy(), "opponent_action": opponent}
        for name in ("opponent_previous", "illegal", "game_payoff", "opponent_payoff"):
            info[name] = records[name]
        if with_components:
            info["moral_rewards"] = {name: records[f"moral_rewards/{name}"] for name in self.table.components_0}
        return self.observations, rewards, truncated, info

    def _rewards(self, codes: np.ndarray) -> np.ndarray:
        episodes = self.episodes
        first = int(episodes[0])
        if self.reward.at(first) is self.reward or (episodes == first).all():
            return np.take(self.table.reward_table(self.reward.at(max(first, 0))), codes)
        rewards = np.empty(self.n, dtype=np.float64)
        for episode in np.unique(episodes):
            here = episodes == episode
            rewards[here] = self.table.reward_table(self.reward.at(int(episode)))[codes[here]]
        return rewards
