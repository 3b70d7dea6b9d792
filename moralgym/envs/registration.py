"""Register every game with PettingZoo's registry (1.27+) and Gymnasium's, at ``import moralgym``.

PettingZoo ids (parallel and AEC): ``moralgym/<game>-v0`` for each game, plus ``moralgym/matrix_game-v0`` that takes
``game=`` (a name or a payoff table). Gymnasium ids (learner vs a fixed opponent): ``moralgym/<Title>-v0``, with a
native vectorised entry point for ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``.

The N-player games (:mod:`moralgym.envs.n_player`) follow the same scheme with their own lists
(:data:`N_PLAYER_PETTINGZOO_IDS`, :data:`N_PLAYER_GYMNASIUM_IDS`: their envs take ``num_players`` and
``co_players`` rather than ``opponent``): ``moralgym/public_goods-v0``, ..., and ``moralgym/n_player_game-v0``
(``game=``); ``moralgym/PublicGoods-v0``, ..., and ``moralgym/NPlayerGame-v0``.
"""

from __future__ import annotations

import gymnasium
import pettingzoo

from moralgym.envs.games import PAPER_GAMES

#: game name -> Gymnasium id stem.
GYMNASIUM_NAMES = {
    "ipd": "IPD",
    "stag_hunt": "StagHunt",
    "chicken": "Chicken",
    "bach_or_stravinsky": "BachOrStravinsky",
    "defective_coordination": "DefectiveCoordination",
}

PETTINGZOO_IDS = [f"moralgym/{game.name}-v0" for game in PAPER_GAMES] + ["moralgym/matrix_game-v0"]
GYMNASIUM_IDS = [f"moralgym/{GYMNASIUM_NAMES[game.name]}-v0" for game in PAPER_GAMES] + ["moralgym/MatrixGame-v0"]

#: N-player game name -> Gymnasium id stem.
N_PLAYER_GYMNASIUM_NAMES = {
    "public_goods": "PublicGoods",
    "n_player_ipd": "NPlayerIPD",
    "threshold_public_good": "ThresholdPublicGood",
    "volunteers_dilemma": "VolunteersDilemma",
    "n_player_snowdrift": "NPlayerSnowdrift",
}
N_PLAYER_PETTINGZOO_IDS = [f"moralgym/{name}-v0" for name in N_PLAYER_GYMNASIUM_NAMES] + ["moralgym/n_player_game-v0"]
N_PLAYER_GYMNASIUM_IDS = [f"moralgym/{stem}-v0" for stem in N_PLAYER_GYMNASIUM_NAMES.values()] + [
    "moralgym/NPlayerGame-v0"
]


_TWO_PLAYER = {
    "parallel": "moralgym.envs.matrix_game:MatrixGameEnv",
    "aec": "moralgym.envs.aec:aec_env",
    "single": "moralgym.envs.single_agent:SingleAgentMatrixGameEnv",
    "vector": "moralgym.envs.vector:MatrixGameVectorEnv",
}
_N_PLAYER = {
    "parallel": "moralgym.envs.n_player.env:NPlayerGameEnv",
    "aec": "moralgym.envs.n_player.aec:n_player_aec_env",
    "single": "moralgym.envs.n_player.single_agent:SingleAgentNPlayerGameEnv",
    "vector": "moralgym.envs.n_player.vector:NPlayerGameVectorEnv",
}


def _register_pettingzoo(env_id: str, kwargs: dict, entry_points: dict[str, str] = _TWO_PLAYER) -> None:
    if env_id in pettingzoo.parallel_registry:
        return
    pettingzoo.register("parallel", env_id, entry_point=entry_points["parallel"], kwargs=kwargs)
    pettingzoo.register("aec", env_id, entry_point=entry_points["aec"], kwargs=kwargs)


def _register_gymnasium(env_id: str, kwargs: dict, entry_points: dict[str, str] = _TWO_PLAYER) -> None:
    if env_id in gymnasium.registry:
        return
    gymnasium.register(
        env_id, entry_point=entry_points["single"], vector_entry_point=entry_points["vector"], kwargs=kwargs
    )


def register_all() -> None:
    for game in PAPER_GAMES:
        _register_pettingzoo(f"moralgym/{game.name}-v0", {"game": game.name})
        _register_gymnasium(f"moralgym/{GYMNASIUM_NAMES[game.name]}-v0", {"game": game.name})
    _register_pettingzoo("moralgym/matrix_game-v0", {})
    _register_gymnasium("moralgym/MatrixGame-v0", {})
    for name, stem in N_PLAYER_GYMNASIUM_NAMES.items():
        _register_pettingzoo(f"moralgym/{name}-v0", {"game": name}, _N_PLAYER)
        _register_gymnasium(f"moralgym/{stem}-v0", {"game": name}, _N_PLAYER)
    _register_pettingzoo("moralgym/n_player_game-v0", {}, _N_PLAYER)
    _register_gymnasium("moralgym/NPlayerGame-v0", {}, _N_PLAYER)
