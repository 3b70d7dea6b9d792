"""AEC (turn-based API) form of the N-player env, the same pattern as :mod:`moralgym.envs.aec`.

``player_0`` moves, then ``player_1``, ..., and the round is resolved on ``player_{N-1}``'s move (the moves stay
simultaneous: observations only show previous rounds). ``reward_timing`` is that of the two-player AEC env:
``"round"`` (PettingZoo's ``parallel_to_aec``: every agent's round reward right after the last seat's move, zero
after the others') or ``"own_turn"`` (``env.rewards`` holds only the reward of the agent about to act, earned since
its previous move, so each reward is reported once). Under both, ``env.last()`` on an agent's turn returns the
reward of the round it last played.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import parallel_to_aec, wrappers
from pettingzoo.utils.env import AECEnv

from moralgym.envs.aec import OwnTurnRewardWrapper, check_reward_timing
from moralgym.envs.n_player.env import NPlayerGameEnv


def raw_n_player_aec_env(reward_timing: str = "round", **kwargs: Any) -> AECEnv:
    """The parallel env converted with ``parallel_to_aec`` (no extra checks); ``reward_timing``: see module doc."""
    env = parallel_to_aec(NPlayerGameEnv(**kwargs))
    return OwnTurnRewardWrapper(env) if check_reward_timing(reward_timing) == "own_turn" else env


def n_player_aec_env(reward_timing: str = "round", **kwargs: Any) -> AECEnv:
    """AEC env with PettingZoo's usual safety wrappers (order enforcing); ``reward_timing``: see module doc."""
    return wrappers.OrderEnforcingWrapper(raw_n_player_aec_env(reward_timing, **kwargs))
