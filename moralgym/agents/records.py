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

In an N-player game (:mod:`moralgym.envs.n_player`) there is no single opponent, so a record counts the others
instead (``others_previous_cooperated``, ``others_cooperated``, every seat's ``payoffs`` and their sum
``total_payoff``) and leaves the ``opponent_*`` fields ``None``; the labels count them too:

* **N-player action type** ``"<own action>|<k>"``, ``k`` the others who cooperated last round as the player saw
  them (``-`` when none of them had moved yet): :func:`n_player_action_type_labels` lists them, ``C|N-1`` first;
* **N-player outcome** ``"cooperators_<m>"``, ``m`` the players (itself included) who cooperated this round, the
  number the games' theory is stated in (Nash equilibria, social optima), or ``illegal``.

At ``N = 2`` these are the two-player labels renamed: ``C|1`` is ``C|C``, ``cooperators_1`` is ``exploited`` or
``exploiting`` (the action says which).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL, NO_MOVE

__all__ = [
    "ACTION_TYPES",
    "N_PLAYER_FIELDS",
    "OUTCOMES",
    "StepRecord",
    "action_types",
    "behaviour_metrics",
    "n_player_action_type_labels",
    "n_player_action_types",
    "n_player_outcome_labels",
    "n_player_outcomes",
    "outcomes",
]

#: Action types in the order the paper's figures stack them.
ACTION_TYPES: tuple[str, ...] = ("C|C", "C|D", "D|C", "D|D", "illegal|C", "illegal|D")
#: Joint outcomes of one round from the player's seat.
OUTCOMES: tuple[str, ...] = ("mutual_cooperation", "exploited", "exploiting", "mutual_defection", "illegal")

_MOVE = {COOPERATE: "C", DEFECT: "D", ILLEGAL: "illegal", NO_MOVE: "-"}
#: The fields only a record of an N-player game fills (``None`` in a two-player record, and left out of its
#: :meth:`StepRecord.to_dict`, so two-player rows are what they were before N-player games existed).
N_PLAYER_FIELDS: tuple[str, ...] = (
    "num_players",
    "others_previous_cooperated",
    "others_cooperated",
    "payoffs",
    "total_payoff",
)


@dataclass
class StepRecord:
    """One decision of one seat in one round of one game, as the env scored it.

    ``round`` counts from 1; ``episode`` is the caller's label of the game (e.g. the evaluation episode);
    ``reward`` is the env's reward for this seat (its moral reward under :class:`~moralgym.envs.MoralRewardWrapper`,
    else the Game reward) and ``reward_name`` the wrapper's reward name (``None`` unwrapped). ``counterfactual``:
    the answer was scored on a copy of the env and did not move the game (a reference model's answer to the same
    prompt, the other answers of a GRPO group). ``decision`` is what the seat returned for training (an LLM's
    token ids and log-probs); it is left out of :meth:`to_dict`.

    A record of an N-player game has ``opponent_previous``, ``opponent_action`` and ``opponent_payoff`` ``None``
    and fills :data:`N_PLAYER_FIELDS`: ``num_players``; ``others_previous_cooperated``, how many of the others
    cooperated last round as this seat saw it (its observation: ``0 .. N - 1``, or ``N`` when none of them had
    moved yet, where the env's info counts 0); ``others_cooperated``, how many of them cooperate this round;
    ``payoffs``, every seat's game payoff this round in seat order; ``total_payoff``, their sum (the collective
    payoff).
    """

    game: str
    env_index: int
    episode: int
    round: int
    seat: int
    player: str
    own_previous: int
    opponent_previous: int | None
    action: int
    opponent_action: int | None
    illegal: bool
    game_payoff: float
    opponent_payoff: float | None
    moral_rewards: dict[str, float]
    reward: float
    reward_name: str | None = None
    text: str | None = None
    counterfactual: bool = False
    decision: Any = field(default=None, repr=False)
    num_players: int | None = None
    others_previous_cooperated: int | None = None
    others_cooperated: int | None = None
    payoffs: tuple[float, ...] | None = None
    total_payoff: float | None = None

    @property
    def cooperated(self) -> bool:
        return self.action == COOPERATE

    @property
    def n_player(self) -> bool:
        """Whether the record is of an N-player game (:data:`N_PLAYER_FIELDS` filled)."""
        return self.num_players is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field but ``decision`` (and, for a two-player record, the N-player fields)."""
        row = asdict(self)
        row.pop("decision")
        if self.num_players is None:
            for name in N_PLAYER_FIELDS:
                del row[name]
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


def n_player_action_type_labels(num_players: int) -> tuple[str, ...]:
    """The N-player action types ``"<own action>|<k>"`` for ``k = N - 1 .. 0`` others cooperating last round: all
    ``C``, then ``D``, then ``illegal``, each from the most cooperative context down, so that at ``N = 2`` they
    line up with :data:`ACTION_TYPES` (``C|1, C|0, D|1, D|0, ...`` = ``C|C, C|D, D|C, D|D, ...``).

    >>> n_player_action_type_labels(3)[:3]
    ('C|2', 'C|1', 'C|0')
    """
    counts = range(int(num_players) - 1, -1, -1)
    return tuple(f"{move}|{k}" for move in ("C", "D", "illegal") for k in counts)


def n_player_action_types(actions: np.ndarray, others_previous: np.ndarray, num_players: int) -> np.ndarray:
    """Label each decision ``"<action>|<k>"``, ``k`` the others who cooperated last round as the player saw them;
    ``others_previous == num_players`` (the observations' "none of them has moved yet") is written ``-``.

    >>> n_player_action_types(np.array([0, 1, -1]), np.array([2, 0, 3]), 3).tolist()
    ['C|2', 'D|0', 'illegal|-']
    """
    actions = np.asarray(actions)
    others_previous = np.asarray(others_previous)
    own = np.array([_MOVE[int(a)] for a in actions.ravel()], dtype=object)
    seen = np.where(others_previous.ravel() == num_players, "-", others_previous.ravel().astype(str)).astype(object)
    return (own + "|" + seen).astype(str).reshape(actions.shape)


def n_player_outcome_labels(num_players: int) -> tuple[str, ...]:
    """The N-player outcomes: ``cooperators_<m>`` from ``m = N`` (everyone) down to 0, then ``illegal``."""
    return (*(f"cooperators_{m}" for m in range(int(num_players), -1, -1)), "illegal")


def n_player_outcomes(actions: np.ndarray, others_cooperated: np.ndarray) -> np.ndarray:
    """The outcome of each round from the player's seat: ``"cooperators_<m>"``, ``m`` the players who cooperated
    (the player, if it did, plus ``others_cooperated``), or ``"illegal"`` for the player's illegal answer.

    >>> n_player_outcomes(np.array([0, 1, -1]), np.array([2, 2, 0])).tolist()
    ['cooperators_3', 'cooperators_2', 'illegal']
    """
    actions = np.asarray(actions)
    total = np.asarray(others_cooperated) + (actions == COOPERATE)
    labels = np.char.add("cooperators_", total.astype(str)).astype(object)
    return np.where(actions == ILLEGAL, "illegal", labels).astype(str)


def behaviour_metrics(records: Sequence[StepRecord]) -> dict[str, float]:
    """Rates and means over ``records``: decisions, cooperation/defection/illegal rates, the opponent's cooperation
    rate, the mean reward, Game payoff and each moral reward component, and the count of each action type.

    For N-player records (:attr:`StepRecord.n_player`) the opponent's rate is ``others_cooperation_rate`` (the share
    of the others who cooperate, over every decision), ``mean_total_payoff`` (the collective payoff) is added, and
    the counts are of the N-player action types (:func:`n_player_action_type_labels`) of the largest ``N`` present.
    Records of two-player and N-player games are not mixed: summarise each kind on its own.
    """
    n = len(records)
    if n == 0:
        return {"decisions": 0}
    kinds = {r.n_player for r in records}
    if len(kinds) > 1:
        raise ValueError(
            "behaviour_metrics got records of two-player and N-player games together; pass each kind alone"
        )
    if records[0].n_player:
        return _n_player_behaviour_metrics(records)
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


def _n_player_behaviour_metrics(records: Sequence[StepRecord]) -> dict[str, float]:
    """:func:`behaviour_metrics` of N-player records."""
    actions = np.array([r.action for r in records])
    num_players = np.array([r.num_players for r in records])
    others_share = np.array([r.others_cooperated for r in records]) / (num_players - 1)
    metrics: dict[str, float] = {
        "decisions": len(records),
        "cooperation_rate": float(np.mean(actions == COOPERATE)),
        "defection_rate": float(np.mean(actions == DEFECT)),
        "illegal_rate": float(np.mean(actions == ILLEGAL)),
        "others_cooperation_rate": float(np.mean(others_share)),
        "reward": float(np.mean([r.reward for r in records])),
        "mean_game_payoff": float(np.mean([r.game_payoff for r in records])),
        "mean_total_payoff": float(np.mean([r.total_payoff for r in records])),
    }
    for name in records[0].moral_rewards:
        metrics[f"reward_{name}"] = float(np.mean([r.moral_rewards[name] for r in records]))
    seen = np.array([r.others_previous_cooperated for r in records])
    # Labels per record with its own N ("-" where nobody had moved), counted against the largest N's labels.
    types = np.concatenate(
        [
            n_player_action_types(actions[num_players == k], seen[num_players == k], int(k))
            for k in np.unique(num_players)
        ]
    )
    for label in n_player_action_type_labels(int(num_players.max())):
        metrics[f"count_{label}"] = int(np.sum(types == label))
    return metrics
