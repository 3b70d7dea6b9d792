"""One record per decision, and the behaviour metrics every caller reads from records.

The episode runner (:mod:`moralgym.agents.runner`) writes a :class:`StepRecord` for each decision of each
recorded seat: the state it saw, what it did, what the other player did, and the env's payoffs, reward and moral
reward components. ``moralgym play``, the evaluation harness and the PPO/GRPO trainers all summarise the same
records with the functions below, so "cooperation rate" or "action type" means one thing everywhere:

* **action type** ``"<own action>|<opponent's previous move>"``: one of :data:`ACTION_TYPES`
  (``C|C, C|D, D|C, D|D, illegal|C, illegal|D``; a missing previous move is written ``-``), the state the player saw
  and what it did about it;
* **outcome** of the round from the player's seat: ``mutual_cooperation`` (C,C), ``exploited`` (C,D),
  ``exploiting`` (D,C), ``mutual_defection`` (D,D), or ``illegal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL, NO_MOVE

__all__ = [
    "ACTION_TYPES",
    "OUTCOMES",
    "StepRecord",
    "action_types",
    "behaviour_metrics",
    "outcomes",
]

#: Action types in the order the paper's figures stack them.
ACTION_TYPES: tuple[str, ...] = ("C|C", "C|D", "D|C", "D|D", "illegal|C", "illegal|D")
#: Joint outcomes of one round from the player's seat.
OUTCOMES: tuple[str, ...] = ("mutual_cooperation", "exploited", "exploiting", "mutual_defection", "illegal")

_MOVE = {COOPERATE: "C", DEFECT: "D", ILLEGAL: "illegal", NO_MOVE: "-"}


@dataclass
class StepRecord:
    """One decision of one seat in one round of one game, as the env scored it.

    ``round`` counts from 1; ``episode`` is the caller's label of the game (e.g. the evaluation episode);
    ``reward`` is the env's reward for this seat (its moral reward under :class:`~moralgym.envs.MoralRewardWrapper`,
    else the Game reward) and ``reward_name`` the wrapper's reward name (``None`` unwrapped). ``counterfactual``:
    the answer was scored on a copy of the env and did not move the game (a reference model's answer to the same
    prompt, the other answers of a GRPO group). ``decision`` is what the seat returned for training (an LLM's
    token ids and log-probs); it is left out of :meth:`to_dict`.
    """

    game: str
    env_index: int
    episode: int
    round: int
    seat: int
    player: str
    own_previous: int
    opponent_previous: int
    action: int
    opponent_action: int
    illegal: bool
    game_payoff: float
    opponent_payoff: float
    moral_rewards: dict[str, float]
    reward: float
    reward_name: str | None = None
    text: str | None = None
    counterfactual: bool = False
    decision: Any = field(default=None, repr=False)

    @property
    def cooperated(self) -> bool:
        return self.action == COOPERATE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field but ``decision``."""
        row = asdict(self)
        row.pop("decision")
        return row


def action_types(actions: np.ndarray, opponent_previous: np.ndarray) -> np.ndarray:
    """Label each decision ``"<action>|<opponent's previous move>"``; a ``NO_MOVE`` previous move is written ``-``.

    >>> action_types(np.array([0, 1, -1]), np.array([1, 0, 0])).tolist()
    ['C|D', 'D|C', 'illegal|C']
    """
    actions = np.asarray(actions)
    opponent_previous = np.asarray(opponent_previous)
    own = np.array([_MOVE[int(a)] for a in actions.ravel()], dtype=object)
    seen = np.array([_MOVE[int(p)] for p in opponent_previous.ravel()], dtype=object)
    return (own + "|" + seen).astype(str).reshape(actions.shape)


def outcomes(actions: np.ndarray, opponent_actions: np.ndarray) -> np.ndarray:
    """Joint outcome of each round from the player's seat (see :data:`OUTCOMES`).

    An illegal answer by either player labels the round ``"illegal"``.
    """
    actions = np.asarray(actions)
    opponent_actions = np.asarray(opponent_actions)
    table = np.array([["mutual_cooperation", "exploited"], ["exploiting", "mutual_defection"]], dtype=object)
    legal = (actions != ILLEGAL) & (opponent_actions != ILLEGAL)
    result = np.full(actions.shape, "illegal", dtype=object)
    result[legal] = table[actions[legal], opponent_actions[legal]]
    return result.astype(str)


def behaviour_metrics(records: Sequence[StepRecord]) -> dict[str, float]:
    """Rates and means over ``records``: decisions, cooperation/defection/illegal rates, the opponent's cooperation
    rate, the mean reward, Game payoff and each moral reward component, and the count of each action type."""
    n = len(records)
    if n == 0:
        return {"decisions": 0}
    actions = np.array([r.action for r in records])
    metrics: dict[str, float] = {
        "decisions": n,
        "cooperation_rate": float(np.mean(actions == COOPERATE)),
        "defection_rate": float(np.mean(actions == DEFECT)),
        "illegal_rate": float(np.mean(actions == ILLEGAL)),
        "opponent_cooperation_rate": float(np.mean(np.array([r.opponent_action for r in records]) == COOPERATE)),
        "reward": float(np.mean([r.reward for r in records])),
        "mean_game_payoff": float(np.mean([r.game_payoff for r in records])),
    }
    for name in records[0].moral_rewards:
        metrics[f"reward_{name}"] = float(np.mean([r.moral_rewards[name] for r in records]))
    types = action_types(actions, np.array([r.opponent_previous for r in records]))
    for label in ACTION_TYPES:
        metrics[f"count_{label}"] = int(np.sum(types == label))
    return metrics
