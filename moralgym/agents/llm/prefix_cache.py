"""The prefix cache: next-token log-probs of prefixes already seen, and the KV groups that computed them.

A matrix game shows few distinct prompts, repeated over parallel games and rounds, so while the weights do not
change every decision can sample from a stored distribution (docs/llm_speed.md). Entries are keyed by
:class:`CacheKey` and dropped whenever :func:`weights_fingerprint` changes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any, NamedTuple

import torch

from moralgym.agents.llm.engine import KVGroup

__all__ = ["CacheKey", "PrefixCache", "weights_fingerprint"]


class CacheKey(NamedTuple):
    """A prefix: its token ids and the adapter its row goes through.

    ``adapter`` None is the model as the cache's fingerprint saw it (its active adapter, or the base model); a name
    is a row of a mixed-adapter batch that names its own adapter (two LoRA seats deciding jointly).
    """

    adapter: str | None
    tokens: tuple[int, ...]


def weights_fingerprint(model: Any) -> Hashable:
    """Cheap identity of the current weights: in-place updates (optimizer steps, ``load_state_dict``) bump the
    parameters' ``_version``; swapped parameters change ``id``; the dtype/device and the active adapter count too."""
    versions = 0
    ids = 0
    count = 0
    first = None
    for parameter in model.parameters():
        versions += parameter._version
        ids += id(parameter)
        count += 1
        first = first if first is not None else parameter
    where = (first.dtype, first.device) if first is not None else None
    return versions, ids, count, where, _active_adapter(model)


def _active_adapter(model: Any) -> Hashable:
    try:
        active = getattr(model, "active_adapter", None)
    except Exception:  # noqa: BLE001 - peft raises when no adapter is set
        return None
    return tuple(active) if isinstance(active, list) else active


class PrefixCache:
    """``logprobs``: an LRU table ``CacheKey -> (V,)`` float32 log-prob vector; ``kv``: an LRU of kept
    :class:`~moralgym.agents.llm.engine.KVGroup` s (by bytes), whose rows let a new token after a cached prefix
    cost a one-token step. Both hold for the weights of the last :meth:`sync`."""

    def __init__(self) -> None:
        self.logprobs: OrderedDict[CacheKey, torch.Tensor] = OrderedDict()
        self.kv: OrderedDict[int, tuple[KVGroup, int]] = OrderedDict()
        self.kv_bytes = 0
        self.fingerprint: Hashable | None = None

    def __len__(self) -> int:
        return len(self.logprobs)

    def __contains__(self, key: object) -> bool:
        return key in self.logprobs

    def clear(self) -> None:
        """Forget everything, the fingerprint included (the next :meth:`sync` starts afresh)."""
        self.logprobs.clear()
        self.clear_kv()
        self.fingerprint = None

    def clear_kv(self) -> None:
        self.kv.clear()
        self.kv_bytes = 0

    def sync(self, model: Any) -> None:
        """Drop every entry if ``model``'s weights (or active adapter) are not those the entries were computed with."""
        fingerprint = weights_fingerprint(model)
        if fingerprint != self.fingerprint:
            self.logprobs.clear()
            self.clear_kv()
            self.fingerprint = fingerprint

    def kept_groups(self) -> Iterator[KVGroup]:
        """The kept KV groups, most recently used first."""
        for group, _ in reversed(self.kv.values()):
            yield group

    def keep(self, group: KVGroup, budget: int) -> None:
        """Keep ``group``'s KV cache within ``budget`` bytes, evicting the least recently kept groups (a group
        larger than the whole budget is not kept)."""
        if budget <= 0:
            return
        size = group.nbytes()
        if not size or size > budget:
            return
        self.kv[id(group)] = (group, size)
        self.kv_bytes += size
        while self.kv_bytes > budget:
            _, (_, freed) = self.kv.popitem(last=False)
            self.kv_bytes -= freed

    def evict(self, budget: int) -> None:
        """Drop the least recently used log-prob vectors beyond ``budget`` bytes (always keeping one)."""
        if not self.logprobs:
            return
        entry_bytes = next(iter(self.logprobs.values())).numel() * 4
        limit = max(1, budget // max(entry_bytes, 1))
        while len(self.logprobs) > limit:
            self.logprobs.popitem(last=False)
