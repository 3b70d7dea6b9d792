"""Intrinsic moral rewards (paper Table 1) and schedules that switch between them.

Every reward is a pure, vectorised function of one round seen from one player: its action, the partner's action,
the partner's *previous* move (what the player saw before choosing) and both game payoffs. Inputs may be numpy
arrays (thousands of games at once) or scalars.

==========================  ==================================================================  =======
name (aliases)              reward for a legal move                                             illegal
==========================  ==================================================================  =======
``game`` (selfish)          own payoff                                                          ``-6``
``deontological`` (de)      ``-xi`` if own move is D and the partner's previous move was C      ``-6``
``utilitarian`` (ut)        own payoff + partner's payoff                                       ``-6``
``game_deontological``      own payoff, minus ``xi`` if D after the partner's C                 ``-6``
``inequity_aversion`` (ia)  ``u_i - alpha max(u_j - u_i, 0) - beta max(u_i - u_j, 0)``          ``-6``
``virtue_kindness``         ``bonus`` (5) if own move is C, else 0                              ``-6``
``virtue_equality``         ``1 - |U_i - U_j| / (U_i + U_j)``, ``U`` the episode's payoff sums  ``-6``
``virtue_mixed``            ``w`` equality + ``(1 - w)`` [own move is C]                        ``-6``
==========================  ==================================================================  =======

The last four are the social preferences of Fehr and Schmidt (inequity aversion, ``alpha`` = 5, ``beta`` = 0.05, as
Hughes et al. 2018 used them) and the virtues of Tennant, Hailes and Musolesi (IJCAI 2023); their formulas live in
:mod:`moralgym.envs.social_preferences` (for N players too, :mod:`moralgym.envs.n_player.rewards`). They are not in
the four ``moral_rewards`` components of the two-player envs' infos. Equality and mixed read the episode's
cumulative payoffs (:attr:`RewardInputs.own_cumulative_payoff`), which ``MatrixGameEnv`` reports in its infos, so
they work through :class:`~moralgym.envs.wrappers.MoralRewardWrapper`; the two-player Gymnasium and vector envs
score one round from a table and cannot give them (use the N-player envs with ``num_players=2`` there, which replay
the two-player games exactly).

Names and aliases live in the :data:`REWARDS` registry (case, spaces and dashes do not matter); each formula is
written once, in its class, and everything else (``get_reward``, the schedules' phases, :func:`reward_components`
and so every env's ``infos``) builds the reward from there.

``xi`` (``penalty``) defaults to 3 and the illegal-move reward to -6, as in the paper. How a legal player is paid
when its *partner* answered illegally is the env's ``partner_illegal`` rule, carried by
:attr:`RewardInputs.partner_illegal` (table in :mod:`moralgym.envs.matrix_game`): ``"last_legal"`` (default)
scores the round as if the partner had repeated its last legal move; ``"authors"`` pays what the paper's
LLM-vs-LLM code paid (Utilitarian 0, Game+Deontological the illegal reward, Game and Deontological unchanged).
Schedules
``game_then_deontological`` and ``game_then_utilitarian`` use the Game reward before ``switch_episode``
(default 500, half of the paper's 1000 episodes) and the moral reward from then on; :meth:`MoralReward.at` returns
the reward in force for an episode. A plain callable ``f(inputs) -> float | ndarray`` is a reward too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moralgym.envs._validation import check_choice, check_finite, check_keywords
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL
from moralgym.envs.social_preferences import (
    DEFAULT_EQUALITY_WEIGHT,
    DEFAULT_INEQUITY_ALPHA,
    DEFAULT_INEQUITY_BETA,
    DEFAULT_KINDNESS_BONUS,
    inequity_aversion,
    virtue_equality,
    virtue_kindness,
    virtue_mixed,
)
from moralgym.registry import Registry

DEFAULT_PENALTY = 3.0
DEFAULT_ILLEGAL_REWARD = -6.0

#: Rules for paying a legal player whose partner's move was illegal (see :mod:`moralgym.envs.matrix_game`).
PARTNER_ILLEGAL_RULES: tuple[str, ...] = ("last_legal", "authors")
DEFAULT_PARTNER_ILLEGAL = "last_legal"


def check_partner_illegal(rule: Any) -> str:
    """Return ``rule`` if it is one of :data:`PARTNER_ILLEGAL_RULES`, else raise ``ValueError`` naming both."""
    return check_choice("partner_illegal", rule, PARTNER_ILLEGAL_RULES)


@dataclass(frozen=True)
class RewardInputs:
    """One round from one player's point of view (scalars or equally shaped arrays).

    Attributes:
        own_action: 0 (cooperate), 1 (defect) or ``ILLEGAL``.
        opponent_action: the partner's action this round (0, 1 or ``ILLEGAL``).
        opponent_previous: the partner's previous move as the player saw it (0, 1 or ``NO_MOVE``).
        own_payoff: the player's game payoff this round (0 when its own move was illegal).
        opponent_payoff: the partner's game payoff this round.
        partner_illegal: how the round's env pays a legal player whose partner's move was illegal, one of
            :data:`PARTNER_ILLEGAL_RULES` (the env sets it; the payoffs above are the same under both rules).
        own_cumulative_payoff: the player's payoffs summed over the episode so far, this round included, or
            ``None`` where unknown (only the equality and mixed virtues read it).
        opponent_cumulative_payoff: the same for the partner.
    """

    own_action: Any
    opponent_action: Any
    opponent_previous: Any
    own_payoff: Any
    opponent_payoff: Any
    partner_illegal: str = DEFAULT_PARTNER_ILLEGAL
    own_cumulative_payoff: Any = None
    opponent_cumulative_payoff: Any = None

    def __post_init__(self) -> None:
        check_partner_illegal(self.partner_illegal)

    @property
    def illegal(self) -> np.ndarray:
        return np.asarray(self.own_action) == ILLEGAL

    @property
    def opponent_illegal(self) -> np.ndarray:
        return np.asarray(self.opponent_action) == ILLEGAL

    @property
    def payoffs(self) -> np.ndarray:
        """``(..., 2)``: the player's payoff, then the partner's (the layout of the social-preference formulas)."""
        own, other = (np.asarray(p, dtype=np.float64) for p in (self.own_payoff, self.opponent_payoff))
        return np.stack(np.broadcast_arrays(own, other), axis=-1)

    @property
    def cumulative_payoffs(self) -> np.ndarray:
        """``(..., 2)``: both players' payoffs summed over the episode so far; ``ValueError`` if not given."""
        if self.own_cumulative_payoff is None or self.opponent_cumulative_payoff is None:
            raise ValueError(
                "this reward needs the episode's cumulative payoffs (RewardInputs.own_cumulative_payoff and "
                "opponent_cumulative_payoff): MatrixGameEnv reports them in its infos for MoralRewardWrapper; the "
                "two-player Gymnasium and vector envs score one round from a table, so use the N-player envs with "
                "num_players=2 there"
            )
        own, other = (
            np.asarray(p, dtype=np.float64) for p in (self.own_cumulative_payoff, self.opponent_cumulative_payoff)
        )
        return np.stack(np.broadcast_arrays(own, other), axis=-1)

    @property
    def defected_after_cooperation(self) -> np.ndarray:
        """The norm the Deontological reward enforces: do not defect against a partner who just cooperated."""
        return (np.asarray(self.own_action) == DEFECT) & (np.asarray(self.opponent_previous) == COOPERATE)


class MoralReward:
    """Base class: a reward function of :class:`RewardInputs`. Subclasses implement :meth:`legal_reward`.

    ``authors_partner_illegal``: what a legal player gets under the ``"authors"`` partner-illegal rule when its
    partner's move was illegal: a number, ``"illegal"`` (the illegal-move reward) or ``None`` (the legal reward,
    as under ``"last_legal"``).
    """

    name: str = "reward"
    authors_partner_illegal: float | str | None = None

    def __init__(self, illegal_reward: float = DEFAULT_ILLEGAL_REWARD) -> None:
        self.illegal_reward = check_finite("illegal_reward", illegal_reward)

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, inputs: RewardInputs) -> np.ndarray:
        legal = self.legal_reward(inputs)
        paid = self.authors_partner_illegal
        # The one place the partner-illegal rule acts: every env, wrapper and reward component comes through here.
        if paid is not None and inputs.partner_illegal == "authors":
            legal = np.where(inputs.opponent_illegal, self.illegal_reward if paid == "illegal" else float(paid), legal)
        return np.where(inputs.illegal, self.illegal_reward, legal).astype(np.float64)

    def at(self, episode: int) -> MoralReward:
        """The reward in force at ``episode`` (a fixed reward is always itself)."""
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class GameReward(MoralReward):
    """Selfish: the player's own game payoff."""

    name = "game"

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        return np.asarray(inputs.own_payoff, dtype=np.float64)


class DeontologicalReward(MoralReward):
    """Conditional-reciprocity norm: ``-penalty`` for defecting against a partner who cooperated last round."""

    name = "deontological"

    def __init__(self, penalty: float = DEFAULT_PENALTY, illegal_reward: float = DEFAULT_ILLEGAL_REWARD) -> None:
        super().__init__(illegal_reward)
        self.penalty = check_finite("penalty", penalty)

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        return np.where(inputs.defected_after_cooperation, -self.penalty, 0.0)


class UtilitarianReward(MoralReward):
    """Collective welfare: the sum of both players' payoffs this round."""

    name = "utilitarian"
    authors_partner_illegal = 0.0  # the authors' LLM-vs-LLM code: no collective payoff without two legal moves

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        return np.asarray(inputs.own_payoff, dtype=np.float64) + np.asarray(inputs.opponent_payoff, dtype=np.float64)


class GameDeontologicalReward(DeontologicalReward):
    """Own payoff with the Deontological penalty subtracted (a selfish agent with a norm)."""

    name = "game_deontological"
    authors_partner_illegal = "illegal"  # the authors' code paid the illegal reward to the legal player

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        return np.asarray(inputs.own_payoff, dtype=np.float64) + super().legal_reward(inputs)


class InequityAversionReward(MoralReward):
    """Fehr-Schmidt inequity aversion: own payoff minus ``alpha`` times the partner's lead and ``beta`` times its
    own lead (:func:`~moralgym.envs.social_preferences.inequity_aversion`)."""

    name = "inequity_aversion"

    def __init__(
        self,
        alpha: float = DEFAULT_INEQUITY_ALPHA,
        beta: float = DEFAULT_INEQUITY_BETA,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    ) -> None:
        super().__init__(illegal_reward)
        inequity_aversion([0.0, 0.0], 0, alpha, beta)  # checks alpha and beta where they are defined
        self.alpha, self.beta = float(alpha), float(beta)

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        return inequity_aversion(inputs.payoffs, 0, self.alpha, self.beta)


class VirtueKindnessReward(MoralReward):
    """Tennant et al.'s kindness: ``bonus`` for cooperating
    (:func:`~moralgym.envs.social_preferences.virtue_kindness`)."""

    name = "virtue_kindness"

    def __init__(self, bonus: float = DEFAULT_KINDNESS_BONUS, illegal_reward: float = DEFAULT_ILLEGAL_REWARD) -> None:
        super().__init__(illegal_reward)
        virtue_kindness(COOPERATE, bonus)  # checks the bonus
        self.bonus = float(bonus)

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        return virtue_kindness(inputs.own_action, self.bonus)


class VirtueEqualityReward(MoralReward):
    """Tennant et al.'s equality, ``1 - |U_i - U_j| / (U_i + U_j)`` over the episode's payoff sums so far
    (:func:`~moralgym.envs.social_preferences.virtue_equality`)."""

    name = "virtue_equality"

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        return virtue_equality(inputs.cumulative_payoffs)


class VirtueMixedReward(MoralReward):
    """Tennant et al.'s mixed virtue: ``equality_weight`` times equality plus the rest times kindness scaled to
    0 or 1 (:func:`~moralgym.envs.social_preferences.virtue_mixed`)."""

    name = "virtue_mixed"

    def __init__(
        self, equality_weight: float = DEFAULT_EQUALITY_WEIGHT, illegal_reward: float = DEFAULT_ILLEGAL_REWARD
    ) -> None:
        super().__init__(illegal_reward)
        virtue_mixed([0.0, 0.0], COOPERATE, equality_weight)  # checks the weight
        self.equality_weight = float(equality_weight)

    def legal_reward(self, inputs: RewardInputs) -> np.ndarray:
        return virtue_mixed(inputs.cumulative_payoffs, inputs.own_action, self.equality_weight)


class CallableReward(MoralReward):
    """Wraps a user function ``f(inputs: RewardInputs) -> float | ndarray``; the function owns illegal moves too."""

    def __init__(self, function: Callable[[RewardInputs], Any], name: str | None = None) -> None:
        super().__init__()
        self.function = function
        self.name = name or getattr(function, "__name__", "custom")

    def __call__(self, inputs: RewardInputs) -> np.ndarray:
        return np.asarray(self.function(inputs), dtype=np.float64)


class RewardSchedule(MoralReward):
    """Rewards that change with the episode: ``phases`` is ``[(start_episode, reward), ...]`` from episode 0.

    The paper's "Game, then Deontological" is ``RewardSchedule([(0, GameReward()), (500, DeontologicalReward())])``.
    Calling a schedule directly uses its first phase; use :meth:`at` with the episode index.
    """

    def __init__(self, phases: Sequence[tuple[int, MoralReward]], name: str | None = None) -> None:
        phases = [(int(start), get_reward(reward)) for start, reward in phases]
        if not phases or phases[0][0] != 0:
            raise ValueError(
                f"a reward schedule must start at episode 0, got phases starting at {[p[0] for p in phases]}"
            )
        starts = [start for start, _ in phases]
        if starts != sorted(set(starts)):
            raise ValueError(f"reward schedule phases must start at strictly increasing episodes, got {starts}")
        super().__init__(phases[0][1].illegal_reward)
        self.phases = phases
        self.name = name or "_then_".join(reward.name for _, reward in phases)

    def at(self, episode: int) -> MoralReward:
        current = self.phases[0][1]
        for start, reward in self.phases:
            if episode >= start:
                current = reward
        return current

    def __call__(self, inputs: RewardInputs) -> np.ndarray:
        return self.phases[0][1](inputs)


def _with_penalty(cls: type[MoralReward]) -> Callable[..., MoralReward]:
    def factory(penalty: float = DEFAULT_PENALTY, illegal_reward: float = DEFAULT_ILLEGAL_REWARD) -> MoralReward:
        return cls(penalty=penalty, illegal_reward=illegal_reward)

    factory.__doc__ = f"{cls.__name__} with the Deontological ``penalty`` (xi) and the illegal-move reward."
    return factory


def _without_penalty(cls: type[MoralReward]) -> Callable[..., MoralReward]:
    # ``penalty`` is accepted (and checked) so one set of keyword arguments builds any reward; it is not used.
    def factory(illegal_reward: float = DEFAULT_ILLEGAL_REWARD, penalty: float | None = None) -> MoralReward:
        if penalty is not None:
            check_finite("penalty", penalty)
        return cls(illegal_reward=illegal_reward)

    factory.__doc__ = f"{cls.__name__} with the illegal-move reward (``penalty`` is checked, not used)."
    return factory


def _inequity_aversion(
    alpha: float = DEFAULT_INEQUITY_ALPHA,
    beta: float = DEFAULT_INEQUITY_BETA,
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    penalty: float | None = None,
) -> MoralReward:
    """InequityAversionReward with Fehr and Schmidt's ``alpha`` and ``beta`` (``penalty`` is checked, not used)."""
    if penalty is not None:
        check_finite("penalty", penalty)
    return InequityAversionReward(alpha, beta, illegal_reward)


def _virtue_kindness(
    bonus: float = DEFAULT_KINDNESS_BONUS, illegal_reward: float = DEFAULT_ILLEGAL_REWARD, penalty: float | None = None
) -> MoralReward:
    """VirtueKindnessReward paying ``bonus`` for cooperating (``penalty`` is checked, not used)."""
    if penalty is not None:
        check_finite("penalty", penalty)
    return VirtueKindnessReward(bonus, illegal_reward)


def _virtue_mixed(
    equality_weight: float = DEFAULT_EQUALITY_WEIGHT,
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    penalty: float | None = None,
) -> MoralReward:
    """VirtueMixedReward weighing equality by ``equality_weight`` (``penalty`` is checked, not used)."""
    if penalty is not None:
        check_finite("penalty", penalty)
    return VirtueMixedReward(equality_weight, illegal_reward)


def _game_then(moral: str, name: str) -> Callable[..., RewardSchedule]:
    # Both phases come from the registry, so a schedule's phases are the very rewards ``get_reward`` builds.
    def factory(
        switch_episode: int = 500,
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    ) -> RewardSchedule:
        phases = [
            (0, REWARDS["game"](penalty=penalty, illegal_reward=illegal_reward)),
            (switch_episode, REWARDS[moral](penalty=penalty, illegal_reward=illegal_reward)),
        ]
        return RewardSchedule(phases, name=name)

    factory.__doc__ = f"Game reward before ``switch_episode``, then the {moral} reward."
    return factory


#: Reward factories by name, with the aliases of the module table (:class:`~moralgym.registry.Registry` rules: case,
#: spaces and dashes do not matter, so ``"Game, then Deontological"`` and ``"game-deontological"`` work). Every
#: factory takes ``penalty`` and ``illegal_reward`` so one set of keyword arguments builds any of them.
REWARDS: Registry[Callable[..., MoralReward]] = Registry("reward", builder="get_reward")
REWARDS.register("game", _without_penalty(GameReward), aliases=("selfish",))
REWARDS.register("deontological", _with_penalty(DeontologicalReward), aliases=("de",))
REWARDS.register("utilitarian", _without_penalty(UtilitarianReward), aliases=("ut",))
REWARDS.register(
    "game_deontological", _with_penalty(GameDeontologicalReward), aliases=("game+deontological", "game+de", "game_de")
)
REWARDS.register("inequity_aversion", _inequity_aversion, aliases=("ia", "fehr_schmidt"))
REWARDS.register("virtue_kindness", _virtue_kindness, aliases=("kindness",))
REWARDS.register("virtue_equality", _without_penalty(VirtueEqualityReward), aliases=("equality",))
REWARDS.register("virtue_mixed", _virtue_mixed, aliases=("mixed",))
REWARDS.register(
    "game_then_deontological",
    _game_then("deontological", "game_then_deontological"),
    aliases=("game, then deontological", "game->deontological", "game_de_sequential"),
)
REWARDS.register(
    "game_then_utilitarian",
    _game_then("utilitarian", "game_then_utilitarian"),
    aliases=("game, then utilitarian", "game->utilitarian"),
)
#: The name :data:`REWARDS` had when it was a plain dict of factories.
REWARD_FACTORIES = REWARDS

#: Names of the four per-round reward components every environment reports in ``infos``.
COMPONENT_NAMES: tuple[str, ...] = ("game", "deontological", "utilitarian", "game_deontological")


def list_rewards() -> list[str]:
    """Names accepted by :func:`get_reward`."""
    return REWARDS.names()


def _callable_options(name: str | None = None) -> None:
    """The keyword arguments :func:`get_reward` takes with a callable (those of :class:`CallableReward`)."""


def get_reward(reward: str | MoralReward | Callable[[RewardInputs], Any], **kwargs: Any) -> MoralReward:
    """Build a reward from a name (plus factory keyword arguments), pass a :class:`MoralReward` through, or wrap a
    callable.

    Every name accepts ``penalty`` and ``illegal_reward`` (``penalty`` is unused by rewards without ``xi``);
    schedules also take ``switch_episode``; a callable takes ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
        TypeError: an unknown keyword argument; the message names it and lists the accepted ones.
        ValueError: a NaN or infinite ``penalty`` / ``illegal_reward`` (the message names it and the value).
    """
    if isinstance(reward, MoralReward):
        if kwargs:
            raise TypeError(f"keyword arguments {sorted(kwargs)} only apply to reward names, not to {reward!r}")
        return reward
    if isinstance(reward, str):
        return REWARDS.build(reward, **kwargs)
    if callable(reward):
        check_keywords(_callable_options, kwargs, "get_reward(<callable>)")
        return CallableReward(reward, **kwargs)
    raise TypeError(f"reward must be a name, a MoralReward or a callable, got {type(reward).__name__}: {reward!r}")


def reward_components(
    inputs: RewardInputs,
    penalty: float = DEFAULT_PENALTY,
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
) -> dict[str, np.ndarray]:
    """All four fixed rewards for the same inputs (and their ``partner_illegal`` rule), keyed by
    :data:`COMPONENT_NAMES`.

    Why no formula here: each component is the reward :func:`get_reward` builds under that name, evaluated on
    ``inputs``, so a component can never differ from the reward an agent is trained on.
    """
    return {
        name: np.asarray(REWARDS[name](penalty=penalty, illegal_reward=illegal_reward)(inputs), dtype=np.float64)
        for name in COMPONENT_NAMES
    }
