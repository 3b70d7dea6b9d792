"""Argument checks shared by the registries (rewards, opponents) and the environments."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

import gymnasium


class ResetNeeded(gymnasium.error.ResetNeeded, RuntimeError):
    """``step()`` before ``reset()`` or after the episode ended: Gymnasium's ``ResetNeeded``, also a ``RuntimeError``."""


def accepted_keywords(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword arguments ``factory`` accepts, or ``None`` if it takes ``**kwargs`` (anything goes)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call itself decide
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in kinds]


def check_keywords(factory: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Raise ``TypeError`` naming every keyword of ``kwargs`` that ``factory`` does not accept, and the accepted ones.

    ``what`` names the thing being built in the message (``"reward 'deontological'"``).
    """
    accepted = accepted_keywords(factory)
    if accepted is None:
        return
    unknown = [key for key in kwargs if key not in accepted]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, accepted, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "keyword argument" if len(unknown) == 1 else "keyword arguments"
    takes = ", ".join(repr(a) for a in accepted) if accepted else "none"
    raise TypeError(f"{what}: unknown {noun} {', '.join(hints)}; accepted keyword arguments: {takes}")


def check_finite(name: str, value: Any) -> float:
    """``value`` as a float, or ``ValueError`` naming ``name`` and the value if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)
