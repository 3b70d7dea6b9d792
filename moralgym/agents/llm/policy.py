"""``LLMPolicy``: a causal LM choosing moves for many games at once, sampled exactly as in the paper, fast.

Sampling, as in the paper (docs/reproduction.md): for every decision exactly ``max_new_tokens`` tokens are drawn
from the softmax of the full logits at temperature 1 (no top-k, no top-p, no EOS stopping), by inverting the CDF
with one uniform per (token, decision) from a seeded ``torch.Generator`` (:mod:`moralgym.agents.llm.sampling`); the
token-order shuffles of the prompts come from a seeded numpy ``Generator``. The same seed therefore gives the same
decisions, whichever code path computed the log-probs.

This module renders and encodes the prompts, owns the random streams and turns sampled tokens into
:class:`Decision` s. The speed (docs/llm_speed.md) comes from the modules it delegates to:

* :mod:`~moralgym.agents.llm.engine`: batched forward passes over left-padded rows, on top of KV rows of earlier
  passes (reserved buffers, native grouped-query attention on CPU, the sliding-window rule);
* :mod:`~moralgym.agents.llm.prefix_tree`: the prompts of a batch as a prefix tree, each shared run forwarded once;
* :mod:`~moralgym.agents.llm.prefix_cache`: next-token log-probs (and KV) of prefixes already seen, keyed by
  :class:`~moralgym.agents.llm.prefix_cache.CacheKey`, dropped when the weights change;
* :mod:`~moralgym.agents.llm.decoding`: the per-token loop that combines them for one (joint) call.

N-player games (:class:`~moralgym.envs.n_player.SchellingGame`) are decided the same way: each game's prompt comes
from ``prompt.for_game(game)`` (an :class:`~moralgym.agents.llm.n_player_prompts.NPlayerPromptBuilder` with the same
tokens, phrasing, table order, persona and answer prefix) and the state from
:func:`~moralgym.agents.llm.n_player_prompts.n_player_state` of the seat's ``[own_previous, others_cooperated]``
observation; the order bits, the uniforms and the parser are the two-player ones, drawn from the same streams, so a
two-player call makes exactly the decisions it made before N-player games existed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from moralgym.agents.llm.decoding import Decoder, DecodeSettings
from moralgym.agents.llm.engine import ForwardEngine, attention_window, cache_argument
from moralgym.agents.llm.n_player_prompts import is_n_player_game, n_player_state
from moralgym.agents.llm.parsing import parse_action
from moralgym.agents.llm.prefix_cache import CacheKey, PrefixCache
from moralgym.agents.llm.prompts import PromptBuilder
from moralgym.agents.llm.sampling import draw_uniforms, sample_from_logprobs
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL, MatrixGame, get_game
from moralgym.envs.n_player.games import SchellingGame, get_n_player_game

__all__ = [
    "Decision",
    "DecideRequest",
    "LLMPolicy",
    "attention_window",
    "cache_argument",
    "decide_jointly",
    "sample_from_logprobs",
]

#: What a policy decides in: a two-player game, an N-player one, or the registered name of either.
Game = MatrixGame | SchellingGame | str


def _resolve_game(game: Game) -> MatrixGame | SchellingGame:
    """The game object a prompt shows: a ``SchellingGame`` as given (an N-player name built for the default ``N``),
    anything else through :func:`~moralgym.envs.games.get_game`."""
    if is_n_player_game(game):
        return game if isinstance(game, SchellingGame) else get_n_player_game(game)
    return get_game(game)


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


@dataclass
class DecideRequest:
    """One policy's share of a (joint) decide call (:meth:`LLMPolicy.prepare`): its rendered prompts, their tokens
    and its sampling uniforms ``(max_new_tokens, n)``, drawn from the policy's own streams."""

    policy: LLMPolicy
    games: list[Any]
    observations: np.ndarray
    seats: list[int]
    prompts: list[str]
    queries: list[tuple[int, ...]]
    uniforms: torch.Tensor


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
            reuse its KV cache; a shared run shorter than ``min_shared_prefix`` tokens is repeated per prompt rather
            than given a pass of its own.
        kv_cache_bytes: with ``prefix_cache``, memory budget for keeping the KV caches of forwarded batches, so that
            a new answer token after a cached prompt costs a one-token step instead of a full prefill (0 disables).
            The default 256 MiB holds the batches a decision's next tokens extend; 2 GiB (the earlier default) made
            the quick start's evaluation 0.5 GiB bigger and no faster (docs/benchmarks.md).
        prefetch_states: with ``prefix_cache``, when a game's prompt is not cached, compute every prompt that game
            and seat can show (4 previous-move states x token orders) in the same pass: they share all but a few
            dozen tokens, so the whole set costs little more than one prompt, and later rounds only hit the cache.

    Settings are read at every call, so they may be changed between calls (``prompt``, ``adapter_name``...).
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
        kv_cache_bytes: int = 256 * 2**20,
        prefetch_states: bool = True,
    ) -> None:
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
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
        self.min_shared_prefix = max(1, int(min_shared_prefix))
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
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        #: The forward passes (shared with the other policies of a joint call this policy leads).
        self.engine = ForwardEngine(model, int(pad) if pad is not None else 0, self.stats)
        #: Next-token log-probs and KV groups of the prefixes seen (used while ``prefix_cache``).
        self.cache = PrefixCache()
        self._encoded: dict[str, tuple[int, ...]] = {}
        #: Prompt length in tokens (including the answer prefix) of each decision of the last :meth:`decide` call.
        self.prompt_lengths: list[int] = []
        self.seed(seed)

    @property
    def model(self) -> Any:
        return self.engine.model

    @model.setter
    def model(self, model: Any) -> None:
        self.engine.model = model

    @property
    def pad_token_id(self) -> int:
        return self.engine.pad_token_id

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
        self.cache.clear()

    @property
    def cache_size(self) -> int:
        """Number of prefixes whose next-token distribution is cached."""
        return len(self.cache)

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
        self, games: Sequence[Game], observations: np.ndarray, seats: Sequence[int] | None = None
    ) -> list[str]:
        """The rendered prompt of each decision; draws the token-order shuffles from the policy's numpy stream.

        Two-player games read ``observations[i]`` as ``[own_previous, opponent_previous]``, N-player games as
        ``[own_previous, others_cooperated]`` (the runner's rows); one call may mix both kinds."""
        n = len(games)
        observations = np.asarray(observations).reshape(n, 2)
        seats = [0] * n if seats is None else list(seats)
        bits = self.prompt.draw_order_bits(self._np_rng, n)
        builders: dict[bool, Any] = {}
        return [self._render(builders, _resolve_game(games[i]), observations[i], bits[i], seats[i]) for i in range(n)]

    def _render(
        self, builders: dict[bool, Any], game: MatrixGame | SchellingGame, state: Any, bits: Any, seat: int
    ) -> str:
        """One prompt: ``self.prompt.for_game(game)`` (memoised per kind of game in ``builders``: the builder of a
        kind does not depend on which game of that kind) rendering the decision's state."""
        n_player = isinstance(game, SchellingGame)
        builder = builders.get(n_player)
        if builder is None:
            builder = builders[n_player] = self.prompt.for_game(game)
        if n_player:
            state = n_player_state(game, state)
        return builder.render(self.tokenizer, game, state, bits, seat)

    def sibling_queries(
        self, request: DecideRequest, cached: Callable[[tuple[int, ...]], bool]
    ) -> list[tuple[int, ...]]:
        """Every prompt the (game, seat) of an uncached decision of ``request`` can show after a legal round, x every
        token order, plus the decision's own state (e.g. "no move yet"), less those ``cached`` already holds. What
        ``prefetch_states`` computes; draws nothing from the random streams.

        A two-player game has four such states (own and opponent's previous move); an ``N``-player game ``2N``
        (own previous move x how many of the ``N - 1`` others cooperated), the same for every seat (its table is
        symmetric). The states with no previous move (``3 (N + 1)`` in all with them) are left out, as for two
        players: they occur only in round one with ``initial_state="none"`` or after illegal answers, a decision in
        one prefetches it as its own state, and the paper's protocol (random initial states) never shows them."""
        orders = [(a, b) for a in (0, 1) for b in (0, 1)] if self.prompt.shuffle else [(0, 0)]
        builders: dict[bool, Any] = {}
        done: set[Hashable] = set()
        siblings: list[tuple[int, ...]] = []
        for i, query in enumerate(request.queries):
            if cached(query):
                continue
            game, seat = _resolve_game(request.games[i]), request.seats[i]
            own = tuple(int(v) for v in request.observations[i])
            if isinstance(game, SchellingGame):
                game_key: Hashable = game
                counts = range(game.num_players)
            else:
                game_key, counts = (game.name, game.payoffs.tobytes(), seat), (COOPERATE, DEFECT)
            states = dict.fromkeys([*((mine, k) for mine in (COOPERATE, DEFECT) for k in counts), own])
            for state in states:
                if (game_key, state) in done:
                    continue
                done.add((game_key, state))
                for bits in orders:
                    sibling = self.encode(self._render(builders, game, state, bits, seat))
                    if not cached(sibling):
                        siblings.append(sibling)
        return siblings

    # ----------------------------------------------------------------------------------------- deciding
    def decide(
        self,
        games: Sequence[Game],
        observations: np.ndarray | Sequence[Sequence[int]],
        seats: Sequence[int] | None = None,
    ) -> list[Decision]:
        """One move per game: ``observations[i] = [own_previous, other_previous]`` from seat ``seats[i]`` (default 0);
        in an N-player game ``[own_previous, others_cooperated]``.

        All decisions share forward passes; with ``prefix_cache`` repeated prefixes are computed once.
        """
        return decide_jointly([(self, games, observations, seats)])[0]

    def prepare(self, games: Sequence[Game], observations: Any, seats: Sequence[int] | None) -> DecideRequest:
        """Render and tokenise the prompts and draw the sampling uniforms, from this policy's own streams (the
        first half of :meth:`decide`; :meth:`finish` is the second)."""
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
        uniforms = draw_uniforms(self._torch_rng, self.max_new_tokens, n)
        return DecideRequest(self, list(games), observations, seats, prompts, queries, uniforms)

    def finish(
        self, request: DecideRequest, responses: Sequence[list[int]], logprobs: Sequence[list[float]]
    ) -> list[Decision]:
        """The decisions of ``request`` from its sampled tokens and their log-probs: decoded and parsed."""
        tokens = self.prompt.action_tokens
        decisions = []
        for i, (prompt, query) in enumerate(zip(request.prompts, request.queries, strict=True)):
            text = self.prompt.answer_prefix + self.tokenizer.decode(responses[i], skip_special_tokens=True)
            decisions.append(Decision(parse_action(text, tokens), text, prompt, list(query), responses[i], logprobs[i]))
        self.stats["decisions"] += len(decisions)
        return decisions

    def decoder(self) -> Decoder:
        """A :class:`~moralgym.agents.llm.decoding.Decoder` over this policy's engine and prefix cache (None without
        ``prefix_cache``), with its settings as they are now."""
        settings = DecodeSettings(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            batch_size=self.batch_size,
            share_prefixes=self.share_prefixes,
            min_shared_prefix=self.min_shared_prefix,
            cache_bytes=self.cache_bytes,
            kv_cache_bytes=self.kv_cache_bytes,
        )
        return Decoder(self.engine, self.cache if self.prefix_cache else None, settings)

    def next_token_logprobs(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """``(n, V)`` log-probs of the token after each sequence, batched with left padding (no cache; for checks)."""
        rows = [CacheKey(None, tuple(s)) for s in sequences]
        decoder = self.decoder()
        with self.engine.inference(self.adapter_name):
            return decoder.next_token_logprobs(rows)


def _check_shareable(policies: Sequence[LLMPolicy]) -> bool:
    """Whether the rows must name their adapters (several adapters in one batch); raises if the policies cannot
    share passes."""
    lead = policies[0]
    for policy in policies[1:]:
        if policy.model is not lead.model:
            raise ValueError("decide_jointly needs policies over one model object (e.g. two adapters of a PeftModel)")
        if (policy.max_new_tokens, policy.temperature) != (lead.max_new_tokens, lead.temperature):
            raise ValueError(
                "decide_jointly needs policies that sample alike: max_new_tokens and temperature differ "
                f"({policy.max_new_tokens}, {policy.temperature}) vs ({lead.max_new_tokens}, {lead.temperature})"
            )
    adapters = {policy.adapter_name for policy in policies}
    mixed = len(adapters) > 1
    if mixed and None in adapters:
        raise ValueError(
            "decide_jointly with several adapters needs every policy's adapter_name set (use '__base__' for the base "
            "model of a PeftModel)"
        )
    return mixed


def _in_cache(cache: PrefixCache, adapter: str | None, tokens: tuple[int, ...]) -> bool:
    return CacheKey(adapter, tokens) in cache


def decide_jointly(
    requests: Sequence[tuple[LLMPolicy, Sequence[Game], Any, Sequence[int] | None]],
) -> list[list[Decision]]:
    """``policy.decide(games, observations, seats)`` for several policies that share one model, in shared passes.

    The use: LLM vs LLM, where the two seats are two LoRA adapters of one PEFT model. Each policy renders its
    prompts and draws its sampling uniforms from its own streams, exactly as its own ``decide`` would, so the
    decisions are those of separate calls; only the forward passes are shared (one per generated token for every
    game of every policy), each row going through its policy's ``adapter_name`` (a PEFT mixed-adapter batch). The
    first policy's engine, prefix cache and settings (batching, prefix sharing, prefetch) serve the call.

    Raises:
        ValueError: the policies use different models, sample differently (``max_new_tokens``/``temperature``), or
            use several adapters without naming each (``adapter_name=None``).
    """
    if not requests:
        return []
    policies = [request[0] for request in requests]
    lead = policies[0]
    mixed = _check_shareable(policies)
    prepared = [policy.prepare(games, observations, seats) for policy, games, observations, seats in requests]
    queries: list[CacheKey] = []
    prefetch: list[CacheKey] = []
    responses: list[list[int]] = []
    logprobs: list[list[float]] = []
    decoder = lead.decoder()
    with decoder.session(lead.adapter_name, rows_name_adapters=mixed):
        for request in prepared:
            adapter = request.policy.adapter_name if mixed else None
            queries += [CacheKey(adapter, query) for query in request.queries]
            if decoder.cache is not None and lead.prefetch_states:
                cached = functools.partial(_in_cache, decoder.cache, adapter)
                prefetch += [CacheKey(adapter, s) for s in request.policy.sibling_queries(request, cached)]
        if queries:
            uniforms = torch.cat([request.uniforms for request in prepared], dim=1)
            responses, logprobs = decoder.generate(queries, uniforms, prefetch)
    decisions = []
    start = 0
    for request in prepared:
        end = start + len(request.queries)
        decisions.append(request.policy.finish(request, responses[start:end], logprobs[start:end]))
        start = end
    return decisions
