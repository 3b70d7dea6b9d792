"""Fixed strategies for symmetric N-player C/D games (public goods, volunteering, thresholds), vectorised over games.

A strategy sits in one seat of an N-player game defined by a Schelling diagram
(:class:`~moralgym.envs.n_player.opponents.SchellingDiagram`: the payoffs of C and of D as functions of how many
*others* cooperate). In each game it sees ``[own_previous, others_cooperated]``: its own previous move (0 = C,
1 = D, 2 = no move yet) and how many of the other ``N - 1`` players cooperated last round (0 .. N - 1, or ``N`` for
"no move yet"). Like the two-player :class:`~moralgym.agents.strategies.base.Strategy`, the whole behaviour is one
pure function, :meth:`NPlayerStrategyBase.act_batch`, applied to ``n`` games at once with numpy, and the one-game
methods (:meth:`~NPlayerStrategyBase.reset`, :meth:`~NPlayerStrategyBase.act`) call it with ``n = 1``, so the two
paths cannot disagree. A stochastic strategy never draws random numbers: it cooperates iff the game's uniform
``u < p``.

==========================  ========================================================================  ============
name (aliases)              behaviour                                                                 at N = 2
==========================  ========================================================================  ============
``always_cooperate``        C every round                                                             Always C
``always_defect``           D every round                                                             Always D
``random``                  C with probability ``p``                                                  Random
``conditional_cooperator``  C iff at least ``threshold`` others cooperated last round (default: all)  Tit-for-Tat
``grim_trigger``            C until fewer than ``threshold`` others cooperated in a round, then D     Grim Trigger
``win_stay_lose_shift``     repeat the move iff last round paid at least ``aspiration``, else switch  Pavlov (IPD)
==========================  ========================================================================  ============

Why the names repeat the two-player ones, in a registry of their own (:data:`N_PLAYER_STRATEGIES`): a name stands
for one behavioural idea in both families, and at N = 2 each N-player strategy plays exactly as its two-player
namesake (tested in ``tests/test_n_player_strategies.py``), so a user moving from the IPD to a public goods game
keeps the names they know. They cannot share one registry because the two kinds are not interchangeable: the
N-player envs call ``act_batch(observations, memory, uniforms, game)`` with a count of cooperating others, the
two-player envs ``act_batch(observations, memory, uniforms)`` with the opponent's move, so one registry would
resolve a name to an object half the envs cannot drive. Importing :mod:`moralgym.agents.strategies` registers
these classes with :func:`moralgym.envs.n_player.opponents.register_n_player_opponent`, so the N-player envs accept
them by name.

Conventions (the same as the two-player strategies'):

* Round one may start from a random fake history (the paper's random initial state); a strategy treats it as real,
  so a conditional cooperator shown "0 others cooperated" defects in round one.
* Where the behaviour reads the previous round (conditional cooperator, win-stay-lose-shift), an observation with
  "no move yet" on *either* side gives the opening move C, as the two-player memory-one strategies do: there is
  nothing to react to. Grim Trigger, like its two-player namesake, reads only the others' count, and "no move yet"
  never triggers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

from moralgym.agents.strategies.base import COOPERATE, DEFECT, NO_MOVE, check_probability
from moralgym.envs.n_player.opponents import NPlayerStrategy, SchellingDiagram, make_n_player_opponent
from moralgym.registry import Registry

__all__ = [
    "N_PLAYER_STRATEGIES",
    "ConditionalCooperator",
    "NPlayerAlwaysCooperate",
    "NPlayerAlwaysDefect",
    "NPlayerGrimTrigger",
    "NPlayerRandom",
    "NPlayerStrategyBase",
    "NPlayerWinStayLoseShift",
    "get_n_player_strategy",
    "list_n_player_strategies",
]


def _check_threshold(name: str, value: object) -> int | None:
    """``value`` as an int, ``None`` (= all others), or ``ValueError`` unless it is a non-negative integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer number of other players, or None, got {value!r}")
    return int(value)


class NPlayerStrategyBase:
    """A fixed policy for one seat of a symmetric N-player C/D game, vectorised over games.

    The N-player counterpart of :class:`~moralgym.agents.strategies.base.Strategy` (it implements the envs'
    :class:`~moralgym.envs.n_player.opponents.NPlayerStrategy` protocol). Subclasses set the class attributes below
    and implement :meth:`_act`; they validate their parameters in ``__init__`` (and against the game's size in
    :meth:`_act`, since one instance may play games of different sizes) and list them in :meth:`params`.

    Attributes:
        name: registry key, lower snake case (``"conditional_cooperator"``).
        aliases: other names it is known by, accepted by :func:`get_n_player_strategy`.
        memory_depth: how many past rounds the behaviour depends on (``float("inf")`` for "the whole game").
        stochastic: whether the choice depends on the uniforms (refined per instance where parameters decide it).
        memory_width: number of int64 columns of per-game memory the strategy keeps (0 if none).
        initial_move: the round-one "previous move" envs show for this seat under a random initial state: ``None``
            draws it; Always Cooperate / Always Defect fix C / D, as in the two-player envs.
    """

    name: ClassVar[str] = "n_player_strategy"
    aliases: ClassVar[tuple[str, ...]] = ()
    memory_depth: ClassVar[int | float] = float("inf")
    stochastic: bool = False
    memory_width: ClassVar[int] = 0
    initial_move: ClassVar[int | None] = None

    # ----------------------------------------------------------------------------------------- vectorised core
    def initial_memory(self, n: int) -> np.ndarray:
        """Per-game memory before the first round: shape ``(n, memory_width)``, int64, all zeros."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n (number of games) must be a non-negative integer, got {n!r}")
        return np.zeros((int(n), self.memory_width), dtype=np.int64)

    def act_batch(
        self, observations: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]:
        """Choose one action per game.

        Args:
            observations: ``(n, 2)`` ints ``[own_previous, others_cooperated]``: own previous move in {0 (C), 1 (D),
                2 (no move yet)}, number of other players who cooperated last round in 0 .. N - 1, or N (no move
                yet).
            memory: ``(n, memory_width)`` int64, from :meth:`initial_memory` or the previous call; not modified.
            uniforms: ``(n,)`` floats in [0, 1); a stochastic strategy cooperates iff ``u < p``.
            game: the game's Schelling diagram (``num_players``, ``cooperate_payoffs``, ``defect_payoffs``).

        Returns:
            ``(actions, new_memory)``: actions ``(n,)`` int64 in {0, 1}, and the memory to pass next round.
        """
        observations = np.asarray(observations)
        memory = np.asarray(memory)
        uniforms = np.asarray(uniforms)
        num_players = self._check_game(game)
        self._check_batch(observations, memory, uniforms, num_players)
        actions, new_memory = self._act(observations[:, 0], observations[:, 1], memory, uniforms, game)
        return actions.astype(np.int64, copy=False), new_memory

    def _act(
        self, own: np.ndarray, others: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]:
        """The behaviour: ``own`` and ``others`` (cooperating others) are ``(n,)``. Must not modify its inputs."""
        raise NotImplementedError(f"{type(self).__name__} must implement _act()")

    # ----------------------------------------------------------------------------------------- one game
    def reset(self, seed: int | None = None) -> None:
        """Start a new single game for :meth:`act`; ``seed`` seeds the uniforms :meth:`act` draws itself."""
        self._memory = self.initial_memory(1)
        self._rng = np.random.default_rng(seed)

    def act(self, observation: Sequence[int] | np.ndarray, game: SchellingDiagram, uniform: float | None = None) -> int:
        """One round of one game: the action (0 = C, 1 = D) for ``observation = [own_previous, others_cooperated]``.

        Keeps its own one-game memory between calls (call :meth:`reset` to start a new game). When ``uniform`` is
        None, one is drawn from the generator seeded by :meth:`reset` (drawn every call, stochastic or not).
        """
        if not hasattr(self, "_memory"):
            self.reset()
        if uniform is None:
            uniform = float(self._rng.random())
        observations = np.asarray(observation).reshape(1, -1)
        actions, self._memory = self.act_batch(observations, self._memory, np.array([uniform], dtype=np.float64), game)
        return int(actions[0])

    # ----------------------------------------------------------------------------------------- description
    def params(self) -> dict[str, Any]:
        """The constructor arguments that define this instance (empty for parameter-free strategies)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params().items())
        return f"{type(self).__name__}({args})"

    # ----------------------------------------------------------------------------------------- checks
    def _check_game(self, game: object) -> int:
        """The game's number of players, or ``TypeError`` / ``ValueError`` if it is not a usable diagram."""
        if not isinstance(game, SchellingDiagram):
            raise TypeError(
                f"{self.name}: game must have num_players, cooperate_payoffs and defect_payoffs "
                f"(a Schelling diagram), got {game!r}"
            )
        num_players = game.num_players
        if isinstance(num_players, bool) or not isinstance(num_players, Integral) or num_players < 2:
            raise ValueError(f"{self.name}: game.num_players must be an integer >= 2, got {num_players!r}")
        return int(num_players)

    def _check_batch(
        self, observations: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, num_players: int
    ) -> None:
        if observations.ndim != 2 or observations.shape[1] != 2:
            raise ValueError(
                f"{self.name}: observations must have shape (n, 2) = [own_previous, others_cooperated], "
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
        own, others = observations[:, 0], observations[:, 1]
        if int(own.min()) < COOPERATE or int(own.max()) > NO_MOVE:
            bad = own[(own < COOPERATE) | (own > NO_MOVE)][0]
            raise ValueError(
                f"{self.name}: own_previous must be 0 (C), 1 (D) or 2 (no move yet), got {bad}; after an illegal "
                "move the observation should hold the player's last legal move"
            )
        if int(others.min()) < 0 or int(others.max()) > num_players:
            bad = others[(others < 0) | (others > num_players)][0]
            raise ValueError(
                f"{self.name}: others_cooperated must be in 0 .. {num_players - 1} or {num_players} (no move yet) "
                f"for a {num_players}-player game, got {bad}"
            )
        u_low, u_high = float(uniforms.min()), float(uniforms.max())
        if not (u_low >= 0.0 and u_high < 1.0):  # also rejects NaN
            raise ValueError(f"{self.name}: uniforms must lie in [0, 1), got values in [{u_low}, {u_high}]")

    def _threshold_for(self, threshold: int | None, num_players: int) -> int:
        """``threshold`` resolved for a game of ``num_players`` (``None`` = all others), or ``ValueError``."""
        if threshold is None:
            return num_players - 1
        if threshold > num_players - 1:
            raise ValueError(
                f"{self.name}: threshold must be at most the number of other players, {num_players - 1} in a "
                f"{num_players}-player game, got {threshold}"
            )
        return threshold


class NPlayerAlwaysCooperate(NPlayerStrategyBase):
    """Always Cooperate: contributes every round, whatever the others did.

    The unconditional cooperator ("altruist") of the public goods literature and the N-player Always Cooperate /
    AllC of Axelrod's library; at N = 2 it is :class:`~moralgym.agents.strategies.simple.AlwaysCooperate`.
    """

    name: ClassVar[str] = "always_cooperate"
    aliases: ClassVar[tuple[str, ...]] = ("allc", "all_c", "cooperator", "unconditional_cooperator")
    memory_depth: ClassVar[int | float] = 0
    initial_move: ClassVar[int | None] = COOPERATE

    def _act(
        self, own: np.ndarray, others: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.full(own.shape, COOPERATE, dtype=np.int64), memory


class NPlayerAlwaysDefect(NPlayerStrategyBase):
    """Always Defect: free-rides every round, whatever the others did.

    The dominant strategy of the one-shot N-player Prisoner's Dilemma and linear public goods game (r < N), and the
    N-player AllD; at N = 2 it is :class:`~moralgym.agents.strategies.simple.AlwaysDefect`.
    """

    name: ClassVar[str] = "always_defect"
    aliases: ClassVar[tuple[str, ...]] = ("alld", "all_d", "defector", "free_rider")
    memory_depth: ClassVar[int | float] = 0
    initial_move: ClassVar[int | None] = DEFECT

    def _act(
        self, own: np.ndarray, others: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.full(own.shape, DEFECT, dtype=np.int64), memory


class NPlayerRandom(NPlayerStrategyBase):
    """Random: cooperates with probability ``p`` every round, independently of the history.

    Axelrod's RANDOM entry and the evaluation opponent of Tennant et al. (2025), in a group; at N = 2 it is
    :class:`~moralgym.agents.strategies.simple.Random`. ``stochastic`` is false for an instance with ``p`` 0 or 1.

    Args:
        p: probability of cooperating, in [0, 1] (default 0.5). The game's uniform ``u`` gives C iff ``u < p``.
    """

    name: ClassVar[str] = "random"
    aliases: ClassVar[tuple[str, ...]] = ("random_player", "coin_flip")
    memory_depth: ClassVar[int | float] = 0
    stochastic = True

    def __init__(self, p: float = 0.5) -> None:
        self.p = check_probability(f"{self.name}: p (probability of cooperating)", p)
        self.stochastic = 0.0 < self.p < 1.0

    def params(self) -> dict[str, Any]:
        return {"p": self.p}

    def _act(
        self, own: np.ndarray, others: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]:
        # C = 0 and D = 1, so "defect unless u < p" is the boolean (u >= p).
        return (uniforms >= self.p).astype(np.int64), memory


class ConditionalCooperator(NPlayerStrategyBase):
    """Conditional Cooperator: cooperates iff at least ``threshold`` of the others cooperated last round.

    The threshold reciprocator of Boyd & Richerson (1988, "The evolution of reciprocity in sizable groups", J.
    Theor. Biol. 132), who showed that reciprocity is harder to sustain the larger the group; behavioural public
    goods experiments find most people are conditional cooperators (Fischbacher, Gächter & Fehr 2001). Opens with
    C. With the default ``threshold`` (all ``N - 1`` others) it defects after any defection, the strict N-player
    Tit-for-Tat; at N = 2 with threshold 1 it *is* :class:`~moralgym.agents.strategies.titfortat.TitForTat`. Memory
    depth 1, no memory kept.

    Args:
        threshold: K, the number of cooperating others it needs, 0 .. N - 1 (``None``, the default, means all
            others). K = 0 cooperates unconditionally; a K above N - 1 is a ``ValueError`` when a game is played.
    """

    name: ClassVar[str] = "conditional_cooperator"
    aliases: ClassVar[tuple[str, ...]] = ("reciprocator", "conditional_cooperation", "tit_for_tat", "tft")
    memory_depth: ClassVar[int | float] = 1

    def __init__(self, threshold: int | None = None) -> None:
        self.threshold = _check_threshold(f"{self.name}: threshold (K)", threshold)

    def params(self) -> dict[str, Any]:
        return {"threshold": self.threshold}

    def _act(
        self, own: np.ndarray, others: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]:
        num_players = int(game.num_players)
        threshold = self._threshold_for(self.threshold, num_players)
        opening = (own == NO_MOVE) | (others == num_players)
        defect = (others < threshold) & ~opening
        return defect.astype(np.int64), memory


class NPlayerGrimTrigger(NPlayerStrategyBase):
    """Grim Trigger: cooperates until a round in which fewer than ``threshold`` others cooperated, then defects
    for the rest of the game.

    Friedman's (1971) unforgiving strategy, in a group: the threat of permanent defection sustains cooperation in
    the repeated N-player Prisoner's Dilemma (the trigger strategies of the folk theorem). Also called Grudger,
    Spiteful or Grim. Opens with C; "no move yet" never triggers it. With the default ``threshold`` (all others) one
    defection by anyone triggers it; at N = 2 it is :class:`~moralgym.agents.strategies.grudger.GrimTrigger`.

    Args:
        threshold: K, the number of cooperating others it needs each round, 0 .. N - 1 (``None``, the default,
            means all others).

    Memory: one column, 1 once triggered (0 before).
    """

    name: ClassVar[str] = "grim_trigger"
    aliases: ClassVar[tuple[str, ...]] = ("grudger", "spiteful", "grim", "unforgiving", "friedman")
    memory_depth: ClassVar[int | float] = float("inf")
    memory_width: ClassVar[int] = 1

    def __init__(self, threshold: int | None = None) -> None:
        self.threshold = _check_threshold(f"{self.name}: threshold (K)", threshold)

    def params(self) -> dict[str, Any]:
        return {"threshold": self.threshold}

    def _act(
        self, own: np.ndarray, others: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]:
        num_players = int(game.num_players)
        threshold = self._threshold_for(self.threshold, num_players)
        betrayed = (others < threshold) & (others != num_players)
        # Defect (1) once triggered, cooperate (0) before: the flag is the action.
        actions = ((memory[:, 0] == 1) | betrayed).astype(np.int64)
        return actions, actions.reshape(-1, 1).copy()


class NPlayerWinStayLoseShift(NPlayerStrategyBase):
    """Win-Stay-Lose-Shift with an aspiration level: repeats its move if last round paid at least ``aspiration``,
    and switches otherwise.

    Last round's payoff is read off the game's diagram: ``cooperate_payoffs[k]`` after its own C, ``defect_payoffs[k]``
    after its own D, with ``k`` the others who cooperated. Aspiration-based win-stay-lose-shift is Posch's (1999,
    "Win-stay, lose-shift strategies for repeated games - memory length, aspiration levels and noise", J. Theor.
    Biol. 198) generalisation of Pavlov and the satisficing rule of Macy & Flache (2002, "Learning dynamics in social
    dilemmas", PNAS 99) for N-person dilemmas. Opens with C (also whenever either side shows "no move yet"). In a
    two-player Prisoner's Dilemma any aspiration in (P, R] makes it Pavlov,
    :class:`~moralgym.agents.strategies.memoryone.WinStayLoseShift`.

    Args:
        aspiration: the payoff it is satisfied with, a finite number. ``None`` (the default) uses the mean of the
            game's 2N diagram payoffs, recomputed for each game: for moralgym's IPD (T=4, R=3, P=1, S=0) that is
            2, between P and R, so the default is Pavlov there (and in moralgym's Stag Hunt and Chicken).
    """

    name: ClassVar[str] = "win_stay_lose_shift"
    aliases: ClassVar[tuple[str, ...]] = ("pavlov", "wsls", "aspiration_wsls")
    memory_depth: ClassVar[int | float] = 1

    def __init__(self, aspiration: float | None = None) -> None:
        if aspiration is not None and (
            isinstance(aspiration, bool) or not isinstance(aspiration, Real) or not np.isfinite(float(aspiration))
        ):
            raise ValueError(f"{self.name}: aspiration must be a finite number or None, got {aspiration!r}")
        self.aspiration = None if aspiration is None else float(aspiration)

    def params(self) -> dict[str, Any]:
        return {"aspiration": self.aspiration}

    def _act(
        self, own: np.ndarray, others: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingDiagram
    ) -> tuple[np.ndarray, np.ndarray]:
        num_players = int(game.num_players)
        cooperate_payoffs = np.asarray(game.cooperate_payoffs, dtype=np.float64)
        defect_payoffs = np.asarray(game.defect_payoffs, dtype=np.float64)
        if cooperate_payoffs.shape != (num_players,) or defect_payoffs.shape != (num_players,):
            raise ValueError(
                f"{self.name}: the game's cooperate_payoffs and defect_payoffs must each have num_players = "
                f"{num_players} entries, got shapes {cooperate_payoffs.shape} and {defect_payoffs.shape}"
            )
        aspiration = self.aspiration
        if aspiration is None:
            aspiration = float(np.concatenate([cooperate_payoffs, defect_payoffs]).mean())
        opening = (own == NO_MOVE) | (others == num_players)
        # Rows with "no move yet" index entry 0; their payoff is never used.
        k = np.where(opening, 0, others)
        payoff = np.where(own == COOPERATE, np.take(cooperate_payoffs, k), np.take(defect_payoffs, k))
        stay = payoff >= aspiration
        # C = 0 and D = 1: staying keeps ``own``, shifting plays 1 - own.
        actions = np.where(stay, own, 1 - own)
        return np.where(opening, COOPERATE, actions).astype(np.int64), memory


#: Every built-in N-player strategy class by registry name, with its ``aliases`` (a
#: :class:`~moralgym.registry.Registry`, so ``N_PLAYER_STRATEGIES["pavlov"]`` is :class:`NPlayerWinStayLoseShift`).
#: Separate from the two-player :data:`~moralgym.agents.strategies.STRATEGIES` (module docstring says why).
N_PLAYER_STRATEGIES: Registry[type[NPlayerStrategyBase]] = Registry(
    "N-player strategy", "strategies", builder="get_n_player_strategy"
)

for _cls in (
    NPlayerAlwaysCooperate,
    NPlayerAlwaysDefect,
    NPlayerRandom,
    ConditionalCooperator,
    NPlayerGrimTrigger,
    NPlayerWinStayLoseShift,
):
    N_PLAYER_STRATEGIES.register(_cls.name, _cls, _cls.aliases)


def get_n_player_strategy(strategy: str | NPlayerStrategy, **kwargs: Any) -> NPlayerStrategy:
    """Build an N-player strategy from its name or alias (case, spaces and dashes do not matter) and keyword
    arguments, or pass a strategy object through. Same as
    :func:`moralgym.envs.n_player.opponents.make_n_player_opponent`.

    Raises:
        KeyError: unknown name; the message lists the known ones.
        TypeError: a keyword argument the strategy does not take (the message lists the accepted ones).
        ValueError: a parameter out of range (the message names it and the accepted range).
    """
    return make_n_player_opponent(strategy, **kwargs)


def list_n_player_strategies(*, stochastic: bool | None = None, memory_depth: int | float | None = None) -> list[str]:
    """Names of the built-in N-player strategies, sorted, optionally only those with the given class metadata.

    Args:
        stochastic: keep only stochastic (True) or only deterministic (False) strategy classes.
        memory_depth: keep only strategies with this memory depth (``float("inf")`` for unbounded memory).
    """
    return sorted(
        name
        for name, cls in N_PLAYER_STRATEGIES.items()
        if (stochastic is None or cls.stochastic == stochastic)
        and (memory_depth is None or cls.memory_depth == memory_depth)
    )
