"""LLM agents for moralgym games: the paper's prompts, strict answer parsing, batched and prefix-cached sampling.

The policy needs torch and transformers (``pip install moralgym[llm]``); nothing in :mod:`moralgym.envs` depends
on them. The names below are loaded on first use, so the pure-text modules (:mod:`~moralgym.agents.llm.prompts`,
:mod:`~moralgym.agents.llm.parsing`) import without torch.

>>> from moralgym.agents.llm import LLMPolicy, load_causal_lm, play     # doctest: +SKIP
>>> model, tokenizer = load_causal_lm("default")                        # doctest: +SKIP
>>> result = play(LLMPolicy(model, tokenizer), "tit_for_tat", "ipd")    # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moralgym.agents.llm.default_model import DefaultModelError, ensure_default_model, load_default_model
    from moralgym.agents.llm.env_agent import LLMEnvAgent
    from moralgym.agents.llm.loading import load_causal_lm
    from moralgym.agents.llm.n_player_prompts import (
        N_PLAYER_PHRASINGS,
        NPlayerPhrasing,
        NPlayerPromptBuilder,
        NPlayerPromptContext,
        NPlayerState,
        n_player_state,
        register_n_player_phrasing,
    )
    from moralgym.agents.llm.parsing import parse_action
    from moralgym.agents.llm.play import PlayConfig, PlayResult, main, play
    from moralgym.agents.llm.policy import Decision, LLMPolicy, decide_jointly
    from moralgym.agents.llm.prompts import (
        ACTION_TOKENS,
        PERSONAS,
        PHRASINGS,
        TABLE_ORDERS,
        ActionTokens,
        PromptBuilder,
        PromptContext,
        apply_chat_template,
        get_action_tokens,
        register_action_tokens,
        register_persona,
        register_phrasing,
        register_table_order,
    )
    from moralgym.agents.llm.sampling import sample_from_logprobs

__all__ = [
    "ACTION_TOKENS",
    "N_PLAYER_PHRASINGS",
    "PERSONAS",
    "PHRASINGS",
    "TABLE_ORDERS",
    "ActionTokens",
    "Decision",
    "DefaultModelError",
    "LLMEnvAgent",
    "LLMPolicy",
    "NPlayerPhrasing",
    "NPlayerPromptBuilder",
    "NPlayerPromptContext",
    "NPlayerState",
    "PlayConfig",
    "PlayResult",
    "PromptBuilder",
    "PromptContext",
    "apply_chat_template",
    "decide_jointly",
    "ensure_default_model",
    "get_action_tokens",
    "load_causal_lm",
    "load_default_model",
    "main",
    "n_player_state",
    "parse_action",
    "play",
    "register_action_tokens",
    "register_n_player_phrasing",
    "register_persona",
    "register_phrasing",
    "register_table_order",
    "sample_from_logprobs",
]

#: Submodule -> the public names it defines (every name of ``__all__``, once).
_MODULES: dict[str, tuple[str, ...]] = {
    "default_model": ("DefaultModelError", "ensure_default_model", "load_default_model"),
    "env_agent": ("LLMEnvAgent",),
    "loading": ("load_causal_lm",),
    "n_player_prompts": (
        "N_PLAYER_PHRASINGS",
        "NPlayerPhrasing",
        "NPlayerPromptBuilder",
        "NPlayerPromptContext",
        "NPlayerState",
        "n_player_state",
        "register_n_player_phrasing",
    ),
    "parsing": ("parse_action",),
    "play": ("PlayConfig", "PlayResult", "main", "play"),
    "policy": ("Decision", "LLMPolicy", "decide_jointly"),
    "prompts": (
        "ACTION_TOKENS",
        "PERSONAS",
        "PHRASINGS",
        "TABLE_ORDERS",
        "ActionTokens",
        "PromptBuilder",
        "PromptContext",
        "apply_chat_template",
        "get_action_tokens",
        "register_action_tokens",
        "register_persona",
        "register_phrasing",
        "register_table_order",
    ),
    "sampling": ("sample_from_logprobs",),
}
_SOURCES = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first access (PEP 562) and keep the name here."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """This package's module type: keeps ``play`` the function when the submodule ``play`` is imported.

    Importing a submodule binds it as an attribute of its package, which for ``moralgym.agents.llm.play`` would
    shadow the function of the same name that ``from moralgym.agents.llm import play`` promises.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _SOURCES.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
