"""Agents that play moralgym's games: the classic fixed strategies (:mod:`moralgym.agents.strategies`) and, in
:mod:`moralgym.agents.llm`, LLM policies. Importing this package loads no deep-learning library."""

from moralgym.agents import strategies

__all__ = ["strategies"]
