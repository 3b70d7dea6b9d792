"""``render_mode="rgb_array"``: a tiny image of the episode so far, as a ``(height, width, 3)`` uint8 array.

One row of square cells per seat (top: player 0 / the learner, then player 1 / the opponent, and so on in an
N-player game); the first column is the round-one "previous moves", then one column per round (the last
:data:`MAX_COLUMNS` rounds when there are more).
Green = cooperate, red = defect, dark grey = illegal answer, light grey = no move yet, white = not played yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL, NO_MOVE

CELL = 16  # pixels per cell, including a 2-pixel white border
MAX_COLUMNS = 24
_NOT_PLAYED = 3  # colour index
_COLOURS = np.array(
    [
        (60, 60, 60),  # ILLEGAL
        (46, 160, 67),  # COOPERATE
        (215, 58, 73),  # DEFECT
        (255, 255, 255),  # not played yet
        (190, 190, 190),  # NO_MOVE
    ],
    dtype=np.uint8,
)
_INDEX = {ILLEGAL: 0, COOPERATE: 1, DEFECT: 2, NO_MOVE: 4}


def render_rgb(start: Sequence[int], history: Sequence[Sequence[int]], num_rounds: int) -> np.ndarray:
    """The image of an episode that started from previous moves ``start`` (one per seat) and played ``history``
    (one joint move per round) so far."""
    columns = min(num_rounds, MAX_COLUMNS - 1)
    shown = list(history)[-columns:] if len(history) > columns else list(history)
    grid = np.full((len(start), 1 + columns), _NOT_PLAYED, dtype=np.int64)
    grid[:, 0] = [_INDEX[int(move)] for move in start]
    for column, joint in enumerate(shown, start=1):
        grid[:, column] = [_INDEX[int(move)] for move in joint]
    cell = np.full((CELL, CELL), False)
    cell[2:-2, 2:-2] = True  # painted pixels of a cell; the border stays white
    image = np.where(
        np.tile(cell, grid.shape)[..., None],
        _COLOURS[np.repeat(np.repeat(grid, CELL, axis=0), CELL, axis=1)],
        np.uint8(255),
    )
    return np.ascontiguousarray(image, dtype=np.uint8)
