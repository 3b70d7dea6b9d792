"""Register every game with PettingZoo's registry (1.27+) and Gymnasium's, at ``import moralgym``.

PettingZoo ids (parallel and AEC): ``moralgym/<game>-v0`` for each game, plus ``moralgym/matrix_game-v0`` that takes
``game=`` (a name or a payoff table). Gymnasium ids (learner vs a fixed opponent): ``moralgym/<Title>-v0``, with a
native vectorised entry point for ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``.
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


def _register_pettingzoo(env_id: str, kwargs: dict) -> None:
    if env_id in pettingzoo.parallel_registry:
        return
    pettingzoo.register("parallel", env_id, entry_point="moralgym.envs.matrix_game:MatrixGameEnv", kwargs=kwargs)
    pettingzoo.register("aec", env_id, entry_point="moralgym.envs.aec:aec_env", kwargs=kwargs)


def _register_gymnasium(env_id: str, kwargs: dict) -> None:
    if env_id in gymnasium.registry:
        return
    gymnasium.register(
        env_id,
        entry_point="moralgym.envs.single_agent:SingleAgentMatrixGameEnv",
        vector_entry_point="moralgym.envs.vector:MatrixGameVectorEnv",
        kwargs=kwargs,
    )


def register_all() -> None:
    for game in PAPER_GAMES:
        _register_pettingzoo(f"moralgym/{game.name}-v0", {"game": game.name})
        _register_gymnasium(f"moralgym/{GYMNASIUM_NAMES[game.name]}-v0", {"game": game.name})
    _register_pettingzoo("moralgym/matrix_game-v0", {})
    _register_gymnasium("moralgym/MatrixGame-v0", {})
