"""Argument checks shared by the environments and the reward classes.

The keyword checks of the registries live with the registry type (:mod:`moralgym.registry`) and are re-exported
here, where the envs have always imported them from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import gymnasium

from moralgym.registry import accepted_keywords, check_keywords

__all__ = ["ResetNeeded", "accepted_keywords", "check_choice", "check_finite", "check_keywords", "check_render_mode"]


class ResetNeeded(gymnasium.error.ResetNeeded, RuntimeError):
    """``step()`` before ``reset()`` or after the episode ended: Gymnasium's ``ResetNeeded``, also a ``RuntimeError``."""


def check_finite(name: str, value: Any) -> float:
    """``value`` as a float, or ``ValueError`` naming ``name`` and the value if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``, else ``ValueError`` naming ``name``, the choices and the value."""
    if not isinstance(value, str) or value not in choices:
        accepted = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {accepted}, got {value!r}")
    return value


def check_render_mode(render_mode: Any, render_modes: Sequence[str]) -> str | None:
    """``render_mode`` if it is None or one of the env's ``render_modes``, else ``ValueError`` listing them."""
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be one of {list(render_modes)} or None, got {render_mode!r}")
    return render_mode
