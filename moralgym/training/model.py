"""The trainable policy: one base LM, one LoRA adapter per learning agent, one value head per agent.

* The reference model is the same base with every adapter disabled (``trl.trainer.utils.use_adapter(model, None)``),
  so there is never a second copy of the weights in memory; two learners (LLM vs LLM) are two adapters,
  ``"player_0"`` and ``"player_1"``, on one shared base.
* :func:`score_contexts` computes, for a batch of (query, response) samples, the per-token log-probs, values and
  entropies with ONE forward pass per *distinct* context: samples that share their query share its pass, and a
  response token only selects an entry of a log-prob vector, so the rows forwarded at response step ``t`` are the
  distinct ``(query, response[:t])`` prefixes (KV cache carried from step to step). Per-sample tensors are gathered
  from the distinct rows, so autograd sums each row's gradient over its samples: the loss and gradient are those of
  the per-sample computation, at the cost of the distinct rows only.
* The distinct contexts are forwarded either as tree attention (:func:`flat_tree_forward`: one row of the tree's
  distinct tokens under an ancestor mask, the default) or level by level (:func:`tree_forward`: each level a batch
  on top of its parents' KV cache, copied into every child's row). Both are exact; the flat row keeps no per-child
  copy of the parents' cache, so a gradient pass holds the activations of the distinct tokens only, and with
  :func:`checkpointed_layers` only each decoder layer's input (docs/benchmarks.md, "Memory of the quick start").
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moralgym.agents.llm.engine import attention_window, cache_argument, last_positions, left_pad
from moralgym.agents.llm.prefix_tree import flat_tree, prefix_levels, single_level

VALUE_HEAD_FILE = "value_head.safetensors"

#: Most distinct tokens one tree-attention row may hold: its mask is ``T x T`` and its attention ``O(T^2)``, so a
#: pass with more (contexts that share little) is forwarded level by level instead. The quick start's passes hold
#: about 1,050 tokens.
MAX_FLAT_TOKENS = 4096

#: Attention implementations that take a custom 4D mask as it is (flash-attention kernels take only padding masks).
_MASKED_ATTENTION = ("sdpa", "eager")


class ValueHead(nn.Module):
    """``Linear(hidden, 1)`` on the last hidden state, with dropout before it (TRL's value head: dropout 0.1)."""

    def __init__(self, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.summary = nn.Linear(hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states.to(self.summary.weight.dtype)
        return self.summary(self.dropout(hidden_states)).squeeze(-1)

    def save(self, directory: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        save_file(
            {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()},
            str(Path(directory) / VALUE_HEAD_FILE),
        )

    def load(self, directory: str | os.PathLike) -> bool:
        """Load weights saved by :meth:`save` if the directory has them; returns whether it did."""
        path = Path(directory) / VALUE_HEAD_FILE
        if not path.exists():
            return False
        from safetensors.torch import load_file

        self.load_state_dict(load_file(str(path)))
        return True


def hidden_size_of(model: Any) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(config.hidden_size)


# --------------------------------------------------------------------------------------------- building


def lora_config_from(config: Any) -> Any:
    """The run's ``peft.LoraConfig`` via ``trl.get_peft_config`` (paper: r 64, alpha 32, dropout 0.05, all-linear)."""
    from trl import ModelConfig, get_peft_config

    targets: Any = list(config.lora_target_modules)
    if targets == ["all-linear"]:
        targets = "all-linear"
    model_args = ModelConfig(
        model_name_or_path=config.model_name_or_path,
        use_peft=True,
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        lora_target_modules=targets,
        lora_task_type="CAUSAL_LM",
    )
    peft_config = get_peft_config(model_args)
    if config.lora_layers_to_transform is not None:
        peft_config.layers_to_transform = list(config.lora_layers_to_transform)
    return peft_config


def add_learner_adapters(base: Any, agents: Sequence[str], peft_config: Any, init_adapter: str | None = None) -> Any:
    """Wrap ``base`` as a ``PeftModel`` with one trainable adapter per agent (fresh, or loaded from ``init_adapter``)."""
    from peft import PeftModel, get_peft_model

    if init_adapter is not None:
        if not (Path(init_adapter) / "adapter_config.json").exists():
            raise ValueError(
                f"init_adapter: {init_adapter!r} has no adapter_config.json; pass a directory saved by a moralgym run"
            )
        model = PeftModel.from_pretrained(base, init_adapter, adapter_name=agents[0], is_trainable=True)
        for agent in agents[1:]:
            model.load_adapter(init_adapter, adapter_name=agent, is_trainable=True)
    else:
        model = get_peft_model(base, peft_config, adapter_name=agents[0])
        for agent in agents[1:]:
            model.add_adapter(agent, peft_config)
    model.set_adapter(agents[0])
    return model


def adapter_parameters(model: Any, agent: str) -> list[nn.Parameter]:
    """The LoRA parameters of one agent's adapter (names contain ``.<agent>.``)."""
    marker = f".{agent}."
    params = [p for name, p in model.named_parameters() if marker in name]
    if not params:
        raise ValueError(f"the model has no parameters for adapter {agent!r}")
    return params


def set_trainable(model: Any, agent: str) -> None:
    """Activate ``agent``'s adapter and make exactly its parameters require gradients."""
    model.set_adapter(agent)
    marker = f".{agent}."
    for name, parameter in model.named_parameters():
        parameter.requires_grad_("lora_" in name and marker in name)


def save_adapter(model: Any, agent: str, directory: str | os.PathLike, value_head: ValueHead | None = None) -> Path:
    """Write ``agent``'s adapter as a standard PEFT directory (``PeftModel.from_pretrained(base, directory)`` loads it)
    plus ``value_head.safetensors``."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(model, adapter_name=agent)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in state.items()},
        str(directory / "adapter_model.safetensors"),
        metadata={"format": "pt"},
    )
    peft_config = model.peft_config[agent]
    was_inference = peft_config.inference_mode
    peft_config.inference_mode = True
    peft_config.save_pretrained(str(directory))
    peft_config.inference_mode = was_inference
    if value_head is not None:
        value_head.save(directory)
    return directory


def load_adapter_weights(model: Any, agent: str, directory: str | os.PathLike) -> None:
    """Overwrite ``agent``'s adapter with weights saved by :func:`save_adapter` (same LoRA shapes)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(Path(directory) / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, state, adapter_name=agent)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"adapter in {directory} does not match the model: unexpected keys {unexpected[:3]}...")


def write_json(path: str | os.PathLike, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


# --------------------------------------------------------------------------------------------- scoring


@dataclass
class ScoredBatch:
    """Per-sample, per-response-token tensors ``(n, R)``; ``entropy`` is the full next-token entropy."""

    logprobs: torch.Tensor
    values: torch.Tensor | None
    entropy: torch.Tensor | None
    #: Token positions actually forwarded (the cost), and distinct contexts scored.
    forwarded_tokens: int = 0
    contexts: int = 0


def tree_forward(
    model: Any, contexts: Sequence[Sequence[int]], pad_token_id: int = 0, with_hidden: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Next-token logits (and last hidden states) after each context, forwarding every shared prefix once.

    The distinct contexts form a prefix tree (:func:`~moralgym.agents.llm.prefix_tree.prefix_levels`, the policy's
    builder); each tree level is one batched forward pass on top of its parents' KV cache (segments left-padded,
    the padding masked, position ids continuing after the real prefix). Gradients flow through the shared prefixes
    to every context that uses them. Returns ``(logits (C, V), hidden (C, H) | None, forwarded token count)``.
    """
    device = next(model.parameters()).device
    levels = prefix_levels(contexts)
    window = attention_window(model)
    if window is not None and sum(max(len(node.tokens) for node in nodes) for nodes in levels) >= window:
        # A sliding window shorter than the tree's widest row: padding between shared runs would push real keys out
        # of it (transformers slides it over cache columns). One left-padded level of whole contexts is exact.
        levels = single_level(contexts)
    logits_out: list[torch.Tensor | None] = [None] * len(contexts)
    hidden_out: list[torch.Tensor | None] = [None] * len(contexts)
    past = mask = next_position = None
    forwarded = 0
    for depth, nodes in enumerate(levels):
        ids, segment_mask, offsets = left_pad([node.tokens for node in nodes], pad_token_id)
        forwarded += sum(len(node.tokens) for node in nodes)
        if depth == 0:
            full_mask, positions = segment_mask, offsets
        else:
            parents = torch.tensor([node.parent for node in nodes], dtype=torch.long)
            past.reorder_cache(parents.to(device))
            full_mask = torch.cat([mask[parents], segment_mask], dim=1)
            positions = next_position[parents].unsqueeze(-1) + offsets
        has_children = depth + 1 < len(levels)
        out = model(
            input_ids=ids.to(device),
            attention_mask=full_mask.to(device),
            position_ids=positions.to(device),
            **{cache_argument(): past},
            use_cache=has_children,
            output_hidden_states=with_hidden,
            logits_to_keep=last_positions(ids).to(device),
        )
        for j, node in enumerate(nodes):
            if node.end is not None:
                logits_out[node.end] = out.logits[j, -1]
                if with_hidden:
                    hidden_out[node.end] = out.hidden_states[-1][j, -1]
        past = out[cache_argument()] if has_children else None
        mask, next_position = full_mask, positions[:, -1] + 1
    logits = torch.stack(logits_out)  # type: ignore[arg-type]
    hidden = torch.stack(hidden_out) if with_hidden else None  # type: ignore[arg-type]
    return logits, hidden, forwarded


def tree_attention_applies(model: Any, contexts: Sequence[Sequence[int]]) -> bool:
    """Whether :func:`flat_tree_forward` can score ``contexts`` exactly and cheaply: the model's attention takes a
    custom mask, no context reaches a sliding window (the ancestor mask stands in for the causal mask and would not
    slide), and the tree has at most :data:`MAX_FLAT_TOKENS` distinct tokens (checked by the caller)."""
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None) or "eager"
    if implementation not in _MASKED_ATTENTION:
        return False
    window = attention_window(model)
    return window is None or max(len(context) for context in contexts) < window


def flat_tree_forward(
    model: Any, contexts: Sequence[Sequence[int]], with_hidden: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, int] | None:
    """:func:`tree_forward`'s result by tree attention: ONE row holding each distinct token-prefix of ``contexts``
    once (:func:`~moralgym.agents.llm.prefix_tree.flat_tree`), each token attending to exactly its own context's
    earlier tokens (the ancestor mask) at its own position. The same keys at the same positions as forwarding each
    context alone, so the result is exact; unlike the level layout no parent's KV is copied per child and no cache
    is kept, which is what lets :func:`checkpointed_layers` work. None when there are more than
    :data:`MAX_FLAT_TOKENS` distinct tokens (the caller then forwards level by level)."""
    tree = flat_tree(contexts)
    if len(tree.tokens) > MAX_FLAT_TOKENS:
        return None
    device = next(model.parameters()).device
    allowed = torch.from_numpy(tree.ancestor_mask()).to(device)
    if getattr(model.config, "_attn_implementation", None) == "sdpa":
        mask = allowed[None, None]  # SDPA takes a boolean mask in any compute dtype (bf16 autocast included)
    else:  # eager attention adds the mask to its scores
        dtype = model.get_input_embeddings().weight.dtype
        dtype = dtype if dtype.is_floating_point else torch.float32
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)
        mask = mask[None, None]
    ends = torch.tensor(tree.ends, dtype=torch.long, device=device)
    keep, row_of_end = torch.unique(ends, return_inverse=True)  # logits only where a context ends
    out = model(
        input_ids=torch.tensor([tree.tokens], dtype=torch.long, device=device),
        attention_mask=mask,
        position_ids=torch.tensor([tree.positions], dtype=torch.long, device=device),
        use_cache=False,
        output_hidden_states=with_hidden,
        logits_to_keep=keep,
    )
    logits = out.logits[0, row_of_end]
    hidden = out.hidden_states[-1][0, ends] if with_hidden else None
    return logits, hidden, len(tree.tokens)


@contextlib.contextmanager
def checkpointed_layers(model: Any) -> Iterator[None]:
    """Activation checkpointing of every decoder layer for the passes run inside the block, whatever the model's
    train/eval mode: each layer keeps only its input and is recomputed during the backward pass (one extra forward,
    exact: the recompute repeats the same operations, dropout masks included).

    Why not ``model.gradient_checkpointing_enable()``: transformers checkpoints a layer only while that layer is in
    training mode, and the update's gradient passes run in eval mode (``disable_dropout``). Here only each layer's
    own ``training`` flag is set for the block, not its submodules', so dropout stays as the caller left it. The
    level layout needs the KV cache between passes, which checkpointing turns off: use it with tree attention.
    """
    from torch.utils.checkpoint import checkpoint
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [module for module in model.modules() if isinstance(module, GradientCheckpointingLayer)]
    saved = [
        (layer.gradient_checkpointing, layer.training, layer.__dict__.get("_gradient_checkpointing_func"))
        for layer in layers
    ]
    for layer in layers:
        layer.gradient_checkpointing, layer.training = True, True
        layer._gradient_checkpointing_func = functools.partial(checkpoint, use_reentrant=False)
    try:
        yield
    finally:
        for layer, (enabled, training, function) in zip(layers, saved, strict=True):
            layer.gradient_checkpointing, layer.training = enabled, training
            if function is None:
                layer.__dict__.pop("_gradient_checkpointing_func", None)
            else:
                layer._gradient_checkpointing_func = function


def forward_contexts(
    model: Any,
    contexts: Sequence[Sequence[int]],
    pad_token_id: int = 0,
    with_hidden: bool = False,
    tree_attention: bool = True,
    gradient_checkpointing: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Next-token logits (and last hidden states) after each of the distinct ``contexts``: by tree attention where
    it applies (:func:`tree_attention_applies`, :func:`flat_tree_forward`), else level by level (:func:`tree_forward`).

    ``gradient_checkpointing`` (:func:`checkpointed_layers`) applies to tree-attention passes only: the level layout
    carries a KV cache from pass to pass, which a recomputed layer cannot write.
    """
    if tree_attention and tree_attention_applies(model, contexts):
        with (
            checkpointed_layers(model)
            if gradient_checkpointing and torch.is_grad_enabled()
            else contextlib.nullcontext()
        ):
            flat = flat_tree_forward(model, contexts, with_hidden)
        if flat is not None:
            return flat
    return tree_forward(model, contexts, pad_token_id, with_hidden)


def score_contexts(
    model: Any,
    queries: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    value_head: ValueHead | None = None,
    pad_token_id: int = 0,
    dedup: bool = True,
    with_entropy: bool = False,
    tree_attention: bool = True,
    gradient_checkpointing: bool = False,
) -> ScoredBatch:
    """Log-probs (and values, entropies) of ``responses[i]`` after ``queries[i]`` under ``model`` as it is now
    (active adapter, train/eval mode and grad mode are up to the caller).

    Every response must have the same length ``R``. With ``dedup`` the distinct contexts ``query + response[:t]``
    are forwarded once each, shared prefixes once (:func:`forward_contexts`: ``tree_attention`` and
    ``gradient_checkpointing`` choose how), and per-sample tensors are gathered from them. Without it every sample's
    full sequence is forwarded on its own row: the plain computation the dedup path is tested against.
    """
    from trl.trainer.utils import entropy_from_logits, selective_log_softmax

    n = len(queries)
    if n == 0 or len(responses) != n:
        raise ValueError(f"score_contexts needs one response per query, got {n} queries and {len(responses)} responses")
    length = len(responses[0])
    if length == 0 or any(len(r) != length for r in responses):
        raise ValueError("score_contexts needs non-empty responses of one common length")
    device = next(model.parameters()).device
    with_hidden = value_head is not None
    if dedup:
        index: dict[tuple[int, ...], int] = {}
        rows = torch.tensor(
            [[index.setdefault((*queries[i], *responses[i][:t]), len(index)) for t in range(length)] for i in range(n)],
            dtype=torch.long,
        )
        logits_c, hidden_c, forwarded = forward_contexts(
            model, list(index), pad_token_id, with_hidden, tree_attention, gradient_checkpointing
        )
        rows = rows.to(logits_c.device)
        # Normalise once per context, then gather per sample: autograd sums each context's gradient over the
        # samples that use it, exactly as if every sample had its own row.
        logp_c = torch.log_softmax(logits_c.float(), dim=-1)
        targets = torch.tensor([list(r) for r in responses], dtype=torch.long, device=logp_c.device)
        logprobs = logp_c[rows, targets]
        entropy = entropy_from_logits(logits_c.float())[rows] if with_entropy else None
        values = value_head(hidden_c)[rows].float() if with_hidden else None
        contexts = len(index)
    else:
        sequences = [list(queries[i]) + list(responses[i][:-1]) for i in range(n)]
        ids, mask, positions = left_pad(sequences, pad_token_id)
        out = model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            output_hidden_states=with_hidden,
            logits_to_keep=last_positions(ids, length).to(device),
        )
        logits = out.logits[:, -length:].float()
        targets = torch.tensor([list(r) for r in responses], dtype=torch.long, device=logits.device)
        logprobs = selective_log_softmax(logits, targets)
        entropy = entropy_from_logits(logits) if with_entropy else None
        values = value_head(out.hidden_states[-1][:, -length:]).float() if with_hidden else None
        forwarded, contexts = int(mask.sum()), n * length
    return ScoredBatch(logprobs=logprobs, values=values, entropy=entropy, forwarded_tokens=forwarded, contexts=contexts)
