"""``moralgym`` command line: ``moralgym {play,train,evaluate,compare} ...``.

Each subcommand lives with the module it drives and is imported only when called, so ``moralgym --help`` stays
instant and ``moralgym evaluate`` on a strategy never imports torch.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subcommand -> ("module:function", one-line help). Each function takes argv (without the subcommand).
COMMANDS: dict[str, tuple[str, str]] = {
    "play": ("moralgym.agents.llm.play:main", "an LLM plays a game against a strategy or another LLM"),
    "train": ("moralgym.training.cli:main", "fine-tune an LLM agent with PPO on a moral reward (--config YAML)"),
    "evaluate": ("moralgym.evaluation.cli:main_evaluate", "evaluate an agent with the paper's protocol and report"),
    "compare": ("moralgym.evaluation.cli:main_compare", "put several evaluated runs side by side"),
}


def usage() -> str:
    lines = ["usage: moralgym COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'moralgym COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
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
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
