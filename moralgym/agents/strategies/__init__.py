"""Classic fixed strategies for repeated 2x2 games (Axelrod style), vectorised over many games.

Each strategy is one small class (see :class:`~moralgym.agents.strategies.base.Strategy`) whose metadata are class
attributes: ``name``, ``aliases``, ``memory_depth``, ``stochastic``. Importing this package registers every strategy
with :func:`moralgym.envs.opponents.register_opponent`, so environments accept them by name
(``opponent="tit_for_tat"``).

>>> from moralgym.agents.strategies import get_strategy, list_strategies
>>> get_strategy("Pavlov")
WinStayLoseShift()
>>> get_strategy("random", p=0.3)
Random(p=0.3)
>>> list_strategies(stochastic=True)
['generous_tit_for_tat', 'memory_one', 'random']

Where the strategies live: ``simple`` (always cooperate/defect, random, alternator), ``titfortat`` (TFT, suspicious
TFT, generous TFT, TF2T), ``grudger`` (grim trigger), ``memoryone`` (the generic memory-one family and
win-stay-lose-shift). Each module's docstring says where moralgym differs from Axelrod's conventions; the main
difference is that round one may start from the paper's random fake history, which strategies treat as real.

Strategies for the N-player games (public goods, volunteering, thresholds) live in ``n_player``, with their own
registry (:data:`N_PLAYER_STRATEGIES`, :func:`get_n_player_strategy`, :func:`list_n_player_strategies`); importing
this package registers them with :func:`moralgym.envs.n_player.opponents.register_n_player_opponent`.

>>> from moralgym.agents.strategies import get_n_player_strategy
>>> get_n_player_strategy("conditional_cooperator", threshold=2)
ConditionalCooperator(threshold=2)
"""

from __future__ import annotations

from typing import Any

from moralgym.agents.strategies.base import Strategy, check_probability
from moralgym.agents.strategies.grudger import GrimTrigger
from moralgym.agents.strategies.memoryone import MemoryOne, WinStayLoseShift
from moralgym.agents.strategies.n_player import (
    N_PLAYER_STRATEGIES,
    ConditionalCooperator,
    NPlayerAlwaysCooperate,
    NPlayerAlwaysDefect,
    NPlayerGrimTrigger,
    NPlayerRandom,
    NPlayerStrategyBase,
    NPlayerWinStayLoseShift,
    get_n_player_strategy,
    list_n_player_strategies,
)
from moralgym.agents.strategies.simple import Alternator, AlwaysCooperate, AlwaysDefect, Random
from moralgym.agents.strategies.titfortat import (
    DEFAULT_GENEROSITY,
    GenerousTitForTat,
    SuspiciousTitForTat,
    TitForTat,
    TitForTwoTats,
    nowak_sigmund_generosity,
)
from moralgym.envs.n_player.opponents import register_n_player_opponent
from moralgym.envs.opponents import OpponentStrategy, make_opponent, register_opponent
from moralgym.registry import Registry

__all__ = [
    "DEFAULT_GENEROSITY",
    "N_PLAYER_STRATEGIES",
    "STRATEGIES",
    "Alternator",
    "AlwaysCooperate",
    "AlwaysDefect",
    "ConditionalCooperator",
    "GenerousTitForTat",
    "GrimTrigger",
    "MemoryOne",
    "NPlayerAlwaysCooperate",
    "NPlayerAlwaysDefect",
    "NPlayerGrimTrigger",
    "NPlayerRandom",
    "NPlayerStrategyBase",
    "NPlayerWinStayLoseShift",
    "Random",
    "Strategy",
    "SuspiciousTitForTat",
    "TitForTat",
    "TitForTwoTats",
    "WinStayLoseShift",
    "check_probability",
    "get_n_player_strategy",
    "get_strategy",
    "list_n_player_strategies",
    "list_strategies",
    "nowak_sigmund_generosity",
]

#: Every built-in strategy class by registry name, with the class's ``aliases`` (a
#: :class:`~moralgym.registry.Registry`, so ``STRATEGIES["pavlov"]`` is :class:`WinStayLoseShift`). User strategies
#: registered with :func:`~moralgym.envs.opponents.register_opponent` are opponents but not listed here.
STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "strategies", builder="get_strategy")

for _cls in (
    AlwaysCooperate,
    AlwaysDefect,
    Random,
    TitForTat,
    SuspiciousTitForTat,
    TitForTwoTats,
    GenerousTitForTat,
    GrimTrigger,
    WinStayLoseShift,
    Alternator,
    MemoryOne,
):
    STRATEGIES.register(_cls.name, _cls, _cls.aliases)
    register_opponent(_cls.name, _cls, _cls.aliases)

# The N-player envs resolve co-player names through their own registry (moralgym.envs.n_player.opponents).
for _name, _n_player_cls in N_PLAYER_STRATEGIES.items():
    register_n_player_opponent(_name, _n_player_cls, _n_player_cls.aliases)


def get_strategy(strategy: str | OpponentStrategy, **kwargs: Any) -> OpponentStrategy:
    """Build a strategy from its name or alias (case, spaces and dashes do not matter) and keyword arguments, or
    pass a strategy object through. Same as :func:`moralgym.envs.opponents.make_opponent`.

    Raises:
        KeyError: unknown name; the message lists the known ones.
        ValueError: a parameter out of range (the message names it and the accepted range).
    """
    return make_opponent(strategy, **kwargs)


def list_strategies(*, stochastic: bool | None = None, memory_depth: int | float | None = None) -> list[str]:
    """Names of the built-in strategies, sorted, optionally only those with the given metadata.

    Args:
        stochastic: keep only stochastic (True) or only deterministic (False) strategy classes.
        memory_depth: keep only strategies with this memory depth (``float("inf")`` for unbounded memory).
    """
    return sorted(
        name
        for name, cls in STRATEGIES.items()
        if (stochastic is None or cls.stochastic == stochastic)
        and (memory_depth is None or cls.memory_depth == memory_depth)
    )
