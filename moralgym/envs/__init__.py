"""Matrix-game environments: PettingZoo parallel/AEC envs, Gymnasium single-agent and vector envs, moral rewards.

The N-player games (public goods, volunteering, thresholds) and their envs and rewards are in
:mod:`moralgym.envs.n_player`.

Imports numpy, gymnasium and pettingzoo only (never torch).
"""

from moralgym.envs._validation import ResetNeeded
from moralgym.envs.games import (
    COOPERATE,
    DEFECT,
    ILLEGAL,
    NO_MOVE,
    PAPER_GAMES,
    MatrixGame,
    get_game,
    list_games,
    register_game,
)
from moralgym.envs.matrix_game import MatrixGameEnv
from moralgym.envs.observations import OBSERVATION_TYPES
from moralgym.envs.opponents import OpponentStrategy, list_opponents, make_opponent, register_opponent
from moralgym.envs.rewards import (
    CallableReward,
    DeontologicalReward,
    GameDeontologicalReward,
    GameReward,
    InequityAversionReward,
    MoralReward,
    RewardInputs,
    RewardSchedule,
    UtilitarianReward,
    VirtueEqualityReward,
    VirtueKindnessReward,
    VirtueMixedReward,
    get_reward,
    list_rewards,
    reward_components,
)
from moralgym.envs.wrappers import MoralRewardWrapper

__all__ = [
    "COOPERATE",
    "DEFECT",
    "ILLEGAL",
    "NO_MOVE",
    "OBSERVATION_TYPES",
    "PAPER_GAMES",
    "CallableReward",
    "DeontologicalReward",
    "GameDeontologicalReward",
    "GameReward",
    "InequityAversionReward",
    "MatrixGame",
    "MatrixGameEnv",
    "MoralReward",
    "MoralRewardWrapper",
    "OpponentStrategy",
    "ResetNeeded",
    "RewardInputs",
    "RewardSchedule",
    "UtilitarianReward",
    "VirtueEqualityReward",
    "VirtueKindnessReward",
    "VirtueMixedReward",
    "get_game",
    "get_reward",
    "list_games",
    "list_opponents",
    "list_rewards",
    "make_opponent",
    "register_game",
    "register_opponent",
    "reward_components",
]
