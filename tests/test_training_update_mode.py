"""Train/eval mode in the PPO update (``disable_dropout``).

TRL 0.9's PPOTrainer (the authors' trainer) runs every forward of a PPO step in eval mode, the gradient pass
included, so dropout is off there and the first epoch's ratio is exactly 1. ``disable_dropout: true`` (every paper
config) does the same; the default runs the gradient passes in train mode, with LoRA and value-head dropout on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")

from moralgym.agents.llm.testing import tiny_model_and_tokenizer  # noqa: E402
from moralgym.training.config import TrainingConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_recorded(tmp_path, monkeypatch, disable_dropout):
    """Two episodes with dropout configured (LoRA 0.1, value head 0.1), 2 PPO epochs over the whole batch (so the
    old log-probs come from a separate no-grad pass); records every gradient pass and every PPO loss call."""
    import moralgym.training.ppo as ppo
    from moralgym.training.ppo import MoralPPOTrainer

    config = TrainingConfig(
        output_dir=str(tmp_path),
        num_episodes=2,
        num_envs=2,
        num_rounds=3,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.1,
        value_head_dropout=0.1,
        disable_dropout=disable_dropout,
        answer_prefix="action",
        learning_rate=1e-2,
        ppo_epochs=2,
        mini_batch_size=None,
        gradient_accumulation_steps=1,
        progress_bar=False,
        plot=False,
        save_every=0,
    )
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    trainer = MoralPPOTrainer(config, model, tokenizer)
    passes, losses = [], []
    real_score, real_loss = ppo.score_contexts, ppo.ppo_loss

    def score(model, queries, responses, value_head=None, *args, **kwargs):
        if torch.is_grad_enabled():
            dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
            assert dropouts  # lora_dropout > 0: peft built real Dropout modules
            passes.append(
                {
                    "model": model.training,
                    "value_head": value_head.training,
                    "dropouts": {m.training for m in dropouts} | {value_head.dropout.training},
                }
            )
        return real_score(model, queries, responses, value_head, *args, **kwargs)

    def loss(logprobs, values, old_logprobs, *args, **kwargs):
        terms = real_loss(logprobs, values, old_logprobs, *args, **kwargs)
        losses.append({"same": torch.equal(logprobs.detach(), old_logprobs), "ratio": float(terms.mean_ratio)})
        return terms

    monkeypatch.setattr(ppo, "score_contexts", score)
    monkeypatch.setattr(ppo, "ppo_loss", loss)
    trainer.train()
    assert len(losses) == 2 * config.ppo_epochs  # episodes x epochs, one pass each
    first_epochs = losses[:: config.ppo_epochs]
    return passes, first_epochs


def test_authors_setting_updates_in_eval_mode_with_first_epoch_ratio_exactly_one(tmp_path, monkeypatch):
    passes, first_epochs = run_recorded(tmp_path, monkeypatch, disable_dropout=True)
    assert passes and all(p == {"model": False, "value_head": False, "dropouts": {False}} for p in passes)
    # episode 2 runs after an update (LoRA B is no longer 0), so dropout would change its log-probs
    for first in first_epochs:
        assert first["same"] and first["ratio"] == 1.0


def test_default_setting_updates_in_train_mode_with_dropout_active(tmp_path, monkeypatch):
    assert TrainingConfig().disable_dropout is False
    passes, first_epochs = run_recorded(tmp_path, monkeypatch, disable_dropout=False)
    assert passes and all(p == {"model": True, "value_head": True, "dropouts": {True}} for p in passes)
    after_update = first_epochs[1]  # episode 2's first epoch: dropout noise in the gradient pass only
    assert not after_update["same"] and after_update["ratio"] != 1.0


def test_every_paper_config_updates_as_the_authors():
    yaml = pytest.importorskip("yaml")
    configs = sorted((REPO / "configs" / "paper").glob("*.yaml"))
    assert configs
    for path in configs:
        assert yaml.safe_load(path.read_text()).get("disable_dropout") is True, path.name
