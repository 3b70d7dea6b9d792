"""The PPO trainer on tiny random models: reference = base, separate adapters, dedup == per-sample (loss and
gradients), training changes the adapter and logs losses, same seed -> same run, resume == uninterrupted."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")

from conftest import TINY_TRAINING_OVERRIDES  # noqa: E402

from moralgym.agents.llm.testing import tiny_model_and_tokenizer  # noqa: E402
from moralgym.training.config import TrainingConfig  # noqa: E402
from moralgym.training.model import (  # noqa: E402
    ValueHead,
    adapter_parameters,
    add_learner_adapters,
    lora_config_from,
    score_contexts,
    set_trainable,
)
from moralgym.training.ppo_math import ppo_loss  # noqa: E402
from moralgym.training.tracking import read_metrics  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny matrices: one thread is ~10x faster than two contending ones.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(tmp_path, **overrides) -> TrainingConfig:
    """The shared tiny settings (tests/conftest.py), with 4 episodes, 2 epochs and minibatches of 3."""
    values = {
        **TINY_TRAINING_OVERRIDES,
        "output_dir": str(tmp_path),
        "num_episodes": 4,
        "max_new_tokens": 2,
        "ppo_epochs": 2,
        "mini_batch_size": 3,
        "plot": False,
        "torch_num_threads": None,
    }
    values.update(overrides)
    return TrainingConfig(**values)


def random_lora(model, seats=("player_0",)):
    """A PEFT model whose adapters are non-zero (peft initialises B to 0, which would hide bugs)."""
    config = lora_config_from(TrainingConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0))
    config.init_lora_weights = False
    return add_learner_adapters(model, list(seats), config)


def sample_batch(tokenizer):
    """Queries and 2-token responses with repeats (shared contexts), as a game batch has."""
    q1 = tokenizer("You must choose either action1 or action2. Your answer: action")["input_ids"]
    q2 = tokenizer("You must choose either action2 or action1. Your answer: action")["input_ids"]
    q3 = tokenizer("Last time, you played action2 and they played action1. Your answer: action")["input_ids"]
    r = [tokenizer("1")["input_ids"][0], tokenizer("2")["input_ids"][0], tokenizer.eos_token_id]
    queries = [q1, q1, q2, q1, q2, q2, q1, q3]
    responses = [
        [r[0], r[2]],
        [r[0], r[2]],
        [r[0], r[2]],
        [r[1], r[2]],
        [r[1], r[0]],
        [r[0], r[2]],
        [r[0], r[1]],
        [r[1], r[1]],
    ]
    return queries, responses


def test_reference_is_base_model_with_adapter_disabled():
    from trl.trainer.utils import use_adapter

    base, tokenizer = tiny_model_and_tokenizer(seed=3)
    ids = torch.tensor([tokenizer("Your answer: action1")["input_ids"]])
    with torch.no_grad():
        expected = base(ids).logits.clone()
    model = random_lora(base)
    with torch.no_grad():
        tuned = model(ids).logits
        with use_adapter(model, None):
            reference = model(ids).logits
    assert torch.allclose(reference, expected, atol=1e-6)
    assert not torch.allclose(tuned, expected, atol=1e-4)


def test_two_learners_keep_separate_adapters():
    base, tokenizer = tiny_model_and_tokenizer(seed=4)
    model = random_lora(base, seats=("player_0", "player_1"))
    queries, responses = sample_batch(tokenizer)
    before = {seat: [p.detach().clone() for p in adapter_parameters(model, seat)] for seat in ("player_0", "player_1")}
    with torch.no_grad():
        set_trainable(model, "player_1")
        other_before = score_contexts(model, queries, responses).logprobs
    set_trainable(model, "player_0")
    optimizer = torch.optim.Adam(adapter_parameters(model, "player_0"), lr=0.1)
    score_contexts(model, queries, responses).logprobs.sum().backward()
    optimizer.step()
    changed = [
        not torch.equal(a, b) for a, b in zip(before["player_0"], adapter_parameters(model, "player_0"), strict=True)
    ]
    assert any(changed)
    for a, b in zip(before["player_1"], adapter_parameters(model, "player_1"), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        set_trainable(model, "player_1")
        assert torch.equal(score_contexts(model, queries, responses).logprobs, other_before)


def _loss_and_grads(model, head, queries, responses, dedup):
    model.zero_grad(set_to_none=True)
    head.zero_grad(set_to_none=True)
    scored = score_contexts(model, queries, responses, head, pad_token_id=0, dedup=dedup)
    n, length = scored.logprobs.shape
    generator = torch.Generator().manual_seed(0)
    old_logprobs = scored.logprobs.detach() + 0.1 * torch.randn(n, length, generator=generator)
    old_values = scored.values.detach() + 0.1 * torch.randn(n, length, generator=generator)
    advantages = torch.randn(n, length, generator=generator)  # differ between samples that share a context
    returns = torch.randn(n, length, generator=generator)
    terms = ppo_loss(
        scored.logprobs,
        scored.values,
        old_logprobs,
        old_values,
        advantages,
        returns,
        torch.ones(n, length),
        cliprange=0.2,
        cliprange_value=0.2,
        vf_coef=0.1,
    )
    terms.loss.backward()
    params = [p for p in [*model.parameters(), *head.parameters()] if p.requires_grad]
    return terms.loss.detach(), [p.grad.clone() for p in params]


def test_dedup_update_equals_per_sample_update():
    base, tokenizer = tiny_model_and_tokenizer(seed=5)
    model = random_lora(base)
    set_trainable(model, "player_0")
    head = ValueHead(base.config.hidden_size, dropout=0.0)
    queries, responses = sample_batch(tokenizer)
    distinct = len({(tuple(q), tuple(r[:-1])) for q, r in zip(queries, responses, strict=True)})
    assert distinct < len(queries)  # the batch really has shared contexts
    shared = score_contexts(model, queries, responses, head, dedup=True)
    plain = score_contexts(model, queries, responses, head, dedup=False)
    assert shared.forwarded_tokens < plain.forwarded_tokens / 2  # shared prefixes and contexts forwarded once
    loss_dedup, grads_dedup = _loss_and_grads(model, head, queries, responses, dedup=True)
    loss_each, grads_each = _loss_and_grads(model, head, queries, responses, dedup=False)
    assert torch.allclose(loss_dedup, loss_each, atol=1e-6)
    assert len(grads_dedup) == len(grads_each) > 0
    for a, b in zip(grads_dedup, grads_each, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def run_tiny(tmp_path, **overrides):
    from moralgym.training.ppo import MoralPPOTrainer

    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    trainer = MoralPPOTrainer(tiny_config(tmp_path, **overrides), model, tokenizer)
    trainer.train()
    return trainer


def adapter_tensors(directory):
    from safetensors.torch import load_file

    return {
        **load_file(str(directory / "adapter_model.safetensors")),
        **{f"v.{k}": v for k, v in load_file(str(directory / "value_head.safetensors")).items()},
    }


def without_time(records):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def test_training_changes_adapter_logs_losses_and_saves_a_peft_adapter(tmp_path):
    from peft import PeftModel

    trainer = run_tiny(tmp_path)
    records = read_metrics(tmp_path)
    assert [r["episode"] for r in records] == [0, 1, 2, 3]
    assert all(isinstance(r["ppo/loss"], float) for r in records)
    assert records[-1]["ppo/optimizer_steps"] == 4 * 2 * 2  # episodes x epochs x minibatches
    saved = adapter_tensors(tmp_path / "adapter")
    lora_b = [v for k, v in saved.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: training moved it
    # loadable by peft directly, on a fresh copy of the base
    base, _ = tiny_model_and_tokenizer(seed=0)
    loaded = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    ids = torch.tensor([[5, 6, 7]])
    trainer.model.set_adapter("player_0")
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, trainer.model(ids).logits, atol=1e-6)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["reward"] == "deontological"


def test_same_seed_same_run_and_resume_equals_uninterrupted(tmp_path):
    full = tmp_path / "full"
    again = tmp_path / "again"
    resumed = tmp_path / "resumed"
    run_tiny(full)
    run_tiny(again)
    assert without_time(read_metrics(full)) == without_time(read_metrics(again))
    reference = adapter_tensors(full / "adapter")
    for key, value in adapter_tensors(again / "adapter").items():
        assert torch.equal(value, reference[key]), key

    # "killed" after 2 episodes (a checkpoint is left behind), then resumed to the end in a new process state
    stopped = run_tiny(resumed, stop_after_episodes=2, save_every=2)
    assert stopped.episode == 2 and not (resumed / "adapter").exists()
    assert (resumed / "checkpoints" / "episode-000002" / "trainer_state.pt").exists()
    with open(resumed / "metrics.jsonl", "a") as handle:  # an episode logged after the checkpoint, then killed
        handle.write(json.dumps({"episode": 2, "ppo/loss": 123.0}) + "\n")
    torch.manual_seed(999)  # whatever the global RNG state, the resumed run must replay exactly
    run_tiny(resumed, resume=True, save_every=2)
    assert without_time(read_metrics(resumed)) == without_time(read_metrics(full))
    for key, value in adapter_tensors(resumed / "adapter").items():
        assert torch.equal(value, reference[key]), key


def test_two_learners_train_both_seats(tmp_path):
    trainer = run_tiny(tmp_path, opponent="llm", num_episodes=2, reward="utilitarian", opponent_reward="game")
    records = read_metrics(tmp_path)
    assert "player_0/ppo/loss" in records[-1] and "player_1/ppo/loss" in records[-1]
    assert records[-1]["player_0/env/reward_name"] == "utilitarian"
    assert records[-1]["player_1/env/reward_name"] == "game"
    assert (tmp_path / "adapter").exists() and (tmp_path / "adapter_player_1").exists()
    a = adapter_tensors(tmp_path / "adapter")
    b = adapter_tensors(tmp_path / "adapter_player_1")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert trainer.learners["player_0"].optimizer is not trainer.learners["player_1"].optimizer


def spy(monkeypatch, name):
    """Record the arguments of every call of ``MoralPPOTrainer.<name>`` (by parameter name): shows which path an
    update took. Fails at once if the helper is gone."""
    import inspect

    from moralgym.training.ppo import MoralPPOTrainer

    real = getattr(MoralPPOTrainer, name)
    signature = inspect.signature(real)
    calls = []

    def recorded(self, *args, **kwargs):
        calls.append(signature.bind(self, *args, **kwargs).arguments)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MoralPPOTrainer, name, recorded)
    return calls


def test_chunked_passes_give_the_same_update(tmp_path, monkeypatch):
    forwards = spy(monkeypatch, "_forward")
    minibatches = spy(monkeypatch, "_minibatch_backward")
    one_pass = run_tiny(tmp_path / "one", num_episodes=1, max_contexts_per_pass=1000)
    # one pass per minibatch (2 epochs x 2 minibatches) and one no-grad pass for the old log-probs
    assert [len(call["passes"]) for call in minibatches] == [1, 1, 1, 1]
    assert [call["grad"] for call in forwards].count(False) == 1
    forwards.clear()
    minibatches.clear()
    chunked = run_tiny(tmp_path / "chunked", num_episodes=1, max_contexts_per_pass=2)
    # the chunked path ran: minibatches and the old pass were cut into several passes
    assert len(minibatches) == 4 and all(len(call["passes"]) > 1 for call in minibatches)
    assert [call["grad"] for call in forwards].count(False) > 1
    assert [call["grad"] for call in forwards].count(True) == sum(len(call["passes"]) for call in minibatches)
    assert read_metrics(tmp_path / "one")[0]["ppo/samples"] == read_metrics(tmp_path / "chunked")[0]["ppo/samples"]
    reference = adapter_tensors(tmp_path / "one" / "adapter")
    for key, value in adapter_tensors(tmp_path / "chunked" / "adapter").items():
        assert torch.allclose(value, reference[key], atol=1e-5, rtol=1e-4), key
    assert one_pass.episode == chunked.episode == 1


def test_fused_single_pass_equals_separate_old_pass(tmp_path, monkeypatch):
    # ppo_epochs 1 over one minibatch: the update's own pass gives the old log-probs (ratio 1); forcing several
    # passes (and so a separate no-grad pass for the old values) must give the same update.
    common = dict(num_episodes=1, ppo_epochs=1, mini_batch_size=None, num_envs=3)
    fused_calls, old_calls, forwards = (spy(monkeypatch, name) for name in ("_fused_pass", "_old_pass", "_forward"))
    fused = run_tiny(tmp_path / "fused", **common)
    # the fused path ran: one gradient pass in all, no separate old pass
    assert len(fused_calls) == 1 and not old_calls
    assert [call["grad"] for call in forwards] == [True]
    for calls in (fused_calls, old_calls, forwards):
        calls.clear()
    split = run_tiny(tmp_path / "split", max_contexts_per_pass=2, **common)
    assert not fused_calls and len(old_calls) == 1  # the split path ran
    first = read_metrics(tmp_path / "fused")[0]
    assert first["ppo/ratio"] == pytest.approx(1.0, abs=1e-6) and first["ppo/clipfrac"] == 0.0
    reference = adapter_tensors(tmp_path / "fused" / "adapter")
    for key, value in adapter_tensors(tmp_path / "split" / "adapter").items():
        assert torch.allclose(value, reference[key], atol=1e-5, rtol=1e-4), key
    assert fused.episode == split.episode == 1


def test_init_adapter_starts_from_a_saved_adapter(tmp_path):
    from peft import get_peft_model_state_dict

    from moralgym.training.ppo import MoralPPOTrainer

    run_tiny(tmp_path / "first", num_episodes=1)
    saved = adapter_tensors(tmp_path / "first" / "adapter")
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    config = tiny_config(tmp_path / "second", init_adapter=str(tmp_path / "first" / "adapter"), opponent="llm")
    trainer = MoralPPOTrainer(config, model, tokenizer)
    for seat in ("player_0", "player_1"):  # both learners start from it
        state = get_peft_model_state_dict(trainer.model, adapter_name=seat)
        for key, value in state.items():
            assert torch.equal(value, saved[key]), (seat, key)
        head = trainer.learners[seat].value_head.state_dict()
        assert torch.equal(head["summary.weight"], saved["v.summary.weight"])
