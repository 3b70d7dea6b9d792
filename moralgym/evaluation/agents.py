"""Players for the evaluation: every moralgym player as a :class:`~moralgym.agents.seats.Seat`, built from a string.

The harness plays seats (``reset(n, seed)``, ``act(games, observations, seat)``; see :mod:`moralgym.agents.seats`).
Optional for evaluation: ``variants()`` (names of the input variants the player can be evaluated under, e.g.
prompt variants) and ``set_variant(name)``. The seats:

=====================  ==========================================================  ==============================
player                 seat                                                        where
=====================  ==========================================================  ==============================
fixed strategy         :class:`~moralgym.agents.seats.StrategySeat`                ``moralgym.agents.seats``
tabular Q-learner      :class:`~moralgym.agents.baselines.QLearningAgent`          ``moralgym.agents.baselines``
Stable-Baselines3      :class:`~moralgym.agents.baselines.SB3Agent`                ``moralgym.agents.baselines``
LLM policy             :class:`~moralgym.evaluation.llm_agent.LLMAgent`            imports torch lazily
=====================  ==========================================================  ==============================

:func:`make_agent` builds any of them from the strings the ``moralgym evaluate`` command accepts.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from moralgym.agents.seats import Seat, StrategySeat
from moralgym.envs.opponents import OpponentStrategy


def agent_variants(agent: Any) -> list[str]:
    """The input variants an agent can be evaluated under (``["default"]`` for agents without variants)."""
    variants = getattr(agent, "variants", None)
    return list(variants()) if callable(variants) else ["default"]


def spawn(agent: Any) -> Any:
    """An independent copy of ``agent`` for the other seat (self-play): ``agent.spawn()`` if defined, else a
    shallow copy (every adapter here re-creates its per-game state in ``reset``)."""
    method = getattr(agent, "spawn", None)
    return method() if callable(method) else copy.copy(agent)


def as_agent(agent: Any) -> Any:
    """Pass a seat through, wrap a strategy object, or build a seat from a spec string (:func:`make_agent`)."""
    if isinstance(agent, str):
        return make_agent(agent)
    if isinstance(agent, Seat):
        return agent
    if isinstance(agent, OpponentStrategy):
        return StrategySeat(agent)
    raise TypeError(f"expected a seat (reset/act), a strategy or a spec string, got {type(agent).__name__}: {agent!r}")


def make_agent(spec: str, *, seed: int = 0, **llm_kwargs: Any) -> Any:
    """Build an agent from the string ``moralgym evaluate`` accepts.

    * a strategy name or alias (``tit_for_tat``, ``random``, ``allc``) -> :class:`~moralgym.agents.seats.StrategySeat`;
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
        return StrategySeat(text)
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
