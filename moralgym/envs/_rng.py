"""A vectorised, counter-based random stream: one independent uniform stream per game, advanced in lock-step.

Why not ``numpy.random.Generator``: a vector of thousands of games would need one Generator per game (a Python loop
per step) to make sub-game ``i`` of a vector env seeded ``s`` replay exactly the single env seeded ``s + i``.
A counter-based generator (SplitMix64 of ``key + counter``) gives that equality with pure array arithmetic.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser, elementwise on a uint64 array (wrapping arithmetic)."""
    z = x.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return z


class CounterRNG:
    """``n`` independent uniform streams; stream ``i`` of ``CounterRNG.from_seed(s, n)`` equals the only stream of
    ``CounterRNG.from_seed(s + i, 1)``."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = np.asarray(keys, dtype=np.uint64)
        self.counters = np.zeros(self.keys.shape, dtype=np.uint64)

    @classmethod
    def from_seed(cls, seed: int, n: int = 1) -> CounterRNG:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        with np.errstate(over="ignore"):
            base = np.uint64(int(seed) % 2**64) + np.arange(n, dtype=np.uint64)
            return cls(splitmix64(base * _GOLDEN + _GOLDEN))

    def uniform(self, mask: np.ndarray | None = None) -> np.ndarray:
        """One float in [0, 1) per stream; advances every stream by one (or only the streams where ``mask``;
        the values returned for the others are meaningless)."""
        with np.errstate(over="ignore"):
            if mask is None:
                self.counters += np.uint64(1)
            else:
                self.counters += np.asarray(mask, dtype=np.uint64)
            bits = splitmix64(self.keys + self.counters * _GOLDEN)
        return (bits >> np.uint64(11)).astype(np.float64) * _TO_UNIT

    def bits(self, count: int, mask: np.ndarray | None = None) -> np.ndarray:
        """``count`` uniforms per stream, shape ``(n, count)``: what ``count`` calls of :meth:`uniform` return, in
        one array operation (advancing each stream ``count`` times, or only the streams where ``mask``)."""
        return (self._draws(count, mask) >> np.uint64(11)).astype(np.float64) * _TO_UNIT

    def below_half(self, count: int, mask: np.ndarray | None = None) -> np.ndarray:
        """``bits(count, mask) < 0.5`` (the random "previous moves" of round one), from the top bit of each draw:
        the same values and stream advance as :meth:`bits`, without the conversion to floats."""
        # u = (z >> 11) * 2**-53 < 0.5 exactly when (z >> 11) < 2**52, i.e. when the top bit of z is 0.
        return self._draws(count, mask) < np.uint64(2**63)

    def skip(self, count: int, mask: np.ndarray | None = None) -> None:
        """Advance every stream (or those where ``mask``) past ``count`` draws without computing them."""
        step = np.uint64(count)
        self.counters += step if mask is None else step * np.asarray(mask, dtype=np.uint64)

    def _draws(self, count: int, mask: np.ndarray | None) -> np.ndarray:
        """The raw 64-bit draws behind :meth:`bits`, shape ``(n, count)``; advances the streams."""
        steps = np.arange(1, count + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            counters = self.counters[:, None] + steps
            if mask is None:
                self.counters += np.uint64(count)
            else:
                self.counters += np.uint64(count) * np.asarray(mask, dtype=np.uint64)
            return splitmix64(self.keys[:, None] + counters * _GOLDEN)

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.keys.copy(), self.counters.copy()

    def set_state(self, state: tuple[np.ndarray, np.ndarray]) -> None:
        self.keys, self.counters = (np.array(a, dtype=np.uint64) for a in state)


def entropy_seed() -> int:
    """A fresh non-negative seed from the OS, for ``reset(seed=None)`` before any seed was given."""
    return int(np.random.SeedSequence().entropy % 2**63)
