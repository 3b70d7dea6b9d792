"""LLMPolicy on a Gemma-2 whose sliding window is shorter or longer than its prompts: exact log-probs in every mode.

transformers slides a window over KV-cache columns, while LLMPolicy's prefix tree and kept KV rows put padding
between a row's tokens, and the model's own cache keeps only a sliding layer's last ``window - 1`` columns. Both
used to break: a RuntimeError while gathering KV rows or, silently, log-probs off by up to 0.1. Every number here is
checked against a plain forward of the model over the prompt and the tokens sampled before.
"""

import numpy as np
import pytest
import torch

from moralgym.agents.llm.decoding import Decoder
from moralgym.agents.llm.engine import ForwardEngine, WindowExceeded
from moralgym.agents.llm.policy import LLMPolicy, decide_jointly
from moralgym.agents.llm.testing import tiny_byte_tokenizer, tiny_tokenizer

#: Gemma-2's chat template in short: it rejects a system role, as google/gemma-2-2b-it's does.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] "
    "| trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
GAMES = ["ipd", "chicken", "ipd", "stag_hunt"]
OBSERVATIONS = np.array([[0, 1], [1, 1], [1, 0], [0, 0]])
#: Every way of batching, sharing and caching; each is played for two rounds (the second one hits the prefix cache
#: and takes one-token steps from the KV rows kept by the first).
MODES = [
    {},
    {"prefetch_states": False, "batch_size": 3, "min_shared_prefix": 4},
    {"kv_cache_bytes": 0, "min_shared_prefix": 4},
    {"prefix_cache": False},
    {"prefix_cache": False, "share_prefixes": False, "batch_size": 3},
]


def _tokenizer(kind):
    if kind == "word":
        return tiny_tokenizer()
    tokenizer = tiny_byte_tokenizer()
    tokenizer.chat_template = GEMMA_TEMPLATE
    return tokenizer


def _gemma2(vocab_size, sliding_window):
    """A tiny random Gemma-2: a sliding-window layer, then a global one, attention and final soft-capping, fp32."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=sliding_window,
        layer_types=["sliding_attention", "full_attention"],
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
        max_position_embeddings=8192,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(config).eval()
    with torch.no_grad():  # sharper than the random init's near-uniform logits, so samples differ between prompts
        model.model.norm.weight.fill_(7.0)
    return model


def _longest_prompt(tokenizer):
    """Tokens of the longest prompt the games can show (every previous-move state and token order, as prefetched)."""
    policy = LLMPolicy(_gemma2(len(tokenizer), 4096), tokenizer)
    states = [(a, b) for a in (0, 1) for b in (0, 1)]
    return max(
        len(policy.encode(policy.prompt.render(tokenizer, game, state, bits, 0)))
        for game in set(GAMES)
        for state in states
        for bits in states
    )


@pytest.fixture
def guard_spy(monkeypatch):
    """Counts the passes LLMPolicy refused to run because padding spread a row over the window, and the plain-row
    (exact) prefills."""
    counts = {"refused": 0, "exact_prefills": 0}
    extend, prefill = ForwardEngine.extend, Decoder.prefill

    def spied_extend(self, *args, **kwargs):
        try:
            return extend(self, *args, **kwargs)
        except WindowExceeded:
            counts["refused"] += 1
            raise

    def spied_prefill(self, rows, exact=False):
        counts["exact_prefills"] += bool(exact)
        return prefill(self, rows, exact)

    monkeypatch.setattr(ForwardEngine, "extend", spied_extend)
    monkeypatch.setattr(Decoder, "prefill", spied_prefill)
    return counts


def _plain_logprobs(model, ids):
    """Log-softmax of a plain, unpadded, cache-free forward over ``ids``: the reference."""
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([list(ids)]), use_cache=False).logits[0].float(), -1)


def _assert_decisions_match_plain_forwards(model, decisions, memo):
    assert decisions
    for decision in decisions:
        key = (*decision.query_ids, *decision.response_ids)
        if key not in memo:
            memo[key] = _plain_logprobs(model, key[:-1])
        start = len(decision.query_ids) - 1
        expected = [memo[key][start + t, token].item() for t, token in enumerate(decision.response_ids)]
        np.testing.assert_allclose(decision.logprobs, expected, atol=1e-5, rtol=0)


def _check_every_mode(model, tokenizer):
    memo: dict = {}
    for mode in MODES:
        policy = LLMPolicy(model, tokenizer, seed=3, **mode)
        for observations in (OBSERVATIONS, OBSERVATIONS[::-1]):
            _assert_decisions_match_plain_forwards(model, policy.decide(GAMES, observations), memo)
    seats = [LLMPolicy(model, tokenizer, seed=5 + k) for k in (0, 1)]
    for _ in range(2):
        joint = decide_jointly([(seats[k], GAMES, OBSERVATIONS, [k] * len(GAMES)) for k in (0, 1)])
        for decisions in joint:
            _assert_decisions_match_plain_forwards(model, decisions, memo)
    policy = LLMPolicy(model, tokenizer, min_shared_prefix=4)
    sequences = [policy.encode(p) for p in policy.render_prompts(GAMES, OBSERVATIONS)]
    sequences.append(sequences[0][:20])  # mixed lengths: really padded
    for row, ids in zip(policy.next_token_logprobs(sequences), sequences, strict=True):
        torch.testing.assert_close(row, _plain_logprobs(model, ids)[-1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["word", "byte_gemma_template"])
def test_window_shorter_than_the_prompt_gives_plain_forward_logprobs_in_every_mode(kind, guard_spy):
    tokenizer = _tokenizer(kind)
    model = _gemma2(len(tokenizer), sliding_window=32)
    assert _longest_prompt(tokenizer) > 32
    _check_every_mode(model, tokenizer)
    assert guard_spy["exact_prefills"] > 0  # prompts past the window went to plain rows


@pytest.mark.parametrize("kind", ["word", "byte_gemma_template"])
def test_window_just_longer_than_the_prompt_is_exact_though_padding_spans_it(kind, guard_spy):
    """Every prompt fits the window, but the prefix tree's padding spreads rows over more columns than the window:
    those passes must not run (transformers would hide real keys), and the call is recomputed exactly."""
    tokenizer = _tokenizer(kind)
    model = _gemma2(len(tokenizer), sliding_window=_longest_prompt(tokenizer) + 4)
    _check_every_mode(model, tokenizer)
    assert guard_spy["refused"] > 0  # the padded passes were really caught, not merely avoided


def test_window_covering_the_prompt_keeps_the_fast_paths_with_soft_capping(guard_spy):
    """Gemma-2-2b's case (window 4096, prompts of a few hundred tokens): exact, and still the prefix tree and kept
    KV rows, never the plain-row fallback."""
    tokenizer = _tokenizer("byte_gemma_template")
    model = _gemma2(len(tokenizer), sliding_window=4096)
    _check_every_mode(model, tokenizer)
    assert guard_spy == {"refused": 0, "exact_prefills": 0}
    policy = LLMPolicy(model, tokenizer, seed=1)
    policy.decide(GAMES, OBSERVATIONS)
    policy.decide(GAMES, OBSERVATIONS[::-1])
    assert policy.stats["kv_reused"] > 0  # one-token steps from KV kept by the first call
    prompts = [policy.encode(p) for p in policy.render_prompts(GAMES, OBSERVATIONS)]
    shared = LLMPolicy(model, tokenizer, prefix_cache=False)
    shared.next_token_logprobs(prompts)
    assert shared.stats["tokens"] < sum(len(p) for p in prompts)  # shared prefixes forwarded once


@pytest.mark.parametrize("window", [32, 4096])
def test_training_scores_match_a_plain_forward_whatever_the_window(window):
    """The PPO update's prefix-tree scoring (moralgym.training.model) obeys the same rule as the policy."""
    from moralgym.training.model import score_contexts

    tokenizer = tiny_byte_tokenizer()
    model = _gemma2(len(tokenizer), window)
    policy = LLMPolicy(model, tokenizer, seed=0)
    decisions = policy.decide(["ipd"] * 4 + ["chicken"] * 2, [[0, 0], [0, 1], [1, 0], [1, 1], [0, 0], [1, 1]])
    queries = [d.query_ids for d in decisions]
    responses = [d.response_ids for d in decisions]
    with torch.no_grad():
        scored = score_contexts(model, queries, responses).logprobs
        for i, (query, response) in enumerate(zip(queries, responses, strict=True)):
            ids = torch.tensor([list(query) + list(response)])
            logits = model(input_ids=ids).logits[0, len(query) - 1 : -1]
            expected = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(response)[:, None])[:, 0]
            assert torch.allclose(scored[i, : len(response)], expected, atol=1e-5), (window, i)
