"""LLM policies as evaluation agents, and the paper's test-time prompt variants as data (spec §3.3, §5.1).

Importing this module loads no deep-learning library; :meth:`LLMAgent.from_pretrained` imports
:mod:`moralgym.agents.llm` (and so torch) only when called.

``PROMPT_VARIANTS`` maps a variant name to a :class:`PromptVariant`: the
:class:`~moralgym.agents.llm.prompts.PromptBuilder` arguments *and* the protocol the authors ran it under. The
main results use ``action34`` (new tokens action3 = C, action4 = D); the others are the paper's robustness checks.

=====================================  ===========  ======  ===========================================
variants                               games        tokens  states
=====================================  ===========  ======  ===========================================
``action34``, ``action12``,            the five     2       10 episodes x 5 rounds vs Random, the state
``swapped``, ``table_*``               games                 follows the evaluated agent's moves
``unstructured``, ``ipd_like``,        IPD only     5       a fresh random previous-move state for every
``explicit_ipd``, ``action_*``                              one of the 10 x 5 queries
=====================================  ===========  ======  ===========================================

Add one with ``PROMPT_VARIANTS["mine"] = PromptVariant({"tokens": "XY", "phrasing": "unstructured"})`` (a plain
dict of builder arguments is accepted too and runs under the default protocol).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moralgym.envs.games import ILLEGAL, MatrixGame
from moralgym.evaluation.agents import AgentStep


@dataclass(frozen=True)
class PromptVariant:
    """A test-time prompt variant: what the prompt builder changes, and how the authors evaluated it.

    Args:
        prompt: :class:`~moralgym.agents.llm.prompts.PromptBuilder` keyword arguments.
        games: the games it is played on (``None``: the evaluation's games).
        max_new_tokens: tokens sampled per answer (``None``: the policy's own, 2 in the paper).
        fresh_states: every query starts from a fresh random previous-move state (one-round episodes) instead of
            following trajectories.
    """

    prompt: Mapping[str, Any] = field(default_factory=dict)
    games: tuple[str, ...] | None = None
    max_new_tokens: int | None = None
    fresh_states: bool = False


#: The authors' inference code runs the phrasing and "unrelated" prompts on the IPD only, sampling 5 tokens from a
#: fresh random state for every query (docs/reproduction.md).
_PHRASING_PROTOCOL = {"games": ("ipd",), "max_new_tokens": 5, "fresh_states": True}

#: Variant name -> PromptVariant.
PROMPT_VARIANTS: dict[str, PromptVariant | dict[str, Any]] = {
    "action34": PromptVariant({"tokens": "action34"}),  # main results (paper §5.1)
    "action12": PromptVariant({"tokens": "action12"}),  # the training tokens (Fig 20)
    "swapped": PromptVariant({"tokens": "action21"}),  # meanings swapped: action2 = C, action1 = D (Fig 8b / 21)
    "table_cols_reversed": PromptVariant({"tokens": "action34", "table_order": "cols_reversed"}),  # Fig 9
    "table_rows_reversed": PromptVariant({"tokens": "action34", "table_order": "rows_reversed"}),
    "table_reversed": PromptVariant({"tokens": "action34", "table_order": "reversed"}),
    **{  # Fig 10 (other phrasings of the IPD) and Fig 11 (unrelated "call to action" prompts)
        name: PromptVariant({"tokens": "action34", "phrasing": name}, **_PHRASING_PROTOCOL)
        for name in ("unstructured", "ipd_like", "explicit_ipd", "action_only", "action_game", "action_game_state")
    },
}
MAIN_VARIANT = "action34"


def as_prompt_variant(variant: PromptVariant | Mapping[str, Any]) -> PromptVariant:
    """A :class:`PromptVariant` from itself or from a dict of builder arguments (default protocol)."""
    if isinstance(variant, PromptVariant):
        return variant
    if isinstance(variant, Mapping):
        return PromptVariant(dict(variant))
    raise TypeError(f"a prompt variant is a PromptVariant or a dict of PromptBuilder arguments, got {variant!r}")


class LLMAgent:
    """Adapter from an LLM policy (``policy.decide(games, observations) -> list[Decision]`` with ``.action`` in
    {0, 1, ILLEGAL} and ``.text``) to the evaluation-agent protocol.

    ``set_variant(name)`` swaps the policy's prompt builder for the variant's (attribute ``prompt_builder`` or
    ``builder``; ``LLMPolicy.prompt``); ``reset(n, seed)`` reseeds the policy (method ``reseed``/``set_seed``/``seed`` if present), so the
    fine-tuned and the base model see the same token-order shuffles and sampling streams.
    """

    def __init__(
        self, policy: Any, name: str = "llm", variants: Mapping[str, PromptVariant | dict[str, Any]] | None = None
    ) -> None:
        if not callable(getattr(policy, "decide", None)):
            raise TypeError(f"an LLM policy needs a decide(games, observations) method, got {type(policy).__name__}")
        self.policy = policy
        self.name = name
        self._variants = {
            name: as_prompt_variant(v) for name, v in (PROMPT_VARIANTS if variants is None else variants).items()
        }
        #: The policy's own answer length, restored by variants that do not set one.
        self._max_new_tokens = getattr(policy, "max_new_tokens", None)
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

    def variant_protocol(self, name: str) -> PromptVariant:
        """How variant ``name`` is evaluated (games, answer length, state sampling); read by the harness."""
        if name not in self._variants:
            raise KeyError(f"unknown prompt variant {name!r}; known: {', '.join(self._variants)}")
        return self._variants[name]

    def set_variant(self, name: str) -> None:
        if name not in self._variants:
            raise KeyError(f"unknown prompt variant {name!r}; known: {', '.join(self._variants)}")
        self.variant = name
        variant = self._variants[name]
        if self._max_new_tokens is not None:
            self.policy.max_new_tokens = variant.max_new_tokens or self._max_new_tokens
        for attribute in ("prompt", "prompt_builder", "builder"):
            current = getattr(self.policy, attribute, None)
            if current is None:
                continue
            kwargs = dict(variant.prompt)
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
