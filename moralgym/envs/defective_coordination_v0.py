"""``defective_coordination`` as PettingZoo's conventional trio: ``env()`` (AEC, wrapped), ``raw_env()`` (AEC) and ``parallel_env()``.

Equivalent to ``pettingzoo.make("parallel", "moralgym/defective_coordination-v0", **kwargs)``; see :mod:`moralgym.envs.matrix_game`
for arguments, spaces and rewards.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.env import AECEnv

from moralgym.envs.aec import aec_env, raw_aec_env
from moralgym.envs.matrix_game import MatrixGameEnv

GAME = "defective_coordination"


def parallel_env(**kwargs: Any) -> MatrixGameEnv:
    return MatrixGameEnv(game=GAME, **kwargs)


def raw_env(**kwargs: Any) -> AECEnv:
    return raw_aec_env(game=GAME, **kwargs)


def env(**kwargs: Any) -> AECEnv:
    return aec_env(game=GAME, **kwargs)
