"""AEC (turn-based API) form of the matrix-game env, for tools that expect PettingZoo's AEC interface."""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import parallel_to_aec, wrappers
from pettingzoo.utils.env import AECEnv

from moralgym.envs.matrix_game import MatrixGameEnv


def raw_aec_env(**kwargs: Any) -> AECEnv:
    """The parallel env converted with ``parallel_to_aec`` (no extra checks)."""
    return parallel_to_aec(MatrixGameEnv(**kwargs))


def aec_env(**kwargs: Any) -> AECEnv:
    """AEC env with PettingZoo's usual safety wrappers (order enforcing)."""
    return wrappers.OrderEnforcingWrapper(raw_aec_env(**kwargs))
