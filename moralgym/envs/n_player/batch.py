"""The numpy core shared by the N-player Gymnasium single-agent env and the native vector env: ``n`` games of one
learner (seat 0) against ``N - 1`` fixed co-player strategies, advanced together with array operations (no Python
loop over games or players).

The single-agent env is this core with ``n = 1``, so a vector env seeded ``s`` replays, in sub-env ``i``, exactly
the single env seeded ``s + i`` (see :mod:`moralgym.envs._rng`).

Random draws per game: ``N`` uniforms at each reset (the random round-one "previous moves", in seat order) and
``N - 1`` per step (one per co-player seat, in seat order, for stochastic strategies), whatever the strategies and
``initial_state``. At ``N = 2`` these are the two-player batch's draws, so with a two-player strategy seen through
the N-player protocol the games are the same.

Co-players: each distinct strategy acts once per step on every (game, seat) it plays, as one ``act_batch`` call on
``n * seats`` rows (row ``game * seats + j`` is its ``j``-th seat in ``game``), so seven conditional cooperators
over 4,096 games are one call on 28,672 rows.

Speed: a step is a fixed handful of array operations over ``(n, N)`` arrays. Counts over the (short) seat axis are
matrix products with a vector of ones (several times faster than ``sum(axis=1)``), every payoff is one gather from
a flat table indexed by (move, number of cooperators), and every per-round reward is one gather from its table
over the learner's ``3 N^2`` possible rounds (:class:`~moralgym.envs.n_player.rounds.LearnerRounds`). Rounds that
table does not cover (a co-player answering ``ILLEGAL``, a seat with no move yet) take the general path: the rules
of :func:`~moralgym.envs.n_player.rounds.resolve_round` and every reward evaluated on its inputs (the same numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from moralgym.envs._rng import CounterRNG, entropy_seed
from moralgym.envs._validation import ResetNeeded, check_finite
from moralgym.envs.games import COOPERATE, ILLEGAL, NO_MOVE
from moralgym.envs.matrix_game import check_actions, validate_env_arguments
from moralgym.envs.n_player.env import GameSpec, build_game
from moralgym.envs.n_player.observations import (
    DEFAULT_N_PLAYER_OBSERVATION_TYPE,
    check_n_player_observation_type,
    count_view_table,
)
from moralgym.envs.n_player.opponents import NPlayerStrategy, make_n_player_opponent
from moralgym.envs.n_player.rewards import (
    DEFAULT_NORM,
    NPlayerRewardInputs,
    check_norm,
    get_n_player_reward,
    n_player_component_rewards,
)
from moralgym.envs.n_player.rounds import LearnerRounds, cumulative_floor, payoff_table, resolve_round
from moralgym.envs.openings import opening_move
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PENALTY, MoralReward

CoPlayerSpec = str | NPlayerStrategy


def resolve_co_players(
    co_players: CoPlayerSpec | Sequence[CoPlayerSpec], num_players: int
) -> list[tuple[NPlayerStrategy, np.ndarray]]:
    """Group the co-player seats ``1 .. N - 1`` by strategy: ``[(strategy, seats), ...]``, one shared strategy
    object per distinct spec (a name or a strategy object), seats in increasing order."""
    seats = np.arange(1, num_players)
    if isinstance(co_players, (str, NPlayerStrategy)):
        return [(make_n_player_opponent(co_players), seats)]
    specs = list(co_players)
    if len(specs) != num_players - 1:
        raise ValueError(
            f"got {len(specs)} co-players for {num_players - 1} co-player seats (num_players = {num_players}); "
            "pass one strategy for all of them or one per seat"
        )
    groups: dict[Any, tuple[NPlayerStrategy, list[int]]] = {}
    for seat, spec in zip(seats, specs, strict=True):
        key = spec if isinstance(spec, str) else id(spec)
        if key not in groups:
            groups[key] = (make_n_player_opponent(spec), [])
        groups[key][1].append(int(seat))
    return [(strategy, np.array(group, dtype=np.int64)) for strategy, group in groups.values()]


class NPlayerGameBatch:
    """``n`` games of a learner (seat 0) against fixed co-players; arrays are indexed by game (and seat).

    The state of game ``i`` is ``previous[i]``, every seat's previous move (0, 1 or 2 = no move yet), plus the
    payoffs summed over the episode so far (``cumulative[i]``, for the equality virtue).
    """

    def __init__(
        self,
        num_games: int,
        game: GameSpec = "public_goods",
        num_players: int | None = None,
        co_players: CoPlayerSpec | Sequence[CoPlayerSpec] = "conditional_cooperator",
        reward: str | MoralReward | Any = "game",
        num_rounds: int = 5,
        initial_state: str = "random",
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        norm: str = DEFAULT_NORM,
        observation_type: str = DEFAULT_N_PLAYER_OBSERVATION_TYPE,
        game_params: Mapping[str, Any] | None = None,
    ) -> None:
        validate_env_arguments(num_rounds, initial_state)
        if isinstance(num_games, bool) or not isinstance(num_games, (int, np.integer)) or num_games < 1:
            raise ValueError(f"num_games must be a positive integer, got {num_games!r}")
        self.observation_type = check_n_player_observation_type(observation_type)
        self.n = int(num_games)
        self.game = build_game(game, num_players, game_params)
        self.num_players = n_players = self.game.num_players
        self.reward = get_n_player_reward(reward)
        self.num_rounds = int(num_rounds)
        self.initial_state = initial_state
        self.penalty = check_finite("penalty", penalty)
        self.illegal_reward = check_finite("illegal_reward", illegal_reward)
        self.norm = check_norm(norm)
        self.table = payoff_table(self.game)
        # Payoffs by (move, cooperators among all seats K): C pays cooperate_payoffs[K - 1], D defect_payoffs[K];
        # a third row of zeros for an illegal learner (impossible entries are 0).
        zero = np.zeros(1)
        self._by_cooperators = np.concatenate(
            [zero, self.game.cooperate_payoffs, self.game.defect_payoffs, zero, np.zeros(n_players + 1)]
        )
        self.rounds_table = LearnerRounds(self.game)
        self.components = n_player_component_rewards(self.penalty, self.illegal_reward, self.norm)
        # The equality virtue's floor after r rounds (None when the game pays nothing negative: the floor is 0).
        floors = cumulative_floor(self.game, np.arange(self.num_rounds + 2))
        self._floors = floors if floors.any() else None
        self._encode = None if self.observation_type == "full" else count_view_table(observation_type, n_players)
        self._ones = np.ones(n_players)
        self.co_player_groups = resolve_co_players(co_players, n_players)
        self._single_group = len(self.co_player_groups) == 1
        # Deterministic strategies ignore their uniforms: advance the streams without computing them.
        self._stochastic = any(getattr(strategy, "stochastic", True) for strategy, _ in self.co_player_groups)
        self._no_uniforms = np.zeros((self.n, n_players - 1))
        self._openings = [
            (seats, move) for strategy, seats in self.co_player_groups if (move := opening_move(strategy)) is not None
        ]
        # Seeded by seed() or on the first reset (never here), so copies of an unreset batch draw different games.
        self.rng: CounterRNG | None = None
        self.started = False  # reset() has run: step() is allowed
        self.previous = np.full((self.n, n_players), NO_MOVE, dtype=np.int64)
        self.cooperators = np.zeros(self.n, dtype=np.int64)  # seats whose previous move is C, per game
        self.cumulative = np.zeros((self.n, n_players))
        self.rounds = np.zeros(self.n, dtype=np.int64)
        self.episodes = np.full(self.n, -1, dtype=np.int64)
        # Whether every seat of every game has a previous move (C or D): then no "no move yet" view and no unscored
        # round is possible, and step() takes the table path.
        self._all_moved = False
        self.memory = [strategy.initial_memory(self.n * len(seats)) for strategy, seats in self.co_player_groups]

    # -- views ---------------------------------------------------------------------------------------------------
    def _views(self) -> tuple[np.ndarray, np.ndarray]:
        """``(others_cooperated, seen)``, both ``(n, N)``: how many others of each seat cooperated last round (a
        true count) and what each seat's observation shows (the count, or ``N`` where no other seat has moved)."""
        others = self.cooperators[:, None] - (self.previous == COOPERATE)
        if self._all_moved:
            return others, others
        moved = self.previous != NO_MOVE
        nobody_moved = (moved @ self._ones)[:, None] - moved == 0
        return others, np.where(nobody_moved, self.num_players, others)

    def observations(self) -> np.ndarray:
        """The learner's observations, ``(n, 2)`` ``[own previous, others who cooperated]`` for ``"count"`` (one row
        per game of the ``observation_type`` encoding, :mod:`moralgym.envs.n_player.observations`)."""
        if self._encode is None:
            return self.previous.copy()
        own = self.previous[:, 0]
        seen = self.cooperators - (own == COOPERATE) if self._all_moved else self._views()[1][:, 0]
        return np.take(self._encode, own * (self.num_players + 1) + seen, axis=0)

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
        """Start a new episode in every game (or where ``mask``); returns the learner's observations."""
        if self.rng is None:  # first reset without a seed: fresh entropy (drawn now, not in __init__)
            self.rng = CounterRNG.from_seed(entropy_seed(), self.n)
        if mask is None:
            self.started = True
        if self.initial_state == "random":
            fresh = self.rng.below_half(self.num_players, mask).astype(np.int64)  # u < 0.5 -> DEFECT (1), else C (0)
            for seats, move in self._openings:  # e.g. Always Defect shows D (moralgym.envs.openings)
                fresh[:, seats] = move
        else:
            self.rng.skip(self.num_players, mask)  # the draws are made (and unused) whatever initial_state is
            fresh = np.full((self.n, self.num_players), NO_MOVE, dtype=np.int64)
        where = slice(None) if mask is None else mask
        self.previous[where] = fresh[where]
        self.cooperators = ((self.previous == COOPERATE) @ self._ones).astype(np.int64)
        # A new array, never written in place: the last step's info holds the old one.
        self.cumulative = self.cumulative.copy()
        self.cumulative[where] = 0.0
        self.rounds[where] = 0
        self.episodes[where] += 1
        self._all_moved = self.initial_state == "random" and (mask is None or self._all_moved)
        for group, (strategy, seats) in enumerate(self.co_player_groups):
            if mask is None:
                self.memory[group] = strategy.initial_memory(self.n * len(seats))
            else:
                rows = np.repeat(mask, len(seats))
                if rows.any():
                    self.memory[group][rows] = strategy.initial_memory(int(rows.sum()))
        return self.observations()

    # -- step ----------------------------------------------------------------------------------------------------
    def co_player_views(self) -> np.ndarray:
        """Every co-player's observation, ``(n, N - 1, 2)`` ``[own previous, others who cooperated]`` (seat order)."""
        views = np.empty((self.n, self.num_players - 1, 2), dtype=np.int64)
        views[..., 0] = self.previous[:, 1:]
        if self._all_moved:  # written in place: the hot path of the vector env
            np.subtract(self.cooperators[:, None], self.previous[:, 1:] == COOPERATE, out=views[..., 1])
        else:
            views[..., 1] = self._views()[1][:, 1:]
        return views

    def co_player_actions(self, views: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Every co-player's action, ``(n, N - 1)`` (column ``j`` is seat ``j + 1``), from :meth:`co_player_views`."""
        if self._single_group:
            strategy, _ = self.co_player_groups[0]
            rows = views.reshape(-1, 2)
            actions, self.memory[0] = strategy.act_batch(rows, self.memory[0], uniforms.reshape(-1), self.game)
            actions = np.asarray(actions).reshape(self.n, self.num_players - 1)
        else:
            actions = np.empty((self.n, self.num_players - 1), dtype=np.int64)
            for group, (strategy, seats) in enumerate(self.co_player_groups):
                rows = views[:, seats - 1].reshape(-1, 2)
                chosen, self.memory[group] = strategy.act_batch(
                    rows, self.memory[group], uniforms[:, seats - 1].reshape(-1), self.game
                )
                actions[:, seats - 1] = np.asarray(chosen).reshape(self.n, len(seats))
        return check_actions(actions, "co-player strategies' act_batch")

    def step(
        self, actions: np.ndarray, mask: np.ndarray | None = None, with_components: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Play one round in every game (or where ``mask``; other games are left untouched).

        Returns ``(observations, rewards, truncated, info)``; ``info`` is a dict of arrays with one entry per game:
        ``round`` (rounds played, after this one), ``action``, ``co_player_actions`` ``(n, N - 1)``, ``illegal``,
        ``game_payoff``, ``others_cooperated``, ``others_previous_cooperated``, ``payoffs`` ``(n, N)`` (seat
        order, the learner first), ``total_payoff``, ``cumulative_payoffs`` ``(n, N)`` and, if
        ``with_components``, ``moral_rewards`` (a dict of the component rewards).
        """
        if not self.started:
            raise ResetNeeded("step() called before reset(); call reset() first")
        learner = check_actions(actions, "step")
        if learner.shape != (self.n,):
            raise ValueError(f"step() expects {self.n} actions (one per game), got shape {learner.shape}")
        if self._stochastic:
            uniforms = self.rng.bits(self.num_players - 1, mask)
        else:
            self.rng.skip(self.num_players - 1, mask)
            uniforms = self._no_uniforms
        # The learner's view (a true count: a seat with no move yet is no cooperator), then the co-players' moves.
        others_previous = self.cooperators - (self.previous[:, 0] == COOPERATE)
        co_players = self.co_player_actions(self.co_player_views(), uniforms)
        illegal = learner == ILLEGAL
        by_table = self._all_moved and co_players.min() > ILLEGAL
        if by_table:
            payoffs, moves, cooperators = self._resolve_by_table(learner, illegal, co_players)
            others_now = cooperators - (moves[:, 0] == COOPERATE)  # the co-players' moves are their actions
        else:
            joint = np.concatenate([learner[:, None], co_players], axis=1)
            payoffs, moves = resolve_round(self.table, joint, self.previous, may_be_unscored=not self._all_moved)
            cooperators = ((moves == COOPERATE) @ self._ones).astype(np.int64)
            others_now = ((co_players == COOPERATE) @ self._ones[1:]).astype(np.int64)
        # A new array, never written in place, so the info can hold it without a copy.
        self.cumulative = self.cumulative + (payoffs if mask is None else payoffs * mask[:, None])
        inputs = NPlayerRewardInputs(
            own_action=learner,
            others_cooperated=others_now,
            others_previous_cooperated=others_previous,
            num_others=self.num_players - 1,
            own_payoff=payoffs[:, 0],
            payoffs=payoffs,
            cumulative_payoffs=self.cumulative,
            cumulative_floor=0.0 if self._floors is None else self._floors[self.rounds + 1],
        )
        # The table path's code of each game's round (None on the general path: rewards read their inputs).
        code = self.rounds_table.code(learner, others_now, others_previous) if by_table else None
        rewards = self._rewards(inputs, code)
        if mask is None:
            self.previous = moves
            self.cooperators = cooperators
            self.rounds += 1
        else:
            self.previous[mask] = moves[mask]
            self.cooperators[mask] = cooperators[mask]
            self.rounds[mask] += 1
        if not self._all_moved:
            self._all_moved = not (self.previous == NO_MOVE).any()
        truncated = self.rounds >= self.num_rounds
        info: dict[str, Any] = {
            "round": self.rounds.copy(),
            "action": learner.copy(),
            "co_player_actions": co_players,
            "illegal": illegal,
            "game_payoff": inputs.own_payoff,
            "others_cooperated": others_now,
            "others_previous_cooperated": inputs.others_previous_cooperated,
            "payoffs": payoffs,
            "total_payoff": payoffs @ self._ones,
            "cumulative_payoffs": self.cumulative,
        }
        if with_components:
            info["moral_rewards"] = {
                name: self._evaluate(reward, inputs, code) for name, reward in self.components.items()
            }
        return self.observations(), rewards, truncated, info

    def _resolve_by_table(
        self, learner: np.ndarray, illegal: np.ndarray, co_players: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`~moralgym.envs.n_player.rounds.resolve_round` for games where every seat has a previous move and
        only the learner may be illegal: ``(payoffs, moves, cooperators)``, with one gather for the payoffs."""
        moves = np.empty((self.n, self.num_players), dtype=np.int64)
        moves[:, 1:] = co_players
        any_illegal = bool(illegal.any())
        moves[:, 0] = np.where(illegal, self.previous[:, 0], learner) if any_illegal else learner
        cooperators = ((moves == COOPERATE) @ self._ones).astype(np.int64)
        rows = moves
        if any_illegal:  # an illegal learner earns 0: the table's third row
            rows = moves.copy()
            rows[:, 0] = np.where(illegal, 2, learner)
        index = rows * (self.num_players + 1)
        index += cooperators[:, None]
        return np.take(self._by_cooperators, index), moves, cooperators

    def _evaluate(self, reward: MoralReward, inputs: NPlayerRewardInputs, code: np.ndarray | None) -> np.ndarray:
        """``reward`` on this step's rounds: a gather from its per-round table where it has one, else evaluated."""
        table = None if code is None else self.rounds_table.reward_table(reward)
        if table is not None:
            return np.take(table, code)
        return np.broadcast_to(np.asarray(reward(inputs), dtype=np.float64), (self.n,))

    def _rewards(self, inputs: NPlayerRewardInputs, code: np.ndarray | None) -> np.ndarray:
        episodes = self.episodes
        first = int(episodes[0])
        if self.reward.at(first) is self.reward or (episodes == first).all():
            return self._evaluate(self.reward.at(max(first, 0)), inputs, code)
        rewards = np.empty(self.n, dtype=np.float64)
        for episode in np.unique(episodes):
            here = episodes == episode
            rewards[here] = self._evaluate(self.reward.at(int(episode)), inputs, code)[here]
        return rewards
