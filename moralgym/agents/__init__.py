"""Players of moralgym's games and the one loop that plays them.

:mod:`moralgym.agents.seats` (what a player must offer, and the seat for fixed strategies),
:mod:`moralgym.agents.runner` (the episode loop every caller uses), :mod:`moralgym.agents.records` (one record per
decision, and the behaviour metrics read from records), the classic fixed strategies
(:mod:`moralgym.agents.strategies`), classical baselines (:mod:`moralgym.agents.baselines`) and, in
:mod:`moralgym.agents.llm`, LLM policies. Importing this package loads no deep-learning library.
"""

from moralgym.agents import strategies
from moralgym.agents.records import StepRecord, behaviour_metrics
from moralgym.agents.runner import play_round, run_episodes
from moralgym.agents.seats import NPlayerStrategySeat, Seat, SeatStep, StrategySeat

__all__ = [
    "NPlayerStrategySeat",
    "Seat",
    "SeatStep",
    "StepRecord",
    "StrategySeat",
    "behaviour_metrics",
    "play_round",
    "run_episodes",
    "strategies",
]
