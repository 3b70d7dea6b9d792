"""``volunteers_dilemma`` as PettingZoo's conventional trio: ``env()`` (AEC, wrapped), ``raw_env()`` (AEC) and ``parallel_env()``.

Equivalent to ``pettingzoo.make("parallel", "moralgym/volunteers_dilemma-v0", **kwargs)`` (``num_players=`` sets the group size,
``game_params=`` the game's parameters); see :mod:`moralgym.envs.n_player.env` for arguments, spaces and rewards.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.env import AECEnv

from moralgym.envs.n_player.aec import n_player_aec_env, raw_n_player_aec_env
from moralgym.envs.n_player.env import NPlayerGameEnv

GAME = "volunteers_dilemma"


def parallel_env(**kwargs: Any) -> NPlayerGameEnv:
    return NPlayerGameEnv(game=GAME, **kwargs)


def raw_env(**kwargs: Any) -> AECEnv:
    return raw_n_player_aec_env(game=GAME, **kwargs)


def env(**kwargs: Any) -> AECEnv:
    return n_player_aec_env(game=GAME, **kwargs)
