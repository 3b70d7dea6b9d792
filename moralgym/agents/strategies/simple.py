"""The simplest strategies: unconditional cooperation or defection, coin flips, and alternation.

Always Cooperate, Always Defect and Random are memory-one strategies with the same probability of cooperating
after every previous move (memory depth 0); Alternator looks at its own previous move only.

Difference from Axelrod's conventions: Alternator alternates from the own "previous" move it observes, so after the
paper's *random* fake history its first move is the opposite of that random move (C only when there is no
previous move).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from moralgym.agents.strategies.base import COOPERATE, DEFECT, NO_MOVE, Strategy, check_probability
from moralgym.agents.strategies.memoryone import MemoryOne


class AlwaysCooperate(MemoryOne):
    """Always Cooperate: cooperates in every round, whatever happened.

    A baseline in Axelrod's work and an opponent in Tennant et al. (2025, appendix); also called AllC, ALLC or
    Cooperator (Axelrod's library).
    """

    name: ClassVar[str] = "always_cooperate"
    aliases: ClassVar[tuple[str, ...]] = ("allc", "all_c", "cooperator")
    memory_depth: ClassVar[int | float] = 0
    stochastic = False
    initial_move: ClassVar[int | None] = COOPERATE

    def __init__(self) -> None:
        super().__init__(1.0, 1.0, 1.0, 1.0, p_first=1.0)

    def params(self) -> dict[str, Any]:
        return {}


class AlwaysDefect(MemoryOne):
    """Always Defect: defects in every round, whatever happened.

    The unique Nash equilibrium strategy of the one-shot Prisoner's Dilemma and a baseline in Axelrod's work and in
    Tennant et al. (2025, appendix); also called AllD, ALLD or Defector (Axelrod's library).
    """

    name: ClassVar[str] = "always_defect"
    aliases: ClassVar[tuple[str, ...]] = ("alld", "all_d", "defector")
    memory_depth: ClassVar[int | float] = 0
    stochastic = False
    initial_move: ClassVar[int | None] = DEFECT

    def __init__(self) -> None:
        super().__init__(0.0, 0.0, 0.0, 0.0, p_first=0.0)

    def params(self) -> dict[str, Any]:
        return {}


class Random(MemoryOne):
    """Random: cooperates with probability ``p`` in every round, independently of the history.

    The RANDOM entry of Axelrod's first tournament (Axelrod 1980) with ``p = 0.5``, and the evaluation opponent of
    Tennant et al. (2025, "uniform C/D each round"). Also called Random Player or Coin Flip.

    Args:
        p: probability of cooperating, in [0, 1] (default 0.5). The game's uniform ``u`` gives C iff ``u < p``.
    """

    name: ClassVar[str] = "random"
    aliases: ClassVar[tuple[str, ...]] = ("random_player", "coin_flip")
    memory_depth: ClassVar[int | float] = 0
    stochastic = True

    def __init__(self, p: float = 0.5) -> None:
        self.p = check_probability(f"{self.name}: p (probability of cooperating)", p)
        super().__init__(self.p, self.p, self.p, self.p, p_first=self.p)

    def params(self) -> dict[str, Any]:
        return {"p": self.p}


class Alternator(Strategy):
    """Alternator: cooperates first, then plays the opposite of its own previous move (C, D, C, D, ...).

    Ignores the other player entirely; a standard test opponent in Axelrod's library (also called Alternate or
    Periodic CD). After the paper's random fake history it alternates from its random "previous" move.
    """

    name: ClassVar[str] = "alternator"
    aliases: ClassVar[tuple[str, ...]] = ("alternate", "periodic_cd")
    memory_depth: ClassVar[int | float] = 1
    stochastic = False

    def _act(
        self, own: np.ndarray, other: np.ndarray, memory: np.ndarray, uniforms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        # C = 0 and D = 1, so "the opposite move" is 1 - own.
        return np.where(own == NO_MOVE, COOPERATE, 1 - own).astype(np.int64), memory
