"""PettingZoo wrapper that gives each agent its own moral reward.

The wrapped env's ``infos`` already hold everything a reward needs (own and partner's action, the partner's
previous move, both payoffs and their sums over the episode); the wrapper replaces ``rewards[agent]`` with that
agent's reward and keeps the game payoffs in ``infos`` (plus ``infos[agent]["reward_name"]``, at ``reset`` too, so
reset and step infos have the same keys: learners that stack infos, such as Tianshou, would otherwise fill the
missing key with NaN). Schedules ("game, then deontological") advance with the number of episodes the wrapper has
started, counted from ``start_episode``. Subclasses change what a reward name means (:meth:`resolve_reward`) and how
a step info becomes reward inputs (:meth:`reward_inputs`): the N-player wrapper does both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pettingzoo.utils.env import ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper

from moralgym.envs.rewards import DEFAULT_PARTNER_ILLEGAL, MoralReward, RewardInputs, get_reward

RewardSpec = str | MoralReward | Callable[[RewardInputs], Any]


class MoralRewardWrapper(BaseParallelWrapper):
    """``MoralRewardWrapper(env, {"player_0": "deontological", "player_1": "game"})``.

    Args:
        env: a moralgym parallel env (or anything whose ``infos`` carry the same keys).
        rewards: one reward for both agents, or a mapping agent -> reward. A reward is a name from
            :func:`moralgym.envs.rewards.list_rewards`, a :class:`MoralReward` or a callable of :class:`RewardInputs`.
        start_episode: episode index of the first ``reset`` (to resume a schedule part-way).
    """

    def __init__(self, env: ParallelEnv, rewards: RewardSpec | Mapping[str, RewardSpec], start_episode: int = 0):
        super().__init__(env)
        if isinstance(rewards, Mapping):
            unknown = set(rewards) - set(env.possible_agents)
            if unknown:
                raise ValueError(
                    f"rewards given for unknown agents {sorted(unknown)}; agents are {env.possible_agents}"
                )
            missing = set(env.possible_agents) - set(rewards)
            if missing:
                raise ValueError(
                    f"no reward given for agents {sorted(missing)}; pass one for each of {env.possible_agents}"
                )
            self.reward_functions = {agent: self.resolve_reward(spec) for agent, spec in rewards.items()}
        else:
            reward = self.resolve_reward(rewards)
            self.reward_functions = {agent: reward for agent in env.possible_agents}
        self.episode = int(start_episode) - 1

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.episode += 1
        observations, infos = self.env.reset(seed=seed, options=options)
        for agent, info in infos.items():
            info["reward_name"] = self.reward_functions[agent].at(max(self.episode, 0)).name
        return observations, infos

    def step(self, actions: dict):
        observations, _, terminations, truncations, infos = self.env.step(actions)
        rewards = {}
        for agent, info in infos.items():
            reward = self.reward_functions[agent].at(max(self.episode, 0))
            rewards[agent] = float(reward(self.reward_inputs(agent, info)))
            info["reward_name"] = reward.name
        return observations, rewards, terminations, truncations, infos

    @staticmethod
    def resolve_reward(spec: RewardSpec) -> MoralReward:
        """A reward from its spec; the N-player wrapper resolves names to the N-player rewards instead."""
        return get_reward(spec)

    def reward_inputs(self, agent: str, info: dict[str, Any]) -> RewardInputs:
        """What a reward scores, from ``agent``'s step info."""
        return RewardInputs(
            own_action=info["action"],
            opponent_action=info["opponent_action"],
            opponent_previous=info["opponent_previous"],
            own_payoff=info["game_payoff"],
            opponent_payoff=info["opponent_payoff"],
            # The env's rule for a partner's illegal answer (MatrixGameEnv reports it in every step info).
            partner_illegal=info.get("partner_illegal", DEFAULT_PARTNER_ILLEGAL),
            own_cumulative_payoff=info.get("cumulative_payoff"),
            opponent_cumulative_payoff=info.get("opponent_cumulative_payoff"),
        )
