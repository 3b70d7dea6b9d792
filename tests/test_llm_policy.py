"""LLMPolicy: padding-safe batched log-probs, prefix cache with the same distribution, seeding, invalidation."""

import os

import numpy as np
import pytest
import torch

from moralgym.agents.llm.policy import LLMPolicy, decide_jointly, sample_from_logprobs
from moralgym.agents.llm.prefix_cache import CacheKey
from moralgym.agents.llm.prompts import PromptBuilder
from moralgym.agents.llm.testing import tiny_causal_lm, tiny_tokenizer
from moralgym.envs.games import ILLEGAL, PAPER_GAMES


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture
def model(tokenizer):
    return tiny_causal_lm(len(tokenizer), seed=1)


def _batch(n, seed=0):
    rng = np.random.default_rng(seed)
    games = [PAPER_GAMES[i % len(PAPER_GAMES)] for i in range(n)]
    return games, rng.integers(0, 2, size=(n, 2))


def _unpadded_logprobs(model, ids):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    return torch.log_softmax(logits, -1)


@pytest.mark.parametrize("share", [False, True])
def test_batched_logprobs_equal_one_at_a_time_with_mixed_lengths(model, tokenizer, share):
    policy = LLMPolicy(model, tokenizer, share_prefixes=share, min_shared_prefix=4)
    builders = [PromptBuilder(), PromptBuilder(phrasing="action_only"), PromptBuilder(persona="utilitarian")]
    sequences = [policy.encode(b.render(tokenizer, "ipd", [0, 1])) for b in builders]
    sequences.append(sequences[1][:7])
    assert len({len(s) for s in sequences}) == len(sequences)  # really mixed lengths, so really padded
    batched = policy.next_token_logprobs(sequences)
    for row, ids in zip(batched, sequences, strict=True):
        torch.testing.assert_close(row, _unpadded_logprobs(model, list(ids)), atol=1e-4, rtol=1e-4)


def test_padding_is_safe_with_absolute_position_embeddings(tokenizer):
    """GPT-2 adds a learned embedding per position, so wrong position ids under left padding would show here."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=2, n_head=2, n_positions=512)
    ).eval()
    policy = LLMPolicy(gpt2, tokenizer, share_prefixes=False)
    long = policy.encode(PromptBuilder().render(tokenizer, "ipd", [0, 1]))
    sequences = [long, long[:40], long[:9]]
    for row, ids in zip(policy.next_token_logprobs(sequences), sequences, strict=True):
        torch.testing.assert_close(row, _unpadded_logprobs(gpt2, list(ids)), atol=1e-4, rtol=1e-4)
    plain = LLMPolicy(gpt2, tokenizer, seed=2, prefix_cache=False).decide(*_batch(6))
    cached = LLMPolicy(gpt2, tokenizer, seed=2).decide(*_batch(6))
    np.testing.assert_allclose([d.logprobs for d in plain], [d.logprobs for d in cached], atol=1e-4)


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_shared_prefix_prefill_equals_plain_prefill(tokenizer, architecture):
    if architecture == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        config = GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=2, n_head=2, n_positions=512)
        model = GPT2LMHeadModel(config).eval()
    else:
        model = tiny_causal_lm(len(tokenizer), seed=3)
    plain = LLMPolicy(model, tokenizer, share_prefixes=False)
    shared = LLMPolicy(model, tokenizer, share_prefixes=True, min_shared_prefix=4)
    builder = PromptBuilder()
    sequences = [
        plain.encode(builder.render(tokenizer, game, [own, other], (bit, 1 - bit)))
        for game in ("ipd", "chicken")
        for own in (0, 1)
        for other in (0, 1)
        for bit in (0, 1)
    ]
    sequences += [sequences[0][:30], sequences[3][:-5], plain.encode("unrelated words here")]
    sequences += [sequences[5]]  # a duplicate is forwarded once
    torch.testing.assert_close(
        shared.next_token_logprobs(sequences), plain.next_token_logprobs(sequences), atol=1e-4, rtol=1e-4
    )
    trie_nodes = len({tuple(s[:k]) for s in sequences for k in range(1, len(s) + 1)})
    assert plain.stats["tokens"] == sum(len(s) for s in sequences)
    assert trie_nodes <= shared.stats["tokens"] < sum(len(s) for s in sequences) / 2
    every_run_shared = LLMPolicy(model, tokenizer, share_prefixes=True, min_shared_prefix=1)
    torch.testing.assert_close(
        every_run_shared.next_token_logprobs(sequences), plain.next_token_logprobs(sequences), atol=1e-4, rtol=1e-4
    )
    assert every_run_shared.stats["tokens"] == trie_nodes  # each distinct prefix forwarded exactly once
    games, observations = _batch(24)
    a = LLMPolicy(model, tokenizer, seed=4, prefix_cache=False, share_prefixes=True).decide(games, observations)
    b = LLMPolicy(model, tokenizer, seed=4, prefix_cache=False, share_prefixes=False).decide(games, observations)
    assert [d.response_ids for d in a] == [d.response_ids for d in b]
    np.testing.assert_allclose([d.logprobs for d in a], [d.logprobs for d in b], atol=1e-4)


def test_decisions_have_the_documented_shape(model, tokenizer):
    policy = LLMPolicy(model, tokenizer, max_new_tokens=3, prompt=PromptBuilder(answer_prefix="action"))
    games, observations = _batch(6)
    decisions = policy.decide(games, observations)
    assert len(decisions) == 6 and policy.prompt_lengths == [len(d.query_ids) for d in decisions]
    for d in decisions:
        assert len(d.response_ids) == 3 and len(d.logprobs) == 3 and all(lp <= 0 for lp in d.logprobs)
        assert d.text.startswith("action") and d.action in (0, 1, ILLEGAL)
        assert policy.tokenizer.decode(d.query_ids).endswith("assistant action")  # prefix is part of the query
        assert d.prompt.endswith("action")


def test_logprobs_are_those_of_the_sampled_tokens_under_the_model(model, tokenizer):
    policy = LLMPolicy(model, tokenizer, prefix_cache=False)
    games, observations = _batch(4)
    for d in policy.decide(games, observations):
        prefix = list(d.query_ids)
        for token, logprob in zip(d.response_ids, d.logprobs, strict=True):
            expected = _unpadded_logprobs(model, prefix)[token].item()
            assert logprob == pytest.approx(expected, abs=1e-4)
            prefix.append(token)


@pytest.mark.parametrize("cache", [False, True])
def test_same_seed_same_decisions_and_different_seed_differs(model, tokenizer, cache):
    games, observations = _batch(16)
    runs = [LLMPolicy(model, tokenizer, seed=s, prefix_cache=cache).decide(games, observations) for s in (7, 7, 8)]
    texts = [[(d.prompt, d.response_ids) for d in run] for run in runs]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def _gpt2(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=2, n_head=2, n_positions=512)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(50.0)  # tied to the input embedding: sharper distributions
    return model


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
@pytest.mark.parametrize("kv_cache_bytes", [0, 2**30])
def test_prefix_cache_samples_exactly_what_recomputing_samples(model, tokenizer, architecture, kv_cache_bytes):
    model = _gpt2(tokenizer) if architecture == "gpt2" else model
    games, observations = _batch(40, seed=2)
    cached = LLMPolicy(model, tokenizer, seed=5, prefix_cache=True, kv_cache_bytes=kv_cache_bytes, max_new_tokens=3)
    plain = LLMPolicy(model, tokenizer, seed=5, prefix_cache=False, batch_size=7, max_new_tokens=3)
    for _ in range(4):  # later rounds hit the cache, and sample new children of cached prefixes
        a, b = cached.decide(games, observations), plain.decide(games, observations)
        assert [d.response_ids for d in a] == [d.response_ids for d in b]
        np.testing.assert_allclose([d.logprobs for d in a], [d.logprobs for d in b], atol=1e-4)
    assert cached.stats["cache_hits"] > 0 and cached.stats["rows"] < plain.stats["rows"]
    assert (cached.stats["kv_reused"] > 0) == (kv_cache_bytes > 0)


def test_first_miss_prefetches_every_prompt_of_the_game_and_later_rounds_only_hit(model, tokenizer):
    policy = LLMPolicy(model, tokenizer, seed=1, max_new_tokens=1)
    policy.decide(["ipd", "ipd"], [[0, 0], [0, 0]], [1, 1])
    builder = policy.prompt
    every_prompt = [
        policy.encode(builder.render(tokenizer, "ipd", [own, other], (a, b), 1))
        for own in (0, 1)
        for other in (0, 1)
        for a in (0, 1)
        for b in (0, 1)
    ]
    assert len(set(every_prompt)) == 16 and all(CacheKey(None, q) in policy.cache for q in every_prompt)
    stag_hunt = policy.encode(builder.render(tokenizer, "stag_hunt", [0, 0], (0, 0), 1))
    assert CacheKey(None, stag_hunt) not in policy.cache  # per game
    forwards = policy.stats["forwards"]
    later = policy.decide(["ipd"] * 8, np.random.default_rng(0).integers(0, 2, size=(8, 2)), [1] * 8)
    assert policy.stats["forwards"] == forwards  # every prompt of later rounds was prefetched
    replay = LLMPolicy(model, tokenizer, seed=1, max_new_tokens=1, prefetch_states=False)
    replay.decide(["ipd", "ipd"], [[0, 0], [0, 0]], [1, 1])
    again = replay.decide(["ipd"] * 8, np.random.default_rng(0).integers(0, 2, size=(8, 2)), [1] * 8)
    assert [d.response_ids for d in later] == [d.response_ids for d in again]


def test_cached_vectors_equal_a_fresh_forward(model, tokenizer):
    policy = LLMPolicy(model, tokenizer)
    games, observations = _batch(10)
    policy.decide(games, observations)
    assert policy.cache_size > 0
    for key, vector in list(policy.cache.logprobs.items())[:8]:
        torch.testing.assert_close(vector, _unpadded_logprobs(model, list(key.tokens)), atol=1e-4, rtol=1e-4)


def test_cache_is_dropped_when_weights_change_in_place(model, tokenizer):
    games, observations = _batch(12)
    policy = LLMPolicy(model, tokenizer, seed=3)
    policy.decide(games, observations)
    stale = dict(policy.cache.logprobs)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model.train()
    loss = model(input_ids=torch.tensor([list(next(iter(stale)).tokens)])).logits.float().pow(2).mean()
    loss.backward()
    optimizer.step()
    assert model.training
    policy.seed(3)
    after = policy.decide(games, observations)
    assert model.training  # decide restores the training mode it found
    fresh = LLMPolicy(model, tokenizer, seed=3, prefix_cache=False).decide(games, observations)
    assert [d.response_ids for d in after] == [d.response_ids for d in fresh]
    key = next(iter(stale))
    assert not torch.allclose(policy.cache.logprobs[key], stale[key])


def test_invalidate_cache_and_eviction_budget(model, tokenizer):
    policy = LLMPolicy(model, tokenizer, cache_bytes=len(tokenizer) * 4 * 5)
    games, observations = _batch(20)
    policy.decide(games, observations)
    assert 0 < policy.cache_size <= 5
    policy.invalidate_cache()
    assert policy.cache_size == 0


def test_sampler_matches_the_categorical_distribution():
    logprobs = torch.log_softmax(torch.tensor([[0.0, 1.0, -2.0, 0.5, float("-inf")]]), -1)
    generator = torch.Generator().manual_seed(0)
    uniforms = torch.rand(20000, generator=generator, dtype=torch.float64)
    tokens, chosen = sample_from_logprobs(logprobs.expand(20000, -1), uniforms)
    frequencies = torch.bincount(tokens, minlength=5).double() / 20000
    torch.testing.assert_close(frequencies, logprobs[0].exp().double(), atol=0.015, rtol=0)
    assert frequencies[4] == 0 and torch.equal(chosen, logprobs[0][tokens])
    edge, _ = sample_from_logprobs(logprobs, torch.tensor([1.0 - 1e-17], dtype=torch.float64))
    assert edge.item() == 3  # never the zero-probability last token


def test_peft_adapter_is_part_of_the_cache_key(tokenizer):
    peft = pytest.importorskip("peft")
    base = tiny_causal_lm(len(tokenizer), seed=4)
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = peft.get_peft_model(base, config, adapter_name="first")
    model.add_adapter("second", peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    games, observations = _batch(8)
    shared = LLMPolicy(model, tokenizer, seed=1, adapter_name="first")
    by_adapter = {}
    for name in ("first", "second", "first"):
        shared.adapter_name = name
        shared.seed(1)
        got = shared.decide(games, observations)
        plain = LLMPolicy(model, tokenizer, seed=1, prefix_cache=False, adapter_name=name).decide(games, observations)
        np.testing.assert_allclose([d.logprobs for d in got], [d.logprobs for d in plain], atol=1e-4)
        by_adapter.setdefault(name, [d.logprobs for d in got])
    assert not np.allclose(by_adapter["first"], by_adapter["second"])


def test_bad_arguments_are_rejected(model, tokenizer):
    with pytest.raises(ValueError, match="max_new_tokens"):
        LLMPolicy(model, tokenizer, max_new_tokens=0)
    with pytest.raises(ValueError, match="one observation"):
        LLMPolicy(model, tokenizer).decide(["ipd"], np.zeros((2, 2), dtype=int))
    assert LLMPolicy(model, tokenizer).decide([], np.zeros((0, 2), dtype=int)) == []


def _two_adapter_model(tokenizer):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(tiny_causal_lm(len(tokenizer), seed=5), config, adapter_name="player_0")
    model.add_adapter("player_1", config)  # random B as well: the two seats really differ
    return model.eval()


@pytest.mark.parametrize("settings", [{}, {"prefix_cache": False}, {"prefix_cache": False, "share_prefixes": False}])
def test_two_adapters_decide_jointly_as_in_separate_calls_with_shared_passes(tokenizer, settings):
    model = _two_adapter_model(tokenizer)
    games, observations = _batch(12, seed=3)

    def seats():
        return [LLMPolicy(model, tokenizer, seed=10 + k, adapter_name=f"player_{k}", **settings) for k in (0, 1)]

    separate, joint = seats(), seats()
    for _ in range(2):  # the second round hits the cache and takes one-token steps from kept KV
        expected = [separate[k].decide(games, observations, [k] * 12) for k in (0, 1)]
        got = decide_jointly([(joint[k], games, observations, [k] * 12) for k in (0, 1)])
        for k in (0, 1):
            assert [d.response_ids for d in got[k]] == [d.response_ids for d in expected[k]]
            np.testing.assert_allclose([d.logprobs for d in got[k]], [d.logprobs for d in expected[k]], atol=1e-4)
            assert [d.prompt for d in got[k]] == [d.prompt for d in expected[k]]
    assert [d.response_ids for d in expected[0]] != [d.response_ids for d in expected[1]]  # adapters differ
    assert joint[0].stats["forwards"] < separate[0].stats["forwards"] + separate[1].stats["forwards"]
    assert joint[1].stats["forwards"] == 0 and joint[1].stats["decisions"] == 24


def test_joint_cache_keys_name_the_adapter_of_their_rows(tokenizer):
    """A mixed-adapter call stores each row under its adapter's name; a single-adapter call under None (the model
    as fingerprinted), so the same tokens of two seats never share an entry."""
    model = _two_adapter_model(tokenizer)
    games, observations = _batch(4, seed=1)
    seats = [LLMPolicy(model, tokenizer, seed=k, adapter_name=f"player_{k}") for k in (0, 1)]
    decide_jointly([(seats[k], games, observations, [0] * 4) for k in (0, 1)])
    keys = list(seats[0].cache.logprobs)
    assert {key.adapter for key in keys} == {"player_0", "player_1"} and seats[1].cache_size == 0
    shared = {key.tokens for key in keys if key.adapter == "player_0"} & {
        key.tokens for key in keys if key.adapter == "player_1"
    }
    assert shared  # both seats saw the same prompts: one entry per adapter
    alone = LLMPolicy(model, tokenizer, adapter_name="player_0")
    alone.decide(games, observations)
    assert {key.adapter for key in alone.cache.logprobs} == {None}


def test_base_policy_of_a_peft_model_answers_with_adapters_disabled_alone_and_jointly(tokenizer):
    model = _two_adapter_model(tokenizer)
    games, observations = _batch(12, seed=4)
    with model.disable_adapter():
        reference = LLMPolicy(model, tokenizer, seed=3, prefix_cache=False).decide(games, observations)
    base = LLMPolicy(model, tokenizer, seed=3, adapter_name="__base__").decide(games, observations)
    adapted = LLMPolicy(model, tokenizer, seed=3, adapter_name="player_0").decide(games, observations)
    assert [d.response_ids for d in base] == [d.response_ids for d in reference]
    np.testing.assert_allclose([d.logprobs for d in base], [d.logprobs for d in reference], atol=1e-4)
    assert [d.logprobs for d in adapted] != [d.logprobs for d in reference]
    joint_base = LLMPolicy(model, tokenizer, seed=3, adapter_name="__base__")
    joint_seat = LLMPolicy(model, tokenizer, seed=3, adapter_name="player_0")
    got = decide_jointly([(joint_base, games, observations, None), (joint_seat, games, observations, None)])
    assert [d.response_ids for d in got[0]] == [d.response_ids for d in reference]
    np.testing.assert_allclose([d.logprobs for d in got[0]], [d.logprobs for d in reference], atol=1e-4)
    np.testing.assert_allclose([d.logprobs for d in got[1]], [d.logprobs for d in adapted], atol=1e-4)


def test_decide_jointly_refuses_what_it_cannot_share(tokenizer):
    model = _two_adapter_model(tokenizer)
    games, observations = _batch(2)
    a = LLMPolicy(model, tokenizer, adapter_name="player_0")
    with pytest.raises(ValueError, match="one model object"):
        decide_jointly(
            [
                (a, games, observations, None),
                (LLMPolicy(tiny_causal_lm(len(tokenizer)), tokenizer), games, observations, None),
            ]
        )
    with pytest.raises(ValueError, match="sample alike"):
        decide_jointly(
            [
                (a, games, observations, None),
                (LLMPolicy(model, tokenizer, adapter_name="player_1", max_new_tokens=3), games, observations, None),
            ]
        )
    with pytest.raises(ValueError, match="adapter_name set"):
        decide_jointly([(a, games, observations, None), (LLMPolicy(model, tokenizer), games, observations, None)])


def test_without_sharing_or_cache_every_decision_forwards_its_own_row(model, tokenizer):
    """The no-cache baseline of the benchmark must not dedupe identical prompts behind the user's back."""
    policy = LLMPolicy(model, tokenizer, prefix_cache=False, share_prefixes=False, max_new_tokens=2)
    policy.decide(["ipd"] * 6, [[0, 0]] * 6)  # few distinct prompts among 6 decisions
    assert policy.stats["rows"] == 12  # 6 prefill rows + 6 one-token rows
    shared = LLMPolicy(model, tokenizer, prefix_cache=False, share_prefixes=True, max_new_tokens=2)
    shared.decide(["ipd"] * 6, [[0, 0]] * 6)
    assert shared.stats["tokens"] < policy.stats["tokens"]


def test_rng_state_round_trip_continues_the_same_decisions(model, tokenizer):
    games, observations = _batch(6)
    policy = LLMPolicy(model, tokenizer, seed=9)
    policy.decide(games, observations)
    state = policy.rng_state()
    expected = policy.decide(games, observations)
    policy.decide(games, observations)  # move the streams on
    policy.set_rng_state(state)
    again = policy.decide(games, observations)
    assert [(d.prompt, d.response_ids) for d in again] == [(d.prompt, d.response_ids) for d in expected]


def test_reserved_cache_layer_writes_in_place_and_falls_back_to_concatenation():
    from transformers.cache_utils import DynamicLayer

    from moralgym.agents.llm.engine import reserved_cache

    past_keys, past_values = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    buffer_keys = torch.cat([past_keys, torch.zeros(2, 3, 2, 5)], dim=2)
    buffer_values = torch.cat([past_values, torch.zeros(2, 3, 2, 5)], dim=2)
    cache = reserved_cache([(buffer_keys, buffer_values)], filled=4)
    reference = DynamicLayer()
    reference.update(past_keys, past_values)
    assert cache.get_seq_length() == 4
    for step_tokens in (2, 3):  # the first fits in the two reserved columns, the second does not
        new_keys, new_values = torch.randn(2, 3, step_tokens, 5), torch.randn(2, 3, step_tokens, 5)
        keys, values = cache.update(new_keys, new_values, 0)
        expected_keys, expected_values = reference.update(new_keys, new_values)
        assert torch.equal(keys, expected_keys) and torch.equal(values, expected_values)
        if step_tokens == 2:
            assert keys.data_ptr() == buffer_keys.data_ptr()  # written into the reserved columns, not copied
    assert cache.get_seq_length() == 9


def test_native_gqa_attention_matches_the_models_own_forward_and_restores_the_environment(
    model, tokenizer, monkeypatch
):
    monkeypatch.delenv("TRANSFORMERS_SDPA_FORCE_GQA", raising=False)
    heads, kv_heads = model.config.num_attention_heads, model.config.num_key_value_heads
    assert kv_heads < heads  # grouped-query attention
    attention_calls = []  # (key heads, enable_gqa) of every attention call
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, *args, **kwargs):
        attention_calls.append((key.shape[1], bool(kwargs.get("enable_gqa", False))))
        return sdpa(query, key, value, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    policy = LLMPolicy(model, tokenizer, share_prefixes=False)
    sequences = [policy.encode("a short one"), policy.encode("a somewhat longer sequence of several words here")]
    batched = policy.next_token_logprobs(sequences)  # left-padded: transformers gets a mask, and would repeat KV heads
    assert attention_calls and all(call == (kv_heads, True) for call in attention_calls)  # natively, un-repeated
    for row, sequence in zip(batched, sequences, strict=True):
        with torch.no_grad():  # outside the policy: transformers' default path
            logits = model(input_ids=torch.tensor([sequence])).logits[0, -1]
        torch.testing.assert_close(row, torch.log_softmax(logits.float(), -1), atol=1e-5, rtol=1e-5)
    assert "TRANSFORMERS_SDPA_FORCE_GQA" not in os.environ  # set only while the policy computes
    monkeypatch.setenv("TRANSFORMERS_SDPA_FORCE_GQA", "0")  # a user's own setting is left alone
    attention_calls.clear()
    torch.testing.assert_close(policy.next_token_logprobs(sequences), batched)
    assert os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] == "0"
    assert attention_calls and all(call == (heads, False) for call in attention_calls)  # and obeyed: heads repeated
