"""Strategies that never forgive.

Difference from Axelrod's conventions: a defection in the paper's *random* fake history (round one of an episode
in Tennant et al. 2025) counts as a real defection, so Grim Trigger can defect from the first round on.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from moralgym.agents.strategies.base import DEFECT, Strategy


class GrimTrigger(Strategy):
    """Grim Trigger: cooperates until the other player defects once, then defects for the rest of the game.

    From Friedman (1971, "A non-cooperative equilibrium for supergames"), where the threat of permanent punishment
    sustains cooperation; an entry of Axelrod's first tournament (by James W. Friedman). Also called Grudger,
    Spiteful, Grim, Unforgiving or Friedman. Opens with C.

    Memory: one column, 1 once the other has been seen defecting (0 before).
    """

    name: ClassVar[str] = "grim_trigger"
    aliases: ClassVar[tuple[str, ...]] = ("grudger", "spiteful", "grim", "unforgiving", "friedman")
    memory_depth: ClassVar[int | float] = float("inf")
    stochastic = False
    memory_width: ClassVar[int] = 1

    def _act(
        self, own: np.ndarray, other: np.ndarray, memory: np.ndarray, uniforms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        betrayed = (memory[:, 0] == 1) | (other == DEFECT)
        # Defect (1) once betrayed, cooperate (0) before: the flag is the action.
        actions = betrayed.astype(np.int64)
        return actions, actions.reshape(-1, 1).copy()
