"""Memory-one strategies: the probability of cooperating depends only on the previous joint move.

A memory-one strategy is four probabilities of cooperating, one per previous joint move ``(own, other)`` in the
order CC, CD, DC, DD, plus ``p_first``, the probability of cooperating when there is no previous move. This is the
parametrisation of Nowak & Sigmund (1990, 1993) and of Press & Dyson (2012), and Axelrod's ``MemoryOnePlayer``.
Many classic strategies are points of this family; in (p_cc, p_cd, p_dc, p_dd) form:

=========================  ====================  ========
strategy                   (CC, CD, DC, DD)      p_first
=========================  ====================  ========
always_cooperate           (1, 1, 1, 1)          1
always_defect              (0, 0, 0, 0)          0
random                     (p, p, p, p)          p
tit_for_tat                (1, 0, 1, 0)          1
suspicious_tit_for_tat     (1, 0, 1, 0)          0
generous_tit_for_tat       (1, q, 1, q)          1
win_stay_lose_shift        (1, 0, 0, 1)          1
=========================  ====================  ========

Implementation: a ``3 x 3`` table indexed by the observation ``[own_previous, opponent_previous]`` (values 0, 1 or 2 =
no move yet) gives the probability of cooperating; the action is C iff the game's uniform is below it. The
strategy keeps no memory: it acts on the observation alone.

Differences from Axelrod's conventions:

* Round one may come from the paper's *random* fake history (Tennant et al. 2025 start each episode from random
  previous moves). That history is treated as real: Tit-for-Tat copies the random "previous" move of the other,
  Win-Stay-Lose-Shift reacts to it. ``p_first`` is used only when the observation holds "no move yet" (2).
* Any observation holding "no move yet" on either side uses ``p_first``. That happens in round one with no fake
  history, and also when the other player's every move so far was illegal (the environment then still reports
  "no move yet" for them): the strategy has seen nothing to react to, so it plays its opening move again.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from moralgym.agents.strategies.base import NO_MOVE, Strategy, check_probability


class MemoryOne(Strategy):
    """A generic memory-one strategy: cooperates with a probability that depends only on the previous joint move.

    Args:
        p_cc: probability of cooperating after (own C, other C).
        p_cd: after (own C, other D).
        p_dc: after (own D, other C).
        p_dd: after (own D, other D).
        p_first: probability of cooperating when there is no previous move (default 1: open with C, as Axelrod's
            ``MemoryOnePlayer``).

    The family is from Nowak & Sigmund (1990, "The evolution of stochastic strategies in the Prisoner's Dilemma")
    and Press & Dyson (2012, "zero-determinant" strategies); when the probabilities depend on the other's move
    only (``p_cc == p_dc`` and ``p_cd == p_dd``) it is a "reactive" strategy. ``stochastic`` is true for an
    instance unless every probability is 0 or 1.
    """

    name: ClassVar[str] = "memory_one"
    aliases: ClassVar[tuple[str, ...]] = ("memoryone",)
    memory_depth: ClassVar[int | float] = 1
    stochastic = True

    def __init__(self, p_cc: float, p_cd: float, p_dc: float, p_dd: float, p_first: float = 1.0) -> None:
        self._set_probabilities(p_cc, p_cd, p_dc, p_dd, p_first)

    def _set_probabilities(self, p_cc: float, p_cd: float, p_dc: float, p_dd: float, p_first: float) -> None:
        values = {"p_cc": p_cc, "p_cd": p_cd, "p_dc": p_dc, "p_dd": p_dd, "p_first": p_first}
        self.p_cc, self.p_cd, self.p_dc, self.p_dd, self.p_first = (
            check_probability(f"{self.name}: {key}", value) for key, value in values.items()
        )
        # table[own_previous, opponent_previous]; row/column 2 is "no move yet".
        table = np.full((NO_MOVE + 1, NO_MOVE + 1), self.p_first, dtype=np.float64)
        table[:2, :2] = [[self.p_cc, self.p_cd], [self.p_dc, self.p_dd]]
        table.flags.writeable = False
        self._table = table
        self._flat_table = table.ravel()
        self._deterministic_actions = (self._flat_table < 1.0).astype(np.int64)  # p = 1 -> C (0), p = 0 -> D (1)
        self.stochastic = any(0.0 < p < 1.0 for p in (*self.four_vector, self.p_first))

    @property
    def four_vector(self) -> tuple[float, float, float, float]:
        """The probabilities of cooperating after CC, CD, DC and DD (own move first)."""
        return (self.p_cc, self.p_cd, self.p_dc, self.p_dd)

    def params(self) -> dict[str, Any]:
        return {"p_cc": self.p_cc, "p_cd": self.p_cd, "p_dc": self.p_dc, "p_dd": self.p_dd, "p_first": self.p_first}

    def _act(
        self, own: np.ndarray, other: np.ndarray, memory: np.ndarray, uniforms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        # A flat np.take is ~10x faster than 2-D fancy indexing on thousands of games.
        cell = own * (NO_MOVE + 1) + other
        if not self.stochastic:  # every probability is 0 or 1: look the action up directly
            return np.take(self._deterministic_actions, cell), memory
        p_cooperate = np.take(self._flat_table, cell)
        # C = 0 and D = 1, so "defect unless u < p" is the boolean (u >= p).
        return (uniforms >= p_cooperate).astype(np.int64), memory


class WinStayLoseShift(MemoryOne):
    """Win-Stay-Lose-Shift, also known as Pavlov: repeat your move after a good outcome, switch after a bad one.

    Opens with C. After CC or DC (own move first: it got the reward R or the temptation T, a "win") it plays the
    same move again; after CD or DD (sucker S or punishment P, a "loss") it switches. Memory-one vector (1, 0, 0, 1).
    It corrects a mistaken defection between two copies of itself in two rounds, which Tit-for-Tat cannot.

    From Kraines & Kraines (1989, "Pavlov and the prisoner's dilemma") and Nowak & Sigmund (1993, "A strategy of
    win-stay, lose-shift that outperforms tit-for-tat in the Prisoner's Dilemma game"); also called Pavlov, WSLS,
    or "simpleton" (Rapoport & Chammah 1965).
    """

    name: ClassVar[str] = "win_stay_lose_shift"
    aliases: ClassVar[tuple[str, ...]] = ("pavlov", "wsls", "simpleton")
    memory_depth: ClassVar[int | float] = 1
    stochastic = False

    def __init__(self) -> None:
        super().__init__(1.0, 0.0, 0.0, 1.0, p_first=1.0)

    def params(self) -> dict[str, Any]:
        return {}
