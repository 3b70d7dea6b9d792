"""Players for the evaluation: every moralgym player as a :class:`~moralgym.agents.seats.Seat`, built from a string.

The harness plays seats (``reset(n, seed)``, ``act(games, observations, seat)``; see :mod:`moralgym.agents.seats`).
Optional for evaluation: ``variants()`` (names of the input variants the player can be evaluated under, e.g.
prompt variants) and ``set_variant(name)``. The seats:

=====================  ==========================================================  ==============================
player                 seat                                                        where
=====================  ==========================================================  ==============================
fixed strategy         :class:`~moralgym.agents.seats.StrategySeat`                ``moralgym.agents.seats``
N-player strategy      :class:`~moralgym.agents.seats.NPlayerStrategySeat`         ``moralgym.agents.seats``
tabular Q-learner      :class:`~moralgym.agents.baselines.QLearningAgent`          ``moralgym.agents.baselines``
Stable-Baselines3      :class:`~moralgym.agents.baselines.SB3Agent`                ``moralgym.agents.baselines``
LLM policy             :class:`~moralgym.evaluation.llm_agent.LLMAgent`            imports torch lazily
=====================  ==========================================================  ==============================

:func:`make_agent` builds any of them from the strings the ``moralgym evaluate`` command accepts, and
:func:`seat_for_game` lets a fixed strategy named for two players play an N-player game.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from moralgym.agents.seats import NPlayerStrategySeat, Seat, StrategySeat
from moralgym.agents.strategies.n_player import NPlayerStrategyBase
from moralgym.envs.games import MatrixGame
from moralgym.envs.n_player.games import SchellingGame
from moralgym.envs.n_player.opponents import N_PLAYER_OPPONENTS, list_n_player_opponents, make_n_player_opponent
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
    if isinstance(agent, NPlayerStrategyBase):  # before OpponentStrategy: the two protocols have the same methods
        return NPlayerStrategySeat(agent)
    if isinstance(agent, OpponentStrategy):
        return StrategySeat(agent)
    raise TypeError(f"expected a seat (reset/act), a strategy or a spec string, got {type(agent).__name__}: {agent!r}")


def seat_for_game(agent: Any, game: MatrixGame | SchellingGame) -> Any:
    """The seat that plays ``agent`` in ``game``: the agent itself, except that a fixed two-player strategy
    (:class:`~moralgym.agents.seats.StrategySeat`) in an N-player game plays as the N-player strategy of the same
    name and parameters, under its own name and stream: Tit-for-Tat as the conditional cooperator, Random with its
    ``p``, Grim Trigger, Win-Stay-Lose-Shift, Always C / D (:mod:`moralgym.agents.strategies.n_player` keeps the
    names for that reason). So ``evaluate("tit_for_tat", games=("ipd", "public_goods"))`` evaluates one idea in both.

    Raises:
        ValueError: a two-player strategy with no N-player namesake (Generous Tit-for-Tat, Alternator, ...), or an
            N-player strategy in a two-player game.
    """
    if isinstance(agent, NPlayerStrategySeat) and not isinstance(game, SchellingGame):
        raise ValueError(
            f"{agent.name!r} is an N-player strategy and cannot play the two-player game {game.name!r}; evaluate it on "
            "an N-player game, or evaluate a two-player strategy"
        )
    if not isinstance(game, SchellingGame) or type(agent) is not StrategySeat:
        return agent
    strategy = agent.strategy
    name = getattr(strategy, "name", type(strategy).__name__)
    parameters = strategy.params() if callable(getattr(strategy, "params", None)) else {}
    if name not in N_PLAYER_OPPONENTS:
        raise ValueError(
            f"{agent.name!r} is a two-player strategy with no N-player namesake, so it cannot play {game.name!r}; "
            f"evaluate one of the N-player strategies: {', '.join(list_n_player_opponents())}"
        )
    try:
        counterpart = make_n_player_opponent(name, **parameters)
    except TypeError as error:
        raise ValueError(
            f"{agent.name!r} has parameters {parameters} that its N-player namesake does not take ({error}); pass an "
            "N-player strategy object instead"
        ) from None
    return NPlayerStrategySeat(counterpart, name=agent.name, rng=agent.rng)


def make_agent(spec: str, *, seed: int = 0, num_players: int | None = None, **llm_kwargs: Any) -> Any:
    """Build an agent from the string ``moralgym evaluate`` accepts.

    * a strategy name or alias (``tit_for_tat``, ``random``, ``allc``) -> :class:`~moralgym.agents.seats.StrategySeat`;
      a name only the N-player strategies have (``conditional_cooperator``) ->
      :class:`~moralgym.agents.seats.NPlayerStrategySeat`;
    * ``q_learning:<reward>[:<opponent>[:<game>]]`` (``q_learning:deontological``) -> a tabular Q-learner trained now
      (seeded with ``seed``) against ``opponent`` (default ``tit_for_tat``) on ``game`` (default ``ipd``; an N-player
      game is built for ``num_players``, default 4, with every co-player playing ``opponent``);
    * ``sb3:<algo>:<path.zip>`` or a ``.zip`` file (PPO) -> :class:`~moralgym.agents.baselines.SB3Agent`;
    * ``default``, a Hugging Face model id or a local model / LoRA adapter directory ->
      :class:`~moralgym.evaluation.llm_agent.LLMAgent` (loads torch).
    """
    from moralgym.agents.strategies import list_strategies
    from moralgym.envs.n_player.games import N_PLAYER_GAMES
    from moralgym.envs.opponents import is_opponent_name

    text = spec.strip()
    if is_opponent_name(text):
        return StrategySeat(text)
    if text in N_PLAYER_OPPONENTS:
        return NPlayerStrategySeat(text)
    head, _, rest = text.partition(":")
    if head in ("q_learning", "qlearning", "q"):
        from moralgym.agents.baselines.q_learning import QLearningConfig, train_q_learning

        parts = [p for p in rest.split(":") if p] if rest else []
        config = QLearningConfig(
            reward=parts[0] if parts else "game",
            opponent=parts[1] if len(parts) > 1 else "tit_for_tat",
            game=parts[2] if len(parts) > 2 else "ipd",
            num_players=num_players if len(parts) > 2 and parts[2] in N_PLAYER_GAMES else None,
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
