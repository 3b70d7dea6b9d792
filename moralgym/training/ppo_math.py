"""The PPO algebra, as small pure functions (no model, no environment): the part a reader checks against a paper.

Conventions follow the classic TRL ``PPOTrainer`` (v0.9, the version the paper used) so numbers are comparable:

* per-token rewards ``r_t = -beta * (logp_t - logp_ref_t)``, plus the scalar score on the last response token;
* GAE over the response tokens with ``gamma`` and ``lam``; returns ``= advantages + values``; advantages whitened
  over the whole batch (mean and unbiased variance of all unmasked tokens);
* clipped policy loss and clipped value loss, both averaged over all unmasked tokens of a minibatch;
* an adaptive KL controller (Ziegler et al. 2019): ``beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon``;
* reward scaling and normalisation with running moments over every score seen so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# --------------------------------------------------------------------------------------------- masked statistics


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (over all elements, or along ``dim``)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum()
    return (values * mask).sum(dim) / mask.sum(dim)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the unmasked elements (Bessel-corrected by default, as TRL)."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    if unbiased:
        count = mask.sum()
        if count <= 1:
            # One sample has no spread; returning 0 makes whitening a pure mean shift instead of a division by zero.
            return torch.zeros_like(variance)
        variance = variance * count / (count - 1)
    return variance


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``(x - mean) / sqrt(var + 1e-8)`` over the unmasked elements; ``shift_mean=False`` adds the mean back."""
    mean, variance = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened


# --------------------------------------------------------------------------------------------- rewards and advantages


def per_token_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards ``-kl_coef * (logp - logp_ref)`` with each sample's score added on its last unmasked token.

    Returns ``(rewards, kl)`` with shape ``(batch, tokens)``; ``kl`` is the per-token estimate ``logp - logp_ref``.
    """
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = mask.shape[1] - 1 - torch.flip(mask, dims=[1]).to(torch.long).argmax(dim=1)
    rewards[torch.arange(len(scores)), last] += scores.to(rewards.dtype)
    return rewards * mask, kl


def gae_advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the response tokens of each sample (no bootstrap past the last token).

    Returns ``(advantages, returns)``, both un-whitened; ``returns = advantages + values``.
    """
    values = values * mask
    rewards = rewards * mask
    length = rewards.shape[-1]
    running = torch.zeros_like(rewards[:, 0])
    reversed_advantages = []
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t < length - 1 else 0.0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        reversed_advantages.append(running)
    advantages = torch.stack(reversed_advantages[::-1], dim=1)
    return advantages, advantages + values


# --------------------------------------------------------------------------------------------- the loss


_masked_mean = masked_mean


@dataclass
class PPOLossTerms:
    """The losses and the statistics the loop logs, for one minibatch."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    policy_clipfrac: torch.Tensor
    value_clipfrac: torch.Tensor
    approx_kl: torch.Tensor
    policy_kl: torch.Tensor
    mean_ratio: torch.Tensor


def ppo_loss(
    logprobs: torch.Tensor,
    values: torch.Tensor,
    old_logprobs: torch.Tensor,
    old_values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
    cliprange_value: float,
    vf_coef: float,
    token_count: float | None = None,
) -> PPOLossTerms:
    """Clipped-surrogate policy loss plus ``vf_coef`` times the clipped value loss (means over unmasked tokens).

    ``token_count``: divide sums by this instead of the number of unmasked tokens here, so that the terms of
    disjoint chunks of a minibatch add up to the minibatch's means (exact chunked gradient accumulation).
    """
    if token_count is not None:

        def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # noqa: F811 - local override
            return (values * mask.to(values.dtype)).sum() / token_count
    else:
        masked_mean = _masked_mean
    clipped_values = torch.clamp(values, old_values - cliprange_value, old_values + cliprange_value)
    value_losses = (values - returns) ** 2
    value_losses_clipped = (clipped_values - returns) ** 2
    value_loss = 0.5 * masked_mean(torch.max(value_losses, value_losses_clipped), mask)

    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    policy_losses = -advantages * ratio
    policy_losses_clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    policy_loss = masked_mean(torch.max(policy_losses, policy_losses_clipped), mask)

    with torch.no_grad():
        stats = dict(
            policy_clipfrac=masked_mean((policy_losses_clipped > policy_losses).to(values.dtype), mask),
            value_clipfrac=masked_mean((value_losses_clipped > value_losses).to(values.dtype), mask),
            approx_kl=0.5 * masked_mean(log_ratio**2, mask),
            policy_kl=masked_mean(-log_ratio, mask),
            mean_ratio=masked_mean(ratio, mask),
        )
    return PPOLossTerms(
        loss=policy_loss + vf_coef * value_loss, policy_loss=policy_loss, value_loss=value_loss, **stats
    )


# --------------------------------------------------------------------------------------------- controllers and stats


class AdaptiveKLController:
    """Adaptive KL coefficient (Ziegler et al. 2019): nudges ``value`` so the observed KL tracks ``target``."""

    def __init__(self, init_kl_coef: float, target: float, horizon: float) -> None:
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        proportional_error = float(np.clip(current_kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + proportional_error * n_steps / self.horizon

    def state_dict(self) -> dict:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.target, self.horizon = float(state["value"]), float(state["target"]), float(state["horizon"])


class FixedKLController(AdaptiveKLController):
    """A constant KL coefficient (``adap_kl_ctrl: false``)."""

    def __init__(self, kl_coef: float) -> None:
        super().__init__(kl_coef, target=1.0, horizon=1.0)

    def update(self, current_kl: float, n_steps: int) -> None:
        pass


class RunningMoments:
    """Running mean and standard deviation of every score seen (Chan et al. parallel update, as TRL).

    Starts at mean 0, variance 1 with a negligible count, so the first batch's own statistics dominate.
    """

    def __init__(self) -> None:
        self.mean, self.var, self.std, self.count = 0.0, 1.0, 1.0, 1e-24

    def update(
        self,
        xs: torch.Tensor | np.ndarray,
        count: int | None = None,
        mean: float | None = None,
        var: float | None = None,
    ) -> tuple[float, float]:
        """Fold a batch in (or its precomputed global ``count``/``mean``/biased ``var``). Returns the batch's mean
        and unbiased standard deviation."""
        if count is None:
            xs = torch.as_tensor(xs, dtype=torch.float64).flatten()
            count = xs.numel()
            var_t, mean_t = torch.var_mean(xs, unbiased=False)
            mean, var = float(mean_t), float(var_t)
        delta = mean - self.mean
        total = self.count + count
        total_sum = self.var * self.count + delta**2 * self.count * count / total + var * count
        self.mean += delta * count / total
        new_var = total_sum / total
        self.std = float(np.sqrt(new_var * total / (total - 1))) if total > 1 else float(np.sqrt(new_var))
        self.var = new_var
        self.count = total
        batch_std = float(np.sqrt(var * count / (count - 1))) if count > 1 else 0.0
        return mean, batch_std

    def normalise(self, scores: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
        """``(score - mean) / (std + eps)`` (or only the division with ``shift_mean=False``)."""
        scale = self.std + torch.finfo(scores.dtype).eps
        return (scores - self.mean) / scale if shift_mean else scores / scale

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "std": self.std, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.std, self.count = (float(state[k]) for k in ("mean", "var", "std", "count"))
