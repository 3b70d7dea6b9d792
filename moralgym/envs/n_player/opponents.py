"""What the N-player environments need from a fixed co-player, and a registry of such strategies by name.

The N-player envs (:mod:`moralgym.envs.n_player`) only know this protocol; the strategies that implement it live in
:mod:`moralgym.agents.strategies.n_player` and register themselves here when ``moralgym`` is imported, so
dependencies flow one way (envs <- agents) while ``gymnasium.make(..., co_players=["conditional_cooperator"])``
still resolves names. Same design as the two-player :mod:`moralgym.envs.opponents`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from moralgym.registry import Registry


@runtime_checkable
class SchellingDiagram(Protocol):
    """What a strategy may read of the game it plays: the payoffs as a function of how many *others* cooperate.

    ``cooperate_payoffs[k]`` / ``defect_payoffs[k]`` is a player's payoff for choosing C / D when ``k`` of the other
    ``num_players - 1`` players choose C (k = 0 .. num_players - 1).
    """

    num_players: int
    cooperate_payoffs: np.ndarray
    defect_payoffs: np.ndarray


@runtime_checkable
class NPlayerStrategy(Protocol):
    """A fixed policy for one seat of a symmetric N-player C/D game, vectorised over many games.

    Observations are ``(n, 2)`` int arrays ``[own_previous, others_cooperated]`` from the strategy's own seat:
    ``own_previous`` is 0 (C), 1 (D) or 2 (no move yet); ``others_cooperated`` is how many of the other players
    cooperated last round (0 .. num_players - 1), or ``num_players`` for "no move yet" (round one with the initial
    state ``"none"``). After an illegal answer a player's last legal move is what the others see. ``memory`` is a
    per-game int64 array of shape ``(n, memory_width)`` the strategy owns, and ``uniforms`` one float in [0, 1) per
    game (always drawn by the env, so random streams stay aligned whatever the strategies).

    Optional attribute ``initial_move`` (0 or 1): the round-one "previous move" envs show for this seat when the
    initial state is random (Always Cooperate / Always Defect fix theirs, as in the two-player envs).
    """

    name: str

    def initial_memory(self, n: int) -> np.ndarray: ...

    def act_batch(
        self, observations: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]: ...


#: Every registered N-player strategy factory by name (:class:`~moralgym.registry.Registry` rules).
N_PLAYER_OPPONENTS: Registry[Callable[..., NPlayerStrategy]] = Registry(
    "N-player strategy", "strategies", builder="make_n_player_opponent"
)


def register_n_player_opponent(
    name: str, factory: Callable[..., NPlayerStrategy], aliases: tuple[str, ...] = ()
) -> None:
    """Make ``factory`` buildable by ``name`` and each alias (case, spaces and dashes do not matter)."""
    N_PLAYER_OPPONENTS.register(name, factory, aliases)


def list_n_player_opponents() -> list[str]:
    """Names of the registered N-player strategies."""
    return N_PLAYER_OPPONENTS.names()


def make_n_player_opponent(strategy: str | NPlayerStrategy, **kwargs: Any) -> NPlayerStrategy:
    """Build an N-player strategy from its name (plus keyword arguments) or pass a strategy object through.

    Raises:
        KeyError: unknown name; the message lists the known ones.
        TypeError: an object that does not implement :class:`NPlayerStrategy`, or a keyword argument the named
            strategy does not take.
    """
    if isinstance(strategy, str):
        return N_PLAYER_OPPONENTS.build(strategy, **kwargs)
    if isinstance(strategy, NPlayerStrategy):
        if kwargs:
            raise TypeError(f"keyword arguments {sorted(kwargs)} only apply to strategy names, not to {strategy!r}")
        return strategy
    raise TypeError(
        "an N-player strategy must be a registered name or an object with initial_memory() and "
        f"act_batch(observations, memory, uniforms, game), got {strategy!r}"
    )
