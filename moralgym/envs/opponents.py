"""What the environments need from a fixed opponent, and a registry of opponents by name.

The environments (``moralgym.envs``) only know this protocol; the classic strategies that implement it live in
:mod:`moralgym.agents.strategies` and register themselves here when ``moralgym`` is imported, so dependencies flow
one way (envs <- agents) while ``gymnasium.make(..., opponent="tit_for_tat")`` still resolves names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from moralgym.registry import Registry


@runtime_checkable
class OpponentStrategy(Protocol):
    """A fixed policy for one seat, vectorised over many games.

    Observations are ``(n, 2)`` int arrays ``[own_previous, opponent_previous]`` from the strategy's own seat, values
    0 (cooperate), 1 (defect) or 2 (no move yet). ``memory`` is a per-game int64 array of shape
    ``(n, memory_width)`` that the strategy owns (its record of the game so far), and ``uniforms`` one float in
    [0, 1) per game that a stochastic strategy may use (the environment always draws one, so random streams stay
    aligned whatever the strategy).

    Optional attribute ``initial_move`` (0 or 1): the move the strategy is shown as having made "before" round one
    when the initial state is random (the paper fixes C for Always Cooperate and D for Always Defect, docs/reproduction.md);
    absent or ``None``, it is drawn like the learner's.
    """

    name: str

    def initial_memory(self, n: int) -> np.ndarray: ...

    def act_batch(
        self, observations: np.ndarray, memory: np.ndarray, uniforms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


#: Every registered opponent factory by name (:class:`~moralgym.registry.Registry` rules: case, spaces and dashes do
#: not matter); :mod:`moralgym.agents.strategies` fills it with the classic strategies.
OPPONENTS: Registry[Callable[..., OpponentStrategy]] = Registry(
    "opponent strategy", "strategies", builder="make_opponent"
)


def register_opponent(name: str, factory: Callable[..., OpponentStrategy], aliases: tuple[str, ...] = ()) -> None:
    """Make ``factory`` buildable by ``name`` and each alias (case, spaces and dashes do not matter)."""
    OPPONENTS.register(name, factory, aliases)


def is_opponent_name(name: str) -> bool:
    """Whether ``name`` (or an alias of it) is a registered opponent."""
    return name in OPPONENTS


def list_opponents() -> list[str]:
    """Names of the registered opponents."""
    return OPPONENTS.names()


def make_opponent(opponent: str | OpponentStrategy, **kwargs: Any) -> OpponentStrategy:
    """Build an opponent from its name (plus keyword arguments) or pass a strategy object through.

    Raises:
        KeyError: unknown name; the message lists the known ones.
        TypeError: an object that does not implement :class:`OpponentStrategy`, or a keyword argument the named
            strategy does not take (the message names it and lists the accepted ones).
    """
    if isinstance(opponent, str):
        return OPPONENTS.build(opponent, **kwargs)
    if isinstance(opponent, OpponentStrategy):
        if kwargs:
            raise TypeError(f"keyword arguments {sorted(kwargs)} only apply to strategy names, not to {opponent!r}")
        return opponent
    raise TypeError(
        f"opponent must be a strategy name or an object with initial_memory() and act_batch(), got {opponent!r}"
    )
