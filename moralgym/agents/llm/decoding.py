"""Sampling the answer tokens of many decisions at once: prefix trees, the prefix cache, one-token KV steps.

A :class:`Decoder` serves one decide call (of one policy, or of several policies sharing a model, see
:func:`moralgym.agents.llm.policy.decide_jointly`). Each generated token is one step: every decision whose prefix
has no cached next-token distribution gets one, either by a one-token pass on top of its parent's KV row (from
the step before or kept from an earlier call) or by prefilling its whole prefix, the prefixes of a step arranged
in prefix trees (:mod:`moralgym.agents.llm.prefix_tree`); then every decision samples its token.

Sliding windows (Gemma-2, Mistral...): transformers slides a window over KV-cache *columns*, and trees and KV steps
put padding between a row's tokens, so they are used only while every forwarded row, padding included, spans fewer
columns than the window; otherwise the call's log-probs come from plain forwards of whole left-padded rows (no
shared prefixes, no KV reuse, no prefetch; the prefix cache still works): slower, and exactly those of a plain
forward. docs/llm_speed.md has the measurements.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from moralgym.agents.llm.engine import ForwardEngine, KVGroup, WindowExceeded
from moralgym.agents.llm.prefix_cache import CacheKey, PrefixCache
from moralgym.agents.llm.prefix_tree import TreeNode, prefix_levels
from moralgym.agents.llm.sampling import logprobs_from_logits, sample_from_logprobs

__all__ = ["DecodeSettings", "Decoder"]


@dataclass(frozen=True)
class DecodeSettings:
    """How a call samples and batches (a policy's settings at the time of the call; see ``LLMPolicy``)."""

    max_new_tokens: int = 2
    temperature: float = 1.0
    batch_size: int = 128
    share_prefixes: bool = True
    min_shared_prefix: int = 16
    cache_bytes: int = 512 * 2**20
    kv_cache_bytes: int = 256 * 2**20


@dataclass
class _Pending:
    """The decisions of a call, one entry each: adapter, tokens so far, table key, and the key one token shorter."""

    adapters: list[str | None]
    sequences: list[list[int]]
    keys: list[Hashable]
    parents: list[Hashable | None]

    def row(self, i: int) -> CacheKey:
        return CacheKey(self.adapters[i], tuple(self.sequences[i]))


#: A prefix tree to forward: the adapter of its rows, the rows (sorted, distinct) and their levels.
_Tree = tuple[str | None, list[tuple[int, ...]], list[list[TreeNode]]]


class Decoder:
    """Samples answers with ``engine``'s forward passes; ``cache`` (None: no prefix cache) keeps what it computes.

    Counts ``cache_hits``, ``cache_misses`` and ``kv_reused`` (KV rows kept from earlier calls that were used) in
    ``engine.stats``.
    """

    def __init__(self, engine: ForwardEngine, cache: PrefixCache | None, settings: DecodeSettings) -> None:
        self.engine = engine
        self.cache = cache
        self.settings = settings
        self.stats = engine.stats

    @contextmanager
    def session(self, adapter_name: str | None, rows_name_adapters: bool = False) -> Iterator[Decoder]:
        """The engine's inference mode for ``adapter_name`` (see :meth:`ForwardEngine.inference`), with the prefix
        cache emptied first if the weights or the active adapter changed since it was filled."""
        with self.engine.inference(adapter_name, rows_name_adapters):
            if self.cache is not None:
                self.cache.sync(self.engine.model)
            yield self

    # ----------------------------------------------------------------------------------------- public entry points
    def generate(
        self, queries: Sequence[CacheKey], uniforms: torch.Tensor, prefetch: Sequence[CacheKey] = ()
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Sample ``max_new_tokens`` tokens after each query, token ``t`` of query ``i`` at ``uniforms[t, i]``.

        Returns each query's tokens and their log-probs. ``prefetch``: more prompts whose next-token distribution
        (and KV) is computed with the first step's, for later calls (needs a cache).

        A prompt that reaches the model's sliding window is sampled from plain, exact forwards of whole rows
        instead, and so is a call whose padding between shared runs turned out to span the window
        (:class:`~moralgym.agents.llm.engine.WindowExceeded`): every log-prob is then that of a plain forward of
        the prompt and the tokens before it, in every mode.
        """
        self.engine.refresh_window()
        lengths = [len(row.tokens) for row in (*queries, *prefetch)]
        if self.engine.fits_window(lengths, self.settings.max_new_tokens - 1):
            counted = self.stats["cache_hits"], self.stats["cache_misses"]
            try:
                return self._sample(queries, uniforms, prefetch, exact=False)
            except WindowExceeded:
                # What was computed before is exact and stays cached; the rerun draws the same uniforms, so it
                # samples the same tokens. Lookups are counted once, by the rerun.
                self.stats["cache_hits"], self.stats["cache_misses"] = counted
        # No prefetch: without shared prefixes each sibling prompt would cost a whole row, most of them for nothing.
        return self._sample(queries, uniforms, (), exact=True)

    def next_token_logprobs(self, rows: Sequence[CacheKey]) -> torch.Tensor:
        """``(n, V)`` log-probs of the token after each row (no prefix cache; for checks and benchmarks)."""
        self.engine.refresh_window()
        if self.engine.fits_window((len(row.tokens) for row in rows), 0):
            try:
                return self.prefill(rows)[0]
            except WindowExceeded:
                pass  # padding between shared runs spread a row past the window: recompute as plain rows
        return self.prefill(rows, exact=True)[0]

    def prefill(self, rows: Sequence[CacheKey], exact: bool = False) -> tuple[torch.Tensor, list[KVGroup]]:
        """Next-token log-probs of every row (``(n, V)``, in order) and the KV groups holding them.

        Each returned group's ``rows`` maps a row to its KV row. Without ``share_prefixes`` the rows are left-padded
        into plain batches of ``batch_size``. With it, identical rows are forwarded once and the rows of each
        adapter are arranged in a prefix tree: every shared prefix is forwarded once, level by level, each level on
        top of the KV cache of the level before.

        ``exact``: every row is forwarded whole, as its own left-padded row, with no KV cache built or returned
        (no groups). Left padding shifts a row's columns uniformly, so a sliding window over columns is the window
        over positions: the path for rows that reach the model's sliding window.
        """
        if any(len(row.tokens) == 0 for row in rows):
            raise ValueError("cannot compute next-token log-probs after an empty sequence")
        if exact or not self.settings.share_prefixes:
            return self._prefill_plain(rows, exact)
        return self._prefill_trees(rows)

    # ----------------------------------------------------------------------------------------- the sampling loop
    def _sample(
        self, queries: Sequence[CacheKey], uniforms: torch.Tensor, prefetch: Sequence[CacheKey], exact: bool
    ) -> tuple[list[list[int]], list[list[float]]]:
        """:meth:`generate`'s loop: per token, fill the missing log-probs (``exact``: by plain rows), then sample."""
        n = len(queries)
        table: OrderedDict[Hashable, torch.Tensor]
        if self.cache is not None:
            table = self.cache.logprobs  # type: ignore[assignment]
            keys: list[Hashable] = list(queries)
        else:
            table = OrderedDict()
            keys = [(i,) for i in range(n)]  # every row is its own prefix: no sharing, one row per decision
        pending = _Pending([q.adapter for q in queries], [list(q.tokens) for q in queries], keys, [None] * n)
        responses: list[list[int]] = [[] for _ in range(n)]
        token_logprobs: list[list[float]] = [[] for _ in range(n)]
        live: list[KVGroup] = []
        for step in range(self.settings.max_new_tokens):
            extra = prefetch if step == 0 else ()
            last = step == self.settings.max_new_tokens - 1
            live = self._fill(table, pending, live, last=last, extra=extra, exact=exact)
            stacked = torch.stack([table[k] for k in pending.keys])
            for k in dict.fromkeys(pending.keys):
                table.move_to_end(k)
            tokens, chosen = sample_from_logprobs(stacked, uniforms[step])
            tokens_list, chosen_list = tokens.tolist(), chosen.tolist()
            for i in range(n):
                responses[i].append(tokens_list[i])
                token_logprobs[i].append(chosen_list[i])
                pending.sequences[i].append(tokens_list[i])
                pending.parents[i] = pending.keys[i]
                pending.keys[i] = pending.row(i) if self.cache is not None else (i, step + 1)
        if self.cache is not None:
            self.cache.evict(self.settings.cache_bytes)
        return responses, token_logprobs

    def _fill(
        self,
        table: OrderedDict[Hashable, torch.Tensor],
        pending: _Pending,
        live: list[KVGroup],
        last: bool,
        extra: Sequence[CacheKey] = (),
        exact: bool = False,
    ) -> list[KVGroup]:
        """Compute the next-token log-probs of every pending key not in ``table``; return the KV groups for the
        next step (none after the ``last`` one).

        A key whose parent (the same sequence one token shorter) has a KV row, from this call's previous step or
        kept from an earlier call, costs a one-token step; all such keys share one pass. The rest are prefilled,
        with ``extra`` rows (prefetch). ``exact``: no KV row is used or kept; every missing key's whole sequence is
        forwarded as a plain row.
        """
        missing = self._look_up(table, pending.keys)
        extra = [row for row in dict.fromkeys(extra) if row not in table and row not in missing]
        if not missing and not extra:
            return []
        keep = self.cache is not None and not exact
        located = self._located(live, kept=keep)
        children = [k for k, i in missing.items() if pending.parents[i] is not None and pending.parents[i] in located]
        groups = self._step_children(table, pending, missing, children, located, live, last, keep)
        stepped = set(children)
        fresh = {k: pending.row(i) for k, i in missing.items() if k not in stepped}
        return groups + self._prefill_into(table, fresh, extra, last, keep, exact)

    def _look_up(self, table: OrderedDict[Hashable, torch.Tensor], keys: Sequence[Hashable]) -> dict[Hashable, int]:
        """The keys missing from ``table`` (each with its first decision), counting hits and misses per decision."""
        missing: dict[Hashable, int] = {}
        for i, key in enumerate(keys):
            if key in table or key in missing:
                self.stats["cache_hits"] += 1
            else:
                missing[key] = i
                self.stats["cache_misses"] += 1
        return missing

    def _located(self, live: Sequence[KVGroup], kept: bool) -> dict[Hashable, tuple[KVGroup, int]]:
        """Where each key's KV row is: this call's groups first, then (``kept``) the cache's, most recent first."""
        located: dict[Hashable, tuple[KVGroup, int]] = {}
        sources = [*live, *self.cache.kept_groups()] if kept and self.cache is not None else live
        for group in sources:
            for key, row in group.rows.items():
                located.setdefault(key, (group, row))
        return located

    def _step_children(
        self,
        table: OrderedDict[Hashable, torch.Tensor],
        pending: _Pending,
        missing: dict[Hashable, int],
        children: Sequence[Hashable],
        located: dict[Hashable, tuple[KVGroup, int]],
        live: Sequence[KVGroup],
        last: bool,
        keep: bool,
    ) -> list[KVGroup]:
        """One-token passes (``batch_size`` rows each) for keys whose parent has a KV row."""
        groups: list[KVGroup] = []
        for start in range(0, len(children), self.settings.batch_size):
            chunk = children[start : start + self.settings.batch_size]
            sources = [located[pending.parents[missing[k]]] for k in chunk]
            segments = [(pending.sequences[missing[k]][-1],) for k in chunk]
            logprobs, group = self._extend(sources, segments, [pending.adapters[missing[k]] for k in chunk])
            self.stats["kv_reused"] += sum(1 for source, _ in sources if not any(source is g for g in live))
            for j, k in enumerate(chunk):
                table[k] = logprobs[j]
            if not last:
                group.rows = {k: j for j, k in enumerate(chunk)}
                self._keep(group, keep)
                groups.append(group)
        return groups

    def _prefill_into(
        self,
        table: OrderedDict[Hashable, torch.Tensor],
        fresh: dict[Hashable, CacheKey],
        extra: Sequence[CacheKey],
        last: bool,
        keep: bool,
        exact: bool,
    ) -> list[KVGroup]:
        """Prefill the rows of the ``fresh`` keys and the ``extra`` rows; store each row's vector under its keys."""
        keys_of_row: dict[CacheKey, list[Hashable]] = {}
        for key, row in fresh.items():
            keys_of_row.setdefault(row, []).append(key)
        for row in extra:
            keys_of_row.setdefault(row, []).append(row)
        if not keys_of_row:
            return []
        # Identical rows are forwarded once when sharing; without it every decision pays its own row (the baseline).
        rows = list(keys_of_row) if self.settings.share_prefixes else [*fresh.values(), *extra]
        logprobs, groups = self.prefill(rows, exact=exact)
        for row, vector in zip(rows, logprobs, strict=True):
            for key in keys_of_row[row]:
                table[key] = vector
        if last:
            return []
        for group in groups:
            group.rows = {key: j for row, j in group.rows.items() for key in keys_of_row[row]}
            self._keep(group, keep)
        return groups

    def _keep(self, group: KVGroup, enabled: bool) -> None:
        """Keep a group's KV cache (``kv_cache_bytes``) so later children of its rows need a one-token step."""
        if enabled and self.cache is not None:
            self.cache.keep(group, self.settings.kv_cache_bytes)

    # ----------------------------------------------------------------------------------------- prefill
    def _extend(
        self,
        parents: Sequence[tuple[KVGroup, int]] | None,
        segments: Sequence[Sequence[int]],
        adapters: Sequence[str | None] | None = None,
        keep: bool = True,
    ) -> tuple[torch.Tensor, KVGroup]:
        """:meth:`ForwardEngine.extend`, as log-probs at the call's temperature."""
        logits, group = self.engine.extend(parents, segments, adapters, keep)
        return logprobs_from_logits(logits, self.settings.temperature), group

    def _prefill_plain(self, rows: Sequence[CacheKey], exact: bool) -> tuple[torch.Tensor, list[KVGroup]]:
        """Rows left-padded into batches of ``batch_size`` (``exact``: no KV kept, identical rows once if sharing)."""
        results: dict[CacheKey, torch.Tensor] = {}
        groups: list[KVGroup] = []
        plain = list(dict.fromkeys(rows)) if exact and self.settings.share_prefixes else list(rows)
        for start in range(0, len(plain), self.settings.batch_size):
            chunk = plain[start : start + self.settings.batch_size]
            logprobs, group = self._extend(None, [r.tokens for r in chunk], [r.adapter for r in chunk], keep=not exact)
            results.update(zip(chunk, logprobs, strict=True))
            if not exact:
                group.rows = {row: j for j, row in enumerate(chunk)}
                groups.append(group)
        return torch.stack([results[row] for row in rows]), groups

    def _prefill_trees(self, rows: Sequence[CacheKey]) -> tuple[torch.Tensor, list[KVGroup]]:
        """Distinct rows as prefix trees, one per adapter and ``batch_size`` rows; trees of several adapters share
        passes while their rows fit one batch."""
        by_adapter: dict[str | None, list[tuple[int, ...]]] = {}
        for row in dict.fromkeys(rows):
            by_adapter.setdefault(row.adapter, []).append(row.tokens)
        passes: list[list[_Tree]] = [[]]
        leaves_in_pass = 0
        batch = self.settings.batch_size
        for adapter, token_rows in by_adapter.items():
            unique = sorted(token_rows)  # sorted: rows sharing a prefix are neighbours, subtrees stay in one chunk
            for start in range(0, len(unique), batch):
                chunk = unique[start : start + batch]
                if passes[-1] and leaves_in_pass + len(chunk) > batch:
                    passes.append([])
                    leaves_in_pass = 0
                passes[-1].append((adapter, chunk, prefix_levels(chunk, self.settings.min_shared_prefix)))
                leaves_in_pass += len(chunk)
        results: dict[CacheKey, torch.Tensor] = {}
        groups: list[KVGroup] = []
        for trees in passes:
            groups += self._forward_trees(trees, results)
        return torch.stack([results[row] for row in rows]), groups

    def _forward_trees(self, trees: Sequence[_Tree], results: dict[CacheKey, torch.Tensor]) -> list[KVGroup]:
        """Forward the levels of several prefix trees together: one pass per depth, each node on top of its parent's
        KV row in the pass before. Stores each row's log-probs in ``results``; returns the groups ending rows."""
        groups: list[KVGroup] = []
        previous: KVGroup | None = None
        previous_offsets = [0] * len(trees)
        for depth in range(max(len(levels) for _, _, levels in trees)):
            nodes: list[TreeNode] = []
            adapters: list[str | None] = []
            parents: list[tuple[KVGroup, int]] = []
            keys: list[CacheKey | None] = []
            offsets = []
            for t, (adapter, chunk, levels) in enumerate(trees):
                offsets.append(len(nodes))
                for node in levels[depth] if depth < len(levels) else []:
                    nodes.append(node)
                    adapters.append(adapter)
                    keys.append(None if node.end is None else CacheKey(adapter, chunk[node.end]))
                    if previous is not None:
                        parents.append((previous, previous_offsets[t] + node.parent))  # type: ignore[operator]
            logprobs, group = self._extend(parents or None, [node.tokens for node in nodes], adapters)
            leaves = {key: j for j, key in enumerate(keys) if key is not None}
            for key, j in leaves.items():
                results[key] = logprobs[j]
            if leaves:
                group.rows = leaves  # type: ignore[assignment]
                groups.append(group)
            previous, previous_offsets = group, offsets
        return groups
