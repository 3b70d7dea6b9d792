"""AEC (turn-based API) form of the matrix-game env, for tools that expect PettingZoo's AEC interface.

``player_0`` moves, then ``player_1``; the round is resolved on ``player_1``'s move (the moves stay simultaneous:
observations only show previous rounds). ``reward_timing`` says when ``env.rewards`` reports a round's rewards:

=================  ===============================================================================================
``reward_timing``  ``env.rewards`` after each ``step``
=================  ===============================================================================================
``"round"``        PettingZoo's ``parallel_to_aec`` (default): both agents' round rewards right after
                   ``player_1``'s move, all zero right after ``player_0``'s move
``"own_turn"``     only the agent whose turn it now is: its reward earned since its previous move (0 for the
                   other), so ``env.rewards`` agrees with ``last()`` and each reward is reported once, at its
                   owner's next turn (the final round's too, on each agent's truncated turn)
=================  ===============================================================================================

Under both, ``env.last()`` on an agent's turn returns the reward of the round it last played (PettingZoo's
``agent_iter`` loop credits every agent correctly); read rewards that way, or use ``"own_turn"`` with a client
that reads ``env.rewards`` after each move, rather than crediting the mover with the ``"round"`` rewards.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import parallel_to_aec, wrappers
from pettingzoo.utils.env import AECEnv

from moralgym.envs._validation import check_choice
from moralgym.envs.matrix_game import MatrixGameEnv

REWARD_TIMINGS: tuple[str, ...] = ("round", "own_turn")


class OwnTurnRewardWrapper(wrappers.BaseWrapper):
    """Reports each agent's reward on its own turn: after every ``step``, ``rewards`` (and ``_cumulative_rewards``,
    hence ``last()``) hold what the agent now selected earned since its previous move, and 0 for the others."""

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self.env.reset(seed=seed, options=options)
        self._pending = dict.fromkeys(self.env.agents, 0.0)
        self._report()

    def step(self, action: Any) -> None:
        self._pending[self.env.agent_selection] = 0.0  # the mover has been shown its reward: it is spent
        self.env.step(action)
        for agent, reward in self.env.rewards.items():
            self._pending[agent] = self._pending.get(agent, 0.0) + float(reward)
        self._report()

    def _report(self) -> None:
        selected = self.env.agent_selection if self.env.agents else None
        self.rewards = {a: (self._pending.get(a, 0.0) if a == selected else 0.0) for a in self.env.agents}
        self._cumulative_rewards = dict(self.rewards)


def check_reward_timing(reward_timing: Any) -> str:
    return check_choice("reward_timing", reward_timing, REWARD_TIMINGS)


def raw_aec_env(reward_timing: str = "round", **kwargs: Any) -> AECEnv:
    """The parallel env converted with ``parallel_to_aec`` (no extra checks); ``reward_timing``: see module doc."""
    env = parallel_to_aec(MatrixGameEnv(**kwargs))
    return OwnTurnRewardWrapper(env) if check_reward_timing(reward_timing) == "own_turn" else env


def aec_env(reward_timing: str = "round", **kwargs: Any) -> AECEnv:
    """AEC env with PettingZoo's usual safety wrappers (order enforcing); ``reward_timing``: see module doc."""
    return wrappers.OrderEnforcingWrapper(raw_aec_env(reward_timing, **kwargs))
