"""PettingZoo wrapper that gives each agent of an N-player env its own N-player moral reward.

:class:`~moralgym.envs.wrappers.MoralRewardWrapper` with the N-player rewards: names resolve through
:func:`~moralgym.envs.n_player.rewards.get_n_player_reward`, and each agent's inputs are read from its step info
(``action``, ``others_cooperated``, ``others_previous_cooperated``, ``game_payoff``, ``payoffs``,
``cumulative_payoffs``, and ``round`` with the env's game for the equality virtue's floor). Schedules advance with
the episodes the wrapper has started, as in the two-player wrapper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pettingzoo.utils.env import ParallelEnv

from moralgym.envs.n_player.observations import full_view_order
from moralgym.envs.n_player.rewards import NPlayerRewardInputs, get_n_player_reward
from moralgym.envs.n_player.rounds import cumulative_floor
from moralgym.envs.rewards import MoralReward
from moralgym.envs.wrappers import MoralRewardWrapper, RewardSpec


class NPlayerMoralRewardWrapper(MoralRewardWrapper):
    """``NPlayerMoralRewardWrapper(env, {"player_0": "deontological", "player_1": "game", ...})`` or one reward for
    every agent; ``start_episode`` as in :class:`~moralgym.envs.wrappers.MoralRewardWrapper`."""

    def __init__(
        self, env: ParallelEnv, rewards: RewardSpec | Mapping[str, RewardSpec], start_episode: int = 0
    ) -> None:
        super().__init__(env, rewards, start_episode)
        self._order = full_view_order(len(env.possible_agents))
        self._seat = {agent: seat for seat, agent in enumerate(env.possible_agents)}

    @staticmethod
    def resolve_reward(spec: RewardSpec) -> MoralReward:
        return get_n_player_reward(spec)

    def reward_inputs(self, agent: str, info: dict[str, Any]) -> NPlayerRewardInputs:
        order = self._order[self._seat[agent]]  # the agent's own payoff first, then the others' in seat order
        return NPlayerRewardInputs(
            own_action=info["action"],
            others_cooperated=info["others_cooperated"],
            others_previous_cooperated=info["others_previous_cooperated"],
            num_others=len(order) - 1,
            own_payoff=info["game_payoff"],
            payoffs=np.asarray(info["payoffs"])[order],
            cumulative_payoffs=np.asarray(info["cumulative_payoffs"])[order],
            cumulative_floor=cumulative_floor(self.unwrapped.game, info["round"]),
        )
