"""LLM agents for moralgym games: the paper's prompts, strict answer parsing, batched and prefix-cached sampling.

Imports torch and transformers (``pip install moralgym[llm]``); nothing in :mod:`moralgym.envs` depends on it.

>>> from moralgym.agents.llm import LLMPolicy, load_causal_lm, play     # doctest: +SKIP
>>> model, tokenizer = load_causal_lm("default")                        # doctest: +SKIP
>>> result = play(LLMPolicy(model, tokenizer), "tit_for_tat", "ipd")    # doctest: +SKIP
"""

from moralgym.agents.llm.default_model import DefaultModelError, ensure_default_model, load_default_model
from moralgym.agents.llm.loading import load_causal_lm
from moralgym.agents.llm.parsing import parse_action
from moralgym.agents.llm.play import PlayConfig, PlayRecord, PlayResult, main, play
from moralgym.agents.llm.policy import Decision, LLMAgent, LLMPolicy, decide_jointly, sample_from_logprobs
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

__all__ = [
    "ACTION_TOKENS",
    "PERSONAS",
    "PHRASINGS",
    "TABLE_ORDERS",
    "ActionTokens",
    "Decision",
    "DefaultModelError",
    "LLMAgent",
    "LLMPolicy",
    "decide_jointly",
    "PlayConfig",
    "PlayRecord",
    "PlayResult",
    "PromptBuilder",
    "PromptContext",
    "apply_chat_template",
    "ensure_default_model",
    "get_action_tokens",
    "load_causal_lm",
    "load_default_model",
    "main",
    "parse_action",
    "play",
    "register_action_tokens",
    "register_persona",
    "register_phrasing",
    "register_table_order",
    "sample_from_logprobs",
]
