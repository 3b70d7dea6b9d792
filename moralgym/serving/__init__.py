"""moralgym games as OpenEnv environments: ``moralgym serve`` and the pieces behind it (docs/openenv.md).

One module per job:

- ``settings``: :class:`MatchSettings`, what one served match is (game x opponent x reward x prompt), checked once;
- ``match``: :class:`Match`, one match played a round at a time through moralgym's episode runner;
- ``models``: the OpenEnv wire types (:class:`MoralGymAction`, :class:`MoralGymObservation`, :class:`MoralGymState`);
- ``environment``: :class:`MoralGymEnvironment`, a match behind OpenEnv's ``Environment`` interface;
- ``app``: :func:`create_moralgym_app`, OpenEnv's own server app (one environment per WebSocket session);
- ``client``: :class:`MoralGymClient`, OpenEnv's ``EnvClient`` typed for it;
- ``cli``: ``moralgym serve``.

The names below load on first use: ``settings`` and ``match`` need neither openenv nor torch, the rest need
openenv-core (``pip install 'moralgym[openenv]'``) and never torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moralgym.serving.app import create_moralgym_app
    from moralgym.serving.client import MoralGymClient, MoralGymServerError
    from moralgym.serving.environment import MoralGymEnvironment
    from moralgym.serving.match import Match, MatchError
    from moralgym.serving.models import MoralGymAction, MoralGymObservation, MoralGymState
    from moralgym.serving.settings import MatchSettings

_SOURCES = {
    "MatchSettings": "settings",
    "Match": "match",
    "MatchError": "match",
    "MoralGymAction": "models",
    "MoralGymObservation": "models",
    "MoralGymState": "models",
    "MoralGymEnvironment": "environment",
    "create_moralgym_app": "app",
    "MoralGymClient": "client",
    "MoralGymServerError": "client",
}

__all__ = [
    "Match",
    "MatchError",
    "MatchSettings",
    "MoralGymAction",
    "MoralGymClient",
    "MoralGymEnvironment",
    "MoralGymObservation",
    "MoralGymServerError",
    "MoralGymState",
    "create_moralgym_app",
]


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
