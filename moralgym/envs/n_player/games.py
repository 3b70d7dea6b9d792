"""Symmetric N-player C/D games defined by their Schelling diagram, the built-in families and their theory.

A :class:`SchellingGame` is data: two payoff arrays over the number ``k`` of *other* players who cooperate,
``cooperate_payoffs[k]`` (the player chose C) and ``defect_payoffs[k]`` (it chose D), ``k = 0 .. N - 1`` (Schelling,
"Hockey helmets, concealed weapons, and daylight saving", 1973). Every player faces the same two arrays, so one
player's payoff depends only on its own move and on how many of the others cooperate. Everything downstream (the
envs, the moral rewards, the co-player strategies) reads these fields and the helpers below, so a new game never
needs game-specific code elsewhere.

The built-in families (:data:`N_PLAYER_GAMES`; each builder's docstring states the textbook definition):

=========================  =================================  ======================================  ==============
name (aliases)             C with ``k`` others cooperating    D with ``k`` others cooperating         pure Nash eq.
=========================  =================================  ======================================  ==============
``public_goods``           ``r e (k + 1) / N``                ``e + r e k / N``                       all D
``n_player_ipd``           ``(k R + (N-1-k) S) / (N - 1)``    ``(k T + (N-1-k) P) / (N - 1)``         all D
``threshold_public_good``  ``b [k + 1 >= M] - c``             ``b [k >= M]``                          0 or M C
``volunteers_dilemma``     ``b - c``                          ``b [k >= 1]``                          one C
``n_player_snowdrift``     ``b - c / (k + 1)``                ``b [k >= 1]``                          one C
=========================  =================================  ======================================  ==============

Equilibria and optima are counted in *numbers of cooperators* ``m`` (any ``m`` players): the game is symmetric, so
every profile with ``m`` cooperators is alike. A profile with ``m`` cooperators is a pure Nash equilibrium when no
cooperator gains by defecting (``cooperate_payoffs[m - 1] >= defect_payoffs[m - 1]``) and no defector gains by
cooperating (``defect_payoffs[m] >= cooperate_payoffs[m]``).

A symmetric 2x2 :class:`~moralgym.envs.games.MatrixGame` is a Schelling diagram with ``N = 2``
(:func:`from_matrix_game`): ``cooperate_payoffs = [u(C, D), u(C, C)]``, ``defect_payoffs = [u(D, D), u(D, C)]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from moralgym.envs.games import COOPERATE, DEFECT, MatrixGame, check_real_numbers, get_game
from moralgym.registry import Registry

#: Group size of the registered envs and of :func:`get_n_player_game` when a name is given without ``num_players``
#: (Fehr and Gaechter's public-goods groups of four).
DEFAULT_NUM_PLAYERS = 4


@dataclass(frozen=True)
class SchellingGame:
    """A symmetric N-player game with actions C (0) and D (1), given by its Schelling diagram.

    Args:
        name: lower snake case (``"public_goods"``); the envs' metadata names derive from it.
        cooperate_payoffs: ``N`` finite real numbers: a cooperator's payoff when ``k`` others cooperate, ``k = 0..N-1``.
        defect_payoffs: ``N`` finite real numbers: a defector's payoff when ``k`` others cooperate.
        title: human-readable name (default: from ``name``).
        action_names: names of action 0 and action 1 in this game's story (``("Contribute", "Keep")``).
        short_names: aliases, for games added to a registry.
        parameters: the builder's arguments (``{"endowment": 1.0, "multiplier": 1.6}``), for reports and ``repr``.
    """

    name: str
    cooperate_payoffs: np.ndarray
    defect_payoffs: np.ndarray
    title: str = ""
    action_names: tuple[str, str] = ("Cooperate", "Defect")
    short_names: tuple[str, ...] = field(default=())
    parameters: dict[str, float] = field(default_factory=dict, compare=False)

    #: Action 0 is the cooperative action, as in every moralgym game.
    cooperate_action: ClassVar[int] = COOPERATE
    defect_action: ClassVar[int] = DEFECT

    def __post_init__(self) -> None:
        cooperate, defect = validate_diagram(self.cooperate_payoffs, self.defect_payoffs, game_name=self.name)
        object.__setattr__(self, "cooperate_payoffs", cooperate)
        object.__setattr__(self, "defect_payoffs", defect)
        if len(self.action_names) != 2 or not all(isinstance(n, str) and n for n in self.action_names):
            raise ValueError(
                f"game {self.name!r}: action_names must be two non-empty strings, got {self.action_names!r}"
            )
        object.__setattr__(self, "action_names", tuple(self.action_names))
        object.__setattr__(self, "short_names", tuple(self.short_names))
        object.__setattr__(self, "parameters", dict(self.parameters))
        if not self.title:
            object.__setattr__(self, "title", self.name.replace("_", " ").title())

    @property
    def num_players(self) -> int:
        return len(self.cooperate_payoffs)

    # ------------------------------------------------------------------------------------------------ payoffs
    def payoff(self, action: int, others_cooperating: int) -> float:
        """One player's payoff for ``action`` (0 = C, 1 = D) when ``others_cooperating`` of the others choose C."""
        if action not in (COOPERATE, DEFECT) or isinstance(action, bool):
            raise ValueError(f"game {self.name!r}: action must be 0 (C) or 1 (D), got {action!r}")
        if not 0 <= others_cooperating < self.num_players:
            raise ValueError(
                f"game {self.name!r}: others_cooperating must be in 0..{self.num_players - 1}, "
                f"got {others_cooperating!r}"
            )
        table = self.cooperate_payoffs if action == COOPERATE else self.defect_payoffs
        return float(table[others_cooperating])

    def payoffs(self, actions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Every player's payoff for joint actions ``(..., N)`` of 0 (C) / 1 (D); returns float64 ``(..., N)``."""
        joint = np.asarray(actions)
        if joint.shape[-1:] != (self.num_players,) or joint.dtype.kind not in "iub":
            raise ValueError(
                f"game {self.name!r}: actions must be integers of shape (..., {self.num_players}), "
                f"got {joint.dtype} of shape {joint.shape}"
            )
        if joint.size and not np.isin(joint, (COOPERATE, DEFECT)).all():
            raise ValueError(f"game {self.name!r}: actions must be 0 (C) or 1 (D), got {joint.tolist()!r}")
        cooperates = joint == COOPERATE
        others = cooperates.sum(axis=-1, keepdims=True) - cooperates
        return np.where(cooperates, self.cooperate_payoffs[others], self.defect_payoffs[others])

    @property
    def collective_payoffs(self) -> np.ndarray:
        """The sum of all payoffs when ``m`` players cooperate, ``m = 0 .. N`` (length ``N + 1``)."""
        n = self.num_players
        m = np.arange(n + 1)
        cooperators = np.where(m > 0, m * self.cooperate_payoffs[np.maximum(m - 1, 0)], 0.0)
        defectors = np.where(m < n, (n - m) * self.defect_payoffs[np.minimum(m, n - 1)], 0.0)
        return cooperators + defectors

    # ------------------------------------------------------------------------------------------------ theory
    def nash_equilibria(self, strict: bool = False) -> tuple[int, ...]:
        """The numbers of cooperators ``m`` whose profiles are pure Nash equilibria (weak ones unless ``strict``)."""
        cooperate, defect = self.cooperate_payoffs, self.defect_payoffs
        better = np.greater if strict else np.greater_equal
        equilibria = []
        for m in range(self.num_players + 1):
            cooperators_stay = m == 0 or bool(better(cooperate[m - 1], defect[m - 1]))
            defectors_stay = m == self.num_players or bool(better(defect[m], cooperate[m]))
            if cooperators_stay and defectors_stay:
                equilibria.append(m)
        return tuple(equilibria)

    def social_optima(self) -> tuple[int, ...]:
        """The numbers of cooperators that maximise the sum of payoffs (the Utilitarian optimum; ties all listed)."""
        totals = self.collective_payoffs
        return tuple(int(m) for m in np.flatnonzero(totals == totals.max()))

    @property
    def max_collective_payoff(self) -> float:
        """Highest sum of all payoffs in one round: the most a Utilitarian reward can be (for regrets)."""
        return float(self.collective_payoffs.max())

    @property
    def max_payoff(self) -> float:
        """Highest payoff one player can get in one round: the most a Game reward can be (for regrets)."""
        return float(max(self.cooperate_payoffs.max(), self.defect_payoffs.max()))

    @property
    def min_payoff(self) -> float:
        """Lowest payoff one player can get in one round (with a legal move)."""
        return float(min(self.cooperate_payoffs.min(), self.defect_payoffs.min()))

    def defection_dominates(self) -> bool:
        """Whether D pays strictly more than C whatever the others do (a Prisoner's-Dilemma-like game)."""
        return bool(np.all(self.defect_payoffs > self.cooperate_payoffs))

    # ------------------------------------------------------------------------------------------------ identity
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchellingGame):
            return NotImplemented
        return (
            self.name == other.name
            and self.action_names == other.action_names
            and np.array_equal(self.cooperate_payoffs, other.cooperate_payoffs)
            and np.array_equal(self.defect_payoffs, other.defect_payoffs)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.action_names, self.cooperate_payoffs.tobytes(), self.defect_payoffs.tobytes()))

    def __repr__(self) -> str:
        cooperate = ", ".join(f"{v:g}" for v in self.cooperate_payoffs)
        defect = ", ".join(f"{v:g}" for v in self.defect_payoffs)
        return f"SchellingGame({self.name!r}, N={self.num_players}: C=[{cooperate}], D=[{defect}])"


def validate_diagram(
    cooperate_payoffs: object, defect_payoffs: object, game_name: str = "custom"
) -> tuple[np.ndarray, np.ndarray]:
    """Both payoff arrays as read-only float64 vectors of one length ``N >= 2``, or a one-line ``ValueError``."""
    expected = "N >= 2 finite numbers, one per number k = 0..N-1 of other cooperators, e.g. [0, 3] and [1, 4]"
    arrays = []
    for which, payoffs in (("cooperate_payoffs", cooperate_payoffs), ("defect_payoffs", defect_payoffs)):
        try:
            check_real_numbers(payoffs)
            array = np.array(payoffs, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"game {game_name!r}: {which} must be {expected}; got {payoffs!r} ({error})") from None
        if array.ndim != 1 or len(array) < 2:
            raise ValueError(f"game {game_name!r}: {which} must be {expected}; got an array of shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"game {game_name!r}: {which} must be finite numbers; got {array.tolist()!r}")
        array.setflags(write=False)
        arrays.append(array)
    cooperate, defect = arrays
    if len(cooperate) != len(defect):
        raise ValueError(
            f"game {game_name!r}: cooperate_payoffs and defect_payoffs must have one entry per number of other "
            f"cooperators (the same length N); got {len(cooperate)} and {len(defect)}"
        )
    return cooperate, defect


# ---------------------------------------------------------------------------------------------------- builders
def _check_num_players(name: str, num_players: Any) -> int:
    if isinstance(num_players, bool) or not isinstance(num_players, (int, np.integer)) or num_players < 2:
        raise ValueError(f"{name}: num_players must be an integer >= 2, got {num_players!r}")
    return int(num_players)


def _check_number(name: str, parameter: str, value: Any, low: float | None = None, low_name: str = "") -> float:
    """``value`` as a finite float, above ``low`` when given; else a ``ValueError`` naming the game and the bound."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
    ):
        raise ValueError(f"{name}: {parameter} must be a finite number, got {value!r}")
    if low is not None and not value > low:
        raise ValueError(f"{name}: {parameter} must be greater than {low_name or f'{low:g}'}, got {value!r}")
    return float(value)


def linear_public_goods(num_players: int, endowment: float = 1.0, multiplier: float = 1.6) -> SchellingGame:
    """The linear public goods game (voluntary contribution mechanism; Isaac & Walker 1988, Fehr & Gaechter 2000).

    Every player holds an endowment ``e``; a cooperator contributes all of it to a common pot, a defector keeps it.
    The pot is multiplied by ``r`` and shared equally by all ``N`` players, contributors or not::

        payoff = kept + r * (total contributed) / N
        C with k other contributors: r e (k + 1) / N          D: e + r e k / N

    With ``1 < r < N`` (enforced) each contribution returns only ``r / N < 1`` to its contributor, so keeping
    dominates: full defection is the unique Nash equilibrium, while full contribution maximises the sum
    (``N r e`` against ``N e``). Default ``r = 1.6``: Fehr and Gaechter's marginal per-capita return of 0.4 in
    groups of four.
    """
    name = "linear_public_goods"
    n = _check_num_players(name, num_players)
    e = _check_number(name, "endowment", endowment, 0.0)
    r = _check_number(name, "multiplier", multiplier)
    if not 1.0 < r < n:
        raise ValueError(
            f"{name}: multiplier must satisfy 1 < r < num_players = {n} (the range where it is a dilemma), got {r!r}; "
            "pass your own SchellingGame for other values"
        )
    k = np.arange(n)
    return SchellingGame(
        "public_goods",
        r * e * (k + 1) / n,
        e + r * e * k / n,
        title="Public Goods",
        action_names=("Contribute", "Keep"),
        parameters={"num_players": n, "endowment": e, "multiplier": r},
    )


def n_player_prisoners_dilemma(
    num_players: int, temptation: float = 4.0, reward: float = 3.0, punishment: float = 1.0, sucker: float = 0.0
) -> SchellingGame:
    """The N-person Prisoner's Dilemma as the average of the two-player games with every other player.

    Each player plays the 2x2 Prisoner's Dilemma (``T > R > P > S``, enforced) once with each of the ``N - 1``
    others and earns the mean::

        C with k other cooperators: (k R + (N - 1 - k) S) / (N - 1)
        D with k other cooperators: (k T + (N - 1 - k) P) / (N - 1)

    Schelling's (1973) and Dawes' (1980) conditions hold: D pays more than C whatever the others do (``T > R``,
    ``P > S``), yet everyone is better off when all cooperate (``R``) than when all defect (``P``): full defection
    is the unique Nash equilibrium. The defaults are the paper's IPD, so at ``N = 2`` this is exactly ``"ipd"``.
    """
    name = "n_player_prisoners_dilemma"
    n = _check_num_players(name, num_players)
    t, r, p, s = (
        _check_number(name, parameter, value)
        for parameter, value in (
            ("temptation", temptation),
            ("reward", reward),
            ("punishment", punishment),
            ("sucker", sucker),
        )
    )
    if not t > r > p > s:
        raise ValueError(
            f"{name}: a Prisoner's Dilemma needs temptation > reward > punishment > sucker, got T={t:g}, R={r:g}, "
            f"P={p:g}, S={s:g}"
        )
    k = np.arange(n)
    return SchellingGame(
        "n_player_ipd",
        (k * r + (n - 1 - k) * s) / (n - 1),
        (k * t + (n - 1 - k) * p) / (n - 1),
        title="N-player Prisoner's Dilemma",
        parameters={"num_players": n, "temptation": t, "reward": r, "punishment": p, "sucker": s},
    )


def threshold_public_good(
    num_players: int, threshold: int | None = None, benefit: float = 3.0, cost: float = 1.0
) -> SchellingGame:
    """The threshold (step-level) public good, an N-player Stag Hunt (Palfrey & Rosenthal 1984).

    A cooperator pays ``c``; the good, worth ``b`` to *every* player, is provided only when at least ``M``
    players cooperate (``0 < c < b``, ``1 <= M <= N``; default ``M = N // 2 + 1``, a majority, which is the
    two-player Stag Hunt shape at ``N = 2``)::

        C with k other cooperators: b [k + 1 >= M] - c         D: b [k >= M]

    For ``M >= 2`` there are two pure Nash equilibria, like the Stag Hunt's: nobody cooperates (safe), or exactly
    ``M`` do (each cooperator is pivotal); ``M`` cooperators is also the social optimum. ``M = N`` is the
    weakest-link Stag Hunt (all-or-nothing); ``M = 1`` is a Volunteer's Dilemma.
    """
    name = "threshold_public_good"
    n = _check_num_players(name, num_players)
    m = n // 2 + 1 if threshold is None else threshold
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= n:
        raise ValueError(f"{name}: threshold must be an integer in 1..num_players = {n}, got {threshold!r}")
    c = _check_number(name, "cost", cost, 0.0)
    b = _check_number(name, "benefit", benefit, c, f"the cost {c:g}")
    k = np.arange(n)
    return SchellingGame(
        "threshold_public_good",
        b * (k + 1 >= m) - c,
        b * (k >= m),
        title="Threshold Public Good",
        action_names=("Contribute", "Keep"),
        parameters={"num_players": n, "threshold": int(m), "benefit": b, "cost": c},
    )


def volunteers_dilemma(num_players: int, benefit: float = 3.0, cost: float = 1.0) -> SchellingGame:
    """The Volunteer's Dilemma (Diekmann 1985): one volunteer is enough, and each hopes someone else volunteers.

    A volunteer (C) pays ``c``; if at least one player volunteers, every player receives ``b`` (``0 < c < b``)::

        C: b - c (whatever the others do)        D with k other volunteers: b [k >= 1]

    The pure Nash equilibria have exactly one volunteer (``N`` asymmetric profiles), which is also the social
    optimum; nobody volunteering is the worst outcome.
    """
    name = "volunteers_dilemma"
    n = _check_num_players(name, num_players)
    c = _check_number(name, "cost", cost, 0.0)
    b = _check_number(name, "benefit", benefit, c, f"the cost {c:g}")
    k = np.arange(n)
    return SchellingGame(
        "volunteers_dilemma",
        np.full(n, b - c),
        b * (k >= 1),
        title="Volunteer's Dilemma",
        action_names=("Volunteer", "Abstain"),
        parameters={"num_players": n, "benefit": b, "cost": c},
    )


def n_player_snowdrift(num_players: int, benefit: float = 3.0, cost: float = 2.0) -> SchellingGame:
    """The N-person Snowdrift (Chicken) game (Zheng et al. 2007; Souza, Pacheco & Santos 2009).

    A road is blocked by a snowdrift. If at least one player shovels (C), everyone gets home (``b``); the work
    ``c`` is shared equally by the shovellers (``0 < c < b``)::

        C with k other cooperators: b - c / (k + 1)        D: b [k >= 1]

    At ``N = 2`` it is the two-player Snowdrift / Chicken game (defaults: 2, 1, 3, 0). Its pure Nash equilibria have
    exactly one cooperator; the sum of payoffs, ``N b - c``, is the same for any positive number of cooperators,
    so every ``m >= 1`` is socially optimal.
    """
    name = "n_player_snowdrift"
    n = _check_num_players(name, num_players)
    c = _check_number(name, "cost", cost, 0.0)
    b = _check_number(name, "benefit", benefit, c, f"the cost {c:g}")
    k = np.arange(n)
    return SchellingGame(
        "n_player_snowdrift",
        b - c / (k + 1),
        b * (k >= 1),
        title="N-player Snowdrift",
        action_names=("Shovel", "Wait"),
        parameters={"num_players": n, "benefit": b, "cost": c},
    )


def from_matrix_game(game: MatrixGame | str) -> SchellingGame:
    """The two-player Schelling diagram of a symmetric 2x2 game: ``C = [u(C, D), u(C, C)]``, ``D = [u(D, D), u(D, C)]``.

    ``u(a, b)`` is the row player's payoff when it plays ``a`` and the column player ``b``. Raises ``ValueError``
    for an asymmetric game (Bach-or-Stravinsky), whose players face different tables.
    """
    game = get_game(game)
    payoffs = game.payoffs
    for row in (COOPERATE, DEFECT):
        for col in (COOPERATE, DEFECT):
            if payoffs[row, col, 0] != payoffs[col, row, 1]:
                raise ValueError(
                    f"game {game.name!r} is not symmetric (the row player's payoff for ({row}, {col}) is "
                    f"{payoffs[row, col, 0]:g}, the column player's for ({col}, {row}) is {payoffs[col, row, 1]:g}); "
                    "a Schelling diagram needs both players to face the same table"
                )
    return SchellingGame(
        game.name,
        [payoffs[COOPERATE, DEFECT, 0], payoffs[COOPERATE, COOPERATE, 0]],
        [payoffs[DEFECT, DEFECT, 0], payoffs[DEFECT, COOPERATE, 0]],
        title=game.title,
        action_names=game.action_names,
    )


# ---------------------------------------------------------------------------------------------------- registry
#: Builders of the N-player games by name: each takes ``num_players`` and its parameters (keyword arguments) and
#: returns a :class:`SchellingGame` (:class:`~moralgym.registry.Registry` rules: case, spaces and dashes ignored).
N_PLAYER_GAMES: Registry[Callable[..., SchellingGame]] = Registry(
    "N-player game",
    builder="get_n_player_game",
    hint=" (or pass a SchellingGame or (cooperate_payoffs, defect_payoffs))",
)
N_PLAYER_GAMES.register("public_goods", linear_public_goods, aliases=("linear_public_goods", "pgg"))
N_PLAYER_GAMES.register("n_player_ipd", n_player_prisoners_dilemma, aliases=("n_player_prisoners_dilemma", "nipd"))
N_PLAYER_GAMES.register(
    "threshold_public_good", threshold_public_good, aliases=("n_player_stag_hunt", "step_level_public_good")
)
N_PLAYER_GAMES.register("volunteers_dilemma", volunteers_dilemma, aliases=("volunteer", "vod"))
N_PLAYER_GAMES.register("n_player_snowdrift", n_player_snowdrift, aliases=("n_player_chicken",))


def register_n_player_game(
    name: str, builder: Callable[..., SchellingGame], aliases: tuple[str, ...] = (), *, overwrite: bool = False
) -> None:
    """Make ``builder(num_players, **parameters)`` reachable by ``name`` and each alias.

    A name or alias that belongs to another game is a ``ValueError`` unless ``overwrite`` (a silently re-pointed
    ``"public_goods"`` would change every experiment that names it).
    """
    N_PLAYER_GAMES.register(name, builder, aliases, overwrite=overwrite)


def list_n_player_games() -> list[str]:
    """Names of the registered N-player games."""
    return N_PLAYER_GAMES.names()


def get_n_player_game(
    game: str | SchellingGame | MatrixGame | tuple[Any, Any], num_players: int | None = None, **parameters: Any
) -> SchellingGame:
    """A :class:`SchellingGame` from a registered name (built for ``num_players``, default
    :data:`DEFAULT_NUM_PLAYERS`, with the builder's ``parameters``), a ``SchellingGame``, a symmetric
    :class:`~moralgym.envs.games.MatrixGame` (:func:`from_matrix_game`) or a ``(cooperate_payoffs, defect_payoffs)``
    pair.

    Raises:
        KeyError: unknown name; the message lists the known games.
        TypeError: a parameter the named game does not take (the message lists the accepted ones), or parameters
            given with a game that is not a name.
        ValueError: a malformed diagram, a parameter out of range, or a ``num_players`` that differs from the
            game's own.
    """
    if isinstance(game, str):
        n = DEFAULT_NUM_PLAYERS if num_players is None else num_players
        return N_PLAYER_GAMES.build(game, num_players=n, **parameters)
    if parameters:
        raise TypeError(f"game parameters {sorted(parameters)} only apply to game names, not to {game!r}")
    if isinstance(game, MatrixGame):
        built = from_matrix_game(game)
    elif isinstance(game, SchellingGame):
        built = game
    elif isinstance(game, (tuple, list)) and len(game) == 2:
        built = SchellingGame("custom", game[0], game[1])
    else:
        raise TypeError(
            "an N-player game must be a registered name, a SchellingGame, a symmetric MatrixGame or a "
            f"(cooperate_payoffs, defect_payoffs) pair, got {type(game).__name__}: {game!r}"
        )
    if num_players is not None and num_players != built.num_players:
        raise ValueError(
            f"game {built.name!r} has {built.num_players} players, got num_players={num_players!r}; "
            "leave num_players out or build the game for that many players"
        )
    return built
