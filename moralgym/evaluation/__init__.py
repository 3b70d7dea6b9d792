"""Evaluate any agent the paper's way (docs/reproduction.md): tidy per-decision tables, summary metrics with 95% CIs,
round-robin tournaments, figures and reports.

>>> from moralgym.evaluation import evaluate
>>> result = evaluate("tit_for_tat", games=("ipd",), num_episodes=2, num_rounds=2)
>>> sorted(result.summary[0])[:3]
['agent', 'cooperation_rate', 'cooperation_rate_ci95']

Imports numpy only; matplotlib (reports), SB3 and torch (LLM agents) load when used.
"""

from moralgym.agents.seats import NPlayerStrategySeat, Seat, SeatStep, StrategySeat
from moralgym.evaluation.agents import as_agent, make_agent
from moralgym.evaluation.harness import (
    EVALUATION_SEED,
    EvaluationConfig,
    EvaluationResult,
    TournamentResult,
    evaluate,
    play_match,
    resolve_game,
    summarise,
    tournament,
)
from moralgym.evaluation.metrics import ACTION_TYPES, OUTCOMES, mean_ci

__all__ = [
    "ACTION_TYPES",
    "EVALUATION_SEED",
    "OUTCOMES",
    "EvaluationConfig",
    "EvaluationResult",
    "NPlayerStrategySeat",
    "Seat",
    "SeatStep",
    "StrategySeat",
    "TournamentResult",
    "as_agent",
    "evaluate",
    "make_agent",
    "mean_ci",
    "play_match",
    "resolve_game",
    "summarise",
    "tournament",
]


def main_evaluate(argv=None):
    """``moralgym evaluate``; see :mod:`moralgym.evaluation.cli`."""
    from moralgym.evaluation.cli import main_evaluate as run

    return run(argv)


def main_compare(argv=None):
    """``moralgym compare``; see :mod:`moralgym.evaluation.cli`."""
    from moralgym.evaluation.cli import main_compare as run

    return run(argv)
