"""Social-preference formulas for N-player rewards: inequity aversion, the Gini coefficient and the virtue rewards.

Pure numpy functions, vectorised over any leading axes (thousands of games at once); the players are the last axis
of a payoff array. The reward classes that put them in an env (with illegal moves and the reward registry) are built
on these; every formula is written once, here. Actions use moralgym's codes: 0 = C, 1 = D, -1 = illegal.

=====================================  ====================================================================
function                               formula (player i, N players, payoffs x)
=====================================  ====================================================================
``inequity_aversion(x, i, α, β)``      x_i - α/(N-1) Σ_j max(x_j - x_i, 0) - β/(N-1) Σ_j max(x_i - x_j, 0)
``gini(x)``                            G = Σ_i Σ_j |x_i - x_j| / (2 N Σ_i x_i)      (0 when every x_i = 0)
``virtue_equality(X)``                 1 - N/(N-1) G(X)
``virtue_kindness(a_i, bonus)``        bonus if a_i = C, else 0
``virtue_mixed(X, a_i, w)``            w virtue_equality(X) + (1 - w) [a_i = C]
=====================================  ====================================================================

Sources
-------
**Virtue rewards**: Tennant, Hailes & Musolesi, "Modeling Moral Choices in Social Dilemmas with Multi-Agent
Reinforcement Learning", IJCAI 2023 (arXiv 2301.08491). The paper's text could not be consulted when this module was
written (only its abstract); the definitions below are read from the authors' released code, the repository the
paper links (``github.com/Liza-Tennant/moral_choice_dyadic``, ``player.py``, ``Player.intrinsic_reward``), and are
the same in their AIES 2024 follow-up (``liza-tennant/moral_MARL``, ``simulation/player.py``). For the moral player M
with game payoff x_M this round and partner O with x_O:

* Virtue-equality: ``1 - |x_M - x_O| / (x_M + x_O)``, "a simplification of the Gini coefficient for 2 players"
  (their code comment). It is 1 minus the *normalised* Gini coefficient N/(N-1) G, which at N = 2 is exactly
  ``|x_1 - x_2| / (x_1 + x_2)``; moralgym keeps that normalisation for any N, so :func:`virtue_equality` spans
  [0, 1] (1 = all equal, 0 = one player has everything) and reduces to the authors' formula at N = 2.
* Virtue-kindness: ``xi`` if M cooperates, else 0, with ``xi = 5`` (the constant ``k = 5`` / ``xi = 5`` of their
  code, also their Deontological penalty; moralgym's Deontological default is the ICLR 2025 paper's 3).
* Virtue-mixed: ``beta * equality + (1 - beta) * kindness / xi`` (kindness normalised to 0 or 1, so both terms lie
  in [0, 1]), with ``beta = 0.5`` (the default of their ``--beta`` option and ``mixed_beta`` setting). Their code
  applies ``int()`` to ``beta`` before using it, which turns 0.5 into 0; moralgym follows the formula and the stated
  default, not that cast.

Which payoffs the equality terms read: the authors' code passes *this round's* payoffs. The functions here take any
per-player payoff array; the argument is named ``cumulative_payoffs`` because the N-player rewards pass each
player's payoff summed over the episode so far (the distribution of outcomes, which one round of a volunteer's or
threshold game rarely shows), and passing this round's payoffs gives the authors' per-round reward exactly. The
all-zero case (e.g. mutual defection in moralgym's Chicken pays 0, 0) is 0/0 in their formula; here it is perfect
equality: G = 0, virtue-equality 1.

**Inequity aversion**: Fehr & Schmidt (1999), "A theory of fairness, competition, and cooperation", QJE 114(3),
in the N-player form Hughes et al. (2018, "Inequity aversion improves cooperation in intertemporal social
dilemmas", NeurIPS) use for multi-agent RL: α weighs disadvantageous inequity (envy of those ahead), β advantageous
inequity (guilt towards those behind), each averaged over the N - 1 others. Hughes et al. compare *temporally
smoothed* rewards ``e_j(t) = γλ e_j(t-1) + r_j(t)`` in the two inequity terms (the own term stays the raw reward),
because in their Markov games rewards are sparse events at different times and instantaneous rewards would mostly
compare zeros. In a matrix game every player is paid every round, at the same moment, so :func:`inequity_aversion`
compares this round's payoffs (γλ = 0) and stays a pure function of one round, like every other moralgym reward.
Hughes' smoothed version is ``r_i + inequity_aversion(e, i) - e_i`` for smoothed payoffs ``e``. The defaults α = 5,
β = 0.05 are the values Hughes et al. report for their disadvantageous- and advantageous-inequity-averse agents and
the defaults of public re-implementations (SocialJax's inequity-aversion reward); whether their agents used both at
once could not be checked against the paper's text here.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL

__all__ = [
    "DEFAULT_EQUALITY_WEIGHT",
    "DEFAULT_INEQUITY_ALPHA",
    "DEFAULT_INEQUITY_BETA",
    "DEFAULT_KINDNESS_BONUS",
    "gini",
    "inequity_aversion",
    "virtue_equality",
    "virtue_kindness",
    "virtue_mixed",
]

#: Fehr-Schmidt weight of disadvantageous inequity (Hughes et al. 2018).
DEFAULT_INEQUITY_ALPHA = 5.0
#: Fehr-Schmidt weight of advantageous inequity (Hughes et al. 2018).
DEFAULT_INEQUITY_BETA = 0.05
#: Virtue-kindness reward for cooperating (xi = 5 in Tennant et al.'s IJCAI 2023 code).
DEFAULT_KINDNESS_BONUS = 5.0
#: Virtue-mixed weight of equality against kindness (beta = 0.5 in Tennant et al.'s IJCAI 2023 code).
DEFAULT_EQUALITY_WEIGHT = 0.5


# ------------------------------------------------------------------------------------------------- checks
def _check_non_negative(name: str, value: Any) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite non-negative real number."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return float(value)


def _check_weight(name: str, value: Any) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a real number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a weight in [0, 1], got {value!r}")  # NaN fails the comparison too
    return float(value)


def _payoff_array(name: str, payoffs: ArrayLike, *, min_players: int) -> np.ndarray:
    """``payoffs`` as a float64 array with players on the last axis, or ``ValueError``."""
    array = np.asarray(payoffs, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] < min_players:
        raise ValueError(
            f"{name} must have the players on its last axis, at least {min_players}, got shape {array.shape}"
        )
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite numbers, got {array[~np.isfinite(array)].flat[0]}")
    return array


def _cooperated(own_action: ArrayLike) -> np.ndarray:
    """Whether each action is C, after checking every action is 0 (C), 1 (D) or -1 (illegal)."""
    actions = np.asarray(own_action)
    valid = (actions == COOPERATE) | (actions == DEFECT) | (actions == ILLEGAL)
    if not valid.all():
        raise ValueError(f"own_action must be 0 (C), 1 (D) or -1 (illegal), got {actions[~valid].flat[0].item()!r}")
    return actions == COOPERATE


# ------------------------------------------------------------------------------------------------- inequity aversion
def inequity_aversion(
    payoffs: ArrayLike,
    player: int | ArrayLike,
    alpha: float = DEFAULT_INEQUITY_ALPHA,
    beta: float = DEFAULT_INEQUITY_BETA,
) -> np.ndarray:
    """Fehr-Schmidt inequity-averse utility of ``player`` for this round's payoffs.

    ``U_i = x_i - α/(N-1) Σ_{j≠i} max(x_j - x_i, 0) - β/(N-1) Σ_{j≠i} max(x_i - x_j, 0)``

    Args:
        payoffs: shape ``(..., N)``, each player's game payoff this round (N >= 2), finite.
        player: the seat i, an int in 0 .. N - 1, or an integer array broadcastable to ``payoffs.shape[:-1]``
            (one seat per game).
        alpha: weight of disadvantageous inequity (others ahead), finite and >= 0.
        beta: weight of advantageous inequity (others behind), finite and >= 0.

    Returns:
        float64 array of shape ``payoffs.shape[:-1]``.
    """
    alpha = _check_non_negative("alpha (disadvantageous inequity weight)", alpha)
    beta = _check_non_negative("beta (advantageous inequity weight)", beta)
    x = _payoff_array("payoffs", payoffs, min_players=2)
    num_players = x.shape[-1]
    seats = np.asarray(player)
    if seats.dtype.kind not in "iu" or (seats.size and (seats.min() < 0 or seats.max() >= num_players)):
        raise ValueError(f"player must be an integer seat in 0 .. {num_players - 1}, got {player!r}")
    if seats.ndim == 0:
        own = x[..., int(seats)]
    else:
        own = np.take_along_axis(x, np.broadcast_to(seats, x.shape[:-1])[..., None], axis=-1)[..., 0]
    # Sums over the (short) player axis as a matrix product: several times faster than .sum(axis=-1) on many games.
    ones = np.ones(num_players)
    gaps = x - own[..., None]  # the own entry is 0, so it adds to neither sum
    behind = np.maximum(gaps, 0.0) @ ones
    ahead = np.maximum(-gaps, 0.0) @ ones
    return own - (alpha * behind + beta * ahead) / (num_players - 1)


# ------------------------------------------------------------------------------------------------- equality
def gini(values: ArrayLike) -> np.ndarray:
    """The Gini coefficient of non-negative values over the last axis.

    ``G = Σ_i Σ_j |x_i - x_j| / (2 N Σ_i x_i)``, the mean absolute difference over twice the mean: 0 when all are
    equal, at most (N - 1)/N when one holds everything. All zeros is perfect equality, G = 0 (not 0/0). Computed
    from the sorted values, ``G = Σ_k (2k - N - 1) x_(k) / (N Σ_i x_i)`` (k = 1 .. N ascending).

    Args:
        values: shape ``(..., N)``, N >= 1, finite and >= 0 (the coefficient is not defined for negative
            incomes; shift payoffs by the game's lowest payoff first if a diagram has negative ones).

    Returns:
        float64 array of shape ``values.shape[:-1]``.
    """
    x = _payoff_array("values", values, min_players=1)
    if x.size and x.min() < 0:
        raise ValueError(f"gini needs non-negative values, got {x.min()}; shift them by the lowest possible value")
    num = x.shape[-1]
    ranks = 2.0 * np.arange(1, num + 1) - num - 1  # 2k - N - 1 for the ascending order
    weighted = np.sort(x, axis=-1) @ ranks
    total = x @ np.ones(num)
    safe_total = np.where(total > 0, total, 1.0)
    return np.where(total > 0, weighted / (num * safe_total), 0.0)


def virtue_equality(cumulative_payoffs: ArrayLike) -> np.ndarray:
    """Tennant et al.'s virtue-equality reward for N players: one minus the normalised Gini coefficient.

    ``R = 1 - N/(N-1) G(X)``; at N = 2, ``1 - |X_1 - X_2| / (X_1 + X_2)``, the authors' formula. 1 when every
    player has the same (including all zero), 0 when one player has everything. The same for every player.

    Args:
        cumulative_payoffs: shape ``(..., N)``, N >= 2, each player's payoffs summed over the episode so far (or
            this round's payoffs, for the authors' per-round reward), finite and >= 0.

    Returns:
        float64 array of shape ``cumulative_payoffs.shape[:-1]``.
    """
    x = _payoff_array("cumulative_payoffs", cumulative_payoffs, min_players=2)
    num_players = x.shape[-1]
    return 1.0 - gini(x) * num_players / (num_players - 1)


# ------------------------------------------------------------------------------------------------- kindness
def virtue_kindness(own_action: ArrayLike, bonus: float = DEFAULT_KINDNESS_BONUS) -> np.ndarray:
    """Tennant et al.'s virtue-kindness reward: ``bonus`` for cooperating, 0 otherwise.

    ``R = bonus if a_i = C else 0``. Defection and illegal moves get 0 (the reward classes pay illegal moves their
    own reward).

    Args:
        own_action: the player's action(s) this round, any shape, values 0 (C), 1 (D) or -1 (illegal).
        bonus: the reward for cooperating (the paper's xi), finite and >= 0; a negative one would punish
            cooperation, which is another preference than kindness.

    Returns:
        float64 array of ``own_action``'s shape.
    """
    bonus = _check_non_negative("bonus (kindness reward for cooperating)", bonus)
    return np.where(_cooperated(own_action), bonus, 0.0)


def virtue_mixed(
    cumulative_payoffs: ArrayLike, own_action: ArrayLike, equality_weight: float = DEFAULT_EQUALITY_WEIGHT
) -> np.ndarray:
    """Tennant et al.'s virtue-mixed reward: a weighted mix of equality and (normalised) kindness.

    ``R = w (1 - N/(N-1) G(X)) + (1 - w) [a_i = C]``, with the kindness term divided by its bonus so both terms
    lie in [0, 1]. ``w = 1`` is :func:`virtue_equality`, ``w = 0`` is :func:`virtue_kindness` over its bonus.

    Args:
        cumulative_payoffs: shape ``(..., N)`` as for :func:`virtue_equality`.
        own_action: the player's action per game, shape ``cumulative_payoffs.shape[:-1]`` (or broadcastable),
            values 0 (C), 1 (D) or -1 (illegal).
        equality_weight: w, the paper's beta, in [0, 1] (default 0.5).

    Returns:
        float64 array of the broadcast shape.
    """
    weight = _check_weight("equality_weight (the virtue-mixed beta)", equality_weight)
    return weight * virtue_equality(cumulative_payoffs) + (1.0 - weight) * _cooperated(own_action)
