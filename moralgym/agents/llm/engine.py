"""Forward passes of a causal LM over left-padded rows, on top of KV rows of earlier passes.

:class:`ForwardEngine` is what the sampling policy forwards through: it pads, gathers the KV rows a pass builds on
into preallocated buffers, keeps passes inside a sliding window's exact range, and lets grouped-query models
attend on their KV heads. It knows nothing about prompts, prefix trees or caches; those are the callers' (see
:mod:`moralgym.agents.llm.decoding`). Why each trick pays is in docs/llm_speed.md.

Importing this module does not import transformers; the first forward does.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

__all__ = [
    "ForwardEngine",
    "KVGroup",
    "LeftPadded",
    "WindowExceeded",
    "attention_window",
    "cache_argument",
    "cache_layers",
    "left_pad",
    "native_gqa_on_cpu",
    "reserved_cache",
]


class LeftPadded(NamedTuple):
    """Rows right-aligned in one batch: ``ids`` (padding: the pad token), ``mask`` (1 on real tokens) and
    ``positions`` (each real token's index within its row; 0 on padding)."""

    ids: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor


def left_pad(rows: Sequence[Sequence[int]], pad_token_id: int, device: torch.device | None = None) -> LeftPadded:
    """Left-pad ``rows`` to the longest, so that the last column is every row's last token (the one whose
    next-token logits are read); the mask and position ids make the padding change nothing."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row):
            ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    if device is not None:
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    return LeftPadded(ids, mask, positions)


@functools.cache
def cache_argument() -> str:
    """The name of a transformers forward's KV-cache argument and output: ``cache`` from transformers 5.24 on (where
    ``past_key_values`` warns on every call and goes in 5.40), ``past_key_values`` before."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def attention_window(model: Any) -> int | None:
    """The sliding window of ``model``'s attention, or None if no layer slides (or the model has no config).

    Code that shares KV rows between sequences (prefix trees, kept caches) must stay inside it: transformers slides
    the window over cache columns, so padding between a row's tokens would push real keys out of it.

    A ``sliding_window`` that the layers do not use (``layer_types`` without ``"sliding_attention"``, or
    ``use_sliding_window=False`` as in Qwen2) is None: treating it as used would only send long prompts down the
    slower exact path, but missing a used one would give wrong log-probs, hence the permissive reading otherwise.
    """
    config = getattr(model, "config", None)
    text_config = getattr(config, "get_text_config", None)
    if callable(text_config):
        config = text_config(decoder=True)
    window = getattr(config, "sliding_window", None)
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and "sliding_attention" not in layer_types:
        return None
    if getattr(config, "use_sliding_window", True) is False:
        return None
    return window


class WindowExceeded(Exception):
    """Raised before a KV-sharing pass whose padded rows span the model's sliding window (see
    :meth:`ForwardEngine.extend`); the decoder catches it and recomputes with plain rows. Never reaches a user."""


@contextmanager
def native_gqa_on_cpu(device: torch.device) -> Iterator[None]:
    """Let grouped-query models attend without expanding their KV heads (CPU only; nothing else changes).

    transformers' SDPA path repeats every key/value head ``n_heads / n_kv_heads`` times whenever an attention mask
    is passed (always, for left-padded batches) unless ``TRANSFORMERS_SDPA_FORCE_GQA`` is set; it reads the variable
    at each call. On CPU, ``scaled_dot_product_attention(..., enable_gqa=True)`` gives the same result without that
    copy (2-3x faster attention for SmolLM2's 9 query / 3 KV heads). On CUDA, enable_gqa with a mask can fall back to
    the math kernel, so the variable is left alone there, as is any value the user set.
    """
    if device.type != "cpu" or "TRANSFORMERS_SDPA_FORCE_GQA" in os.environ:
        yield
        return
    os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] = "1"
    try:
        yield
    finally:
        os.environ.pop("TRANSFORMERS_SDPA_FORCE_GQA", None)


def cache_layers(past: Any) -> list[Any]:
    """The per-layer key/value holders of a transformers ``Cache`` (``DynamicCache.layers``)."""
    layers = getattr(past, "layers", None)
    if not layers or any(getattr(layer, "keys", None) is None for layer in layers):
        raise TypeError(
            f"LLMPolicy needs a transformers DynamicCache-style KV cache (with .layers[i].keys/.values); the model "
            f"returned {type(past).__name__}. Use a transformers causal LM with the standard cache."
        )
    return layers


def reserved_cache(buffers: Sequence[tuple[torch.Tensor, torch.Tensor]], filled: int) -> Any:
    """A transformers ``DynamicCache`` over preallocated per-layer buffers whose first ``filled`` columns are the
    past."""
    from transformers import DynamicCache

    past = DynamicCache()
    past.layers = [_reserved_layer_class()(keys, values, filled) for keys, values in buffers]
    return past


@functools.cache
def _reserved_layer_class() -> type:
    """``_ReservedLayer``, defined on first use so that importing this module does not import transformers."""
    from transformers.cache_utils import DynamicLayer

    class _ReservedLayer(DynamicLayer):
        """A ``DynamicLayer`` whose buffer already has room for the tokens about to be forwarded.

        ``DynamicLayer.update`` concatenates, which copies the whole past once more in every layer of every pass;
        here the new keys and values are written into the reserved columns in place. More tokens than reserved
        fall back to concatenation, so the layer is never wrong, only slower.
        """

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, filled: int) -> None:
            super().__init__()
            self.keys, self.values, self.filled = keys, values, filled
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            end = self.filled + key_states.shape[-2]
            if end > self.keys.shape[-2]:
                self.keys = torch.cat([self.keys[..., : self.filled, :], key_states], dim=-2)
                self.values = torch.cat([self.values[..., : self.filled, :], value_states], dim=-2)
            else:
                self.keys[..., self.filled : end, :] = key_states
                self.values[..., self.filled : end, :] = value_states
                self.keys, self.values = self.keys[..., :end, :], self.values[..., :end, :]
            self.filled = end
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.filled

    return _ReservedLayer


@dataclass
class KVGroup:
    """A forwarded batch's KV cache; ``rows`` maps a sequence's key to its row, so its children need one token's
    pass."""

    past: Any
    mask: torch.Tensor
    next_position: torch.Tensor
    rows: dict[Hashable, int] = field(default_factory=dict)

    def nbytes(self) -> int:
        """Memory held by the keys and values (what a cache of groups budgets)."""
        return sum(
            layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
            for layer in cache_layers(self.past)
        )


def last_positions(input_ids: torch.Tensor, count: int = 1) -> torch.Tensor:
    """``logits_to_keep`` for the last ``count`` positions of ``input_ids`` as an index tensor, not the int.

    Why: transformers slices an int (``hidden[:, -count:]``), a view whose batch stride is the whole row; torch's
    matmul cannot fold that view into one matrix product and multiplies row by row, copying the LM head's weight
    once per row (rows x hidden x vocabulary). Indexed, the kept hidden states are a contiguous copy and the LM
    head is one matrix product: on 16 rows of a 49,152-token vocabulary, 2 cores, 4.5-5.9x faster in float32 and
    230-260x in bfloat16 (``benchmarks/lm_head.py``; docs/benchmarks.md, "The LM head"). Same positions, same logits.
    """
    length = input_ids.shape[1]
    return torch.arange(length - count, length, device=input_ids.device)


class ForwardEngine:
    """Batched forward passes of ``model`` for next-token logits, from scratch or on top of earlier KV rows.

    ``stats`` (shared with the caller) counts ``forwards``, ``rows`` and non-padding ``tokens`` forwarded.
    """

    def __init__(self, model: Any, pad_token_id: int, stats: dict[str, int] | None = None) -> None:
        self.model = model
        self.pad_token_id = pad_token_id
        self.stats = stats if stats is not None else {"forwards": 0, "rows": 0, "tokens": 0}
        #: The model's sliding window (:func:`attention_window`), re-read by :meth:`refresh_window` at every call,
        #: since every pass wider than it is checked (see :meth:`extend`).
        self.window: int | None = attention_window(model)
        self._logits_to_keep = True

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def refresh_window(self) -> int | None:
        """Re-read the model's sliding window (its config may have changed since the last call)."""
        self.window = attention_window(self.model)
        return self.window

    def fits_window(self, lengths: Iterable[int], generated: int) -> bool:
        """Whether rows of these lengths, plus ``generated`` more tokens, stay shorter than the sliding window.

        Only then can the KV-sharing paths (prefix tree, kept KV rows, one-token steps) be exact: transformers
        slides a window over cache *columns*, and those paths put padding between a row's tokens; a row that
        reaches the window would also see its sliding layers' cache cut to the window. Longer rows go straight
        to plain, exact forwards instead of failing halfway.
        """
        lengths = list(lengths)
        if self.window is None or not lengths:
            return True
        return max(lengths) + generated < self.window

    @contextmanager
    def inference(self, adapter_name: str | None, rows_name_adapters: bool = False) -> Iterator[None]:
        """No grad, eval mode, the adapter ``adapter_name``: active (``set_adapter``), or all disabled for
        ``"__base__"`` (None leaves the model as it is); the training mode is restored on exit.

        ``rows_name_adapters``: a mixed batch whose rows name their own adapters (``adapter_names``), so nothing is
        disabled (PEFT routes ``"__base__"`` rows past every adapter itself).
        """
        model = self.model
        was_training = model.training
        base = adapter_name == "__base__"
        if adapter_name is not None and not base:
            model.set_adapter(adapter_name)
        model.eval()  # no dropout while sampling; restored below
        try:
            with torch.no_grad(), native_gqa_on_cpu(self.device):
                if base and not rows_name_adapters:
                    with model.disable_adapter():
                        yield
                else:
                    yield
        finally:
            if was_training:
                model.train()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        past: Any = None,
        adapters: Sequence[str | None] | None = None,
        use_cache: bool = True,
    ) -> tuple[torch.Tensor, Any]:
        """One pass: float32 logits after each row's last token ``(n, V)`` and the KV cache (None without
        ``use_cache``). ``adapters``: each row's PEFT adapter (a mixed-adapter batch), if any is named."""
        kwargs: dict[str, Any] = {"logits_to_keep": last_positions(input_ids)} if self._logits_to_keep else {}
        if adapters is not None and any(a is not None for a in adapters):
            kwargs["adapter_names"] = list(adapters)  # PEFT mixed-adapter batch: each row through its own adapter
        try:
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=use_cache,
                **{cache_argument(): past},
                **kwargs,
            )
        except TypeError:
            if not self._logits_to_keep:
                raise
            self._logits_to_keep = False  # an architecture without logits_to_keep: compute all positions
            return self.forward(input_ids, attention_mask, position_ids, past, adapters, use_cache)
        self.stats["forwards"] += 1
        self.stats["rows"] += int(input_ids.shape[0])
        self.stats["tokens"] += int(attention_mask[:, -input_ids.shape[1] :].sum())
        return out.logits[:, -1, :].float(), out[cache_argument()] if use_cache else None

    def extend(
        self,
        parents: Sequence[tuple[KVGroup, int]] | None,
        segments: Sequence[Sequence[int]],
        adapters: Sequence[str | None] | None = None,
        keep: bool = True,
    ) -> tuple[torch.Tensor, KVGroup]:
        """Forward ``segments[i]`` on top of the KV row ``parents[i]`` (or from scratch): one batched pass.

        Segments are left-padded *between* the parent's tokens and their own (masked out; position ids continue
        after the parent's real tokens), so rows of different lengths share the pass without changing any result.
        Returns the next-token logits after each segment and the new KV group (one row per segment; without
        ``keep`` the pass builds no KV cache and the group's ``past`` is None).

        Raises:
            WindowExceeded: the pass is at least as wide as the model's sliding window and some row's tokens,
                padding between them included, span the window. transformers masks a sliding layer by cache
                column, not by position, so such a row would silently lose keys it should see. Nothing has been
                forwarded; the caller recomputes with plain rows, which are always right.
        """
        ids, segment_mask, offsets = left_pad(segments, self.pad_token_id, self.device)
        if parents is None:
            past, mask, positions = None, segment_mask, offsets
        else:
            past, parent_mask, start = self.gather(parents, reserve=ids.shape[1])
            mask = torch.cat([parent_mask, segment_mask], dim=1)
            positions = start.unsqueeze(-1) + offsets
        width = mask.shape[1]
        if keep and self.window is not None and width >= self.window:
            # A pass narrower than the window is exact whatever its padding (no key is ever out of the window).
            # A wider one is exact iff each row's real tokens span fewer than ``window`` columns: then the column
            # window hides only padding, as the position window hides nothing (positions < span < window).
            if bool(mask[:, : width - self.window + 1].any()):
                raise WindowExceeded(width)
            if past is None:
                # The model's own cache would keep only its sliding layers' last ``window - 1`` columns (padding
                # here, but then the cache no longer lines up with the mask): a plain DynamicCache keeps them all.
                from transformers import DynamicCache

                past = DynamicCache()
        logits, past = self.forward(ids, mask, positions, past, adapters, use_cache=keep)
        return logits, KVGroup(past, mask, positions[:, -1] + 1)

    def gather(
        self, parents: Sequence[tuple[KVGroup, int]], reserve: int = 0
    ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """KV cache, attention mask and next position of the chosen rows, as a new batch; sources are left intact.

        Rows may come from several groups of different widths: each is left-padded (masked, zero-filled) to the
        widest. Each layer's rows are copied once, straight into a buffer with ``reserve`` free columns on the
        right, where the forward pass writes the new tokens' keys and values in place (see :func:`reserved_cache`).
        """
        groups: dict[int, KVGroup] = {}
        for group, _ in parents:
            groups.setdefault(id(group), group)
        width = max(group.mask.shape[1] for group in groups.values())
        first = cache_layers(next(iter(groups.values())).past)
        buffers = [
            (
                layer.keys.new_empty((len(parents), layer.keys.shape[1], width + reserve, layer.keys.shape[3])),
                layer.values.new_empty((len(parents), layer.values.shape[1], width + reserve, layer.values.shape[3])),
            )
            for layer in first
        ]
        device = first[0].keys.device
        mask = torch.zeros((len(parents), width), dtype=torch.long, device=device)
        positions = torch.empty(len(parents), dtype=torch.long, device=device)
        for group in groups.values():
            members = [j for j, (g, _) in enumerate(parents) if g is group]
            source = torch.tensor([parents[j][1] for j in members], device=device)
            target = torch.tensor(members, device=device)
            pad = width - group.mask.shape[1]
            for (keys, values), layer in zip(buffers, cache_layers(group.past), strict=True):
                keys[target, :, pad:width] = layer.keys.index_select(0, source)
                values[target, :, pad:width] = layer.values.index_select(0, source)
                if pad:
                    keys[target, :, :pad] = 0  # masked out, but must not hold NaNs (0 * NaN is NaN)
                    values[target, :, :pad] = 0
            mask[target, pad:] = group.mask.index_select(0, source)
            positions[target] = group.next_position.index_select(0, source)
        return reserved_cache(buffers, filled=width), mask, positions
