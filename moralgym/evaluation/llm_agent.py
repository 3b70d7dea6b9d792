"""LLM policies as evaluation agents, and the paper's test-time prompt variants as data (docs/reproduction.md).

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
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moralgym.agents.seats import SeatStep
from moralgym.envs.games import ILLEGAL, MatrixGame
from moralgym.envs.n_player.games import SchellingGame


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

    @classmethod
    def from_pretrained(
        cls,
        model: str | None = None,
        adapter: str | None = None,
        name: str | None = None,
        dtype: Any = None,
        variants: Mapping[str, PromptVariant | dict[str, Any]] | None = None,
        **policy_kwargs: Any,
    ) -> LLMAgent:
        """Load ``model`` (``"default"``, a model id or a model directory; ``adapter`` a LoRA adapter directory on
        top) with :func:`~moralgym.agents.llm.loading.load_causal_lm` and wrap it in an ``LLMPolicy``.

        ``model`` may itself be an adapter directory. With an adapter, the base model is the one its
        ``adapter_config.json`` records (:func:`recorded_base_model`); an explicit ``model`` that differs from it is
        a ``ValueError`` naming both. The agent is named after the adapter's run (:func:`agent_name`).
        """
        from moralgym.agents.llm.loading import load_causal_lm
        from moralgym.agents.llm.policy import LLMPolicy

        if adapter is None and model is not None and is_adapter_dir(model):
            model, adapter = None, model
        if adapter is not None:
            model = base_model_for(adapter, model)
            policy_kwargs.setdefault("adapter_name", "default")  # load_causal_lm's adapter name
        model = model or "default"
        loaded_model, tokenizer = load_causal_lm(model, adapter=adapter, dtype=dtype)
        policy = LLMPolicy(loaded_model, tokenizer, **policy_kwargs)
        return cls(policy, name=name or agent_name(model, adapter), variants=variants)

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

    def reset(self, n: int, seed: int | None = None) -> None:
        if seed is None:
            return
        for method in ("reseed", "set_seed", "seed"):
            function = getattr(self.policy, method, None)
            if callable(function):
                function(seed)
                return

    def act(self, games: Sequence[MatrixGame | SchellingGame], observations: np.ndarray, seat: int = 0) -> SeatStep:
        """The policy's moves; ``seat`` 1 shows a two-player payoff table from the column player's side. In an
        N-player game the policy prompts each game with its N-player wording (``prompt.for_game``), so any adapter,
        trained on two players or on N, plays either kind."""
        observations = np.asarray(observations)
        if seat:
            decisions = self.policy.decide(list(games), observations, [seat] * len(observations))
        else:
            decisions = self.policy.decide(list(games), observations)
        actions = np.array([ILLEGAL if d.action is None else int(d.action) for d in decisions], dtype=np.int64)
        return SeatStep(actions, [str(getattr(d, "text", "")) for d in decisions])

    def __repr__(self) -> str:
        return f"LLMAgent(name={self.name!r}, variant={self.variant!r})"


# ----------------------------------------------------------------------------------------------- adapters and runs
def is_adapter_dir(path: str | Path) -> bool:
    """Whether ``path`` is a PEFT adapter directory (it holds an ``adapter_config.json``)."""
    return (Path(path) / "adapter_config.json").is_file()


def _is_default_model_path(path: str) -> bool:
    """``path`` is where the default model is cached: this machine's cache, or another's (same layout)."""
    from moralgym.agents.llm.default_model import MODEL_DIRNAME, default_model_dir

    if path == "default":
        return True
    parts = Path(path).parts
    if len(parts) >= 2 and parts[-2:] == (MODEL_DIRNAME, "hf"):
        return True
    try:
        return Path(path).expanduser().resolve() == default_model_dir().resolve()
    except OSError:
        return False


def recorded_base_model(adapter: str | Path) -> str | None:
    """The base model an adapter was trained on (``base_model_name_or_path`` of its ``adapter_config.json``);
    ``"default"`` when that is the default model's cache directory (on this machine or the one that trained it);
    ``None`` when nothing is recorded."""
    try:
        config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = config.get("base_model_name_or_path")
    if not base:
        return None
    return "default" if _is_default_model_path(str(base)) else str(base)


def _same_model(a: str, b: str) -> bool:
    if a == b or (_is_default_model_path(a) and _is_default_model_path(b)):
        return True
    try:
        return Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def base_model_for(adapter: str | Path, model: str | None = None) -> str:
    """The model to load under ``adapter``: the recorded base (:func:`recorded_base_model`), or ``model`` when the
    adapter records none. An explicit ``model`` that is not the recorded base is a ``ValueError`` naming both."""
    recorded = recorded_base_model(adapter)
    if recorded is None:
        return model or "default"
    if model is not None and not _same_model(str(model), recorded):
        raise ValueError(
            f"the adapter {adapter} was trained on {recorded} (adapter_config.json base_model_name_or_path), not "
            f"on {model}; drop --model to use the recorded base"
        )
    return recorded


def run_dir_of(adapter: str | Path) -> Path | None:
    """The ``moralgym train`` run directory an adapter belongs to (``RUN/adapter`` or
    ``RUN/checkpoints/episode-N/adapter_*``): the directory with the run's ``config.json``, or ``None``."""
    adapter = Path(adapter)
    candidates = [adapter.parent]
    if adapter.parent.parent.name == "checkpoints":
        candidates.append(adapter.parent.parent.parent)
    return next((candidate for candidate in candidates if _run_config(candidate)), None)


def _run_config(run_dir: Path) -> dict[str, Any]:
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) and "answer_prefix" in config else {}


#: The run's prompt settings an evaluation re-uses (``config.json`` of a ``moralgym train`` run).
RUN_PROMPT_SETTINGS = ("answer_prefix", "phrasing", "max_new_tokens", "eval_action_tokens")


def run_settings(adapter: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """``(config.json path, {answer_prefix, phrasing, max_new_tokens, eval_action_tokens})`` of the adapter's run,
    or ``None`` when the adapter is not in a run directory."""
    run_dir = run_dir_of(adapter)
    config = _run_config(run_dir) if run_dir is not None else {}
    if not config:
        return None
    return run_dir / "config.json", {k: config[k] for k in RUN_PROMPT_SETTINGS if k in config}


def agent_name(model: str, adapter: str | Path | None = None) -> str:
    """An agent's display name: the model without adapter; with one, its run's ``run_name`` or the run
    directory's name (``runs/quickstart/adapter`` -> ``quickstart``; a checkpoint adds ``@episode-N``), else the
    adapter directory's name."""
    if adapter is None:
        return str(model)
    adapter = Path(adapter).resolve()
    run_dir = run_dir_of(adapter)
    if run_dir is None:
        return adapter.name
    try:
        recorded = json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("run_name")
    except (OSError, ValueError, AttributeError):
        recorded = None
    name = str(recorded or run_dir.name)
    return name if adapter.parent == run_dir else f"{name}@{adapter.parent.name}"
