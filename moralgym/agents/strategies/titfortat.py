"""The Tit-for-Tat family: reciprocate the other player's previous move.

Tit-for-Tat, Suspicious Tit-for-Tat and Generous Tit-for-Tat are memory-one strategies (see
:mod:`moralgym.agents.strategies.memoryone`); Tit-for-Two-Tats remembers one more move of the other player.

Differences from Axelrod's conventions:

* In round one an observation with the paper's *random* fake history is treated as real history, so Tit-for-Tat
  copies the random "previous" move of the other (as in Tennant et al. 2025, where TFT plays the value shown to the
  agent as "they played"). The opening moves (C for TFT, GTFT and TF2T, D for Suspicious TFT) are played only when
  the observation says "no move yet".
* Generous TFT's default forgiveness is computed from *moralgym's* IPD payoffs (T=4, R=3, P=1, S=0), which gives
  q = 2/3; Axelrod's library uses T=5, which gives q = 1/3. Use :meth:`GenerousTitForTat.for_game` for other
  payoffs.
* Tit-for-Two-Tats reads the other's moves from the observations it is given. After an illegal move the
  environment repeats that player's last legal move in the observation, so a defection followed by an illegal
  answer is seen as two defections.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from moralgym.agents.strategies.base import DEFECT, NO_MOVE, Strategy, check_probability
from moralgym.agents.strategies.memoryone import MemoryOne
from moralgym.envs.games import PRISONERS_DILEMMA, MatrixGame, get_game


class TitForTat(MemoryOne):
    """Tit-for-Tat: cooperate first, then play whatever the other player played in the previous round.

    Submitted by Anatol Rapoport, it won both of Axelrod's tournaments (Axelrod 1980, "Effective choice in the
    Prisoner's Dilemma"; Axelrod 1984, *The Evolution of Cooperation*). Also called TFT. Memory-one vector
    (1, 0, 1, 0), opening C. With the paper's random fake history it copies the other's random "previous" move.
    """

    name: ClassVar[str] = "tit_for_tat"
    aliases: ClassVar[tuple[str, ...]] = ("tft",)
    memory_depth: ClassVar[int | float] = 1
    stochastic = False

    def __init__(self) -> None:
        super().__init__(1.0, 0.0, 1.0, 0.0, p_first=1.0)

    def params(self) -> dict[str, Any]:
        return {}


class SuspiciousTitForTat(MemoryOne):
    """Suspicious Tit-for-Tat: defect first, then play whatever the other player played in the previous round.

    A standard variant in the evolutionary literature on the iterated Prisoner's Dilemma (e.g. Boyd & Lorberbaum
    1987, "No pure strategy is evolutionarily stable in the repeated Prisoner's Dilemma game"). Also called STFT or
    Suspicious TFT. Memory-one vector (1, 0, 1, 0), opening D; it only differs from TFT when there is no previous
    move.
    """

    name: ClassVar[str] = "suspicious_tit_for_tat"
    aliases: ClassVar[tuple[str, ...]] = ("stft", "suspicious_tft")
    memory_depth: ClassVar[int | float] = 1
    stochastic = False

    def __init__(self) -> None:
        super().__init__(1.0, 0.0, 1.0, 0.0, p_first=0.0)

    def params(self) -> dict[str, Any]:
        return {}


def nowak_sigmund_generosity(temptation: float, reward: float, punishment: float, sucker: float) -> float:
    """The forgiveness probability of Nowak & Sigmund (1992): ``min(1 - (T-R)/(R-S), (R-P)/(T-P))``.

    It is the largest probability of answering a defection with cooperation that still keeps unconditional
    defectors from invading. Requires a Prisoner's Dilemma ordering ``T > R > P > S`` and ``2R > T + S``.

    Raises:
        ValueError: the payoffs are not of that form (the formula would not give a probability).
    """
    t, r, p, s = (float(x) for x in (temptation, reward, punishment, sucker))
    if not (t > r > p > s and 2 * r > t + s):
        raise ValueError(
            f"generous tit-for-tat's generosity needs Prisoner's Dilemma payoffs with T > R > P > S and 2R > T + S, "
            f"got T={t:g}, R={r:g}, P={p:g}, S={s:g}"
        )
    return min(1.0 - (t - r) / (r - s), (r - p) / (t - p))


def _row_payoffs(game: MatrixGame) -> tuple[float, float, float, float]:
    """(T, R, P, S) for the row player of ``game``."""
    table = game.payoffs[:, :, 0]
    return float(table[1, 0]), float(table[0, 0]), float(table[1, 1]), float(table[0, 1])


#: Generous TFT's default forgiveness: Nowak & Sigmund's formula for moralgym's IPD (T=4, R=3, P=1, S=0) = 2/3.
DEFAULT_GENEROSITY = nowak_sigmund_generosity(*_row_payoffs(PRISONERS_DILEMMA))


class GenerousTitForTat(MemoryOne):
    """Generous Tit-for-Tat: like Tit-for-Tat, but forgives a defection with probability ``q``.

    Cooperates first and always after the other cooperated; after the other defected it cooperates with
    probability ``q`` (memory-one vector (1, q, 1, q)). Forgiving breaks the echo of retaliations that a single
    mistake starts between two Tit-for-Tat players.

    From Nowak & Sigmund (1992, "Tit for tat in heterogeneous populations", Nature 355), after Molander (1985).
    Also called GTFT or Generous TFT. The default ``q = min(1 - (T-R)/(R-S), (R-P)/(T-P))`` is their largest
    generosity that unconditional defectors cannot exploit; for moralgym's IPD payoffs (T=4, R=3, P=1, S=0) it is
    2/3 (Axelrod's library, with T=5, gets 1/3). :meth:`for_game` computes it for another Prisoner's Dilemma.

    Args:
        q: probability of cooperating after the other defected, in [0, 1]. ``q = 0`` is Tit-for-Tat and ``q = 1``
            always cooperates.
    """

    name: ClassVar[str] = "generous_tit_for_tat"
    aliases: ClassVar[tuple[str, ...]] = ("gtft", "generous_tft")
    memory_depth: ClassVar[int | float] = 1
    stochastic = True

    def __init__(self, q: float = DEFAULT_GENEROSITY) -> None:
        self.q = check_probability(f"{self.name}: q (probability of forgiving a defection)", q)
        super().__init__(1.0, self.q, 1.0, self.q, p_first=1.0)

    @classmethod
    def for_game(cls, game: str | MatrixGame) -> GenerousTitForTat:
        """Generous TFT with Nowak & Sigmund's generosity for ``game``'s payoffs (the row player's, which is
        either player's in a symmetric game). Raises ``ValueError`` unless the game is a Prisoner's Dilemma."""
        game = get_game(game)
        try:
            q = nowak_sigmund_generosity(*_row_payoffs(game))
        except ValueError as error:
            raise ValueError(f"game {game.name!r}: {error}") from None
        return cls(q=q)

    def params(self) -> dict[str, Any]:
        return {"q": self.q}


class TitForTwoTats(Strategy):
    """Tit-for-Two-Tats: cooperate unless the other defected in each of the last two rounds.

    More forgiving than Tit-for-Tat: a single defection goes unanswered. Axelrod noted it would have won his first
    tournament had it been entered; John Maynard Smith submitted it to the second (Axelrod 1984, *The Evolution
    of Cooperation*). Also called TF2T or Tit for 2 Tats. Opens with C.

    Memory: one column holding the other's move before the previous one (2 = none yet). With the paper's random
    fake history, the fake move counts as the other's previous move; the one before it is "none", so it cooperates
    in round one.
    """

    name: ClassVar[str] = "tit_for_two_tats"
    aliases: ClassVar[tuple[str, ...]] = ("tf2t", "tit_for_2_tats")
    memory_depth: ClassVar[int | float] = 2
    stochastic = False
    memory_width: ClassVar[int] = 1

    def _initial_memory_value(self) -> int:
        return NO_MOVE

    def _act(
        self, own: np.ndarray, other: np.ndarray, memory: np.ndarray, uniforms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        other_before = memory[:, 0]
        actions = ((other == DEFECT) & (other_before == DEFECT)).astype(np.int64)
        return actions, other.astype(np.int64).reshape(-1, 1)
