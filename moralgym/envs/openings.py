"""The opening rule: what a fixed strategy is shown as having played "before" round one.

With ``initial_state="random"`` every env draws both round-one "previous moves" (the paper states them in the first
prompt as if a round had happened). A fixed strategy may declare an ``initial_move`` instead: the paper shows
Always Cooperate as having cooperated and Always Defect as having defected (docs/reproduction.md). The learner's
own first previous move stays drawn, so every player evaluated against the same opponent sees the same states.

Every moralgym loop applies the rule through this module: the episode runner (play, evaluation, training
rollouts) passes :func:`opening_options` to ``reset``, the numpy batch behind the Gymnasium and vector envs uses
:func:`opening_move`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["opening_move", "opening_options"]


def opening_move(player: Any) -> int | None:
    """The round-one previous move ``player`` declares (``initial_move``: 0 or 1), or ``None`` to draw it."""
    move = getattr(player, "initial_move", None) if player is not None else None
    return None if move is None else int(move)


def opening_options(players: Mapping[str, Any], initial_state: str) -> dict[str, Any] | None:
    """``reset`` options that show each player's declared opening (``{"previous_moves": {agent: move}}``), or
    ``None`` when no player declares one or the env does not draw a random initial state."""
    if initial_state != "random":
        return None
    moves = {agent: move for agent, player in players.items() if (move := opening_move(player)) is not None}
    return {"previous_moves": moves} if moves else None
