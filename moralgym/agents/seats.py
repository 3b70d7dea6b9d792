"""What the episode runner needs from a player, and the seat for fixed strategies.

A :class:`Seat` plays one seat of ``n`` games at once, whatever it is (a strategy, a tabular Q-learner, an SB3
model, an LLM):

* ``reset(n, seed=None)`` starts ``n`` new games; a ``seed`` reseeds whatever randomness the seat owns (a
  stochastic strategy's coin, an LLM's sampling and prompt-order shuffles), so a fixed seed replays it exactly;
  ``None`` keeps the seat's streams running (e.g. one stream over several batches of games);
* ``act(games, observations, seat)`` gets the ``n`` :class:`~moralgym.envs.games.MatrixGame` being played, the
  ``(n, 2)`` observations ``[own_previous, opponent_previous]`` and the seat index (0 = row player, so prompts can
  show the payoff table from the right side), and returns a :class:`SeatStep` or just the actions array. In an
  N-player game the games are :class:`~moralgym.envs.n_player.SchellingGame` s and the observations
  ``[own_previous, others_cooperated]`` (how many of the others cooperated last round, ``N`` = none has moved yet).

Optional: ``initial_move`` (0 or 1), the move a fixed strategy is shown as having made before round one (the
paper's Always Cooperate / Always Defect; applied by :func:`moralgym.envs.opponents.opening_options`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from moralgym.envs.games import MatrixGame
from moralgym.envs.n_player.games import SchellingGame
from moralgym.envs.n_player.opponents import make_n_player_opponent
from moralgym.envs.opponents import OpponentStrategy, make_opponent

__all__ = ["NPlayerStrategySeat", "Seat", "SeatStep", "StrategySeat", "as_seat_step"]


@dataclass
class SeatStep:
    """One batched decision of a seat.

    ``actions``: ``(n,)`` int64 in {0, 1, ILLEGAL}; ``texts``: the raw answers of a text agent; ``decisions``: what a
    learner needs later (an LLM's token ids and log-probs), one per game; ``alternatives``: for game ``i``, further
    answers to the same state (a GRPO group) as ``(action, decision)`` pairs, scored by the runner on a copy of the
    env against the same co-player moves, without moving the game.
    """

    actions: np.ndarray
    texts: list[str] | None = None
    decisions: Sequence[Any] | None = None
    alternatives: Sequence[Sequence[tuple[int, Any]]] | None = None


@runtime_checkable
class Seat(Protocol):
    name: str

    def reset(self, n: int, seed: int | None = None) -> None: ...

    def act(
        self, games: Sequence[MatrixGame | SchellingGame], observations: np.ndarray, seat: int
    ) -> SeatStep | np.ndarray: ...


def as_seat_step(result: SeatStep | np.ndarray, n: int, name: str) -> SeatStep:
    """Normalise what ``act`` returned (a :class:`SeatStep` or an actions array) and check its shape."""
    step = result if isinstance(result, SeatStep) else SeatStep(np.asarray(result))
    actions = np.asarray(step.actions).astype(np.int64).reshape(-1)
    if actions.shape != (n,):
        raise ValueError(f"seat {name!r} returned {actions.shape[0]} actions for {n} games")
    if step.texts is not None and len(step.texts) != n:
        raise ValueError(f"seat {name!r} returned {len(step.texts)} texts for {n} games")
    step.actions = actions
    return step


class StrategySeat:
    """A fixed strategy (anything with ``initial_memory``/``act_batch``) in a seat.

    A stochastic strategy consumes one uniform per game per round from a generator seeded in :meth:`reset` (or
    given as ``rng``, which lets a caller share one stream between several seats), so a Random opponent makes the
    same moves for every player it meets under the same seed.
    """

    #: Builds the strategy from a name or passes an object through (the two-player registry here).
    make_strategy = staticmethod(make_opponent)

    def __init__(
        self,
        strategy: str | OpponentStrategy,
        name: str | None = None,
        rng: np.random.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        self.strategy = self.make_strategy(strategy, **kwargs)
        self.name = name or getattr(self.strategy, "name", type(self.strategy).__name__)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.memory = self.strategy.initial_memory(0)

    @property
    def initial_move(self) -> int | None:
        return getattr(self.strategy, "initial_move", None)

    def reset(self, n: int, seed: int | None = None) -> None:
        self.memory = self.strategy.initial_memory(n)
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, games: Sequence[MatrixGame], observations: np.ndarray, seat: int = 0) -> SeatStep:
        uniforms = self.rng.random(len(observations))
        actions, self.memory = self.strategy.act_batch(np.asarray(observations, dtype=np.int64), self.memory, uniforms)
        return SeatStep(np.asarray(actions, dtype=np.int64))

    def __repr__(self) -> str:
        return f"StrategySeat({self.strategy!r})"


class NPlayerStrategySeat(StrategySeat):
    """A fixed N-player strategy (:class:`~moralgym.envs.n_player.opponents.NPlayerStrategy`, a name of the N-player
    registry such as ``"conditional_cooperator"``, or an object) in a seat of an N-player game.

    A sibling of :class:`StrategySeat`, not a mode of it, because the names overlap: ``"tit_for_tat"`` is the
    two-player strategy there and the conditional cooperator here (:mod:`moralgym.agents.strategies.n_player`
    says why), so which registry a name is looked up in is the seat's type. Same streams as
    :class:`StrategySeat`: one uniform per game per round. The strategy reads the game's Schelling diagram, so
    games of different diagrams in one call are decided in one ``act_batch`` call per diagram.
    """

    make_strategy = staticmethod(make_n_player_opponent)

    def act(self, games: Sequence[SchellingGame], observations: np.ndarray, seat: int = 0) -> SeatStep:
        uniforms = self.rng.random(len(observations))
        observations = np.asarray(observations, dtype=np.int64)
        first = games[0]
        if all(game is first for game in games):  # the usual case: one game object for every env
            actions, self.memory = self.strategy.act_batch(observations, self.memory, uniforms, first)
            return SeatStep(np.asarray(actions, dtype=np.int64))
        actions = np.empty(len(observations), dtype=np.int64)
        memory = np.array(self.memory, copy=True)
        for game in dict.fromkeys(games):  # SchellingGames are equal (and hash alike) when their diagrams are
            rows = np.array([g == game for g in games])
            actions[rows], memory[rows] = self.strategy.act_batch(
                observations[rows], memory[rows], uniforms[rows], game
            )
        self.memory = memory
        return SeatStep(actions)

    def __repr__(self) -> str:
        return f"NPlayerStrategySeat({self.strategy!r})"
