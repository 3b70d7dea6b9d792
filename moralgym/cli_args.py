"""Command lines built from dataclasses: one parser style for ``moralgym evaluate``, ``compare`` and the study script.

``DataclassParser`` (made by :func:`dataclass_parser`) is :class:`transformers.HfArgumentParser`, the parser under
:class:`trl.TrlParser` (which ``moralgym train`` uses) and under ``moralgym play``: every option is a dataclass field,
its help the field's ``metadata["help"]`` and its default the field's default, so nothing is declared twice. On top
of it:

- ``--config FILE.yaml`` the way :class:`trl.TrlParser` reads it: the file's keys are field names and set the
  defaults, flags on the command line override them, an ``env`` mapping sets environment variables; a key that is no
  field is an error, as in ``moralgym train``. PyYAML is imported only when ``--config`` is given.
- a mistake is one line, ``PROG: error: MESSAGE (see 'PROG --help')``, exit code 2; flags are never abbreviated.
- a field's ``metadata["cli"]`` asks for the argparse spellings HfArgumentParser has no field syntax for:
  ``{"positional": True}`` (an argument without ``--``), ``{"switch": True}`` (a flag that takes no value, as
  argparse's ``store_true``, so ``--no-report AGENT`` still reads AGENT as the agent), ``{"nargs": "*"}`` (a list
  that may be given empty). HfArgumentParser's own ``metadata["aliases"]`` gives a field extra flag spellings.

The customisation goes through ``HfArgumentParser._parse_dataclass_field`` (transformers 5), which adds one field
to the parser: it is handed a stand-in parser that rewrites what it adds, so the type handling stays transformers'.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["POSITIONAL", "SWITCH", "HelpFormatter", "dataclass_parser"]

#: ``metadata={"cli": POSITIONAL}``: the field is a positional argument (required unless it has a default).
POSITIONAL: Mapping[str, Any] = {"positional": True}
#: ``metadata={"cli": SWITCH}``: a bool field given as a bare flag (``--overwrite``), which takes no value.
SWITCH: Mapping[str, Any] = {"switch": True}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each help text (as HfArgumentParser does), the description printed as written. A
    ``None`` default (the help says what is used then) and a switch's ``False`` are not shown."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action, argparse._StoreTrueAction):
            return action.help
        return super()._get_help_string(action)


class _FieldOptions:
    """Stands in for the parser (or argument group) while HfArgumentParser adds one field, and applies the field's
    ``metadata["cli"]`` to what it adds; argparse never sees the ``cli`` key."""

    def __init__(self, target: Any, name: str, options: Mapping[str, Any], dashed: bool) -> None:
        self._target, self._name, self._options, self._dashed = target, name, options, dashed

    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action:
        kwargs.pop("cli", None)
        options = self._options
        if "nargs" in options:
            kwargs["nargs"] = options["nargs"]
        if options.get("switch"):
            for key in ("type", "nargs", "const"):
                kwargs.pop(key, None)
            kwargs["action"] = "store_true"
        if options.get("positional"):
            kwargs.pop("required", None)
            if "default" in kwargs and kwargs.get("nargs") is None:
                kwargs["nargs"] = "?"
            return self._target.add_argument(self._name, **kwargs)
        if self._dashed:  # the aliases, then --a-b, then --a_b: the first one is the spelling usage and help show
            names = [f"--{self._name}", f"--{self._name.replace('_', '-')}"]
            flags = tuple(sorted(flags, key=lambda flag: 0 if flag not in names else 1 if flag == names[1] else 2))
            kwargs.setdefault("dest", self._name)  # argparse would name it after the first flag, an alias maybe
        return self._target.add_argument(*flags, **kwargs)


def dataclass_parser(dataclass_types: Any, **kwargs: Any) -> Any:
    """A ``DataclassParser`` (see the module docstring) over ``dataclass_types``, one dataclass or a sequence;
    ``dashed=True`` shows ``--field-name`` rather than ``--field_name`` first (both are accepted either way), other
    ``kwargs`` go to :class:`argparse.ArgumentParser` (``prog``, ``description``, ...)."""
    return _parser_class()(dataclass_types, **kwargs)


@cache
def _parser_class() -> type:
    """The parser class, defined on first use: importing this module (and the commands' modules, which declare their
    dataclasses with :data:`POSITIONAL` / :data:`SWITCH`) does not import transformers."""
    try:
        from transformers import HfArgumentParser
    except ImportError as error:
        raise ImportError(
            f"moralgym's command lines are parsed by transformers.HfArgumentParser ({error}); "
            "pip install 'moralgym[llm]'"
        ) from error

    class DataclassParser(HfArgumentParser):
        """HfArgumentParser with ``--config FILE.yaml``, one-line errors and the ``metadata["cli"]`` spellings (see the
        module docstring); :meth:`parse` returns one instance per dataclass, in the order given."""

        def __init__(self, dataclass_types: Any, *, dashed: bool = False, **kwargs: Any) -> None:
            kwargs.setdefault("allow_abbrev", False)
            kwargs.setdefault("formatter_class", HelpFormatter)
            self.dashed = dashed
            super().__init__(dataclass_types, **kwargs)

        def _parse_dataclass_field(self, parser: Any, field: Any) -> None:
            options = field.metadata.get("cli", {})
            HfArgumentParser._parse_dataclass_field(_FieldOptions(parser, field.name, options, self.dashed), field)

        def error(self, message: str) -> NoReturn:
            """One line, no usage dump (argparse prints the usage and the message on two)."""
            self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

        def parse(self, args: Sequence[str] | None = None) -> tuple[Any, ...]:
            """``args`` (default ``sys.argv[1:]``), with an optional ``--config FILE.yaml``, into the dataclasses.

            A usage mistake exits through :meth:`error`; a ``ValueError`` of a dataclass's ``__post_init__`` is raised
            as is, for the command to report its own way.
            """
            import sys

            args = list(sys.argv[1:] if args is None else args)
            if "--config" in args:
                index = args.index("--config")
                if index + 1 >= len(args) or args[index + 1].startswith("--"):
                    self.error(f"--config needs a YAML file: {self.prog} --config FILE.yaml")
                self.set_defaults_from_file(args[index + 1])
                del args[index : index + 2]
            *parsed, remaining = self.parse_args_into_dataclasses(
                args, return_remaining_strings=True, look_for_args_file=False
            )
            if remaining:
                self.error(f"unrecognized arguments: {' '.join(remaining)}")
            return tuple(parsed)

        def set_defaults_from_file(self, path: str | os.PathLike) -> None:
            """The YAML file's values become the defaults of the fields they name (as ``TrlParser`` does)."""
            import yaml

            file = Path(path)
            if not file.is_file():
                self.error(f"config file {file} not found; pass an existing YAML file")
            try:
                values = yaml.safe_load(file.read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                problem = getattr(error, "problem", None) or str(error).splitlines()[0]
                self.error(f"{file} is not valid YAML: {problem}{where}; fix the file")
            values = {} if values is None else values
            if not isinstance(values, dict):
                self.error(f"config file {file} must hold a YAML mapping of field names to values")
            env = values.pop("env", {})
            if not isinstance(env, dict):
                self.error(f"config file {file}: 'env' must be a mapping of environment variables to values")
            actions = {action.dest: action for action in self._actions if not isinstance(action, argparse._HelpAction)}
            unknown = [key for key in values if key not in actions]
            if unknown:
                self.error(f"unknown field(s) in the config file {file}: {', '.join(map(str, unknown))}")
            for key, value in env.items():
                os.environ[str(key)] = str(value)
            for key, value in values.items():
                actions[key].default = value
                actions[key].required = False

    return DataclassParser
