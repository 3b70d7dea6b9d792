"""Turning an LLM's answer into a move, with the paper's strict rule.

Why strict: the paper rewards only answers that are *exactly* one of the two action tokens (after stripping
surrounding whitespace); "action1." or "I choose action1" is illegal and earns ``R_illegal``. Being lenient here
would silently change the learning problem, so any looser parser must be a separate, explicitly named function.
"""

from __future__ import annotations

from collections.abc import Sequence

from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL

__all__ = ["parse_action", "COOPERATE", "DEFECT", "ILLEGAL"]


def parse_action(text: object, tokens: object) -> int:
    """Return ``COOPERATE`` (0), ``DEFECT`` (1) or ``ILLEGAL`` (-1) for an answer.

    Args:
        text: the decoded answer (answer prefix + generated text). Anything that is not a ``str`` is illegal.
        tokens: the ``(cooperate, defect)`` token pair, either a two-string sequence or an object with
            ``cooperate`` and ``defect`` attributes (:class:`moralgym.agents.llm.prompts.ActionTokens`).

    Legal iff ``text.strip()`` equals exactly the cooperate or the defect token. Never raises on any ``text``.
    """
    cooperate, defect = _token_pair(tokens)
    if not isinstance(text, str):
        return ILLEGAL
    answer = text.strip()
    if answer == cooperate:
        return COOPERATE
    if answer == defect:
        return DEFECT
    return ILLEGAL


def _token_pair(tokens: object) -> tuple[str, str]:
    if hasattr(tokens, "cooperate") and hasattr(tokens, "defect"):
        pair: Sequence[object] = (tokens.cooperate, tokens.defect)  # type: ignore[attr-defined]
    elif isinstance(tokens, Sequence) and not isinstance(tokens, str) and len(tokens) == 2:
        pair = tokens
    else:
        raise TypeError(f"tokens must be a (cooperate, defect) pair of strings or an ActionTokens, got {tokens!r}")
    if not all(isinstance(t, str) and t.strip() == t and t for t in pair) or pair[0] == pair[1]:
        raise ValueError(
            f"action tokens must be two different non-empty strings without surrounding spaces, got {pair!r}"
        )
    return str(pair[0]), str(pair[1])
