"""``moralgym`` command line: ``moralgym {play,train,evaluate,compare,serve} ...``.

Each subcommand lives with the module it drives and is imported only when called, so ``moralgym --help`` stays
instant and ``moralgym evaluate`` on a strategy never imports torch.

Errors: a subcommand reports bad input itself (one line on stderr, exit code 2). Anything that escapes it is turned
into one line too (``moralgym COMMAND: Type: message``, exit code 1; Ctrl-C: exit code 130), without a traceback
unless ``--debug`` is given (before or after the command; ``MORALGYM_DEBUG=1`` in the environment does the same).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

_debug = False


def debug_enabled() -> bool:
    """Whether ``--debug`` (or ``MORALGYM_DEBUG=1``) asked for tracebacks instead of one-line errors."""
    return _debug or os.environ.get("MORALGYM_DEBUG", "") not in ("", "0")


#: subcommand -> ("module:function", one-line help). Each function takes argv (without the subcommand).
COMMANDS: dict[str, tuple[str, str]] = {
    "play": ("moralgym.agents.llm.play:main", "an LLM plays a game against a strategy or another LLM"),
    "train": ("moralgym.training.cli:main", "fine-tune an LLM agent with PPO on a moral reward (--config YAML)"),
    "evaluate": ("moralgym.evaluation.cli:main_evaluate", "evaluate an agent with the paper's protocol and report"),
    "compare": ("moralgym.evaluation.cli:main_compare", "put several evaluated runs side by side"),
    "serve": ("moralgym.serving.cli:main", "serve a game as an OpenEnv environment for LLM-RL trainers"),
}


def usage() -> str:
    lines = ["usage: moralgym COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'moralgym COMMAND --help' for a command's options; --debug shows tracebacks."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    global _debug
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] == "--version":
        from moralgym import __version__

        print(f"moralgym {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(
            f"moralgym: unknown command {command!r}; choose one of {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr
        )
        return 2
    module_name, function_name = COMMANDS[command][0].split(":")
    previous, _debug = _debug, _debug or debug
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        result = function(rest)
    except KeyboardInterrupt:
        if debug_enabled():
            raise
        print(f"moralgym {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line instead of a traceback; --debug shows it
        if debug_enabled():
            raise
        message = " ".join(str(error).split())
        print(
            f"moralgym {command}: {type(error).__name__}: {message} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        _debug = previous
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
