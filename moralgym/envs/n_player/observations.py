"""Observation encodings of the N-player envs (``observation_type=``).

Each seat sees its own previous move ``own`` (0 = C, 1 = D, 2 = no move yet) and ``others``, how many of the other
``N - 1`` players cooperated last round, or ``N`` when none of them has moved yet (round one with
``initial_state="none"``). A player that answered illegally shows its last legal move, so it counts as a
cooperator only if that move was C; one that has never moved counts as no cooperator.

=====================  ==================================  =====================================================
``observation_type``   space                               value
=====================  ==================================  =====================================================
``"count"``            ``MultiDiscrete([3, N + 1])``       ``[own, others]`` (int64), the default; what the
                                                           N-player strategies read
``"discrete"``         ``Discrete(3 (N + 1))``             ``own * (N + 1) + others`` (int64)
``"one_hot"``          ``Box(0, 1, (N + 4,), float32)``    ``one_hot(own, 3) ++ one_hot(others, N + 1)``
                                                           (Gymnasium's ``flatten`` of the ``"count"`` space)
``"full"``             ``MultiDiscrete([3] * N)``          own previous move, then every other seat's previous
                                                           move in seat order (int64)
=====================  ==================================  =====================================================

At ``N = 2``, ``"full"`` is exactly the two-player ``"multi_discrete"`` observation ``[own, other]``; in ``"count"``
the second entry is 1 where the two-player env shows the other's C, 0 for its D and 2 for no move yet.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from moralgym.envs._validation import check_choice
from moralgym.envs.games import COOPERATE, NO_MOVE

N_PLAYER_OBSERVATION_TYPES: tuple[str, ...] = ("count", "discrete", "one_hot", "full")
DEFAULT_N_PLAYER_OBSERVATION_TYPE = "count"


def check_n_player_observation_type(observation_type: object) -> str:
    """Return ``observation_type`` if it is one of :data:`N_PLAYER_OBSERVATION_TYPES`, else raise ``ValueError``."""
    return check_choice("observation_type", observation_type, N_PLAYER_OBSERVATION_TYPES)


def n_player_observation_space(observation_type: str, num_players: int) -> spaces.Space:
    """One seat's observation space for ``observation_type`` in a game of ``num_players``."""
    if observation_type == "count":
        return spaces.MultiDiscrete([3, num_players + 1], dtype=np.int64)
    if observation_type == "discrete":
        return spaces.Discrete(3 * (num_players + 1))
    if observation_type == "one_hot":
        return spaces.Box(0.0, 1.0, (num_players + 4,), dtype=np.float32)
    return spaces.MultiDiscrete([3] * num_players, dtype=np.int64)


def count_view_table(observation_type: str, num_players: int) -> np.ndarray:
    """Observation of each view ``own * (N + 1) + others``: ``np.take(table, view, axis=0)`` encodes views.

    Not used for ``"full"``, which shows the previous moves themselves (:func:`full_view_order`).
    """
    views = np.arange(3 * (num_players + 1))
    own, others = views // (num_players + 1), views % (num_players + 1)
    if observation_type == "count":
        table = np.stack([own, others], axis=-1).astype(np.int64)
    elif observation_type == "discrete":
        table = views.astype(np.int64)
    else:
        table = np.zeros((len(views), num_players + 4), dtype=np.float32)
        table[views, own] = 1.0
        table[views, 3 + others] = 1.0
    table.setflags(write=False)
    return table


def full_view_order(num_players: int) -> np.ndarray:
    """``(N, N)`` seat indices: row ``i`` is seat ``i`` then every other seat in seat order (the ``"full"`` view)."""
    seats = np.arange(num_players)
    order = np.array([[i, *np.delete(seats, i)] for i in seats], dtype=np.int64)
    order.setflags(write=False)
    return order


def others_cooperated_view(previous: np.ndarray, num_players: int) -> np.ndarray:
    """The ``others`` entry every seat sees, from previous moves ``(..., N)``: how many others cooperated, or ``N``
    where none of the others has moved yet. Returns int64 ``(..., N)``."""
    cooperated = previous == COOPERATE
    moved = previous != NO_MOVE
    others = cooperated.sum(axis=-1, keepdims=True) - cooperated
    nobody_moved = (moved.sum(axis=-1, keepdims=True) - moved) == 0
    return np.where(nobody_moved, num_players, others).astype(np.int64)
