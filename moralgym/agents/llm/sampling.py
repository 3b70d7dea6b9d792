"""How a decision's tokens are drawn: exactly ``max_new_tokens`` draws from the full softmax, by inverting its CDF.

The draws are a deterministic function of seeded uniforms (one per token and decision), so the same seed gives the
same tokens whichever code path computed the log-probs (cached, shared prefix tree or plain forward), as long as
those agree up to float rounding. See docs/llm_speed.md for why the log-probs are computed in several ways.
"""

from __future__ import annotations

import torch

__all__ = ["draw_uniforms", "logprobs_from_logits", "sample_from_logprobs"]


def draw_uniforms(generator: torch.Generator, max_new_tokens: int, decisions: int) -> torch.Tensor:
    """``(max_new_tokens, decisions)`` float64 uniforms from ``generator``: one per (token, decision), drawn up front,
    so that a decision's tokens do not depend on which other decisions share its call."""
    return torch.rand((max_new_tokens, decisions), generator=generator, dtype=torch.float64)


def logprobs_from_logits(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log-softmax of ``logits / temperature`` over the last dimension (no division at the paper's temperature 1)."""
    if temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits, dim=-1)


def sample_from_logprobs(logprobs: torch.Tensor, uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row of ``logprobs`` (``(n, V)``, normalised) by inverting its CDF at ``uniforms`` (``(n,)``).

    Exactly multinomial sampling from ``exp(logprobs)``; being a deterministic function of the uniforms, it gives the
    same token for the same uniform from log-probs that differ only by float rounding (cached vs recomputed).
    Returns ``(tokens, token_logprobs)``.
    """
    probs = logprobs.double().exp()
    cdf = probs.cumsum(-1)
    target = (uniforms.to(device=cdf.device, dtype=cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
    tokens = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    # Rounding can push the draw past the last token with non-zero probability: fall back to that token.
    positive = probs > 0
    last_positive = probs.shape[-1] - 1 - positive.flip(-1).int().argmax(-1)
    tokens = torch.minimum(tokens, last_positive)
    return tokens, logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
