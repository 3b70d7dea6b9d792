"""Observation encodings shared by every moralgym env (``observation_type=``).

Each seat sees ``own`` and ``other``, the two previous moves (0 = C, 1 = D, 2 = no move yet):

=====================  ============================  =========================================================
``observation_type``   space                         value
=====================  ============================  =========================================================
``"multi_discrete"``   ``MultiDiscrete([3, 3])``     ``[own, other]`` (int64), the default
``"discrete"``         ``Discrete(9)``               ``own * 3 + other`` (int64), for learners (RLlib) that
                                                     reject ``MultiDiscrete`` without a flattening connector
``"one_hot"``          ``Box(0, 1, (6,), float32)``  ``one_hot(own, 3) ++ one_hot(other, 3)`` (Gymnasium's
                                                     ``flatten`` of the ``MultiDiscrete`` space, as floats)
=====================  ============================  =========================================================
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from moralgym.envs._validation import check_choice
from moralgym.envs.outcomes import STATE_TO_OBSERVATION

OBSERVATION_TYPES: tuple[str, ...] = ("multi_discrete", "discrete", "one_hot")
DEFAULT_OBSERVATION_TYPE = "multi_discrete"


def check_observation_type(observation_type: object) -> str:
    """Return ``observation_type`` if it is one of :data:`OBSERVATION_TYPES`, else raise ``ValueError``."""
    return check_choice("observation_type", observation_type, OBSERVATION_TYPES)


def observation_space(observation_type: str) -> spaces.Space:
    """One seat's observation space for ``observation_type``."""
    if observation_type == "multi_discrete":
        return spaces.MultiDiscrete([3, 3], dtype=np.int64)
    if observation_type == "discrete":
        return spaces.Discrete(9)
    return spaces.Box(0.0, 1.0, (6,), dtype=np.float32)


def observation_table(observation_type: str) -> np.ndarray:
    """Observation of each of the 9 views ``own * 3 + other``: ``np.take(table, view, axis=0)`` encodes a view."""
    if observation_type == "multi_discrete":
        table = STATE_TO_OBSERVATION.copy()
    elif observation_type == "discrete":
        table = np.arange(9, dtype=np.int64)
    else:
        table = np.zeros((9, 6), dtype=np.float32)
        table[np.arange(9), STATE_TO_OBSERVATION[:, 0]] = 1.0
        table[np.arange(9), 3 + STATE_TO_OBSERVATION[:, 1]] = 1.0
    table.setflags(write=False)
    return table
