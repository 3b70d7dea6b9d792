"""One registry type for everything a user picks by name: games, rewards, opponent strategies and prompt parts.

Every name a user types (``get_game("Prisoners-Dilemma")``, ``get_reward("De")``, ``opponent="Tit for Tat"``,
``PromptBuilder(persona="Ut")``) goes through a :class:`Registry`, so aliases, normalisation and error messages
behave the same everywhere instead of each module doing it its own way:

- a name or alias matches whatever its case, surrounding spaces, and spaces or dashes written for underscores
  (``"Game, then Deontological"`` is ``"game,_then_deontological"``); a registry whose names differ only by case
  (the action-token pairs ``AB`` / ``ab``) is made ``case_sensitive`` and then ignores only spaces and dashes;
- an unknown name is a ``KeyError`` on one line that lists the known names (and the closest one, if any);
- :meth:`Registry.build` calls a registered factory and rejects an unknown keyword argument with a ``TypeError``
  that lists the accepted ones (:func:`check_keywords`).

A registry is a ``MutableMapping`` of canonical names to entries, so the registries that used to be plain dicts
(``ACTION_TOKENS``, ``PHRASINGS``, ...) are still iterated, indexed and assigned to the same way; iteration yields
canonical names only, in registration order, while indexing and ``in`` also accept aliases.

This module imports nothing outside the standard library: ``moralgym.envs`` must import without torch (and the
registries are needed before numpy-heavy modules load).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "accepted_keywords", "check_keywords", "normalise_name"]

T = TypeVar("T")


def normalise_name(name: str, *, case_sensitive: bool = False) -> str:
    """The lookup key of ``name``: stripped, spaces and dashes turned into underscores, lower case unless
    ``case_sensitive``. Both registered names and looked-up names go through it, so any spelling that differs only in
    those respects finds the same entry."""
    key = name.strip().replace("-", "_").replace(" ", "_")
    return key if case_sensitive else key.lower()


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

    Why not let the call fail: Python's own message names only the first bad keyword and never the accepted ones.
    ``what`` names the thing being built in the message (``"get_reward('deontological')"``).
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


class Registry(MutableMapping[str, T], Generic[T]):
    """Named entries (values or factories) with aliases, looked up by any normalised spelling of a name or alias.

    Args:
        kind: what an entry is, for messages (``"game"``, ``"opponent strategy"``).
        plural: the plural of ``kind`` in "known ...: " (default ``kind + "s"``).
        case_sensitive: keep case in lookup keys (for names such as ``"AB"`` and ``"ab"`` that may mean different
            things); spaces and dashes are still ignored.
        builder: the public function that builds from this registry, named in keyword errors of :meth:`build`
            (``"get_reward"``); default ``kind``.
        hint: appended to the unknown-name message (``" (or pass a payoff table)"``).
    """

    def __init__(
        self,
        kind: str,
        plural: str | None = None,
        *,
        case_sensitive: bool = False,
        builder: str | None = None,
        hint: str = "",
    ) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.case_sensitive = case_sensitive
        self.builder = builder or kind
        self.hint = hint
        self._entries: dict[str, T] = {}  # canonical name -> entry, in registration order
        self._keys: dict[str, str] = {}  # normalised name or alias -> canonical name
        self._aliases: dict[str, list[str]] = {}  # canonical name -> aliases as registered

    # ------------------------------------------------------------------------------------------------ registering
    def key(self, name: str) -> str:
        """The normalised lookup key of ``name`` in this registry (see :func:`normalise_name`)."""
        return normalise_name(name, case_sensitive=self.case_sensitive)

    def register(self, name: str, entry: T, aliases: Iterable[str] = (), *, overwrite: bool = True) -> T:
        """Add (or replace) ``entry`` under ``name`` and each alias; returns ``entry``.

        A name that normalises to a registered name *is* that name: its entry is replaced and its earlier aliases
        and spelling kept (a dict assignment, which is what the registries that were dicts did). An alias that
        belongs to another entry moves to this one when ``overwrite``, and is a ``ValueError`` naming both
        without it; an alias may never be another entry's own name, so every listed name finds its own entry.
        Nothing changes when it raises.
        """
        aliases = tuple(aliases)
        for spelling in (name, *aliases):
            if not isinstance(spelling, str) or not spelling.strip():
                raise ValueError(f"a {self.kind} name or alias must be a non-empty string, got {spelling!r}")
        same = self._keys.get(self.key(name))
        if same is not None and self.key(same) == self.key(name):
            name = same
        moved: list[tuple[str, str]] = []  # (key, entry it is taken from)
        for spelling in (name, *aliases):
            key, owner = self.key(spelling), self._keys.get(self.key(spelling))
            if owner is None or owner == name:
                continue
            if not overwrite:
                raise ValueError(f"{self.kind} name {spelling!r} is already registered for {owner!r}")
            if self.key(owner) == key:
                raise ValueError(f"{self.kind} alias {spelling!r} is the name of {owner!r}, not an alias of {name!r}")
            moved.append((key, owner))
        for key, owner in moved:
            self._aliases[owner] = [a for a in self._aliases[owner] if self.key(a) != key]
        self._entries[name] = entry
        known = self._aliases.setdefault(name, [])
        for alias in aliases:
            key = self.key(alias)
            if key != self.key(name) and all(self.key(a) != key for a in known):
                known.append(alias)
        for spelling in (name, *aliases):
            self._keys[self.key(spelling)] = name
        return entry

    def _remove(self, name: str) -> None:
        del self._entries[name]
        del self._aliases[name]
        for key in [key for key, owner in self._keys.items() if owner == name]:
            del self._keys[key]

    # ------------------------------------------------------------------------------------------------ looking up
    def canonical(self, name: str) -> str:
        """The registered name that ``name`` (a name or alias, any normalised spelling) stands for.

        Raises:
            KeyError: unknown name; the one-line message lists the known names.
        """
        owner = self._keys.get(self.key(name)) if isinstance(name, str) else None
        if owner is None:
            raise KeyError(self.unknown_message(name))
        return owner

    def unknown_message(self, name: object) -> str:
        """The one-line message for an unknown ``name``: the known names, and the closest one if any is close."""
        known = ", ".join(self._entries) or "none"
        message = f"unknown {self.kind} {name!r}; known {self.plural}: {known}{self.hint}"
        if isinstance(name, str):
            close = difflib.get_close_matches(self.key(name), list(self._keys), n=1)
            if close:
                message += f"; did you mean {self._keys[close[0]]!r}?"
        return message

    def names(self) -> list[str]:
        """The canonical names, in registration order."""
        return list(self._entries)

    def aliases(self, name: str) -> tuple[str, ...]:
        """The aliases registered for ``name`` (or for the entry an alias ``name`` stands for)."""
        return tuple(self._aliases[self.canonical(name)])

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Call the factory registered under ``name`` with ``kwargs``.

        Raises:
            KeyError: unknown name (the message lists the known ones).
            TypeError: a keyword argument the factory does not take (the message lists the accepted ones).
        """
        canonical = self.canonical(name)
        factory = self._entries[canonical]
        check_keywords(factory, kwargs, f"{self.builder}({canonical!r})")  # type: ignore[arg-type]
        return factory(**kwargs)  # type: ignore[operator]

    # ------------------------------------------------------------------------------------------------ mapping
    def __getitem__(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def __setitem__(self, name: str, entry: T) -> None:
        self.register(name, entry)

    def __delitem__(self, name: str) -> None:
        self._remove(self.canonical(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.key(name) in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
