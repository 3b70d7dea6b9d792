"""The rules of one round of an N-player game, on arrays: the single definition every N-player env uses.

A game's state is every seat's previous move (0 = C, 1 = D, 2 = no move yet). A round is resolved from the joint
actions (0, 1 or ``ILLEGAL``) and that state:

- a player that answers ``ILLEGAL`` is taken to repeat its last legal move: that is what the others' payoffs are
  computed with and what they see next round; its own payoff is 0;
- a legal player's payoff is the diagram's entry for its action and the number of *other* players whose (taken)
  move is C: ``cooperate_payoffs[k]`` or ``defect_payoffs[k]``;
- a round in which some illegal player has no legal move yet cannot be scored: every payoff is 0 (at ``N = 2``
  this is the two-player rule "0 if it has none").

A payoff is one gather from :func:`payoff_table`, ``(3, N)`` rows for ``ILLEGAL`` (all 0), C and D, so stepping
thousands of games is a few integer operations (no Python loop over games or players).

:class:`LearnerRounds` goes one step further for the vector env, as :mod:`moralgym.envs.outcomes` does for two
players: one seat's round is one of ``3 N^2`` cases (its action, how many others cooperate, how many cooperated
before), so every per-round reward is evaluated once on all of them and looked up by the round's code.
"""

from __future__ import annotations

import numpy as np

from moralgym.envs.games import COOPERATE, ILLEGAL, NO_MOVE
from moralgym.envs.n_player.games import SchellingGame
from moralgym.envs.n_player.rewards import NPlayerRewardInputs


def payoff_table(game: SchellingGame) -> np.ndarray:
    """Flat ``3 * N`` payoffs indexed ``(action + 1) * N + others_cooperating``: zeros for ``ILLEGAL``, then the
    C row and the D row of the diagram (read-only)."""
    table = np.concatenate([np.zeros(game.num_players), game.cooperate_payoffs, game.defect_payoffs])
    table.setflags(write=False)
    return table


def resolve_round(
    table: np.ndarray, actions: np.ndarray, previous: np.ndarray, may_be_unscored: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Payoffs and taken moves of one round, for joint ``actions`` and ``previous`` moves of shape ``(..., N)``.

    ``may_be_unscored=False`` skips the check for an illegal player without a legal move, for callers that know
    every previous move is C or D (the check is a full pass over the arrays). Returns ``(payoffs, moves)``.
    """
    num_players = actions.shape[-1]
    illegal = actions == ILLEGAL
    moves = np.where(illegal, previous, actions)
    cooperated = moves == COOPERATE
    others = cooperated.sum(axis=-1, keepdims=True, dtype=np.int64) - cooperated
    index = actions * num_players
    index += others
    index += num_players
    payoffs = np.take(table, index)
    if may_be_unscored:
        unscored = (moves == NO_MOVE).any(axis=-1, keepdims=True)
        if unscored.any():
            payoffs = np.where(unscored, 0.0, payoffs)
    return payoffs, moves


class LearnerRounds:
    """Every round of ``game`` seen from one seat whose co-players all move legally, and per-round reward tables.

    A round is coded ``(action + 1) * N * N + others_cooperating * N + others_previous_cooperated``
    (:meth:`code`): the seat's action (``ILLEGAL``, C or D), how many of the others cooperate this round and how
    many cooperated last round (a true count). :attr:`inputs` holds the :class:`NPlayerRewardInputs` of every code
    (the seat's own payoff first; cooperating others before defecting ones, which a per-round reward may not
    tell apart), so :meth:`reward_table` is one evaluation per reward. An illegal seat's rows score the others as
    if it had defected: a reward pays the illegal-move reward there whatever the payoffs.
    """

    def __init__(self, game: SchellingGame) -> None:
        n = game.num_players
        self.num_players = n
        action, others, previous = (
            g.reshape(-1) for g in np.meshgrid([ILLEGAL, COOPERATE, 1], np.arange(n), np.arange(n), indexing="ij")
        )
        cooperates = (action == COOPERATE).astype(np.int64)
        own = np.where(action == ILLEGAL, 0.0, payoff_table(game)[(action + 1) * n + others])
        # The others: `others` cooperators, each seeing the other cooperators and this seat's C; then the defectors.
        seat = np.arange(n - 1)
        cooperator = seat[None, :] < others[:, None]
        seen = others[:, None] - cooperator + cooperates[:, None]
        seen = np.minimum(seen, n - 1)  # (entries past the last cooperator or defector are not used)
        rest = np.where(cooperator, game.cooperate_payoffs[seen], game.defect_payoffs[seen])
        self.inputs = NPlayerRewardInputs(
            own_action=action,
            others_cooperated=others,
            others_previous_cooperated=previous,
            num_others=n - 1,
            own_payoff=own,
            payoffs=np.concatenate([own[:, None], rest], axis=1),
        )
        self._tables: dict[int, tuple[object, np.ndarray]] = {}

    def code(self, action: np.ndarray, others_cooperating: np.ndarray, others_previous: np.ndarray) -> np.ndarray:
        n = self.num_players
        code = action * (n * n)
        code += others_cooperating * n
        code += others_previous
        code += n * n
        return code

    def reward_table(self, reward: object) -> np.ndarray | None:
        """``reward`` on every code, or ``None`` unless it is ``per_round`` (it is then evaluated on its inputs);
        cached per reward object (rewards must be pure functions of their inputs)."""
        if not getattr(reward, "per_round", False):
            return None
        cached = self._tables.get(id(reward))
        if cached is None or cached[0] is not reward:
            table = np.broadcast_to(np.asarray(reward(self.inputs), dtype=np.float64), self.inputs.own_action.shape)
            cached = (reward, table.copy())
            self._tables[id(reward)] = cached
        return cached[1]


def own_first(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``values`` ``(..., N)`` seen from every seat: ``(..., N, N)``, row ``i`` is seat ``i``'s value first, then the
    others' in seat order (``order`` from :func:`~moralgym.envs.n_player.observations.full_view_order`)."""
    return values[..., order]


def cumulative_floor(game: SchellingGame, rounds_played: np.ndarray | int) -> np.ndarray:
    """The lowest sum of payoffs a player can have after ``rounds_played`` rounds: the game's lowest payoff times
    the rounds where it is negative (an illegal or unscored round pays 0), else 0."""
    return np.asarray(rounds_played, dtype=np.float64) * min(0.0, game.min_payoff)


def seat_reward_inputs(
    actions: np.ndarray,
    previous: np.ndarray,
    payoffs: np.ndarray,
    cumulative_payoffs: np.ndarray,
    order: np.ndarray,
    floor: np.ndarray | float = 0.0,
) -> NPlayerRewardInputs:
    """Every seat's :class:`NPlayerRewardInputs` at once (arrays ``(..., N)``, seat ``i`` in the last axis), from
    the round's joint ``actions``, the ``previous`` moves the seats saw, the payoffs, the episode's sums and their
    ``floor`` (:func:`cumulative_floor`)."""
    cooperates = actions == COOPERATE
    cooperated = previous == COOPERATE
    return NPlayerRewardInputs(
        own_action=actions,
        others_cooperated=cooperates.sum(axis=-1, keepdims=True) - cooperates,
        others_previous_cooperated=cooperated.sum(axis=-1, keepdims=True) - cooperated,
        num_others=actions.shape[-1] - 1,
        own_payoff=payoffs,
        payoffs=own_first(payoffs, order),
        cumulative_payoffs=own_first(cumulative_payoffs, order),
        cumulative_floor=np.broadcast_to(floor, actions.shape),
    )
