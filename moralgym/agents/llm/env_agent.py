"""``LLMEnvAgent``: an :class:`~moralgym.agents.llm.policy.LLMPolicy` behind the PettingZoo dict interface.

Not to be confused with :class:`moralgym.evaluation.llm_agent.LLMAgent`, the evaluation harness's agent (prompt
variants, loading from a checkpoint): this one only maps ``{agent: observation}`` to ``{agent: action}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from moralgym.agents.llm.policy import Decision, LLMPolicy
from moralgym.envs.games import MatrixGame, get_game

__all__ = ["LLMEnvAgent"]


class LLMEnvAgent:
    """Plays seats of a PettingZoo ``MatrixGameEnv`` with an :class:`LLMPolicy`: ``{agent: obs} -> {agent: action}``.

    Example::

        env = MatrixGameEnv("ipd", num_rounds=5)
        agent = LLMEnvAgent(policy, env.game, agents=["player_0"])
        observations, infos = env.reset(seed=0)
        while env.agents:
            actions = agent.act(observations) | {"player_1": 0}
            observations, rewards, terminations, truncations, infos = env.step(actions)
    """

    def __init__(
        self,
        policy: LLMPolicy,
        game: MatrixGame | str,
        agents: Sequence[str] = ("player_0", "player_1"),
        seats: Mapping[str, int] | None = None,
    ) -> None:
        self.policy = policy
        self.game = get_game(game)
        self.agents = list(agents)
        self.seats = dict(seats) if seats is not None else {f"player_{i}": i for i in range(2)}
        #: The :class:`Decision` behind each action of the last :meth:`act` call.
        self.last_decisions: dict[str, Decision] = {}

    def act(self, observations: Mapping[str, Any]) -> dict[str, int]:
        """Actions (0, 1 or ``ILLEGAL``) for the controlled agents present in ``observations``, in one batch."""
        agents = [a for a in self.agents if a in observations]
        if not agents:
            return {}
        decisions = self.policy.decide(
            [self.game] * len(agents),
            np.stack([np.asarray(observations[a]) for a in agents]),
            [self.seats.get(a, 0) for a in agents],
        )
        self.last_decisions = dict(zip(agents, decisions, strict=True))
        return {a: d.action for a, d in self.last_decisions.items()}
