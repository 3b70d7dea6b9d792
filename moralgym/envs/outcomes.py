"""Every possible round of a 2x2 game, precomputed.

A round's result depends only on both actions (0, 1 or ILLEGAL) and both previous moves (0, 1 or NO_MOVE):
3 * 3 * 3 * 3 = 81 cases. :class:`OutcomeTable` evaluates :func:`resolve_round` and the rewards once on all 81, so
stepping thousands of games is a handful of integer operations and table gathers instead of dozens of ``np.where``
passes. That is what makes the vector env fast; the tables are also the single definition every env uses.

A game's state is coded ``previous_0 * 3 + previous_1`` (0..8); a round is coded
``((action_0 + 1) * 3 + (action_1 + 1)) * 9 + state``.
"""

from __future__ import annotations

import numpy as np

from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL, NO_MOVE, MatrixGame
from moralgym.envs.rewards import DEFAULT_PARTNER_ILLEGAL, MoralReward, RewardInputs, reward_components

MOVES = np.array([COOPERATE, DEFECT, NO_MOVE], dtype=np.int64)
ACTIONS = np.array([ILLEGAL, COOPERATE, DEFECT], dtype=np.int64)

#: state code -> (previous_0, previous_1), and the same seen from player 1.
STATE_TO_OBSERVATION = np.stack(np.meshgrid(MOVES, MOVES, indexing="ij"), axis=-1).reshape(9, 2)
STATE_TO_SWAPPED_OBSERVATION = STATE_TO_OBSERVATION[:, ::-1].copy()


def state_code(previous_0: np.ndarray, previous_1: np.ndarray) -> np.ndarray:
    return np.asarray(previous_0, dtype=np.int64) * 3 + np.asarray(previous_1, dtype=np.int64)


def round_code(actions_0: np.ndarray, actions_1: np.ndarray, states: np.ndarray) -> np.ndarray:
    # ((a0 + 1) * 3 + (a1 + 1)) * 9 + state, with the constant folded and in-place adds (hot path of the vector env).
    code = actions_0 * 27
    code += actions_1 * 9
    code += states
    code += 36
    return code


def resolve_round(
    payoffs: np.ndarray,
    actions_0: np.ndarray,
    actions_1: np.ndarray,
    previous_0: np.ndarray,
    previous_1: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rules of one round (documented in :mod:`moralgym.envs.matrix_game`), on arrays.

    An illegal move counts as the player's last legal move for the partner's payoff and for the observation,
    and earns the illegal player a payoff of 0. Returns ``(payoff_0, payoff_1, next_previous_0, next_previous_1)``.
    These payoffs are the same under every ``partner_illegal`` rule: the rule acts on the rewards only
    (:class:`~moralgym.envs.rewards.MoralReward`).
    """
    illegal_0 = actions_0 == ILLEGAL
    illegal_1 = actions_1 == ILLEGAL
    move_0 = np.where(illegal_0, previous_0, actions_0)
    move_1 = np.where(illegal_1, previous_1, actions_1)
    known = (move_0 != NO_MOVE) & (move_1 != NO_MOVE)
    row = np.where(known, move_0, 0)
    col = np.where(known, move_1, 0)
    payoff_0 = np.where(known & ~illegal_0, payoffs[row, col, 0], 0.0)
    payoff_1 = np.where(known & ~illegal_1, payoffs[row, col, 1], 0.0)
    return payoff_0, payoff_1, move_0, move_1


class OutcomeTable:
    """All 81 rounds of ``game`` resolved; reward tables are built on first use and cached per reward object.

    ``partner_illegal`` (see :mod:`moralgym.envs.matrix_game`) is set on both seats' :class:`RewardInputs`, so the
    components and every reward table follow it.
    """

    def __init__(
        self, game: MatrixGame, penalty: float, illegal_reward: float, partner_illegal: str = DEFAULT_PARTNER_ILLEGAL
    ) -> None:
        a0, a1, p0, p1 = (g.reshape(-1) for g in np.meshgrid(ACTIONS, ACTIONS, MOVES, MOVES, indexing="ij"))
        self.action_0, self.action_1, self.previous_0, self.previous_1 = a0, a1, p0, p1
        payoff_0, payoff_1, move_0, move_1 = resolve_round(game.payoffs, a0, a1, p0, p1)
        self.payoff_0, self.payoff_1 = payoff_0, payoff_1
        self.next_state = state_code(move_0, move_1)
        self.illegal_0 = a0 == ILLEGAL
        self.illegal_1 = a1 == ILLEGAL
        self.partner_illegal = partner_illegal
        self.inputs_0 = RewardInputs(a0, a1, p1, payoff_0, payoff_1, partner_illegal)
        self.inputs_1 = RewardInputs(a1, a0, p0, payoff_1, payoff_0, partner_illegal)
        self.components_0 = reward_components(self.inputs_0, penalty, illegal_reward)
        self.components_1 = reward_components(self.inputs_1, penalty, illegal_reward)
        self._reward_tables: dict[int, tuple[MoralReward, np.ndarray]] = {}

    def reward_table(self, reward: MoralReward, player: int = 0) -> np.ndarray:
        """``reward`` evaluated on all 81 rounds from ``player``'s seat (rewards must be pure functions of inputs)."""
        key = id(reward) * 2 + player
        cached = self._reward_tables.get(key)
        if cached is None or cached[0] is not reward:
            inputs = self.inputs_0 if player == 0 else self.inputs_1
            table = np.broadcast_to(np.asarray(reward(inputs), dtype=np.float64), (81,)).copy()
            cached = (reward, table)
            self._reward_tables[key] = cached
        return cached[1]
