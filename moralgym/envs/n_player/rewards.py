"""Intrinsic moral rewards for N-player games, each reducing exactly to the two-player reward at ``N = 2``.

Every reward is a pure, vectorised function of one round seen from one player (:class:`NPlayerRewardInputs`): its
action, how many of the ``N - 1`` others cooperate now and cooperated last round (what the player saw before
choosing), its payoff, every player's payoff and the payoffs summed over the episode so far.

==========================  ===========================================================================  =======
name (aliases)              reward for a legal move (player i)                                           illegal
==========================  ===========================================================================  =======
``game`` (selfish)          ``u_i``, own payoff                                                          ``-6``
``deontological`` (de)      ``-xi v`` if own move is D, else 0 (``v``: the norm, below)                  ``-6``
``utilitarian`` (ut)        ``sum_j u_j``, the payoffs of all ``N`` players                              ``-6``
``game_deontological``      ``u_i - xi v`` if own move is D, else ``u_i``                                ``-6``
``inequity_aversion`` (ia)  ``u_i - a/(N-1) sum_j max(u_j - u_i, 0) - b/(N-1) sum_j max(u_i - u_j, 0)``  ``-6``
``virtue_kindness``         ``k`` if own move is C, else 0                                               ``-6``
``virtue_equality``         ``1 - N/(N-1) G(U)``, ``G`` the Gini coefficient of ``U``                    ``-6``
``virtue_mixed``            ``w (1 - N/(N-1) G(U)) + (1 - w) [own move is C]``                           ``-6``
==========================  ===========================================================================  =======

The Deontological norm ``v`` (``norm=``), with ``c'`` the number of others who cooperated last round out of
``N - 1``:

- ``"share"`` (default): ``v = c' / (N - 1)``. Why: the two-player norm is "do not defect against a partner who just
  cooperated". With many partners, defecting betrays every cooperator at once, and how wrong it is grows with how
  many were betrayed; at ``N = 2`` the share is 1 exactly when the partner cooperated, so this *is* the two-player
  rule. It also keeps the penalty within ``[-xi, 0]`` whatever ``N``, so ``xi`` means the same in every game size.
- ``"any"``: ``v = 1`` if at least one other cooperated (a strict reciprocity norm: any cooperator is owed C).
- ``"majority"``: ``v = 1`` if more than half of the others cooperated (reciprocate the group's prevailing move).

All three are the two-player rule at ``N = 2``.

Inequity aversion is Fehr and Schmidt's utility in the N-player form Hughes et al. (2018) used for social
dilemmas (``a = alpha`` = 5 weighs envy of those ahead, ``b = beta`` = 0.05 guilt towards those behind), on this
round's payoffs. The virtues are those of Tennant, Hailes and Musolesi (IJCAI 2023): kindness pays ``k = bonus``
(5) for cooperating; equality is one minus the normalised Gini coefficient of ``U``, every player's payoffs summed
over the episode so far (the authors' ``1 - |U_1 - U_2| / (U_1 + U_2)`` at ``N = 2``); mixed weighs equality by
``w = equality_weight`` (0.5) against kindness scaled to 0 or 1. The Gini coefficient needs non-negative incomes,
so equality reads ``U`` above the lowest sum the game allows so far (``cumulative_floor``: the rounds played times
the game's lowest payoff, where that is negative; 0 in the paper games). The formulas are written once, in
:mod:`moralgym.envs.social_preferences`; the two-player forms are in :mod:`moralgym.envs.rewards`.

Schedules ``game_then_deontological`` and ``game_then_utilitarian`` use the Game reward before ``switch_episode``
(default 500) and the moral reward from then on, as in :mod:`moralgym.envs.rewards`; a plain callable
``f(inputs) -> float | ndarray`` is a reward too.

Illegal moves follow the two-player envs' default ``"last_legal"`` rule: the illegal player gets the illegal-move
reward, everybody else is scored as if it had repeated its last legal move (its payoff, 0, counts in the
Utilitarian sum). The paper's ``"authors"`` rule for two LLM learners is not offered for N players.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from moralgym.envs._validation import check_choice, check_finite, check_keywords
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL
from moralgym.envs.rewards import (
    DEFAULT_ILLEGAL_REWARD,
    DEFAULT_PENALTY,
    CallableReward,
    MoralReward,
    RewardInputs,
    RewardSchedule,
)
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

#: Deontological norms: the weight ``v`` in ``[0, 1]`` of a defection, from the number of others who cooperated
#: last round and the number of others (see the module docstring for why ``"share"`` is the default).
DEONTOLOGICAL_NORMS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "share": lambda cooperated, others: np.asarray(cooperated, dtype=np.float64) / others,
    "any": lambda cooperated, others: (np.asarray(cooperated) >= 1).astype(np.float64),
    "majority": lambda cooperated, others: (2 * np.asarray(cooperated) > others).astype(np.float64),
}
DEFAULT_NORM = "share"


def check_norm(norm: Any) -> str:
    """Return ``norm`` if it is one of :data:`DEONTOLOGICAL_NORMS`, else raise ``ValueError`` naming both."""
    return check_choice("norm", norm, tuple(DEONTOLOGICAL_NORMS))


@dataclass(frozen=True)
class NPlayerRewardInputs:
    """One round of an N-player game from one player's point of view (scalars or arrays of one shape ``S``).

    Attributes:
        own_action: 0 (cooperate), 1 (defect) or ``ILLEGAL``.
        others_cooperated: how many of the others chose C this round (an illegal answer is not C).
        others_previous_cooperated: how many of the others cooperated last round, as the player saw it (a player
            that answered illegally shows its last legal move; one with no move yet counts as not cooperating).
        num_others: ``N - 1`` (an int).
        own_payoff: the player's game payoff this round (0 when its own move was illegal).
        payoffs: every player's payoff this round, shape ``S + (N,)``: the player's own first, then the others' in
            seat order (the order of the ``"full"`` observation; the rewards here do not depend on the others' order).
        cumulative_payoffs: the same players' payoffs summed over the episode so far, this round included, shape
            ``S + (N,)`` in the same order; ``None`` where unknown (only the equality and mixed virtues need it).
        cumulative_floor: the lowest sum a player could have reached by now (rounds played times the game's lowest
            payoff where that is negative, else 0); the equality virtue measures inequality above it.
    """

    own_action: Any
    others_cooperated: Any
    others_previous_cooperated: Any
    num_others: int
    own_payoff: Any
    payoffs: Any
    cumulative_payoffs: Any = None
    cumulative_floor: Any = 0.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.num_others, bool)
            or not isinstance(self.num_others, (int, np.integer))
            or self.num_others < 1
        ):
            raise ValueError(f"num_others must be a positive integer (N - 1), got {self.num_others!r}")

    @property
    def illegal(self) -> np.ndarray:
        return np.asarray(self.own_action) == ILLEGAL

    @property
    def defected(self) -> np.ndarray:
        return np.asarray(self.own_action) == DEFECT

    @property
    def cumulative_above_floor(self) -> np.ndarray:
        """``cumulative_payoffs`` minus ``cumulative_floor`` (non-negative incomes, for the Gini coefficient)."""
        if self.cumulative_payoffs is None:
            raise ValueError(
                "this reward needs the episode's cumulative payoffs (NPlayerRewardInputs.cumulative_payoffs); every "
                "N-player env reports them in its infos"
            )
        cumulative = np.asarray(self.cumulative_payoffs, dtype=np.float64)
        floor = np.asarray(self.cumulative_floor, dtype=np.float64)
        return cumulative - floor[..., None] if floor.any() else cumulative

    @cached_property
    def cumulative_equality(self) -> np.ndarray:
        """:func:`~moralgym.envs.social_preferences.virtue_equality` of :attr:`cumulative_above_floor`, computed once
        per inputs (the equality and mixed virtues both read it, and its Gini coefficient is a sort per game)."""
        return virtue_equality(self.cumulative_above_floor)

    @property
    def total_payoff(self) -> np.ndarray:
        """The sum of all players' payoffs this round."""
        payoffs = np.asarray(self.payoffs, dtype=np.float64)
        return payoffs @ np.ones(payoffs.shape[-1])  # a matrix product: several times faster than sum(axis=-1)

    @classmethod
    def from_two_player(cls, inputs: RewardInputs) -> NPlayerRewardInputs:
        """The same round as a two-player :class:`~moralgym.envs.rewards.RewardInputs` (``N = 2``): the partner
        counts as a cooperator now / last round where its action / previous move is C."""
        has_sums = inputs.own_cumulative_payoff is not None and inputs.opponent_cumulative_payoff is not None
        return cls(
            own_action=inputs.own_action,
            others_cooperated=(np.asarray(inputs.opponent_action) == COOPERATE).astype(np.int64),
            others_previous_cooperated=(np.asarray(inputs.opponent_previous) == COOPERATE).astype(np.int64),
            num_others=1,
            own_payoff=inputs.own_payoff,
            payoffs=inputs.payoffs,
            cumulative_payoffs=inputs.cumulative_payoffs if has_sums else None,
        )


class NPlayerReward(MoralReward):
    """Base class of the N-player rewards: a function of :class:`NPlayerRewardInputs` (not of the two-player
    ``RewardInputs``); subclasses implement :meth:`legal_reward`, the illegal-move reward is applied here.

    ``per_round``: the reward depends only on the round's counts, the own action and the multiset of this round's
    payoffs (not on which seat earned which, nor on the episode's sums), so the vector env may evaluate it once on
    every possible round and look it up (:class:`~moralgym.envs.n_player.rounds.LearnerRounds`). False by default,
    so a subclass is evaluated on its inputs unless it declares otherwise.
    """

    per_round: ClassVar[bool] = False

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:  # type: ignore[override]
        raise NotImplementedError


class NPlayerGameReward(NPlayerReward):
    """Selfish: the player's own game payoff."""

    name = "game"
    per_round = True

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        return np.asarray(inputs.own_payoff, dtype=np.float64)


class NPlayerDeontologicalReward(NPlayerReward):
    """Conditional reciprocity with a group: ``-penalty * v`` for defecting, ``v`` the ``norm``'s weight of the
    others' cooperation last round (module docstring)."""

    name = "deontological"
    per_round = True

    def __init__(
        self, penalty: float = DEFAULT_PENALTY, illegal_reward: float = DEFAULT_ILLEGAL_REWARD, norm: str = DEFAULT_NORM
    ) -> None:
        super().__init__(illegal_reward)
        self.penalty = check_finite("penalty", penalty)
        self.norm = check_norm(norm)

    def violation(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        """How much the player broke the norm this round, in ``[0, 1]`` (0 unless it defected)."""
        weight = DEONTOLOGICAL_NORMS[self.norm](inputs.others_previous_cooperated, inputs.num_others)
        return np.where(inputs.defected, weight, 0.0)

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        return -self.penalty * self.violation(inputs)


class NPlayerUtilitarianReward(NPlayerReward):
    """Collective welfare: the sum of all players' payoffs this round."""

    name = "utilitarian"
    per_round = True

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        return inputs.total_payoff


class NPlayerGameDeontologicalReward(NPlayerDeontologicalReward):
    """Own payoff with the Deontological penalty subtracted (a selfish agent with a norm)."""

    name = "game_deontological"

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        return np.asarray(inputs.own_payoff, dtype=np.float64) + super().legal_reward(inputs)


class NPlayerInequityAversionReward(NPlayerReward):
    """Fehr-Schmidt inequity aversion over this round's payoffs
    (:func:`~moralgym.envs.social_preferences.inequity_aversion`)."""

    name = "inequity_aversion"
    per_round = True

    def __init__(
        self,
        alpha: float = DEFAULT_INEQUITY_ALPHA,
        beta: float = DEFAULT_INEQUITY_BETA,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    ) -> None:
        super().__init__(illegal_reward)
        inequity_aversion([0.0, 0.0], 0, alpha, beta)  # checks alpha and beta where they are defined
        self.alpha, self.beta = float(alpha), float(beta)

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        return inequity_aversion(inputs.payoffs, 0, self.alpha, self.beta)  # the player's own payoff is first


class NPlayerVirtueKindnessReward(NPlayerReward):
    """Tennant et al.'s kindness: ``bonus`` for cooperating
    (:func:`~moralgym.envs.social_preferences.virtue_kindness`)."""

    name = "virtue_kindness"
    per_round = True

    def __init__(self, bonus: float = DEFAULT_KINDNESS_BONUS, illegal_reward: float = DEFAULT_ILLEGAL_REWARD) -> None:
        super().__init__(illegal_reward)
        virtue_kindness(COOPERATE, bonus)  # checks the bonus
        self.bonus = float(bonus)

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        return virtue_kindness(inputs.own_action, self.bonus)


class NPlayerVirtueEqualityReward(NPlayerReward):
    """Tennant et al.'s equality: one minus the normalised Gini coefficient of the episode's payoffs so far
    (:func:`~moralgym.envs.social_preferences.virtue_equality`)."""

    name = "virtue_equality"

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        return inputs.cumulative_equality


class NPlayerVirtueMixedReward(NPlayerReward):
    """Tennant et al.'s mixed virtue: ``equality_weight`` times equality plus the rest times kindness scaled to
    0 or 1 (:func:`~moralgym.envs.social_preferences.virtue_mixed`)."""

    name = "virtue_mixed"

    def __init__(
        self, equality_weight: float = DEFAULT_EQUALITY_WEIGHT, illegal_reward: float = DEFAULT_ILLEGAL_REWARD
    ) -> None:
        super().__init__(illegal_reward)
        virtue_mixed([0.0, 0.0], COOPERATE, equality_weight)  # checks the weight
        self.equality_weight = float(equality_weight)

    def legal_reward(self, inputs: NPlayerRewardInputs) -> np.ndarray:
        # virtue_mixed's formula, w * equality + (1 - w) * [C], composed from the inputs' equality (computed once
        # per inputs, shared with the equality virtue) and kindness with a bonus of 1 (tested equal to virtue_mixed).
        kindness = virtue_kindness(inputs.own_action, 1.0)
        return self.equality_weight * inputs.cumulative_equality + (1.0 - self.equality_weight) * kindness


def reads_n_player_inputs(reward: MoralReward) -> bool:
    """Whether ``reward`` can score :class:`NPlayerRewardInputs`: an N-player reward, a user callable, or a schedule
    whose every phase can."""
    if isinstance(reward, RewardSchedule):
        return all(reads_n_player_inputs(phase) for _, phase in reward.phases)
    return isinstance(reward, (NPlayerReward, CallableReward))


# ---------------------------------------------------------------------------------------------------- registry
def _check_unused(penalty: Any, norm: Any) -> None:
    # Every factory takes penalty and norm, so one set of keyword arguments builds any reward; those without a
    # Deontological term check them and ignore them.
    check_finite("penalty", penalty)
    check_norm(norm)


def _factory(cls: type[NPlayerReward]) -> Callable[..., NPlayerReward]:
    def factory(
        penalty: float = DEFAULT_PENALTY, illegal_reward: float = DEFAULT_ILLEGAL_REWARD, norm: str = DEFAULT_NORM
    ) -> NPlayerReward:
        if issubclass(cls, NPlayerDeontologicalReward):
            return cls(penalty=penalty, illegal_reward=illegal_reward, norm=norm)
        _check_unused(penalty, norm)
        return cls(illegal_reward=illegal_reward)

    factory.__doc__ = f"{cls.__name__} (``penalty``, ``illegal_reward`` and ``norm`` as in the module docstring)."
    return factory


def _inequity_aversion(
    alpha: float = DEFAULT_INEQUITY_ALPHA,
    beta: float = DEFAULT_INEQUITY_BETA,
    penalty: float = DEFAULT_PENALTY,
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    norm: str = DEFAULT_NORM,
) -> NPlayerReward:
    """NPlayerInequityAversionReward with Fehr and Schmidt's ``alpha`` and ``beta``."""
    _check_unused(penalty, norm)
    return NPlayerInequityAversionReward(alpha, beta, illegal_reward)


def _virtue_kindness(
    bonus: float = DEFAULT_KINDNESS_BONUS,
    penalty: float = DEFAULT_PENALTY,
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    norm: str = DEFAULT_NORM,
) -> NPlayerReward:
    """NPlayerVirtueKindnessReward paying ``bonus`` for cooperating."""
    _check_unused(penalty, norm)
    return NPlayerVirtueKindnessReward(bonus, illegal_reward)


def _virtue_mixed(
    equality_weight: float = DEFAULT_EQUALITY_WEIGHT,
    penalty: float = DEFAULT_PENALTY,
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    norm: str = DEFAULT_NORM,
) -> NPlayerReward:
    """NPlayerVirtueMixedReward weighing equality by ``equality_weight``."""
    _check_unused(penalty, norm)
    return NPlayerVirtueMixedReward(equality_weight, illegal_reward)


def _game_then(moral: str, name: str) -> Callable[..., RewardSchedule]:
    def factory(
        switch_episode: int = 500,
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        norm: str = DEFAULT_NORM,
    ) -> RewardSchedule:
        keywords = {"penalty": penalty, "illegal_reward": illegal_reward, "norm": norm}
        phases = [(0, N_PLAYER_REWARDS["game"](**keywords)), (switch_episode, N_PLAYER_REWARDS[moral](**keywords))]
        return RewardSchedule(phases, name=name)

    factory.__doc__ = f"N-player Game reward before ``switch_episode``, then the N-player {moral} reward."
    return factory


#: N-player reward factories by name, with the two-player names and aliases (:class:`~moralgym.registry.Registry`
#: rules). Each builds the N-player form of the reward of the same name in :data:`moralgym.envs.rewards.REWARDS`.
N_PLAYER_REWARDS: Registry[Callable[..., MoralReward]] = Registry("N-player reward", builder="get_n_player_reward")
N_PLAYER_REWARDS.register("game", _factory(NPlayerGameReward), aliases=("selfish",))
N_PLAYER_REWARDS.register("deontological", _factory(NPlayerDeontologicalReward), aliases=("de",))
N_PLAYER_REWARDS.register("utilitarian", _factory(NPlayerUtilitarianReward), aliases=("ut",))
N_PLAYER_REWARDS.register(
    "game_deontological",
    _factory(NPlayerGameDeontologicalReward),
    aliases=("game+deontological", "game+de", "game_de"),
)
N_PLAYER_REWARDS.register("inequity_aversion", _inequity_aversion, aliases=("ia", "fehr_schmidt"))
N_PLAYER_REWARDS.register("virtue_kindness", _virtue_kindness, aliases=("kindness",))
N_PLAYER_REWARDS.register("virtue_equality", _factory(NPlayerVirtueEqualityReward), aliases=("equality",))
N_PLAYER_REWARDS.register("virtue_mixed", _virtue_mixed, aliases=("mixed",))
N_PLAYER_REWARDS.register(
    "game_then_deontological",
    _game_then("deontological", "game_then_deontological"),
    aliases=("game, then deontological", "game->deontological", "game_de_sequential"),
)
N_PLAYER_REWARDS.register(
    "game_then_utilitarian",
    _game_then("utilitarian", "game_then_utilitarian"),
    aliases=("game, then utilitarian", "game->utilitarian"),
)

#: The per-round rewards every N-player env reports in ``infos[...]["moral_rewards"]``, with default parameters (the
#: first four are the two-player components).
N_PLAYER_COMPONENT_NAMES: tuple[str, ...] = (
    "game",
    "deontological",
    "utilitarian",
    "game_deontological",
    "inequity_aversion",
    "virtue_kindness",
    "virtue_equality",
    "virtue_mixed",
)


def list_n_player_rewards() -> list[str]:
    """Names accepted by :func:`get_n_player_reward`."""
    return N_PLAYER_REWARDS.names()


def _callable_options(name: str | None = None) -> None:
    """The keyword arguments :func:`get_n_player_reward` takes with a callable (those of ``CallableReward``)."""


def get_n_player_reward(reward: str | MoralReward | Callable[[NPlayerRewardInputs], Any], **kwargs: Any) -> MoralReward:
    """Build an N-player reward from a name (plus factory keyword arguments), pass an N-player reward or schedule
    through, or wrap a callable of :class:`NPlayerRewardInputs`.

    Raises:
        KeyError: unknown name; the message lists the known ones.
        TypeError: an unknown keyword argument (the message lists the accepted ones), or a two-player reward
            object (it reads a partner's previous move, which an N-player round does not have).
        ValueError: a NaN or infinite ``penalty`` / ``illegal_reward``, or an unknown ``norm``.
    """
    if isinstance(reward, MoralReward):
        if kwargs:
            raise TypeError(f"keyword arguments {sorted(kwargs)} only apply to reward names, not to {reward!r}")
        if not reads_n_player_inputs(reward):
            raise TypeError(
                f"{type(reward).__name__} is a two-player reward (it reads RewardInputs); pass its name instead, "
                f"e.g. get_n_player_reward({reward.name!r}), for the N-player form"
            )
        return reward
    if isinstance(reward, str):
        return N_PLAYER_REWARDS.build(reward, **kwargs)
    if callable(reward):
        check_keywords(_callable_options, kwargs, "get_n_player_reward(<callable>)")
        return CallableReward(reward, **kwargs)
    raise TypeError(f"reward must be a name, a MoralReward or a callable, got {type(reward).__name__}: {reward!r}")


def n_player_component_rewards(
    penalty: float = DEFAULT_PENALTY, illegal_reward: float = DEFAULT_ILLEGAL_REWARD, norm: str = DEFAULT_NORM
) -> dict[str, MoralReward]:
    """The rewards of :data:`N_PLAYER_COMPONENT_NAMES`, each built by :func:`get_n_player_reward` under its name
    (so a component never differs from the reward an agent trains on); envs build them once."""
    keywords = {"penalty": penalty, "illegal_reward": illegal_reward, "norm": norm}
    return {name: N_PLAYER_REWARDS[name](**keywords) for name in N_PLAYER_COMPONENT_NAMES}


def n_player_reward_components(
    inputs: NPlayerRewardInputs,
    penalty: float = DEFAULT_PENALTY,
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    norm: str = DEFAULT_NORM,
) -> dict[str, np.ndarray]:
    """Every component reward (:func:`n_player_component_rewards`) evaluated on ``inputs``, by name."""
    rewards = n_player_component_rewards(penalty, illegal_reward, norm)
    return {name: np.asarray(reward(inputs), dtype=np.float64) for name, reward in rewards.items()}


__all__ = [
    "DEFAULT_NORM",
    "DEONTOLOGICAL_NORMS",
    "N_PLAYER_COMPONENT_NAMES",
    "N_PLAYER_REWARDS",
    "NPlayerDeontologicalReward",
    "NPlayerGameDeontologicalReward",
    "NPlayerGameReward",
    "NPlayerInequityAversionReward",
    "NPlayerReward",
    "NPlayerRewardInputs",
    "NPlayerUtilitarianReward",
    "NPlayerVirtueEqualityReward",
    "NPlayerVirtueKindnessReward",
    "NPlayerVirtueMixedReward",
    "check_norm",
    "get_n_player_reward",
    "list_n_player_rewards",
    "n_player_component_rewards",
    "n_player_reward_components",
    "reads_n_player_inputs",
]
