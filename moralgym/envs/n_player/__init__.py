"""Symmetric N-player C/D social dilemmas defined by Schelling diagrams (public goods, volunteering, thresholds).

One job per module:

- ``games``: :class:`SchellingGame`, the built-in families, :func:`from_matrix_game`, the registry and the theory
  (payoffs of a joint action, pure Nash equilibria, social optima, per-game maxima);
- ``rounds``: the rules of one round on arrays (illegal moves, payoff lookups);
- ``observations``: the ``observation_type`` encodings (``"count"``, ``"discrete"``, ``"one_hot"``, ``"full"``);
- ``rewards``: the moral rewards for N players (each the two-player reward at ``N = 2``) and their registry;
- ``env`` / ``aec``: the PettingZoo parallel env and its AEC form; ``wrappers``: per-agent moral rewards;
- ``batch``, ``single_agent``, ``vector``: one learner against ``N - 1`` fixed co-players, in Gymnasium's single
  and native vector forms;
- ``opponents``: what a co-player strategy must implement, and their registry by name.

Imports numpy, gymnasium and pettingzoo only (never torch), like :mod:`moralgym.envs`.
"""

from moralgym.envs.n_player.aec import n_player_aec_env, raw_n_player_aec_env
from moralgym.envs.n_player.env import NPlayerGameEnv
from moralgym.envs.n_player.games import (
    DEFAULT_NUM_PLAYERS,
    N_PLAYER_GAMES,
    SchellingGame,
    from_matrix_game,
    get_n_player_game,
    linear_public_goods,
    list_n_player_games,
    n_player_prisoners_dilemma,
    n_player_snowdrift,
    register_n_player_game,
    threshold_public_good,
    volunteers_dilemma,
)
from moralgym.envs.n_player.observations import N_PLAYER_OBSERVATION_TYPES
from moralgym.envs.n_player.opponents import (
    N_PLAYER_OPPONENTS,
    NPlayerStrategy,
    SchellingDiagram,
    list_n_player_opponents,
    make_n_player_opponent,
    register_n_player_opponent,
)
from moralgym.envs.n_player.rewards import (
    DEONTOLOGICAL_NORMS,
    N_PLAYER_COMPONENT_NAMES,
    N_PLAYER_REWARDS,
    NPlayerDeontologicalReward,
    NPlayerGameDeontologicalReward,
    NPlayerGameReward,
    NPlayerInequityAversionReward,
    NPlayerReward,
    NPlayerRewardInputs,
    NPlayerUtilitarianReward,
    NPlayerVirtueEqualityReward,
    NPlayerVirtueKindnessReward,
    NPlayerVirtueMixedReward,
    get_n_player_reward,
    list_n_player_rewards,
    n_player_reward_components,
)
from moralgym.envs.n_player.single_agent import SingleAgentNPlayerGameEnv
from moralgym.envs.n_player.vector import NPlayerGameVectorEnv
from moralgym.envs.n_player.wrappers import NPlayerMoralRewardWrapper

__all__ = [
    "DEFAULT_NUM_PLAYERS",
    "DEONTOLOGICAL_NORMS",
    "N_PLAYER_COMPONENT_NAMES",
    "N_PLAYER_GAMES",
    "N_PLAYER_OBSERVATION_TYPES",
    "N_PLAYER_OPPONENTS",
    "N_PLAYER_REWARDS",
    "NPlayerDeontologicalReward",
    "NPlayerGameDeontologicalReward",
    "NPlayerGameEnv",
    "NPlayerGameReward",
    "NPlayerGameVectorEnv",
    "NPlayerInequityAversionReward",
    "NPlayerMoralRewardWrapper",
    "NPlayerReward",
    "NPlayerRewardInputs",
    "NPlayerStrategy",
    "NPlayerUtilitarianReward",
    "NPlayerVirtueEqualityReward",
    "NPlayerVirtueKindnessReward",
    "NPlayerVirtueMixedReward",
    "SchellingDiagram",
    "SchellingGame",
    "SingleAgentNPlayerGameEnv",
    "from_matrix_game",
    "get_n_player_game",
    "get_n_player_reward",
    "linear_public_goods",
    "list_n_player_games",
    "list_n_player_opponents",
    "list_n_player_rewards",
    "make_n_player_opponent",
    "n_player_aec_env",
    "n_player_prisoners_dilemma",
    "n_player_reward_components",
    "n_player_snowdrift",
    "raw_n_player_aec_env",
    "register_n_player_game",
    "register_n_player_opponent",
    "threshold_public_good",
    "volunteers_dilemma",
]
