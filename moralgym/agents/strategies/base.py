"""The base class every fixed strategy derives from: vectorised play over many games, plus a one-game convenience API.

A strategy sees, in each game, the observation ``[own_previous, opponent_previous]`` from its own seat (0 = cooperate,
1 = defect, 2 = no move yet) and may keep a small per-game integer ``memory`` of what it saw before. Its whole
behaviour is one pure function, :meth:`Strategy.act_batch`, applied to ``n`` games at once with numpy (no Python
loop over games). The single-game methods :meth:`Strategy.reset` and :meth:`Strategy.act` call ``act_batch`` with
``n = 1``, so the vectorised and the single-game paths cannot disagree.

Randomness: a stochastic strategy never draws its own random numbers inside ``act_batch``. It is given one uniform
``u`` in [0, 1) per game (the environment draws one every round for every strategy, so random streams stay aligned
whatever the opponent) and cooperates iff ``u < p_cooperate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any, ClassVar

import numpy as np

from moralgym.envs.games import COOPERATE, DEFECT, NO_MOVE

__all__ = ["Strategy", "check_probability", "COOPERATE", "DEFECT", "NO_MOVE"]


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` unless it is a real number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        # NaN fails both comparisons, so it lands here too.
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


class Strategy:
    """A fixed policy for one seat of a two-action matrix game, vectorised over games.

    Subclasses set the class attributes below and implement :meth:`_act`; they validate their parameters in
    ``__init__`` and list them in :meth:`params` (used by ``repr``).

    Attributes:
        name: registry key, lower snake case (``"tit_for_tat"``).
        aliases: other names the strategy is known by, accepted by :func:`moralgym.agents.strategies.get_strategy`.
        memory_depth: how many past rounds the behaviour depends on (``float("inf")`` for "the whole game").
        stochastic: whether the choice depends on the uniforms (may be refined per instance, e.g. a memory-one
            strategy whose probabilities are all 0 or 1 is deterministic).
        memory_width: number of int64 columns of per-game memory the strategy keeps (0 if it needs none).
        initial_move: the round-one "previous move" environments show for this strategy when their initial state is
            random: ``None`` draws it (C or D with probability 1/2), as the paper does for Tit-for-Tat, Random and
            LLM opponents; Always Cooperate / Always Defect fix it to C / D (docs/reproduction.md), so that their first
            prompt does not claim a move they never make.
    """

    name: ClassVar[str] = "strategy"
    aliases: ClassVar[tuple[str, ...]] = ()
    memory_depth: ClassVar[int | float] = float("inf")
    stochastic: bool = False
    memory_width: ClassVar[int] = 0
    initial_move: ClassVar[int | None] = None

    # ----------------------------------------------------------------------------------------- vectorised core
    def initial_memory(self, n: int) -> np.ndarray:
        """Per-game memory before the first round: shape ``(n, memory_width)``, int64."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n (number of games) must be a non-negative integer, got {n!r}")
        memory = np.empty((int(n), self.memory_width), dtype=np.int64)
        memory[:] = self._initial_memory_value()
        return memory

    def act_batch(
        self, observations: np.ndarray, memory: np.ndarray, uniforms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Choose one action per game.

        Args:
            observations: ``(n, 2)`` ints ``[own_previous, opponent_previous]`` in {0 (C), 1 (D), 2 (no move yet)}.
            memory: ``(n, memory_width)`` int64, as returned by :meth:`initial_memory` or the previous call.
                It is not modified.
            uniforms: ``(n,)`` floats in [0, 1); a stochastic strategy cooperates iff ``u < p_cooperate``.

        Returns:
            ``(actions, new_memory)``: actions ``(n,)`` int64 in {0, 1}, and the memory to pass next round.
        """
        observations = np.asarray(observations)
        memory = np.asarray(memory)
        uniforms = np.asarray(uniforms)
        self._check_batch(observations, memory, uniforms)
        actions, new_memory = self._act(observations[:, 0], observations[:, 1], memory, uniforms)
        return actions.astype(np.int64, copy=False), new_memory

    def _act(
        self, own: np.ndarray, other: np.ndarray, memory: np.ndarray, uniforms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The behaviour: ``own``/``other`` are the ``(n,)`` previous moves. Must not modify its inputs."""
        raise NotImplementedError(f"{type(self).__name__} must implement _act()")

    def _initial_memory_value(self) -> int:
        """What each memory cell holds before the first round (only used when ``memory_width > 0``)."""
        return 0

    # ----------------------------------------------------------------------------------------- one game
    def reset(self, seed: int | None = None) -> None:
        """Start a new single game for :meth:`act`; ``seed`` seeds the uniforms :meth:`act` draws itself."""
        self._memory = self.initial_memory(1)
        self._rng = np.random.default_rng(seed)

    def act(self, observation: Sequence[int] | np.ndarray, uniform: float | None = None) -> int:
        """One round of one game: the action (0 = C, 1 = D) for ``observation = [own_previous, opponent_previous]``.

        Keeps its own one-game memory between calls (call :meth:`reset` to start a new game). When ``uniform`` is
        None, one is drawn from the generator seeded by :meth:`reset` (drawn every call, stochastic or not).
        """
        if not hasattr(self, "_memory"):
            self.reset()
        if uniform is None:
            uniform = float(self._rng.random())
        observations = np.asarray(observation).reshape(1, -1)
        actions, self._memory = self.act_batch(observations, self._memory, np.array([uniform], dtype=np.float64))
        return int(actions[0])

    # ----------------------------------------------------------------------------------------- description
    def params(self) -> dict[str, Any]:
        """The constructor arguments that define this instance (empty for parameter-free strategies)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params().items())
        return f"{type(self).__name__}({args})"

    # ----------------------------------------------------------------------------------------- checks
    def _check_batch(self, observations: np.ndarray, memory: np.ndarray, uniforms: np.ndarray) -> None:
        if observations.ndim != 2 or observations.shape[1] != 2:
            raise ValueError(
                f"{self.name}: observations must have shape (n, 2) = [own_previous, opponent_previous], "
                f"got shape {observations.shape}"
            )
        n = observations.shape[0]
        if observations.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: observations must be integers, got dtype {observations.dtype}")
        if memory.shape != (n, self.memory_width):
            raise ValueError(
                f"{self.name}: memory must have shape (n, memory_width) = {(n, self.memory_width)}, "
                f"got {memory.shape}; start each game with initial_memory(n)"
            )
        if uniforms.shape != (n,):
            raise ValueError(f"{self.name}: uniforms must have shape (n,) = {(n,)}, got {uniforms.shape}")
        if n == 0:
            return
        # One reduction: as unsigned ints, negative values are huge, so max() > NO_MOVE catches both ends.
        as_unsigned = observations.view(np.uint64) if observations.dtype == np.int64 else observations.astype(np.uint64)
        if int(as_unsigned.max()) > NO_MOVE:
            bad = observations[(observations < COOPERATE) | (observations > NO_MOVE)].flat[0]
            raise ValueError(
                f"{self.name}: observation values must be 0 (C), 1 (D) or 2 (no move yet), got {bad}; "
                "after an illegal move the observation should hold the player's last legal move"
            )
        u_low, u_high = float(uniforms.min()), float(uniforms.max())
        if not (u_low >= 0.0 and u_high < 1.0):  # also rejects NaN
            raise ValueError(f"{self.name}: uniforms must lie in [0, 1), got values in [{u_low}, {u_high}]")
