"""``moralgym serve``: serve one match setting as an OpenEnv environment until SIGINT or SIGTERM.

Options are :class:`ServeArguments` (where and how many sessions) and :class:`~moralgym.serving.settings.
MatchSettings` (what is served), parsed by :func:`moralgym.cli_args.dataclass_parser` (``--config FILE.yaml`` sets
any of them by field name). Every setting is checked before the server listens: a bad one is one line on stderr,
exit code 2.

Output: a line saying what is served, then ``moralgym serve: ready on http://HOST:PORT ...`` once connections are
accepted (with ``--port 0`` it names the free port the system chose), uvicorn's log, and on SIGINT or SIGTERM a
graceful stop (open sessions are closed, at most ``SHUTDOWN_TIMEOUT_S`` seconds) ending with ``moralgym serve:
stopped (SIGTERM)`` and exit code 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from moralgym.serving.app import DEFAULT_MAX_SESSIONS
from moralgym.serving.settings import MatchSettings, one_line

__all__ = ["ServeArguments", "main"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
#: Seconds a stop waits for open sessions to close before cancelling them.
SHUTDOWN_TIMEOUT_S = 5


@dataclass
class ServeArguments:
    """Where the server listens and how many sessions it holds at once."""

    _argument_group_name = "server"

    host: str = field(default="127.0.0.1", metadata={"help": "interface to listen on (0.0.0.0: every interface)"})
    port: int = field(default=8000, metadata={"help": "TCP port (0: a free port, named in the ready line)"})
    max_sessions: int = field(
        default=DEFAULT_MAX_SESSIONS,
        metadata={"help": "concurrent sessions (one per match a trainer plays at once); more are refused"},
    )
    log_level: str = field(default="info", metadata={"help": f"uvicorn's log level: {', '.join(LOG_LEVELS)}"})

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.max_sessions < 1:
            raise ValueError(f"max_sessions must be a positive integer, got {self.max_sessions}")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")


def _parser() -> Any:
    from moralgym.cli_args import dataclass_parser

    return dataclass_parser(
        (ServeArguments, MatchSettings),
        prog="moralgym serve",
        dashed=True,
        description=(
            "Serve one moralgym match (game x opponent x reward x prompt) as an OpenEnv environment: each WebSocket "
            "session plays its own match; reset(seed) gives the paper's prompt, step(answer) plays a round.\n"
            "See docs/openenv.md. --config FILE.yaml sets any option by its field name."
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``moralgym serve``; returns the exit status (2 for a bad option)."""
    try:
        server_args, settings = _parser().parse(argv)
    except ValueError as error:
        print(f"moralgym serve: error: {one_line(error)}", file=sys.stderr)
        return 2
    from moralgym.serving.app import create_moralgym_app

    app = create_moralgym_app(settings, server_args.max_sessions)
    print(f"moralgym serve: {settings.describe()}; up to {server_args.max_sessions} sessions", flush=True)
    try:
        stopped_by = _run(app, server_args)
    except SystemExit as stop:  # uvicorn exits this way when it cannot listen (its log line says why)
        if stop.code in (0, None):
            return 0
        print(
            f"moralgym serve: error: cannot serve on {server_args.host}:{server_args.port} (see above)", file=sys.stderr
        )
        return 1
    print(f"moralgym serve: stopped ({stopped_by or 'server exited'})", flush=True)
    return 0


def _run(app: Any, args: ServeArguments) -> str | None:
    """Serve ``app`` until SIGINT or SIGTERM; return the signal's name.

    Why our own handlers around uvicorn's: after its graceful shutdown uvicorn re-raises the signal it caught with
    the handlers it found installed, and the default ones would turn a normal stop into KeyboardInterrupt (SIGINT)
    or death by signal (SIGTERM). Ours record it, so a stop ends with exit code 0. One that arrives before uvicorn
    has installed its handlers asks the server to exit as soon as it has started.
    """
    import uvicorn

    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S
    )
    server = uvicorn.Server(config)
    received: list[str] = []

    def record(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        server.should_exit = True

    previous = {sig: signal.signal(sig, record) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(_serve(server, args.host))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return received[0] if received else None


async def _serve(server: Any, host: str) -> None:
    """Run the uvicorn server; print the ready line (with the port actually bound) once it accepts connections."""
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        port = server.servers[0].sockets[0].getsockname()[1]
        where = f"[{host}]" if ":" in host else host
        print(
            f"moralgym serve: ready on http://{where}:{port} (OpenEnv WebSocket ws://{where}:{port}/ws); "
            "Ctrl-C or SIGTERM stops it",
            flush=True,
        )
    await task
