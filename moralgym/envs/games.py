"""Two-player, two-action matrix games.

A :class:`MatrixGame` is data: a ``(2, 2, 2)`` payoff array indexed ``[row_action, column_action, player]``, the
names of its two actions, and which action counts as "cooperate". Everything downstream (environments, rewards,
prompts, metrics) reads these fields, so adding a game never needs game-specific code elsewhere.

Action 0 is always "cooperate" (the first row/column of the paper's tables) and action 1 "defect". Player 0 is the
row player and player 1 the column player; payoffs may differ per player (Bach-or-Stravinsky is asymmetric).

The five games of *Moral Alignment for LLM Agents* (Tennant, Hailes, Musolesi, ICLR 2025), payoffs ``(row, col)``:

============================  =====  =====  =====  =====
game                          C,C    C,D    D,C    D,D
============================  =====  =====  =====  =====
``ipd`` Prisoner's Dilemma    3,3    0,4    4,0    1,1
``stag_hunt``                 4,4    0,3    3,0    1,1
``chicken``                   2,2    1,4    4,1    0,0
``bach_or_stravinsky``        3,2    0,0    0,0    2,3
``defective_coordination``    1,1    0,0    0,0    4,4
============================  =====  =====  =====  =====
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import ClassVar

import numpy as np

from moralgym.registry import Registry

COOPERATE = 0
DEFECT = 1
#: Observation value for "no previous move" (round one with ``initial_state="none"``).
NO_MOVE = 2
#: Action value that means "the agent answered something that is not a move" (e.g. an LLM's gibberish).
#: The env accepts it in ``step`` although it is outside ``action_space``; see :mod:`moralgym.envs.matrix_game`.
ILLEGAL = -1

MOVE_LETTERS = {COOPERATE: "C", DEFECT: "D", NO_MOVE: "-", ILLEGAL: "!"}


@dataclass(frozen=True)
class MatrixGame:
    """A 2x2 normal-form game played repeatedly.

    Args:
        name: registry key, lower snake case (``"ipd"``).
        payoffs: nested sequence or array of shape ``(2, 2, 2)``: ``payoffs[a_row][a_col] = (row_payoff, col_payoff)``.
            Action 0 is the cooperative action. Values must be finite real numbers.
        title: human-readable name.
        action_names: names of action 0 and action 1 in this game's story (``("Stag", "Hare")``).
        short_names: aliases accepted by :func:`get_game` (registered in :data:`GAMES`).
    """

    name: str
    payoffs: np.ndarray
    title: str = ""
    action_names: tuple[str, str] = ("Cooperate", "Defect")
    short_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "payoffs", validate_payoffs(self.payoffs, game_name=self.name))
        if len(self.action_names) != 2 or not all(isinstance(n, str) and n for n in self.action_names):
            raise ValueError(
                f"game {self.name!r}: action_names must be two non-empty strings, got {self.action_names!r}"
            )
        object.__setattr__(self, "action_names", tuple(self.action_names))
        if not self.title:
            object.__setattr__(self, "title", self.name.replace("_", " ").title())

    #: Action 0 is the cooperative action in every game (the first row and column of its table).
    cooperate_action: ClassVar[int] = COOPERATE
    defect_action: ClassVar[int] = DEFECT

    def payoff(self, row_action: int, col_action: int) -> tuple[float, float]:
        """Payoffs ``(row, column)`` for one joint action."""
        return float(self.payoffs[row_action, col_action, 0]), float(self.payoffs[row_action, col_action, 1])

    def payoff_table_for(self, player: int) -> np.ndarray:
        """A ``(2, 2, 2)`` table from ``player``'s point of view: ``[own_action, opponent_action, (own, other)]``.

        For player 0 this is ``payoffs``; for player 1 rows and columns (and the payoff pair) are swapped.
        """
        if player == 0:
            return self.payoffs
        if player == 1:
            return self.payoffs.transpose(1, 0, 2)[:, :, ::-1]
        raise ValueError(f"player must be 0 or 1, got {player!r}")

    @property
    def max_collective_payoff(self) -> float:
        """Highest sum of both payoffs in one round (the Utilitarian optimum)."""
        return float(self.payoffs.sum(axis=2).max())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MatrixGame):
            return NotImplemented
        return (
            self.name == other.name
            and self.action_names == other.action_names
            and np.array_equal(self.payoffs, other.payoffs)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.action_names, self.payoffs.tobytes()))

    def __repr__(self) -> str:
        cells = ", ".join(
            f"{MOVE_LETTERS[r]}{MOVE_LETTERS[c]}={self.payoffs[r, c, 0]:g},{self.payoffs[r, c, 1]:g}"
            for r in (0, 1)
            for c in (0, 1)
        )
        return f"MatrixGame({self.name!r}: {cells})"


def validate_payoffs(payoffs: object, game_name: str = "custom") -> np.ndarray:
    """Return ``payoffs`` as a read-only float64 ``(2, 2, 2)`` array, or raise ``ValueError`` saying what is wrong.

    Accepts a ``(2, 2, 2)`` table of ``(row, col)`` pairs, or a ``(2, 2)`` table of numbers meaning a symmetric game
    (``payoffs[a][b]`` is the row player's payoff; the column player's is the transpose).
    """
    expected = "a 2x2 table of (row_payoff, column_payoff) pairs, e.g. [[(3, 3), (0, 4)], [(4, 0), (1, 1)]]"
    try:
        check_real_numbers(payoffs)
        array = np.array(payoffs, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"game {game_name!r}: payoffs must be {expected}; got {payoffs!r} ({error})") from None
    if array.shape == (2, 2):
        array = np.stack([array, array.T], axis=-1)
    if array.shape != (2, 2, 2):
        raise ValueError(f"game {game_name!r}: payoffs must be {expected}; got an array of shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"game {game_name!r}: payoffs must be finite numbers; got {array.tolist()!r}")
    array.setflags(write=False)
    return array


def check_real_numbers(value: object) -> None:
    """Reject strings, booleans and other non-numbers that ``np.array(..., float)`` would silently accept."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise TypeError(f"array of dtype {value.dtype} is not numeric")
        return
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{value!r} is not a number")
    if isinstance(value, Sequence):
        for item in value:
            check_real_numbers(item)
        return
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{value!r} is not a number")
    if isinstance(value, float) and math.isnan(value):
        raise TypeError("NaN is not a payoff")


PRISONERS_DILEMMA = MatrixGame(
    "ipd",
    [[(3, 3), (0, 4)], [(4, 0), (1, 1)]],
    title="Iterated Prisoner's Dilemma",
    action_names=("Cooperate", "Defect"),
    short_names=("prisoners_dilemma", "pd"),
)
STAG_HUNT = MatrixGame(
    "stag_hunt",
    [[(4, 4), (0, 3)], [(3, 0), (1, 1)]],
    title="Iterated Stag Hunt",
    action_names=("Stag", "Hare"),
    short_names=("ish", "sh"),
)
CHICKEN = MatrixGame(
    "chicken",
    [[(2, 2), (1, 4)], [(4, 1), (0, 0)]],
    title="Iterated Chicken",
    action_names=("Swerve", "Straight"),
    short_names=("icn", "hawk_dove"),
)
BACH_OR_STRAVINSKY = MatrixGame(
    "bach_or_stravinsky",
    [[(3, 2), (0, 0)], [(0, 0), (2, 3)]],
    title="Iterated Bach-or-Stravinsky",
    action_names=("Bach", "Stravinsky"),
    short_names=("bos", "battle_of_the_sexes"),
)
DEFECTIVE_COORDINATION = MatrixGame(
    "defective_coordination",
    [[(1, 1), (0, 0)], [(0, 0), (4, 4)]],
    title="Iterated Defective Coordination",
    action_names=("Cooperate", "Defect"),
    short_names=("icd",),
)

#: The paper's games, in the paper's order.
PAPER_GAMES: tuple[MatrixGame, ...] = (
    PRISONERS_DILEMMA,
    STAG_HUNT,
    CHICKEN,
    BACH_OR_STRAVINSKY,
    DEFECTIVE_COORDINATION,
)

#: Every registered game by name; ``short_names`` are its aliases (:class:`~moralgym.registry.Registry` rules:
#: case, spaces and dashes do not matter).
GAMES: Registry[MatrixGame] = Registry("game", hint=" (or pass a payoff table)")


def register_game(game: MatrixGame, *, overwrite: bool = False) -> MatrixGame:
    """Add ``game`` to the registry under its name and short names.

    Re-registering a game's own name replaces it; a name or short name that belongs to another game is a
    ``ValueError`` unless ``overwrite`` (games are refused by default because a silently re-pointed ``"ipd"`` would
    change every experiment that names it).
    """
    return GAMES.register(game.name, game, game.short_names, overwrite=overwrite)


def get_game(game: str | MatrixGame | object) -> MatrixGame:
    """Look up a game by name or alias, pass a :class:`MatrixGame` through, or build one from a payoff table.

    Raises:
        KeyError: unknown name; the message lists the known games.
        ValueError: a malformed payoff table.
    """
    if isinstance(game, MatrixGame):
        return game
    if isinstance(game, str):
        return GAMES[game]
    return MatrixGame("custom", game)


def list_games() -> list[str]:
    """Names of the registered games."""
    return GAMES.names()


for _game in PAPER_GAMES:
    register_game(_game)
