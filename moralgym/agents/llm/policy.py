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
2. *Shared prefixes.* The prompts of a batch form a prefix tree: they share the chat header and rules, a game's
   prompts share its payoff table, and they differ only at the token order and the previous moves. Each run of
   shared tokens is forwarded once, level by level on top of the KV cache of the level before, so a batch costs
   the tokens of its tree rather than the sum of its prompts. A level's KV rows are copied once, into buffers with
   room for its tokens (no per-layer concatenation), and grouped-query models attend on their KV heads without
   expanding them (CPU), since past the matrix multiplies the tree's cost is memory traffic.
3. *Prefix cache.* A matrix game has only a handful of distinct prompts (4 previous-move states x 4 token orders per
   game and seat), repeated over parallel games and rounds. While the weights do not change, the next-token
   log-prob vector of each distinct prefix (prompt, prompt + first answer token, ...) is computed once, kept in an
   LRU table keyed by its token ids, and every decision samples from it: the same distribution as recomputing, at
   the cost of a lookup. When a game first misses, all its prompts are computed together (``prefetch_states``:
   one tree costs little more than one prompt). The KV caches are kept too (``kv_cache_bytes``), so a new answer
   token after a cached prompt costs a one-token step. Both are dropped when the weights change (detected from the
   parameters' in-place ``_version`` counters, which every optimizer step and ``load_state_dict`` bump), when the
   dtype/device changes, or on :meth:`LLMPolicy.invalidate_cache`; the active PEFT adapter is part of the key.

Sliding windows (Gemma-2, Mistral...): transformers slides a window over KV-cache *columns*, and ideas 1-3 put
padding between a row's tokens, so they are used only while every forwarded row, padding included, spans fewer
columns than the model's ``sliding_window`` (Gemma-2's 4096 against prompts of a few hundred tokens: always).
Otherwise the call's log-probs come from plain forwards of whole left-padded rows (no shared prefixes, no KV
reuse, no prefetch; the prefix cache still works): slower, and exactly those of a plain forward.
"""

from __future__ import annotations

import functools
import os
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

__all__ = [
    "Decision",
    "LLMAgent",
    "LLMPolicy",
    "attention_window",
    "cache_argument",
    "decide_jointly",
    "sample_from_logprobs",
]


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
    """A forwarded batch's KV cache; ``rows`` maps a sequence's key to its row, so its children need one token's pass."""

    past: Any
    mask: torch.Tensor
    next_position: torch.Tensor
    rows: dict[Hashable, int] = field(default_factory=dict)


@dataclass
class _Request:
    """One policy's share of a (joint) decide call: its rendered prompts and its sampling uniforms."""

    policy: LLMPolicy
    games: list[Any]
    observations: np.ndarray
    seats: list[int]
    prompts: list[str]
    queries: list[tuple[int, ...]]
    uniforms: torch.Tensor


def _tag(adapter: str | None, tokens: tuple[int, ...]) -> tuple[Any, ...]:
    """A sequence key: the token ids, led by the adapter name when rows of several adapters share a batch."""
    return tokens if adapter is None else (adapter, *tokens)


def _untag(row: tuple[Any, ...]) -> tuple[str | None, tuple[int, ...]]:
    return (row[0], row[1:]) if row and isinstance(row[0], str) else (None, row)


@dataclass
class _TreeNode:
    """A run of tokens in a prefix tree: forwarded on top of row ``parent`` of the previous level's pass."""

    parent: int | None
    tokens: tuple[int, ...]
    row: tuple[int, ...] | None  # the requested sequence that ends here, if one does


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
        adapter_name: PEFT adapter activated (``model.set_adapter``) before every call; ``"__base__"`` answers with
            every adapter disabled (the base model, no copy); ``None`` leaves the model as it is.
        batch_size: most sequences per forward pass.
        cache_bytes: memory budget of the prefix cache (entries are ``vocab_size`` float32 vectors).
        share_prefixes: forward each prefix common to several prompts of a batch once, as a prefix tree, and
            reuse its KV cache (see :meth:`_prefill`); a shared run shorter than ``min_shared_prefix`` tokens is
            repeated per prompt rather than given a pass of its own.
        kv_cache_bytes: with ``prefix_cache``, memory budget for keeping the KV caches of forwarded batches, so that
            a new answer token after a cached prompt costs a one-token step instead of a full prefill (0 disables).
        prefetch_states: with ``prefix_cache``, when a game's prompt is not cached, compute every prompt that game
            and seat can show (4 previous-move states x token orders) in the same pass: they share all but a few
            dozen tokens, so the whole set costs little more than one prompt, and later rounds only hit the cache.
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
        batch_size: int = 128,
        cache_bytes: int = 512 * 2**20,
        share_prefixes: bool = True,
        min_shared_prefix: int = 16,
        kv_cache_bytes: int = 2 * 2**30,
        prefetch_states: bool = True,
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
        self.prefetch_states = prefetch_states
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
        #: The model's attention window (``config.sliding_window`` of a model with sliding-window layers), or None;
        #: re-read at every call, since every pass wider than it is checked (see :meth:`_extend`).
        self._window: int | None = attention_window(model)
        #: Prompt length in tokens (including the answer prefix) of each decision of the last :meth:`decide` call.
        self.prompt_lengths: list[int] = []
        #: Counters since construction: decisions, forward passes, rows and (non-padding) tokens forwarded,
        #: prefix-cache hits and misses, and KV rows kept from earlier calls that were reused.
        self.stats: dict[str, int] = {
            "decisions": 0,
            "forwards": 0,
            "rows": 0,
            "cache_hits": 0,
            "cache_misses": 0,
            "kv_reused": 0,
            "tokens": 0,
        }

    # ----------------------------------------------------------------------------------------- seeding and cache
    def seed(self, seed: int) -> None:
        """Restart both random streams (order shuffles and sampling) from ``seed``."""
        self._np_rng = np.random.default_rng(seed)
        self._torch_rng = torch.Generator(device="cpu")
        self._torch_rng.manual_seed(int(seed))

    def rng_state(self) -> dict[str, Any]:
        """Both random streams' state (for checkpoints): ``{"numpy": ..., "torch": ...}``."""
        return {"numpy": self._np_rng.bit_generator.state, "torch": self._torch_rng.get_state()}

    def set_rng_state(self, state: Mapping[str, Any]) -> None:
        """Restore the streams saved by :meth:`rng_state`: the next decisions continue exactly where they left off."""
        self._np_rng.bit_generator.state = state["numpy"]
        self._torch_rng.set_state(state["torch"])

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
        return decide_jointly([(self, games, observations, seats)])[0]

    def _prepare(self, games: Sequence[MatrixGame | str], observations: Any, seats: Sequence[int] | None) -> _Request:
        """Render and tokenise the prompts and draw the sampling uniforms, from this policy's own streams."""
        n = len(games)
        if len(observations) != n or (seats is not None and len(seats) != n):
            raise ValueError(
                f"decide needs one observation (and seat) per game: {n} games, {len(observations)} observations"
            )
        observations = np.asarray(observations).reshape(n, 2)
        seats = [0] * n if seats is None else list(seats)
        prompts = self.render_prompts(games, observations, seats) if n else []
        queries = [self.encode(p) for p in prompts]
        self.prompt_lengths = [len(q) for q in queries]
        uniforms = torch.rand((self.max_new_tokens, n), generator=self._torch_rng, dtype=torch.float64)
        return _Request(self, list(games), observations, seats, prompts, queries, uniforms)

    def _finish(self, request: _Request, responses: list[list[int]], logprobs: list[list[float]]) -> list[Decision]:
        tokens = self.prompt.action_tokens
        decisions = []
        for i, (prompt, query) in enumerate(zip(request.prompts, request.queries, strict=True)):
            text = self.prompt.answer_prefix + self.tokenizer.decode(responses[i], skip_special_tokens=True)
            decisions.append(Decision(parse_action(text, tokens), text, prompt, list(query), responses[i], logprobs[i]))
        self.stats["decisions"] += len(decisions)
        return decisions

    def _sibling_queries(self, request: _Request, tag: str | None) -> list[tuple[Any, ...]]:
        """Every prompt the (game, seat) of an uncached decision can show: its four previous-move states (and the
        decision's own, e.g. "no move yet") x every token order. Draws nothing from the random streams."""
        builder, encode = request.policy.prompt, request.policy.encode
        orders = [(a, b) for a in (0, 1) for b in (0, 1)] if builder.shuffle else [(0, 0)]
        done: set[Hashable] = set()
        siblings: list[tuple[Any, ...]] = []
        for i, query in enumerate(request.queries):
            if _tag(tag, query) in self._cache:
                continue
            game, seat = get_game(request.games[i]), request.seats[i]
            game_key = (game.name, game.payoffs.tobytes(), seat)
            states = dict.fromkeys([(0, 0), (0, 1), (1, 0), (1, 1), tuple(int(v) for v in request.observations[i])])
            for state in states:
                if (game_key, state) in done:
                    continue
                done.add((game_key, state))
                for bits in orders:
                    sibling = _tag(tag, encode(builder.render(self.tokenizer, game, state, bits, seat)))
                    if sibling not in self._cache:
                        siblings.append(sibling)
        return siblings

    def next_token_logprobs(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """``(n, V)`` log-probs of the token after each sequence, batched with left padding (no cache; for checks)."""
        rows = [tuple(s) for s in sequences]
        with self._inference():
            self._window = attention_window(self.model)
            if self._fits_window(rows, 0):
                try:
                    return self._prefill(rows)[0]
                except _WindowExceeded:
                    pass  # padding between shared runs spread a row past the window: recompute as plain rows
            return self._prefill(rows, exact=True)[0]

    def _fits_window(self, rows: Sequence[tuple[Any, ...]], generated: int) -> bool:
        """Whether every row plus ``generated`` more tokens stays shorter than the model's sliding window.

        Only then can the KV-sharing paths (prefix tree, kept KV rows, one-token steps) be exact: transformers
        slides a window over cache *columns*, and those paths put padding between a row's tokens; a row that
        reaches the window would also see its sliding layers' cache cut to the window. Longer rows go straight
        to plain, exact forwards (see :meth:`_prefill`) instead of failing halfway.
        """
        if self._window is None or not rows:
            return True
        return max(len(_untag(row)[1]) for row in rows) + generated < self._window

    @contextmanager
    def _inference(self, rows_name_adapters: bool = False):
        """No grad, eval mode, this policy's adapter: active (``set_adapter``), or all disabled for ``"__base__"``.

        ``rows_name_adapters``: a mixed batch whose rows name their own adapters (``adapter_names``), so nothing is
        disabled (PEFT routes ``"__base__"`` rows past every adapter itself).
        """
        was_training = self.model.training
        base = self.adapter_name == "__base__"
        if self.adapter_name is not None and not base:
            self.model.set_adapter(self.adapter_name)
        self.model.eval()  # no dropout while sampling; restored below
        try:
            with torch.no_grad(), _native_gqa_on_cpu(self._device()):
                if base and not rows_name_adapters:
                    with self.model.disable_adapter():
                        yield
                else:
                    yield
        finally:
            if was_training:
                self.model.train()

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _forward(
        self,
        input_ids,
        attention_mask,
        position_ids,
        past=None,
        adapters: Sequence[str | None] | None = None,
        use_cache: bool = True,
    ) -> tuple[torch.Tensor, Any]:
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if self._logits_to_keep else {}
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
            return self._forward(input_ids, attention_mask, position_ids, past, adapters, use_cache)
        self.stats["forwards"] += 1
        self.stats["rows"] += int(input_ids.shape[0])
        self.stats["tokens"] += int(attention_mask[:, -input_ids.shape[1] :].sum())
        logits = out.logits[:, -1, :].float()
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return torch.log_softmax(logits, dim=-1), out[cache_argument()] if use_cache else None

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

    # ----------------------------------------------------------------------------------------- forward machinery
    def _extend(
        self,
        parents: Sequence[tuple[_LiveGroup, int]] | None,
        segments: Sequence[Sequence[int]],
        adapters: Sequence[str | None] | None = None,
        keep: bool = True,
    ) -> tuple[torch.Tensor, _LiveGroup]:
        """Forward ``segments[i]`` on top of the KV row ``parents[i]`` (or from scratch): one batched pass.

        Segments are left-padded *between* the parent's tokens and their own (masked out; position ids continue
        after the parent's real tokens), so rows of different lengths share the pass without changing any result.
        Returns the next-token log-probs after each segment and the new KV group (one row per segment; without
        ``keep`` the pass builds no KV cache and the group's ``past`` is None).

        Raises:
            _WindowExceeded: the pass is at least as wide as the model's sliding window and some row's tokens,
                padding between them included, span the window. transformers masks a sliding layer by cache
                column, not by position, so such a row would silently lose keys it should see. Nothing has been
                forwarded; the caller recomputes with plain rows (``exact``), which are always right.
        """
        ids, segment_mask = self._left_pad(segments)
        offsets = (segment_mask.cumsum(-1) - 1).clamp(min=0)
        if parents is None:
            past, mask, positions = None, segment_mask, offsets
        else:
            past, parent_mask, start = self._gather(parents, reserve=ids.shape[1])
            mask = torch.cat([parent_mask, segment_mask], dim=1)
            positions = start.unsqueeze(-1) + offsets
        width = mask.shape[1]
        if keep and self._window is not None and width >= self._window:
            # A pass narrower than the window is exact whatever its padding (no key is ever out of the window).
            # A wider one is exact iff each row's real tokens span fewer than ``window`` columns: then the column
            # window hides only padding, as the position window hides nothing (positions < span < window).
            if bool(mask[:, : width - self._window + 1].any()):
                raise _WindowExceeded(width)
            if past is None:
                # The model's own cache would keep only its sliding layers' last ``window - 1`` columns (padding
                # here, but then the cache no longer lines up with the mask): a plain DynamicCache keeps them all.
                from transformers import DynamicCache

                past = DynamicCache()
        logprobs, past = self._forward(ids, mask, positions, past, adapters, use_cache=keep)
        return logprobs, _LiveGroup(past, mask, positions[:, -1] + 1)

    def _gather(
        self, parents: Sequence[tuple[_LiveGroup, int]], reserve: int = 0
    ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """KV cache, attention mask and next position of the chosen rows, as a new batch; sources are left intact.

        Rows may come from several groups of different widths: each is left-padded (masked, zero-filled) to the
        widest. Each layer's rows are copied once, straight into a buffer with ``reserve`` free columns on the
        right, where the forward pass writes the new tokens' keys and values in place (see :class:`_ReservedLayer`).
        """
        groups: dict[int, _LiveGroup] = {}
        for group, _ in parents:
            groups.setdefault(id(group), group)
        width = max(group.mask.shape[1] for group in groups.values())
        first = _cache_layers(next(iter(groups.values())).past)
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
            for (keys, values), layer in zip(buffers, _cache_layers(group.past), strict=True):
                keys[target, :, pad:width] = layer.keys.index_select(0, source)
                values[target, :, pad:width] = layer.values.index_select(0, source)
                if pad:
                    keys[target, :, :pad] = 0  # masked out, but must not hold NaNs (0 * NaN is NaN)
                    values[target, :, :pad] = 0
            mask[target, pad:] = group.mask.index_select(0, source)
            positions[target] = group.next_position.index_select(0, source)
        past = _reserved_cache(buffers, filled=width)
        return past, mask, positions

    def _prefill(self, rows: Sequence[tuple[Any, ...]], exact: bool = False) -> tuple[torch.Tensor, list[_LiveGroup]]:
        """Next-token log-probs of every row (``(n, V)``, in order) and the KV groups holding them.

        A row is a token tuple, optionally led by an adapter name (see :func:`decide_jointly`). Each returned
        group's ``rows`` maps a row to its KV row. Without ``share_prefixes`` the rows are left-padded into plain
        batches of ``batch_size``. With it (the default), identical rows are forwarded once and the rows of each
        adapter are arranged in a prefix tree (see :meth:`_prefix_levels`): every shared prefix is forwarded once,
        level by level, each level on top of the KV cache of the level before. The prompts of a game differ only at
        the token order, the payoffs and the previous moves, so this forwards each token of the tree once instead
        of once per prompt.

        ``exact``: every row is forwarded whole, as its own left-padded row, with no KV cache built or returned
        (no groups). Left padding shifts a row's columns uniformly, so a sliding window over columns is the window
        over positions: the path for rows that reach the model's sliding window (see :meth:`_fits_window`).
        """
        split = {row: _untag(row) for row in rows}
        if any(len(tokens) == 0 for _, tokens in split.values()):
            raise ValueError("cannot compute next-token log-probs after an empty sequence")
        results: dict[tuple[Any, ...], torch.Tensor] = {}
        groups: list[_LiveGroup] = []
        if exact or not self.share_prefixes:
            plain = list(dict.fromkeys(rows)) if exact and self.share_prefixes else list(rows)
            for start in range(0, len(plain), self.batch_size):
                chunk = plain[start : start + self.batch_size]
                tokens, tags = [split[r][1] for r in chunk], [split[r][0] for r in chunk]
                logprobs, group = self._extend(None, tokens, tags, keep=not exact)
                results.update(zip(chunk, logprobs, strict=True))
                if not exact:
                    group.rows = {row: j for j, row in enumerate(chunk)}
                    groups.append(group)
            return torch.stack([results[row] for row in rows]), groups
        by_adapter: dict[str | None, list[tuple[int, ...]]] = {}
        for tag, tokens in dict.fromkeys(split.values()):
            by_adapter.setdefault(tag, []).append(tokens)
        passes: list[list[tuple[str | None, list[list[_TreeNode]]]]] = [[]]
        leaves_in_pass = 0
        for tag, token_rows in by_adapter.items():
            unique = sorted(token_rows)  # sorted: rows sharing a prefix are neighbours, subtrees stay in one chunk
            for start in range(0, len(unique), self.batch_size):
                chunk = unique[start : start + self.batch_size]
                if passes[-1] and leaves_in_pass + len(chunk) > self.batch_size:
                    passes.append([])
                    leaves_in_pass = 0
                passes[-1].append((tag, self._prefix_levels(chunk)))
                leaves_in_pass += len(chunk)
        for trees in passes:
            groups += self._forward_trees(trees, results)
        return torch.stack([results[row] for row in rows]), groups

    def _forward_trees(
        self, trees: Sequence[tuple[str | None, list[list[_TreeNode]]]], results: dict[tuple[Any, ...], torch.Tensor]
    ) -> list[_LiveGroup]:
        """Forward the levels of several prefix trees (one per adapter) together: one pass per depth."""
        groups: list[_LiveGroup] = []
        previous: _LiveGroup | None = None
        previous_offsets = [0] * len(trees)
        for depth in range(max(len(levels) for _, levels in trees)):
            nodes: list[_TreeNode] = []
            adapters: list[str | None] = []
            parents: list[tuple[_LiveGroup, int]] = []
            keys: list[tuple[Any, ...] | None] = []
            offsets = []
            for t, (tag, levels) in enumerate(trees):
                offsets.append(len(nodes))
                for node in levels[depth] if depth < len(levels) else []:
                    nodes.append(node)
                    adapters.append(tag)
                    keys.append(None if node.row is None else _tag(tag, node.row))
                    if previous is not None:
                        parents.append((previous, previous_offsets[t] + node.parent))
            logprobs, group = self._extend(parents or None, [node.tokens for node in nodes], adapters)
            leaves = {key: j for j, key in enumerate(keys) if key is not None}
            for key, j in leaves.items():
                results[key] = logprobs[j]
            if leaves:
                group.rows = leaves
                groups.append(group)
            previous, previous_offsets = group, offsets
        return groups

    def _prefix_levels(self, rows: Sequence[tuple[int, ...]]) -> list[list[_TreeNode]]:
        """The prefix tree of sorted, distinct ``rows``, as levels of nodes to forward (level ``d`` after ``d - 1``).

        A node is a run of tokens shared by all rows below it; it ends where they differ (or where one of them
        ends: that row's log-probs are the node's). A shared run shorter than ``min_shared_prefix`` tokens is not
        worth a pass of its own and is repeated in each child instead. With every run shared, each distinct
        token-prefix of the rows is forwarded exactly once.
        """
        levels: list[list[_TreeNode]] = []

        def add(depth: int, node: _TreeNode) -> int:
            if depth == len(levels):
                levels.append([])
            levels[depth].append(node)
            return len(levels[depth]) - 1

        def visit(lo: int, hi: int, start: int, carried: tuple[int, ...], parent: int | None, depth: int) -> None:
            first, last = rows[lo], rows[hi - 1]
            if hi - lo == 1:
                add(depth, _TreeNode(parent, carried + first[start:], first))
                return
            end, limit = start, min(len(first), len(last))
            while end < limit and first[end] == last[end]:  # sorted: the first and last rows share least
                end += 1
            terminal = len(first) == end  # a row that is a prefix of the others sorts first
            segment = carried + first[start:end]
            if terminal or (segment and len(segment) >= self.min_shared_prefix):
                parent = add(depth, _TreeNode(parent, segment, first if terminal else None))
                depth, carried = depth + 1, ()
            else:
                carried = segment
            i = lo + 1 if terminal else lo
            while i < hi:
                j = i
                while j < hi and rows[j][end] == rows[i][end]:
                    j += 1
                visit(i, j, end, carried, parent, depth)
                i = j

        if rows:
            visit(0, len(rows), 0, (), None, 0)
        return levels

    # ----------------------------------------------------------------------------------------- sampling
    def _generate(
        self, queries: list[tuple[int, ...]], uniforms: torch.Tensor, prefetch: Sequence[tuple[int, ...]] = ()
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Sample ``max_new_tokens`` tokens per query; shared by the cached and the uncached paths.

        ``prefetch``: extra prompts whose next-token distribution (and KV) is computed with the first step's.

        A model with sliding-window layers (Gemma-2, Mistral...) gets the fast paths only while every forwarded
        row stays shorter than its window (the common case: Gemma-2's 4096 against prompts of a few hundred
        tokens). A prompt that reaches it is sampled from plain, exact forwards of whole rows instead, and so is
        a call whose padding between shared runs turned out to span the window (:class:`_WindowExceeded`).
        Every log-prob is then that of a plain forward of the prompt and the tokens before it, in every mode.
        """
        self._window = attention_window(self.model)
        if self._fits_window([*queries, *prefetch], self.max_new_tokens - 1):
            counted = self.stats["cache_hits"], self.stats["cache_misses"]
            try:
                return self._sample(queries, uniforms, prefetch, exact=False)
            except _WindowExceeded:
                # What was computed before is exact and stays cached; the rerun draws the same uniforms, so it
                # samples the same tokens. Lookups are counted once, by the rerun.
                self.stats["cache_hits"], self.stats["cache_misses"] = counted
        # No prefetch: without shared prefixes each sibling prompt would cost a whole row, most of them for nothing.
        return self._sample(queries, uniforms, (), exact=True)

    def _sample(
        self, queries: list[tuple[int, ...]], uniforms: torch.Tensor, prefetch: Sequence[tuple[int, ...]], exact: bool
    ) -> tuple[list[list[int]], list[list[float]]]:
        """:meth:`_generate`'s loop: per token, fill the missing log-probs (``exact``: by plain rows), then sample."""
        n = len(queries)
        if self.prefix_cache:
            table: OrderedDict[Hashable, torch.Tensor] = self._cache
            keys: list[Hashable] = list(queries)
        else:
            table = OrderedDict()
            keys = [(i,) for i in range(n)]  # every row is its own prefix: no sharing, one row per decision
        sequences = [list(q) for q in queries]
        responses: list[list[int]] = [[] for _ in range(n)]
        token_logprobs: list[list[float]] = [[] for _ in range(n)]
        parents: list[Hashable | None] = [None] * n
        live: list[_LiveGroup] = []
        for step in range(self.max_new_tokens):
            extra = prefetch if step == 0 else ()
            last = step == self.max_new_tokens - 1
            live = self._fill(table, keys, parents, sequences, live, last=last, extra=extra, exact=exact)
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
        extra: Sequence[tuple[int, ...]] = (),
        exact: bool = False,
    ) -> list[_LiveGroup]:
        """Compute the next-token log-probs of every key not in ``table``; return the KV groups for the next step.

        A key whose parent (the same sequence one token shorter) has a KV row, from this call's previous step or
        kept from an earlier call, costs a one-token step; all such keys share one pass. The rest are prefilled.
        ``exact``: no KV row is used or kept; every missing key's whole sequence is forwarded as a plain row.
        """
        missing: dict[Hashable, int] = {}
        for i, key in enumerate(keys):
            if key in table or key in missing:
                self.stats["cache_hits"] += 1
            else:
                missing[key] = i
                self.stats["cache_misses"] += 1
        extra = [q for q in dict.fromkeys(extra) if q not in table and q not in missing]
        if not missing and not extra:
            return []
        remember = table is self._cache and not exact
        located: dict[Hashable, tuple[_LiveGroup, int]] = {}
        for group in live:
            for key, row in group.rows.items():
                located.setdefault(key, (group, row))
        if remember:
            for group, _ in reversed(self._kv.values()):  # most recently used first
                for key, row in group.rows.items():
                    located.setdefault(key, (group, row))
        children = [k for k, i in missing.items() if parents[i] is not None and parents[i] in located]
        new_groups: list[_LiveGroup] = []
        for start in range(0, len(children), self.batch_size):
            chunk = children[start : start + self.batch_size]
            sources = [located[parents[missing[k]]] for k in chunk]
            adapters = [_untag(tuple(sequences[missing[k]][:1]))[0] for k in chunk]
            logprobs, group = self._extend(sources, [(sequences[missing[k]][-1],) for k in chunk], adapters)
            self.stats["kv_reused"] += sum(1 for group, _ in sources if not any(group is g for g in live))
            for j, k in enumerate(chunk):
                table[k] = logprobs[j]
            if not last:
                group.rows = {k: j for j, k in enumerate(chunk)}
                self._remember(group, remember)
                new_groups.append(group)
        prefilled = set(children)
        fresh = {k: tuple(sequences[i]) for k, i in missing.items() if k not in prefilled}
        keys_of_row: dict[tuple[int, ...], list[Hashable]] = {}
        for key, row in fresh.items():
            keys_of_row.setdefault(row, []).append(key)
        for row in extra:
            keys_of_row.setdefault(row, []).append(row)
        if not keys_of_row:
            return new_groups
        # Identical rows are forwarded once when sharing; without it every decision pays its own row (the baseline).
        rows = list(keys_of_row) if self.share_prefixes else [*fresh.values(), *extra]
        logprobs, groups = self._prefill(rows, exact=exact)
        for row, vector in zip(rows, logprobs, strict=True):
            for key in keys_of_row[row]:
                table[key] = vector
        if not last:
            for group in groups:
                group.rows = {key: j for row, j in group.rows.items() for key in keys_of_row[row]}
                self._remember(group, remember)
                new_groups.append(group)
        return new_groups

    def _remember(self, group: _LiveGroup, enabled: bool) -> None:
        """Keep a group's KV cache (LRU, ``kv_cache_bytes``) so later children of its rows need a one-token step."""
        if not enabled or self.kv_cache_bytes <= 0:
            return
        size = sum(
            layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
            for layer in _cache_layers(group.past)
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


@contextmanager
def _native_gqa_on_cpu(device: torch.device):
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


class _WindowExceeded(Exception):
    """Raised before a KV-sharing pass whose padded rows span the model's sliding window (see
    :meth:`LLMPolicy._extend`); caught by the callers, which recompute with plain rows. Never reaches a user."""


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


def _cache_layers(past: Any) -> list[Any]:
    """The per-layer key/value holders of a transformers ``Cache`` (``DynamicCache.layers``)."""
    layers = getattr(past, "layers", None)
    if not layers or any(getattr(layer, "keys", None) is None for layer in layers):
        raise TypeError(
            f"LLMPolicy needs a transformers DynamicCache-style KV cache (with .layers[i].keys/.values); the model "
            f"returned {type(past).__name__}. Use a transformers causal LM with the standard cache."
        )
    return layers


def _reserved_cache(buffers: Sequence[tuple[torch.Tensor, torch.Tensor]], filled: int) -> Any:
    """A transformers ``DynamicCache`` over preallocated per-layer buffers whose first ``filled`` columns are the past."""
    from transformers import DynamicCache

    past = DynamicCache()
    past.layers = [_reserved_layer_class()(keys, values, filled) for keys, values in buffers]
    return past


_RESERVED_LAYER: type | None = None


def _reserved_layer_class() -> type:
    """:class:`_ReservedLayer`, defined on first use so that importing this module does not import transformers."""
    global _RESERVED_LAYER
    if _RESERVED_LAYER is None:
        from transformers.cache_utils import DynamicLayer

        class _ReservedLayer(DynamicLayer):
            """A ``DynamicLayer`` whose buffer already has room for the tokens about to be forwarded.

            ``DynamicLayer.update`` concatenates, which copies the whole past once more in every layer of every
            pass; here the new keys and values are written into the reserved columns in place. More tokens than
            reserved fall back to concatenation, so the layer is never wrong, only slower.
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

        _RESERVED_LAYER = _ReservedLayer
    return _RESERVED_LAYER


def decide_jointly(
    requests: Sequence[tuple[LLMPolicy, Sequence[MatrixGame | str], Any, Sequence[int] | None]],
) -> list[list[Decision]]:
    """``policy.decide(games, observations, seats)`` for several policies that share one model, in shared passes.

    The use: LLM vs LLM, where the two seats are two LoRA adapters of one PEFT model. Each policy renders its
    prompts and draws its sampling uniforms from its own streams, exactly as its own ``decide`` would, so the
    decisions are those of separate calls; only the forward passes are shared (one per generated token for every
    game of every policy), each row going through its policy's ``adapter_name`` (a PEFT mixed-adapter batch). The
    first policy's prefix cache and settings (batching, prefix sharing, prefetch) serve the call.

    Raises:
        ValueError: the policies use different models, sample differently (``max_new_tokens``/``temperature``), or
            use several adapters without naming each (``adapter_name=None``).
    """
    if not requests:
        return []
    policies = [request[0] for request in requests]
    engine = policies[0]
    adapters = {policy.adapter_name for policy in policies}
    for policy in policies[1:]:
        if policy.model is not engine.model:
            raise ValueError("decide_jointly needs policies over one model object (e.g. two adapters of a PeftModel)")
        if (policy.max_new_tokens, policy.temperature) != (engine.max_new_tokens, engine.temperature):
            raise ValueError(
                "decide_jointly needs policies that sample alike: max_new_tokens and temperature differ "
                f"({policy.max_new_tokens}, {policy.temperature}) vs ({engine.max_new_tokens}, {engine.temperature})"
            )
    tagged = len(adapters) > 1
    if tagged and None in adapters:
        raise ValueError(
            "decide_jointly with several adapters needs every policy's adapter_name set (use '__base__' for the base "
            "model of a PeftModel)"
        )
    prepared = [policy._prepare(games, observations, seats) for policy, games, observations, seats in requests]
    queries: list[tuple[Any, ...]] = []
    prefetch: list[tuple[Any, ...]] = []
    responses: list[list[int]] = []
    logprobs: list[list[float]] = []
    with engine._inference(rows_name_adapters=tagged):
        if engine.prefix_cache:
            engine._check_cache()
        for request in prepared:
            tag = request.policy.adapter_name if tagged else None
            queries += [_tag(tag, query) for query in request.queries]
            if engine.prefix_cache and engine.prefetch_states:
                prefetch += engine._sibling_queries(request, tag)
        if queries:
            uniforms = torch.cat([request.uniforms for request in prepared], dim=1)
            responses, logprobs = engine._generate(queries, uniforms, prefetch)
    decisions = []
    start = 0
    for request in prepared:
        end = start + len(request.queries)
        decisions.append(request.policy._finish(request, responses[start:end], logprobs[start:end]))
        start = end
    return decisions


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
