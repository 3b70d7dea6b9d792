"""What the evaluation harness needs from an agent, and adapters that give any moralgym player that shape.

An :class:`EvalAgent` plays one seat of ``n`` games at once:

* ``reset(n, seed)`` starts ``n`` new games; ``seed`` feeds whatever randomness the agent owns (a stochastic
  strategy's coin, an LLM's sampling and prompt-order shuffles), so a fixed evaluation seed replays it exactly;
* ``act(games, observations)`` gets the ``n`` :class:`~moralgym.envs.games.MatrixGame` being played and the
  ``(n, 2)`` observations ``[own_previous, opponent_previous]`` and returns an :class:`AgentStep` (``actions`` in
  {0, 1, ILLEGAL}, plus the raw ``texts`` for text agents) or just the actions array.

Optional: ``variants()`` (names of the input variants the agent can be evaluated under, e.g. prompt variants) and
``set_variant(name)``. Adapters:

=====================  ==========================================================  ==============================
agent                  adapter                                                     where
=====================  ==========================================================  ==============================
fixed strategy         :class:`StrategyAgent` (its vectorised ``act_batch``)       here
tabular Q-learner      :class:`~moralgym.agents.baselines.QLearningAgent`          ``moralgym.agents.baselines``
Stable-Baselines3      :class:`~moralgym.agents.baselines.SB3Agent`                ``moralgym.agents.baselines``
LLM policy             :class:`~moralgym.evaluation.llm_agent.LLMAgent`            imports torch lazily
=====================  ==========================================================  ==============================

:func:`make_agent` builds any of them from the strings the ``moralgym evaluate`` command accepts.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from moralgym.envs.games import MatrixGame
from moralgym.envs.opponents import OpponentStrategy, make_opponent


@dataclass
class AgentStep:
    """One batched decision: ``actions`` ``(n,)`` int64 in {0, 1, ILLEGAL}; ``texts`` the raw answers, if any."""

    actions: np.ndarray
    texts: list[str] | None = None


@runtime_checkable
class EvalAgent(Protocol):
    name: str

    def reset(self, n: int, seed: int) -> None: ...

    def act(self, games: Sequence[MatrixGame], observations: np.ndarray) -> AgentStep | np.ndarray: ...


def as_step(result: AgentStep | np.ndarray, n: int, agent_name: str) -> AgentStep:
    """Normalise what ``act`` returned and check its shape."""
    step = result if isinstance(result, AgentStep) else AgentStep(np.asarray(result))
    actions = np.asarray(step.actions).astype(np.int64).reshape(-1)
    if actions.shape != (n,):
        raise ValueError(f"agent {agent_name!r} returned {actions.shape[0]} actions for {n} games")
    if step.texts is not None and len(step.texts) != n:
        raise ValueError(f"agent {agent_name!r} returned {len(step.texts)} texts for {n} games")
    return AgentStep(actions, None if step.texts is None else list(step.texts))


def agent_variants(agent: Any) -> list[str]:
    """The input variants an agent can be evaluated under (``["default"]`` for agents without variants)."""
    variants = getattr(agent, "variants", None)
    return list(variants()) if callable(variants) else ["default"]


def spawn(agent: Any) -> Any:
    """An independent copy of ``agent`` for the other seat (self-play): ``agent.spawn()`` if defined, else a
    shallow copy (every adapter here re-creates its per-game state in ``reset``)."""
    method = getattr(agent, "spawn", None)
    return method() if callable(method) else copy.copy(agent)


class StrategyAgent:
    """A fixed strategy (anything with ``initial_memory``/``act_batch``) as an evaluation agent.

    The uniforms a stochastic strategy consumes come from a generator seeded in :meth:`reset`, one per game per
    round, so a Random opponent makes the same moves for every evaluated agent under the same seed.
    """

    def __init__(self, strategy: str | OpponentStrategy, name: str | None = None, **kwargs: Any) -> None:
        self.strategy = make_opponent(strategy, **kwargs)
        self.name = name or getattr(self.strategy, "name", type(self.strategy).__name__)
        self.reset(0, 0)

    def reset(self, n: int, seed: int) -> None:
        self._memory = self.strategy.initial_memory(n)
        self._rng = np.random.default_rng(seed)

    def act(self, games: Sequence[MatrixGame], observations: np.ndarray) -> AgentStep:
        uniforms = self._rng.random(len(observations))
        actions, self._memory = self.strategy.act_batch(
            np.asarray(observations, dtype=np.int64), self._memory, uniforms
        )
        return AgentStep(np.asarray(actions, dtype=np.int64))

    def __repr__(self) -> str:
        return f"StrategyAgent({self.strategy!r})"


def as_agent(agent: Any) -> Any:
    """Pass an evaluation agent through, wrap a strategy object, or build one from a spec string (:func:`make_agent`)."""
    if isinstance(agent, str):
        return make_agent(agent)
    if isinstance(agent, EvalAgent):
        return agent
    if isinstance(agent, OpponentStrategy):
        return StrategyAgent(agent)
    raise TypeError(
        f"expected an evaluation agent (reset/act), a strategy or a spec string, got {type(agent).__name__}: {agent!r}"
    )


def make_agent(spec: str, *, seed: int = 0, **llm_kwargs: Any) -> Any:
    """Build an agent from the string ``moralgym evaluate`` accepts.

    * a strategy name or alias (``tit_for_tat``, ``random``, ``allc``) -> :class:`StrategyAgent`;
    * ``q_learning:<reward>[:<opponent>[:<game>]]`` (``q_learning:deontological``) -> a tabular Q-learner trained now
      (seeded with ``seed``) against ``opponent`` (default ``tit_for_tat``) on ``game`` (default ``ipd``);
    * ``sb3:<algo>:<path.zip>`` or a ``.zip`` file (PPO) -> :class:`~moralgym.agents.baselines.SB3Agent`;
    * ``default``, a Hugging Face model id or a local model / LoRA adapter directory ->
      :class:`~moralgym.evaluation.llm_agent.LLMAgent` (loads torch).
    """
    from moralgym.agents.strategies import list_strategies
    from moralgym.envs.opponents import is_opponent_name

    text = spec.strip()
    if is_opponent_name(text):
        return StrategyAgent(text)
    head, _, rest = text.partition(":")
    if head in ("q_learning", "qlearning", "q"):
        from moralgym.agents.baselines.q_learning import QLearningConfig, train_q_learning

        parts = [p for p in rest.split(":") if p] if rest else []
        config = QLearningConfig(
            reward=parts[0] if parts else "game",
            opponent=parts[1] if len(parts) > 1 else "tit_for_tat",
            game=parts[2] if len(parts) > 2 else "ipd",
            seed=seed,
        )
        return train_q_learning(config).agent(name=text)
    if head == "sb3" or text.endswith(".zip"):
        from moralgym.agents.baselines.sb3 import SB3Agent

        algo, _, path = rest.partition(":") if head == "sb3" else ("ppo", "", text)
        return SB3Agent.load(path, algo=algo or "ppo")
    if text == "default" or "/" in text or Path(text).exists():
        from moralgym.evaluation.llm_agent import LLMAgent

        return LLMAgent.from_pretrained(text, **llm_kwargs)
    raise ValueError(
        f"cannot make an agent from {spec!r}: use a strategy name ({', '.join(list_strategies())}), "
        "'q_learning:<reward>[:<opponent>]', 'sb3:<algo>:<path.zip>', 'default', a model id or an adapter directory"
    )
