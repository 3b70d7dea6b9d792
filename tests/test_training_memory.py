"""The update's memory levers keep the update exact: tree attention (one row under an ancestor mask) equals the level
layout and the per-sample computation, layer checkpointing gives bit-identical gradients, the token cap falls back
to levels, bf16 autocast runs the update's passes, and the allocator setting applies on glibc."""

from __future__ import annotations

import itertools
import platform

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")

from conftest import TINY_TRAINING_OVERRIDES  # noqa: E402

from moralgym.agents.llm.prefix_tree import flat_tree  # noqa: E402
from moralgym.agents.llm.testing import tiny_gemma2, tiny_gemma2_tokenizer, tiny_model_and_tokenizer  # noqa: E402
from moralgym.training import model as model_module  # noqa: E402
from moralgym.training.config import TrainingConfig  # noqa: E402
from moralgym.training.memory import mmap_threshold_in_effect, return_freed_memory, trim_heap  # noqa: E402
from moralgym.training.model import (  # noqa: E402
    ValueHead,
    add_learner_adapters,
    lora_config_from,
    score_contexts,
    set_trainable,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_flat_tree_mask_is_the_prefix_relation():
    rows = [[5, 6, 7], [5, 6, 8, 9], [5, 6], [4], [5, 6, 7], [4, 1, 2]]
    tree = flat_tree(rows)
    # One node per distinct token-prefix: the row of node i is the path from the root to it.
    paths = []
    for i in range(len(tree.tokens)):
        parent = tree.parents[i]
        paths.append((*paths[parent], tree.tokens[i]) if parent >= 0 else (tree.tokens[i],))
    distinct = {tuple(row[:t]) for row in rows for t in range(1, len(row) + 1)}
    assert sorted(paths) == sorted(distinct) and len(paths) == len(distinct)
    assert [paths[end] for end in tree.ends] == [tuple(row) for row in rows]
    assert tree.positions == tuple(len(path) - 1 for path in paths)
    mask = tree.ancestor_mask()
    for i, j in itertools.product(range(len(paths)), repeat=2):
        assert mask[i, j] == (paths[i][: len(paths[j])] == paths[j]), (i, j)
    with pytest.raises(ValueError, match="non-empty rows"):
        flat_tree([[1], []])


def _batch(tokenizer):
    texts = [
        "You must choose either action1 or action2. Your answer: action",
        "You must choose either action2 or action1. Your answer: action",
        "Last time, you played action2 and they played action1. Your answer: action",
    ]
    q = [tokenizer(text)["input_ids"] for text in texts]
    one, two, eos = tokenizer("1")["input_ids"][0], tokenizer("2")["input_ids"][0], tokenizer.eos_token_id
    queries = [q[0], q[0], q[1], q[0], q[1], q[1], q[0], q[2]]
    responses = [[one, eos], [one, eos], [one, eos], [two, eos], [two, one], [one, eos], [one, two], [two, two]]
    return queries, responses


def _lora(base):
    config = lora_config_from(TrainingConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0))
    config.init_lora_weights = False  # non-zero B: gradients reach every LoRA matrix
    model = add_learner_adapters(base, ["player_0"], config)
    set_trainable(model, "player_0")
    return model


def _scored_and_grads(model, head, queries, responses, **options):
    model.zero_grad(set_to_none=True)
    head.zero_grad(set_to_none=True)
    scored = score_contexts(model, queries, responses, head, with_entropy=True, **options)
    weights = torch.linspace(-1.0, 1.0, scored.logprobs.numel()).reshape(scored.logprobs.shape)
    ((scored.logprobs * weights).sum() + scored.values.sum() + scored.entropy.sum()).backward()
    params = [p for p in [*model.parameters(), *head.parameters()] if p.requires_grad]
    return scored, [p.grad.clone() for p in params]


def _models():
    llama, llama_tokenizer = tiny_model_and_tokenizer(seed=3)
    gemma_tokenizer = tiny_gemma2_tokenizer()
    gemma = tiny_gemma2(len(gemma_tokenizer), seed=3)
    eager, _ = tiny_model_and_tokenizer(seed=3)
    eager.config._attn_implementation = "eager"  # the additive-mask path
    return {"llama": (llama, llama_tokenizer), "gemma2": (gemma, gemma_tokenizer), "eager": (eager, llama_tokenizer)}


@pytest.mark.parametrize("name", ["llama", "gemma2", "eager"])
def test_tree_attention_equals_levels_and_per_sample(name, monkeypatch):
    base, tokenizer = _models()[name]
    model = _lora(base)
    torch.manual_seed(0)
    head = ValueHead(base.config.hidden_size, dropout=0.0)
    queries, responses = _batch(tokenizer)
    flat_calls = []
    real_flat = model_module.flat_tree_forward
    monkeypatch.setattr(model_module, "flat_tree_forward", lambda *a, **k: flat_calls.append(1) or real_flat(*a, **k))
    flat, flat_grads = _scored_and_grads(model, head, queries, responses, tree_attention=True)
    assert flat_calls, "tree attention was not used"
    levels, level_grads = _scored_and_grads(model, head, queries, responses, tree_attention=False)
    assert len(flat_calls) == 1  # the level layout did not go through it
    plain, plain_grads = _scored_and_grads(model, head, queries, responses, dedup=False)
    assert flat.forwarded_tokens == levels.forwarded_tokens < plain.forwarded_tokens
    for other, other_grads in ((levels, level_grads), (plain, plain_grads)):
        for key in ("logprobs", "values", "entropy"):
            assert torch.allclose(getattr(flat, key), getattr(other, key), atol=1e-5, rtol=1e-4), key
        assert len(flat_grads) == len(other_grads) > 0
        for a, b in zip(flat_grads, other_grads, strict=True):  # float32 rounding of a different summation order
            assert float((a - b).norm()) <= 1e-5 * float(b.norm()) + 1e-7, float((a - b).norm() / b.norm())


def test_layer_checkpointing_gives_the_same_gradients(monkeypatch):
    import torch.utils.checkpoint

    base, tokenizer = tiny_model_and_tokenizer(seed=4)
    model = _lora(base)
    torch.manual_seed(0)
    head = ValueHead(base.config.hidden_size, dropout=0.0)
    queries, responses = _batch(tokenizer)
    plain, plain_grads = _scored_and_grads(model, head, queries, responses)
    modes = [m.training for m in model.modules()]
    calls = []
    real = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    checkpointed, checkpointed_grads = _scored_and_grads(model, head, queries, responses, gradient_checkpointing=True)
    assert len(calls) == base.config.num_hidden_layers  # every decoder layer, once, in the forward pass
    assert torch.equal(checkpointed.logprobs, plain.logprobs)
    for a, b in zip(checkpointed_grads, plain_grads, strict=True):
        assert torch.equal(a, b)
    assert not any(getattr(layer, "gradient_checkpointing", False) for layer in model.modules())  # restored
    assert [m.training for m in model.modules()] == modes


def test_too_many_tokens_fall_back_to_levels(monkeypatch):
    base, tokenizer = tiny_model_and_tokenizer(seed=5)
    queries, responses = _batch(tokenizer)
    with torch.no_grad():
        flat = score_contexts(base, queries, responses)
        levels = []
        real = model_module.tree_forward
        monkeypatch.setattr(model_module, "tree_forward", lambda *a, **k: levels.append(1) or real(*a, **k))
        monkeypatch.setattr(model_module, "MAX_FLAT_TOKENS", 8)
        capped = score_contexts(base, queries, responses)
    assert levels and torch.allclose(flat.logprobs, capped.logprobs, atol=1e-5)


def test_bf16_runs_every_update_pass_under_autocast(tmp_path, monkeypatch):
    from moralgym.training import ppo
    from moralgym.training.ppo import MoralPPOTrainer

    seen = []
    real = ppo.score_contexts

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return real(*args, **kwargs)

    monkeypatch.setattr(ppo, "score_contexts", spy)
    values = {**TINY_TRAINING_OVERRIDES, "output_dir": str(tmp_path), "num_episodes": 1, "plot": False}
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    MoralPPOTrainer(TrainingConfig(**values, bf16=True), model, tokenizer).train()
    assert len(seen) >= 2 and all(seen)  # reference and gradient passes
    seen.clear()
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    MoralPPOTrainer(TrainingConfig(**{**values, "output_dir": str(tmp_path / "fp32")}), model, tokenizer).train()
    assert seen and not any(seen)


def test_bf16_update_skips_peft_input_casts_through_backward_and_keeps_them_for_sampling(tmp_path, monkeypatch):
    """With bfloat16 weights and float32 LoRA, peft casts every LoRA layer's input to float32: under autocast a copy
    for nothing. The update turns the cast off for its whole span (a checkpointed layer's recompute, in the backward
    pass, must see the setting its forward saw); the rollout, without autocast, needs it on."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    from moralgym.training import ppo
    from moralgym.training.ppo import MoralPPOTrainer

    def casting(model):
        return {m.cast_input_dtype_enabled for m in model.modules() if isinstance(m, BaseTunerLayer)}

    seen: dict[str, set[bool]] = {"update": set(), "backward": set(), "rollout": set()}
    real_score, real_backward, real_play = ppo.score_contexts, torch.Tensor.backward, ppo.play_episode
    trainer = None

    def score(*args, **kwargs):
        seen["update"] |= casting(trainer.model)
        return real_score(*args, **kwargs)

    def backward(self, *args, **kwargs):
        seen["backward"] |= casting(trainer.model)
        return real_backward(self, *args, **kwargs)

    def play(*args, **kwargs):
        seen["rollout"] |= casting(trainer.model)
        return real_play(*args, **kwargs)

    monkeypatch.setattr(ppo, "score_contexts", score)
    monkeypatch.setattr(torch.Tensor, "backward", backward)
    monkeypatch.setattr(ppo, "play_episode", play)
    values = {**TINY_TRAINING_OVERRIDES, "output_dir": str(tmp_path), "num_episodes": 2, "plot": False}
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    config = TrainingConfig(**values, bf16=True, gradient_checkpointing=True)
    trainer = MoralPPOTrainer(config, model.to(torch.bfloat16), tokenizer)
    trainer.train()  # checkpoint recomputes with the forward's dtypes: no metadata mismatch
    assert seen == {"update": {False}, "backward": {False}, "rollout": {True}}
    assert casting(trainer.model) == {True}


def test_return_freed_memory_sets_glibc_threshold(monkeypatch):
    import ctypes.util
    import platform

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert return_freed_memory() is False  # the user's setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    is_glibc = platform.libc_ver()[0] == "glibc" and ctypes.util.find_library("c") is not None
    assert return_freed_memory() is is_glibc
    assert trim_heap() in (True, False) and (is_glibc or trim_heap() is False)


def test_training_runs_set_the_allocator_and_trim_after_each_update(tmp_path, monkeypatch):
    from moralgym.training import cli, ppo

    thresholds, trims = [], []
    monkeypatch.setattr(cli, "return_freed_memory", lambda threshold=1 << 20: thresholds.append(threshold))
    monkeypatch.setattr(ppo, "trim_heap", lambda: trims.append(1))
    values = {**TINY_TRAINING_OVERRIDES, "output_dir": str(tmp_path), "num_episodes": 2, "plot": False}
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    cli.run(TrainingConfig(**values, evaluate=False), model, tokenizer)
    assert thresholds == [1 << 20] and len(trims) == 2  # once per run, once per episode's update
    # The config's threshold for training; 1 MiB again before the evaluation.
    thresholds.clear()
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    values = {**values, "output_dir": str(tmp_path / "4m"), "num_episodes": 1, "eval_episodes": 1, "eval_rounds": 1}
    summary = cli.run(TrainingConfig(**values, evaluate=True, mmap_threshold_mib=4), model, tokenizer)
    assert thresholds == [4 << 20, 1 << 20]
    assert summary["allocator"] == mmap_threshold_in_effect(4 << 20)
    if platform.libc_ver()[0] == "glibc":
        assert summary["allocator"] == {"mmap_threshold": 4 << 20, "source": "mallopt"}
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")  # the environment wins, and the record says so
    assert mmap_threshold_in_effect(4 << 20) == {"mmap_threshold": "65536", "source": "MALLOC_MMAP_THRESHOLD_"}


@pytest.mark.parametrize("value", [0, 33, 1.5, True])
def test_mmap_threshold_outside_glibcs_range_is_refused(value):
    with pytest.raises(ValueError, match="mmap_threshold_mib must be an integer in \\[1, 32\\]"):
        TrainingConfig(mmap_threshold_mib=value)


def test_evaluation_policies_take_the_configs_kv_budget():
    from moralgym.training.evaluate import evaluation_policy

    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    for budget in (64, 256):
        policy = evaluation_policy(model, tokenizer, TrainingConfig(eval_kv_cache_mib=budget), "__base__")
        assert policy.kv_cache_bytes == budget << 20
    with pytest.raises(ValueError, match="eval_kv_cache_mib"):
        TrainingConfig(eval_kv_cache_mib=0)
