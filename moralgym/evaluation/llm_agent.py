"""LLM policies as evaluation agents, and the paper's test-time prompt variants as data (spec §3.3, §5.1).

Importing this module loads no deep-learning library; :meth:`LLMAgent.from_pretrained` imports
:mod:`moralgym.agents.llm` (and so torch) only when called.

``PROMPT_VARIANTS`` maps a variant name to :class:`~moralgym.agents.llm.prompts.PromptBuilder` arguments. The main
results use ``action34`` (new tokens action3 = C, action4 = D); the others are the paper's robustness checks.
Add one with ``PROMPT_VARIANTS["mine"] = {"tokens": "XY", "phrasing": "unstructured"}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from moralgym.envs.games import ILLEGAL, MatrixGame
from moralgym.evaluation.agents import AgentStep

#: Variant name -> PromptBuilder keyword arguments.
PROMPT_VARIANTS: dict[str, dict[str, Any]] = {
    "action34": {"tokens": "action34"},  # main results (paper §5.1)
    "action12": {"tokens": "action12"},  # the training tokens (Fig 20)
    "swapped": {"tokens": "action21"},  # meanings swapped: action2 = C, action1 = D (Fig 8b / 21)
    "table_cols_reversed": {"tokens": "action34", "table_order": "cols_reversed"},  # Fig 9
    "table_rows_reversed": {"tokens": "action34", "table_order": "rows_reversed"},
    "table_reversed": {"tokens": "action34", "table_order": "reversed"},
    "unstructured": {"tokens": "action34", "phrasing": "unstructured"},  # Fig 10
    "ipd_like": {"tokens": "action34", "phrasing": "ipd_like"},
    "explicit_ipd": {"tokens": "action34", "phrasing": "explicit_ipd"},
    "action_only": {"tokens": "action34", "phrasing": "action_only"},  # Fig 11 (unrelated prompts)
    "action_game": {"tokens": "action34", "phrasing": "action_game"},
    "action_game_state": {"tokens": "action34", "phrasing": "action_game_state"},
}
MAIN_VARIANT = "action34"


class LLMAgent:
    """Adapter from an LLM policy (``policy.decide(games, observations) -> list[Decision]`` with ``.action`` in
    {0, 1, ILLEGAL} and ``.text``) to the evaluation-agent protocol.

    ``set_variant(name)`` swaps the policy's prompt builder for the variant's (attribute ``prompt_builder`` or
    ``builder``; ``LLMPolicy.prompt``); ``reset(n, seed)`` reseeds the policy (method ``reseed``/``set_seed``/``seed`` if present), so the
    fine-tuned and the base model see the same token-order shuffles and sampling streams.
    """

    def __init__(self, policy: Any, name: str = "llm", variants: dict[str, dict[str, Any]] | None = None) -> None:
        if not callable(getattr(policy, "decide", None)):
            raise TypeError(f"an LLM policy needs a decide(games, observations) method, got {type(policy).__name__}")
        self.policy = policy
        self.name = name
        self._variants = dict(PROMPT_VARIANTS if variants is None else variants)
        self.variant = MAIN_VARIANT if MAIN_VARIANT in self._variants else next(iter(self._variants), "default")
        #: Which seat the agent plays (0 = row); the harness sets it, so prompts show the table from that seat.
        self.seat = 0

    @classmethod
    def from_pretrained(
        cls,
        model: str = "default",
        adapter: str | None = None,
        name: str | None = None,
        dtype: Any = None,
        **policy_kwargs: Any,
    ) -> LLMAgent:
        """Load ``model`` (``"default"``, a model id or a model directory; ``adapter`` a LoRA adapter directory on
        top) with :func:`~moralgym.agents.llm.loading.load_causal_lm` and wrap it in an ``LLMPolicy``."""
        from pathlib import Path

        from moralgym.agents.llm.loading import load_causal_lm
        from moralgym.agents.llm.policy import LLMPolicy

        if adapter is None and (Path(model) / "adapter_config.json").exists():
            # A LoRA adapter directory on its own: its base model is the default model.
            model, adapter = "default", model
        loaded_model, tokenizer = load_causal_lm(model, adapter=adapter, dtype=dtype)
        policy = LLMPolicy(loaded_model, tokenizer, **policy_kwargs)
        return cls(policy, name=name or (str(model) if adapter is None else f"{Path(adapter).name}"))

    def variants(self) -> list[str]:
        return list(self._variants)

    def set_variant(self, name: str) -> None:
        if name not in self._variants:
            raise KeyError(f"unknown prompt variant {name!r}; known: {', '.join(self._variants)}")
        self.variant = name
        for attribute in ("prompt", "prompt_builder", "builder"):
            current = getattr(self.policy, attribute, None)
            if current is None:
                continue
            kwargs = self._variants[name]
            if dataclasses.is_dataclass(current):
                # Keep the policy's other settings (answer prefix, persona, ...); change only what the variant names.
                base = {f.name: getattr(current, f.name) for f in dataclasses.fields(current) if f.init}
                base.update({"tokens": "action34", "phrasing": "paper", "table_order": "original"})
                setattr(self.policy, attribute, type(current)(**{**base, **kwargs}))
            else:
                setattr(self.policy, attribute, kwargs)
            return

    def reset(self, n: int, seed: int) -> None:
        for method in ("reseed", "set_seed", "seed"):
            function = getattr(self.policy, method, None)
            if callable(function):
                function(seed)
                return

    def act(self, games: Sequence[MatrixGame], observations: np.ndarray) -> AgentStep:
        observations = np.asarray(observations)
        if self.seat:
            decisions = self.policy.decide(list(games), observations, [self.seat] * len(observations))
        else:
            decisions = self.policy.decide(list(games), observations)
        actions = np.array([ILLEGAL if d.action is None else int(d.action) for d in decisions], dtype=np.int64)
        return AgentStep(actions, [str(getattr(d, "text", "")) for d in decisions])

    def __repr__(self) -> str:
        return f"LLMAgent(name={self.name!r}, variant={self.variant!r})"
