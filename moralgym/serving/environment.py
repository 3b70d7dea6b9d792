"""``MoralGymEnvironment``: one moralgym match behind OpenEnv's ``Environment`` interface.

OpenEnv's server builds one instance per WebSocket session (``SUPPORTS_CONCURRENT_SESSIONS``: instances share
nothing mutable, :mod:`moralgym.serving.settings`), so each session is one learner's match. What a request gets
wrong (a step before ``reset``, an unknown reset field, a bad seed) is raised as a
:class:`~moralgym.serving.match.MatchError` (a ``ValueError``) with one clear sentence: the server answers it as an
error message and the session stays open.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from moralgym.serving.match import Match, MatchError
from moralgym.serving.models import MoralGymAction, MoralGymObservation, MoralGymState
from moralgym.serving.settings import MatchSettings

__all__ = ["MoralGymEnvironment"]


def check_seed(seed: Any) -> int:
    """``seed`` as an int (a fresh one, reported in the observation, when ``None``)."""
    if seed is None:
        return secrets.randbelow(2**32)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MatchError(f"seed must be a non-negative integer or null, got {seed!r}")
    return seed


class MoralGymEnvironment(Environment[MoralGymAction, MoralGymObservation, MoralGymState]):
    """One match of ``settings`` (default :class:`MatchSettings`): ``reset(seed)`` gives the first prompt,
    ``step(MoralGymAction)`` plays a round."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, settings: MatchSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else MatchSettings()
        self.match = Match(self.settings)
        self._episode_id: str | None = None

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> MoralGymObservation:
        if kwargs:
            raise MatchError(
                f"reset() takes seed and episode_id only; got unknown field(s) {', '.join(sorted(kwargs))}"
            )
        if episode_id is not None and not isinstance(episode_id, str):
            raise MatchError(f"episode_id must be a string or null, got {episode_id!r}")
        observation = self.match.reset(check_seed(seed))
        self._episode_id = episode_id or str(uuid.uuid4())
        return MoralGymObservation(**observation)

    def step(self, action: MoralGymAction, timeout_s: float | None = None, **kwargs: Any) -> MoralGymObservation:
        if not isinstance(action, MoralGymAction):
            raise MatchError(f"step() takes a MoralGymAction (text or action_id), got {type(action).__name__}")
        return MoralGymObservation(**self.match.step(action.text, action.action_id))

    @property
    def state(self) -> MoralGymState:
        return MoralGymState(episode_id=self._episode_id, step_count=self.match.round, **self.match.summary())

    def get_metadata(self) -> EnvironmentMetadata:
        from moralgym import __version__

        return EnvironmentMetadata(
            name="moralgym",
            description=f"moralgym match: {self.settings.describe()}",
            version=__version__,
        )
