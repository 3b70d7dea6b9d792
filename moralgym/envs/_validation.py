"""Argument checks shared by the environments and the reward classes.

The keyword checks of the registries live with the registry type (:mod:`moralgym.registry`) and are re-exported
here, where the envs have always imported them from.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import gymnasium

from moralgym.registry import accepted_keywords, check_keywords

__all__ = ["ResetNeeded", "accepted_keywords", "check_finite", "check_keywords"]


class ResetNeeded(gymnasium.error.ResetNeeded, RuntimeError):
    """``step()`` before ``reset()`` or after the episode ended: Gymnasium's ``ResetNeeded``, also a ``RuntimeError``."""


def check_finite(name: str, value: Any) -> float:
    """``value`` as a float, or ``ValueError`` naming ``name`` and the value if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)
