"""``LLMPolicy``: a causal LM choosing moves for many games at once, sampled exactly as in the paper, fast.

Sampling (paper §3.2): for every decision exactly ``max_new_tokens`` tokens are drawn from the softmax of the full
logits at temperature 1 (no top-k, no top-p, no EOS stopping). We draw by inverting the CDF with one uniform per
(token, decision), taken from a seeded ``torch.Generator``; the token-order shuffles of the prompts come from a
seeded numpy ``Generator``. The same seed therefore gives the same decisions, whichever code path computed the
log-probs.

Speed, three ideas:

1. *Batching.* Every decision waiting in a :meth:`LLMPolicy.decide` call shares one forward pass per generated
   token: prompts are left-padded (attention mask + position ids, so padding changes nothing) and later tokens
   reuse the KV cache of the pass before.
2. *Shared prefixes.* Prompts of one game differ only from the previous-move sentence on, so a batch forwards each
   common prefix once and the differing suffixes on top of its KV cache.
3. *Prefix cache.* A matrix game has only a handful of distinct prompts (4 previous-move states x 4 token orders per
   game and seat), repeated over parallel games and rounds. While the weights do not change, the next-token
   log-prob vector of each distinct prefix (prompt, prompt + first answer token, ...) is computed once, kept in an
   LRU table keyed by its token ids, and every decision samples from it: the same distribution as recomputing, at
   the cost of a lookup. The KV caches of recent batches are kept too (``kv_cache_bytes``), so a new answer token
   after a cached prompt costs a one-token step. Both are dropped when the weights change (detected from the
   parameters' in-place ``_version`` counters, which every optimizer step and ``load_state_dict`` bump), when the
   dtype/device changes, or on :meth:`LLMPolicy.invalidate_cache`; the active PEFT adapter is part of the key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from moralgym.agents.llm.parsing import parse_action
from moralgym.agents.llm.prompts import PromptBuilder
from moralgym.envs.games import ILLEGAL, MatrixGame, get_game

__all__ = ["Decision", "LLMAgent", "LLMPolicy", "sample_from_logprobs"]


@dataclass
class Decision:
    """One sampled move, with everything a trainer needs to learn from it.

    ``query_ids`` are the prompt tokens including the answer prefix; ``response_ids`` exactly the sampled tokens;
    ``logprobs`` their log-probabilities under the sampling distribution; ``text`` = answer prefix + decoded
    response, the string legality is judged on.
    """

    action: int
    text: str
    prompt: str
    query_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]

    @property
    def illegal(self) -> bool:
        return self.action == ILLEGAL


def sample_from_logprobs(logprobs: torch.Tensor, uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row of ``logprobs`` (``(n, V)``, normalised) by inverting its CDF at ``uniforms`` (``(n,)``).

    Exactly multinomial sampling from ``exp(logprobs)``; being a deterministic function of the uniforms, it gives the
    same token for the same uniform from log-probs that differ only by float rounding (cached vs recomputed).
    Returns ``(tokens, token_logprobs)``.
    """
    probs = logprobs.double().exp()
    cdf = probs.cumsum(-1)
    target = (uniforms.to(device=cdf.device, dtype=cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
    tokens = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    # Rounding can push the draw past the last token with non-zero probability: fall back to that token.
    positive = probs > 0
    last_positive = probs.shape[-1] - 1 - positive.flip(-1).int().argmax(-1)
    tokens = torch.minimum(tokens, last_positive)
    return tokens, logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


@dataclass
class _LiveGroup:
    """KV cache of sequences forwarded in the previous step of this call, so their children need one token's pass."""

    past: Any
    mask: torch.Tensor
    next_position: torch.Tensor
    rows: dict[Hashable, int] = field(default_factory=dict)


class LLMPolicy:
    """Sample moves for a batch of games from a causal LM, as the paper's agents do.

    Args:
        model: a causal LM (``PreTrainedModel`` or ``PeftModel``), e.g. from
            :func:`~moralgym.agents.llm.loading.load_causal_lm`.
        tokenizer: its tokenizer.
        prompt: the :class:`~moralgym.agents.llm.prompts.PromptBuilder` (paper prompt by default).
        max_new_tokens: tokens sampled per decision (the paper: 2), always exactly this many.
        seed: seeds the token-order shuffles (numpy) and the sampling uniforms (torch).
        prefix_cache: reuse next-token distributions of repeated prefixes (see the module docstring).
        temperature: 1.0 is the paper's sampling; other values rescale the logits.
        adapter_name: PEFT adapter activated (``model.set_adapter``) before every call; ``None`` leaves it alone.
        batch_size: most sequences per forward pass.
        cache_bytes: memory budget of the prefix cache (entries are ``vocab_size`` float32 vectors).
        share_prefixes: within one forward batch, forward a prefix common to several prompts (at least
            ``min_shared_prefix`` tokens) once and reuse its KV cache (see :meth:`_prefill_shared`).
        kv_cache_bytes: with ``prefix_cache``, memory budget for keeping the KV caches of forwarded batches, so that
            a new answer token after a cached prompt costs a one-token step instead of a full prefill (0 disables).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompt: PromptBuilder | None = None,
        max_new_tokens: int = 2,
        seed: int = 0,
        prefix_cache: bool = True,
        temperature: float = 1.0,
        adapter_name: str | None = None,
        batch_size: int = 64,
        cache_bytes: int = 512 * 2**20,
        share_prefixes: bool = True,
        min_shared_prefix: int = 16,
        kv_cache_bytes: int = 2 * 2**30,
    ) -> None:
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.prompt = prompt if prompt is not None else PromptBuilder()
        self.max_new_tokens = max_new_tokens
        self.prefix_cache = prefix_cache
        self.temperature = float(temperature)
        self.adapter_name = adapter_name
        self.batch_size = batch_size
        self.cache_bytes = cache_bytes
        self.share_prefixes = share_prefixes
        self.kv_cache_bytes = int(kv_cache_bytes)
        self._kv: OrderedDict[int, tuple[_LiveGroup, int]] = OrderedDict()
        self._kv_size = 0
        self.min_shared_prefix = max(1, int(min_shared_prefix))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = int(pad) if pad is not None else 0
        self.seed(seed)
        self._cache: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._cache_fingerprint: Hashable | None = None
        self._encoded: dict[str, tuple[int, ...]] = {}
        self._logits_to_keep = True
        #: Prompt length in tokens (including the answer prefix) of each decision of the last :meth:`decide` call.
        self.prompt_lengths: list[int] = []
        #: Counters since construction: decisions, forward passes, rows forwarded, prefix-cache hits and misses, and
        #: stored KV rows reused.
        self.stats: dict[str, int] = {
            "decisions": 0,
            "forwards": 0,
            "rows": 0,
            "cache_hits": 0,
            "cache_misses": 0,
            "kv_reused": 0,
        }

    # ----------------------------------------------------------------------------------------- seeding and cache
    def seed(self, seed: int) -> None:
        """Restart both random streams (order shuffles and sampling) from ``seed``."""
        self._np_rng = np.random.default_rng(seed)
        self._torch_rng = torch.Generator(device="cpu")
        self._torch_rng.manual_seed(int(seed))

    def invalidate_cache(self) -> None:
        """Forget every cached next-token distribution (call after changing weights in a way we cannot see)."""
        self._cache.clear()
        self._clear_kv()
        self._cache_fingerprint = None

    def _clear_kv(self) -> None:
        self._kv.clear()
        self._kv_size = 0

    def _fingerprint(self) -> Hashable:
        """Cheap identity of the current weights: in-place updates bump ``_version``; swaps change ``id``."""
        versions = 0
        ids = 0
        count = 0
        first = None
        for parameter in self.model.parameters():
            versions += parameter._version
            ids += id(parameter)
            count += 1
            first = first if first is not None else parameter
        where = (first.dtype, first.device) if first is not None else None
        return versions, ids, count, where, self._active_adapter()

    def _active_adapter(self) -> Hashable:
        try:
            active = getattr(self.model, "active_adapter", None)
        except Exception:  # noqa: BLE001 - peft raises when no adapter is set
            return None
        return tuple(active) if isinstance(active, list) else active

    def _check_cache(self) -> None:
        fingerprint = self._fingerprint()
        if fingerprint != self._cache_fingerprint:
            self._cache.clear()
            self._clear_kv()
            self._cache_fingerprint = fingerprint

    @property
    def cache_size(self) -> int:
        """Number of prefixes whose next-token distribution is cached."""
        return len(self._cache)

    # ----------------------------------------------------------------------------------------- prompts
    def encode(self, rendered: str) -> tuple[int, ...]:
        """Token ids of a rendered prompt (memoised: a game has few distinct prompts)."""
        ids = self._encoded.get(rendered)
        if ids is None:
            ids = tuple(self.tokenizer(rendered, add_special_tokens=False)["input_ids"])
            if len(self._encoded) > 100_000:
                self._encoded.clear()
            self._encoded[rendered] = ids
        return ids

    def render_prompts(
        self, games: Sequence[MatrixGame | str], observations: np.ndarray, seats: Sequence[int] | None = None
    ) -> list[str]:
        """The rendered prompt of each decision; draws the token-order shuffles from the policy's numpy stream."""
        n = len(games)
        observations = np.asarray(observations).reshape(n, 2)
        seats = [0] * n if seats is None else list(seats)
        bits = self.prompt.draw_order_bits(self._np_rng, n)
        return [
            self.prompt.render(self.tokenizer, get_game(games[i]), observations[i], bits[i], seats[i]) for i in range(n)
        ]

    # ----------------------------------------------------------------------------------------- deciding
    def decide(
        self,
        games: Sequence[MatrixGame | str],
        observations: np.ndarray | Sequence[Sequence[int]],
        seats: Sequence[int] | None = None,
    ) -> list[Decision]:
        """One move per game: ``observations[i] = [own_previous, other_previous]`` from seat ``seats[i]`` (default 0).

        All decisions share forward passes; with ``prefix_cache`` repeated prefixes are computed once.
        """
        n = len(games)
        if len(observations) != n or (seats is not None and len(seats) != n):
            raise ValueError(
                f"decide needs one observation (and seat) per game: {n} games, {len(observations)} observations"
            )
        if n == 0:
            self.prompt_lengths = []
            return []
        prompts = self.render_prompts(games, np.asarray(observations), seats)
        queries = [self.encode(p) for p in prompts]
        self.prompt_lengths = [len(q) for q in queries]
        uniforms = torch.rand((self.max_new_tokens, n), generator=self._torch_rng, dtype=torch.float64)
        with self._inference():
            responses, logprobs = self._generate(queries, uniforms)
        tokens = self.prompt.action_tokens
        decisions = []
        for i in range(n):
            text = self.prompt.answer_prefix + self.tokenizer.decode(responses[i], skip_special_tokens=True)
            decisions.append(
                Decision(parse_action(text, tokens), text, prompts[i], list(queries[i]), responses[i], logprobs[i])
            )
        self.stats["decisions"] += n
        return decisions

    def next_token_logprobs(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """``(n, V)`` log-probs of the token after each sequence, batched with left padding (no cache; for checks)."""
        with self._inference():
            rows = [tuple(s) for s in sequences]
            outputs = []
            for start in range(0, len(rows), self.batch_size):
                logprobs, _, _, _ = self._prefill(rows[start : start + self.batch_size])
                outputs.append(logprobs)
            return torch.cat(outputs)

    @contextmanager
    def _inference(self):
        was_training = self.model.training
        if self.adapter_name is not None:
            self.model.set_adapter(self.adapter_name)
        self.model.eval()  # no dropout while sampling; restored below
        try:
            with torch.no_grad():
                yield
        finally:
            if was_training:
                self.model.train()

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _forward(self, input_ids, attention_mask, position_ids, past=None) -> tuple[torch.Tensor, Any]:
        kwargs = {"logits_to_keep": 1} if self._logits_to_keep else {}
        try:
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=past,
                use_cache=True,
                **kwargs,
            )
        except TypeError:
            if not self._logits_to_keep:
                raise
            self._logits_to_keep = False  # an architecture without logits_to_keep: compute all positions
            return self._forward(input_ids, attention_mask, position_ids, past)
        self.stats["forwards"] += 1
        self.stats["rows"] += int(input_ids.shape[0])
        logits = out.logits[:, -1, :].float()
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return torch.log_softmax(logits, dim=-1), out.past_key_values

    def _left_pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if len(row):
                ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
                mask[i, width - len(row) :] = 1
        device = self._device()
        return ids.to(device), mask.to(device)

    def _prefill(self, rows: Sequence[tuple[int, ...]]) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
        """Forward left-padded full sequences. Returns ``(logprobs, past, mask, next_position)``."""
        if self.share_prefixes and len(rows) > 1:
            shared = self._prefill_shared(rows)
            if shared is not None:
                return shared
        ids, mask = self._left_pad(rows)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logprobs, past = self._forward(ids, mask, positions)
        return logprobs, past, mask, positions[:, -1] + 1

    def _group_by_prefix(self, rows: Sequence[tuple[int, ...]]) -> tuple[list[list[int]], list[int]]:
        """Partition rows into groups that share a prefix, minimising the tokens forwarded.

        Rows are sorted (rows sharing long prefixes become neighbours); a group is a run of neighbours whose common
        prefix is the smallest adjacent common prefix in the run. A dynamic programme over run boundaries minimises
        ``sum over groups of (prefix + sum of suffixes)``: one big group sharing only the chat header loses to a
        few groups each sharing the whole rules-and-table part. Returns ``(groups, prefix lengths)``; a single row
        keeps all but its last token as "prefix", which costs the same as not sharing.
        """
        order = sorted(range(len(rows)), key=lambda i: rows[i])
        n = len(order)
        sizes = [len(rows[i]) for i in order]
        adjacent = []
        for a, b in zip(order, order[1:], strict=False):
            x, y = rows[a], rows[b]
            limit = min(len(x), len(y)) - 1
            common = 0
            while common < limit and x[common] == y[common]:
                common += 1
            adjacent.append(common)
        best = [0.0] + [float("inf")] * n
        cut: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        for j in range(1, n + 1):
            total = 0
            shared = sizes[j - 1] - 1
            for i in range(j - 1, -1, -1):
                total += sizes[i]
                if i < j - 1:
                    shared = min(shared, adjacent[i])
                    if shared < self.min_shared_prefix:
                        break
                count = j - i
                cost = best[i] + total - (count - 1) * shared
                if cost < best[j]:
                    best[j], cut[j] = cost, (i, shared)
        groups: list[list[int]] = []
        lengths: list[int] = []
        j = n
        while j > 0:
            i, shared = cut[j]
            groups.append([order[k] for k in range(i, j)])
            lengths.append(shared)
            j = i
        return groups[::-1], lengths[::-1]

    def _prefill_shared(
        self, rows: Sequence[tuple[int, ...]]
    ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor] | None:
        """Like :meth:`_prefill`, but a prefix common to several rows is forwarded once and its KV reused.

        The prompts of one game share everything up to the previous-move sentence (chat header, rules, table), so
        this divides the prefill work by the number of states x orders that share it. Rows are grouped by sorting
        (neighbours share the longest prefixes); each group's common prefix is forwarded once, its KV cache is
        repeated per row, and the rows' remaining suffixes are forwarded on top, left-padded *between* prefix and
        suffix (masked out, with position ids continuing after the real prefix).
        """
        groups, lengths = self._group_by_prefix(rows)
        if len(groups) == len(rows) or min(lengths) == 0:
            return None
        prefixes = [rows[g[0]][:length] for g, length in zip(groups, lengths, strict=True)]
        prefix_ids, prefix_mask = self._left_pad(prefixes)
        prefix_positions = (prefix_mask.cumsum(-1) - 1).clamp(min=0)
        _, past = self._forward(prefix_ids, prefix_mask, prefix_positions)
        group_of = [0] * len(rows)
        for g, members in enumerate(groups):
            for i in members:
                group_of[i] = g
        index = torch.tensor(group_of, device=prefix_mask.device)
        past.reorder_cache(index)
        starts = torch.tensor([lengths[g] for g in group_of], device=prefix_mask.device)
        suffix_ids, suffix_mask = self._left_pad([rows[i][lengths[group_of[i]] :] for i in range(len(rows))])
        mask = torch.cat([prefix_mask[index], suffix_mask], dim=1)
        positions = starts.unsqueeze(-1) + (suffix_mask.cumsum(-1) - 1).clamp(min=0)
        logprobs, past = self._forward(suffix_ids, mask, positions, past=past)
        return logprobs, past, mask, positions[:, -1] + 1

    def _generate(
        self, queries: list[tuple[int, ...]], uniforms: torch.Tensor
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Sample ``max_new_tokens`` tokens per query; shared by the cached and the uncached paths."""
        n = len(queries)
        if self.prefix_cache:
            self._check_cache()
            table: OrderedDict[Hashable, torch.Tensor] = self._cache
            keys = list(queries)
        else:
            table = OrderedDict()
            keys = [(i,) for i in range(n)]  # every row is its own prefix: no sharing, one row per decision
        sequences = [list(q) for q in queries]
        responses: list[list[int]] = [[] for _ in range(n)]
        token_logprobs: list[list[float]] = [[] for _ in range(n)]
        parents: list[Hashable | None] = [None] * n
        live: list[_LiveGroup] = []
        for step in range(self.max_new_tokens):
            live = self._fill(table, keys, parents, sequences, live, last=step == self.max_new_tokens - 1)
            stacked = torch.stack([table[k] for k in keys])
            for k in dict.fromkeys(keys):
                table.move_to_end(k)
            tokens, chosen = sample_from_logprobs(stacked, uniforms[step])
            tokens_list, chosen_list = tokens.tolist(), chosen.tolist()
            for i in range(n):
                responses[i].append(tokens_list[i])
                token_logprobs[i].append(chosen_list[i])
                sequences[i].append(tokens_list[i])
                parents[i] = keys[i]
                keys[i] = tuple(sequences[i]) if self.prefix_cache else (i, step + 1)
        if self.prefix_cache:
            self._evict()
        return responses, token_logprobs

    def _fill(
        self,
        table: OrderedDict[Hashable, torch.Tensor],
        keys: list[Hashable],
        parents: list[Hashable | None],
        sequences: list[list[int]],
        live: list[_LiveGroup],
        last: bool,
    ) -> list[_LiveGroup]:
        """Compute the next-token log-probs of every key not in ``table``; return the KV groups for the next step."""
        missing: dict[Hashable, int] = {}
        for i, key in enumerate(keys):
            if key in table:
                self.stats["cache_hits"] += 1
            elif key not in missing:
                missing[key] = i
                self.stats["cache_misses"] += 1
            else:
                self.stats["cache_hits"] += 1
        if not missing:
            return []
        new_groups: list[_LiveGroup] = []
        fresh: list[Hashable] = []
        pending = dict(missing)
        for group in live:
            new_groups += self._decode_children(group, pending, parents, sequences, missing, table, last)
        if table is self._cache:
            for stored, _ in list(self._kv.values()):
                if not pending:
                    break
                if any(g is stored for g in live):
                    continue
                before = len(pending)
                new_groups += self._decode_children(stored, pending, parents, sequences, missing, table, last)
                if len(pending) < before:
                    self.stats["kv_reused"] += before - len(pending)
                    self._kv.move_to_end(id(stored))
        fresh = list(pending)
        for start in range(0, len(fresh), self.batch_size):
            chunk = fresh[start : start + self.batch_size]
            logprobs, past, mask, next_position = self._prefill([tuple(sequences[missing[k]]) for k in chunk])
            for j, k in enumerate(chunk):
                table[k] = logprobs[j]
            if not last:
                group = _LiveGroup(past, mask, next_position, {k: j for j, k in enumerate(chunk)})
                self._remember(group, table is self._cache)
                new_groups.append(group)
        return new_groups

    def _decode_children(
        self,
        group: _LiveGroup,
        pending: dict[Hashable, int],
        parents: list[Hashable | None],
        sequences: list[list[int]],
        missing: dict[Hashable, int],
        table: OrderedDict[Hashable, torch.Tensor],
        last: bool,
    ) -> list[_LiveGroup]:
        """One-token forward for every pending key whose parent has a KV row in ``group`` (removed from pending)."""
        children = [k for k, i in pending.items() if parents[i] in group.rows]
        if not children:
            return []
        for k in children:
            del pending[k]
        index = torch.tensor([group.rows[parents[missing[k]]] for k in children], device=group.mask.device)
        mask = torch.cat([group.mask[index], torch.ones_like(group.mask[index, :1])], dim=1)
        positions = group.next_position[index]
        tokens = torch.tensor([sequences[missing[k]][-1] for k in children], device=mask.device).unsqueeze(-1)
        logprobs, past = self._forward(tokens, mask, positions.unsqueeze(-1), past=self._select_rows(group, index))
        for j, k in enumerate(children):
            table[k] = logprobs[j]
        if last:
            return []
        child_group = _LiveGroup(past, mask, positions + 1, {k: j for j, k in enumerate(children)})
        self._remember(child_group, table is self._cache)
        return [child_group]

    def _select_rows(self, group: _LiveGroup, index: torch.Tensor) -> Any:
        """The KV cache of the chosen rows of ``group`` as a new cache object, leaving ``group`` intact."""
        layers = getattr(group.past, "layers", None)
        if not layers or any(getattr(layer, "keys", None) is None for layer in layers):
            group.past.reorder_cache(index)  # an unknown cache type: select in place, and never reuse the group
            group.rows = {}
            return group.past
        from transformers import DynamicCache

        past = DynamicCache()
        for layer_index, layer in enumerate(layers):
            past.update(layer.keys.index_select(0, index), layer.values.index_select(0, index), layer_index)
        return past

    def _remember(self, group: _LiveGroup, enabled: bool) -> None:
        """Keep a group's KV cache (LRU, ``kv_cache_bytes``) so later children of its rows need a one-token step."""
        if not enabled or self.kv_cache_bytes <= 0:
            return
        layers = getattr(group.past, "layers", None) or []
        size = sum(
            layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
            for layer in layers
            if getattr(layer, "keys", None) is not None
        )
        if not size or size > self.kv_cache_bytes:
            return
        self._kv[id(group)] = (group, size)
        self._kv_size += size
        while self._kv_size > self.kv_cache_bytes:
            _, (_, freed) = self._kv.popitem(last=False)
            self._kv_size -= freed

    def _evict(self) -> None:
        if not self._cache:
            return
        entry_bytes = next(iter(self._cache.values())).numel() * 4
        limit = max(1, self.cache_bytes // max(entry_bytes, 1))
        while len(self._cache) > limit:
            self._cache.popitem(last=False)


class LLMAgent:
    """Plays seats of a PettingZoo ``MatrixGameEnv`` with an :class:`LLMPolicy`: ``{agent: obs} -> {agent: action}``.

    Example::

        env = MatrixGameEnv("ipd", num_rounds=5)
        agent = LLMAgent(policy, env.game, agents=["player_0"])
        observations, infos = env.reset(seed=0)
        while env.agents:
            actions = agent.act(observations) | {"player_1": 0}
            observations, rewards, terminations, truncations, infos = env.step(actions)
    """

    def __init__(
        self,
        policy: LLMPolicy,
        game: MatrixGame | str,
        agents: Sequence[str] = ("player_0", "player_1"),
        seats: Mapping[str, int] | None = None,
    ) -> None:
        self.policy = policy
        self.game = get_game(game)
        self.agents = list(agents)
        self.seats = dict(seats) if seats is not None else {f"player_{i}": i for i in range(2)}
        #: The :class:`Decision` behind each action of the last :meth:`act` call.
        self.last_decisions: dict[str, Decision] = {}

    def act(self, observations: Mapping[str, Any]) -> dict[str, int]:
        """Actions (0, 1 or ``ILLEGAL``) for the controlled agents present in ``observations``, in one batch."""
        agents = [a for a in self.agents if a in observations]
        if not agents:
            return {}
        decisions = self.policy.decide(
            [self.game] * len(agents),
            np.stack([np.asarray(observations[a]) for a in agents]),
            [self.seats.get(a, 0) for a in agents],
        )
        self.last_decisions = dict(zip(agents, decisions, strict=True))
        return {a: d.action for a, d in self.last_decisions.items()}
