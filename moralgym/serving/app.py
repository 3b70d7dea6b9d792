"""The OpenEnv server app of one match setting, built by OpenEnv's own ``create_app`` (its ``HTTPEnvServer``).

What that server offers (docs/openenv.md): the WebSocket ``/ws``, where each connection is a session with its own
:class:`~moralgym.serving.environment.MoralGymEnvironment` (up to ``max_sessions`` at once; OpenEnv's clients
speak it), and ``/health``, ``/schema``, ``/metadata``, ``/state`` and the stateless HTTP ``/reset`` and ``/step``.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from moralgym.serving.match import MatchError
from moralgym.serving.settings import MatchSettings

__all__ = ["DEFAULT_MAX_SESSIONS", "QuietClientDisconnects", "create_moralgym_app"]

#: Sessions served at once by default: a trainer holds one per rollout it plays in parallel.
DEFAULT_MAX_SESSIONS = 64


class QuietClientDisconnects:
    """ASGI middleware: a WebSocket session that the client closed ends quietly.

    Why: OpenEnv 0.3.0's ``/ws`` handler, once a session is over, closes the socket the client has already closed
    (OpenEnv's own client closes right after its ``close`` message), and the ``WebSocketDisconnect`` that raises
    escapes the app, so every normal session end would be logged as an error with a traceback. The handler has
    destroyed the session (its environment) before that close, so nothing is lost by ending there (docs/openenv.md).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "websocket":
            await self.app(scope, receive, send)
            return
        from starlette.websockets import WebSocketDisconnect

        with contextlib.suppress(WebSocketDisconnect):
            await self.app(scope, receive, send)


def create_moralgym_app(settings: MatchSettings | None = None, max_sessions: int = DEFAULT_MAX_SESSIONS) -> Any:
    """A FastAPI app serving ``settings`` (default :class:`MatchSettings`) to at most ``max_sessions`` sessions."""
    # Imported here, not above: ``moralgym serve`` checks its options before paying for openenv's import.
    from openenv.core.env_server.http_server import create_app

    from moralgym.serving.environment import MoralGymEnvironment
    from moralgym.serving.models import MoralGymAction, MoralGymObservation

    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
        raise ValueError(f"max_sessions must be a positive integer, got {max_sessions!r}")
    settings = settings if settings is not None else MatchSettings()
    app = create_app(
        functools.partial(MoralGymEnvironment, settings),
        MoralGymAction,
        MoralGymObservation,
        env_name="moralgym",
        max_concurrent_envs=max_sessions,
    )
    app.add_middleware(QuietClientDisconnects)
    app.add_exception_handler(MatchError, _bad_request)
    return app


#: Appended to an HTTP ``/step`` error: why a step there never finds an episode.
STATELESS_HTTP = (
    "HTTP /step is stateless in OpenEnv (each request gets a fresh environment); play episodes over the "
    "WebSocket /ws, as OpenEnv's EnvClient does"
)


async def _bad_request(request: Any, error: Exception) -> Any:
    """A request the match cannot take is answered 400 with its sentence (not 500 and a traceback)."""
    from fastapi.responses import JSONResponse

    detail = str(error)
    if request.url.path.endswith("/step"):
        detail = f"{detail}; {STATELESS_HTTP}"
    return JSONResponse(status_code=400, content={"detail": detail})
