"""PPO algebra against hand-computed values, the value head, and config validation (no model needed)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from moralgym.training.config import TrainingConfig  # noqa: E402
from moralgym.training.model import ValueHead  # noqa: E402
from moralgym.training.ppo_math import (  # noqa: E402
    AdaptiveKLController,
    FixedKLController,
    RunningMoments,
    gae_advantages,
    masked_mean,
    masked_var,
    masked_whiten,
    per_token_rewards,
    ppo_loss,
)


def test_masked_mean_and_var_ignore_masked_entries():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert masked_mean(x, mask).item() == pytest.approx(2.5)
    assert masked_var(x, mask).item() == pytest.approx(5.0 / 3.0)  # unbiased: sum sq dev 5 / (4 - 1)
    assert masked_mean(x, mask, dim=1).tolist() == pytest.approx([1.5, 3.5])


def test_whitening_by_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    mask = torch.ones_like(x)
    expected = (x - 2.5) / math.sqrt(5.0 / 3.0 + 1e-8)
    assert torch.allclose(masked_whiten(x, mask), expected)
    assert torch.allclose(masked_whiten(x, mask, shift_mean=False), expected + 2.5)


def test_per_token_rewards_add_score_on_last_token():
    rewards, kl = per_token_rewards(
        scores=torch.tensor([2.0, -1.0]),
        logprobs=torch.tensor([[-1.0, -2.0], [-0.5, -0.5]]),
        ref_logprobs=torch.tensor([[-1.5, -1.0], [-0.5, -1.5]]),
        mask=torch.tensor([[1.0, 1.0], [1.0, 0.0]]),
        kl_coef=0.1,
    )
    assert kl.flatten().tolist() == pytest.approx([0.5, -1.0, 0.0, 0.0])
    # sample 0: -0.1 * 0.5, then -0.1 * -1 + 2; sample 1's last real token is its first
    assert rewards.flatten().tolist() == pytest.approx([-0.05, 2.1, -1.0, 0.0])


def test_gae_by_hand():
    advantages, returns = gae_advantages(
        torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.2]]), torch.ones(1, 2), gamma=1.0, lam=0.95
    )
    # t=1: delta = 1 + 0 - 0.2 = 0.8; t=0: delta = 0 + 0.2 - 0.5 = -0.3, A0 = -0.3 + 0.95 * 0.8 = 0.46
    assert advantages.flatten().tolist() == pytest.approx([0.46, 0.8])
    assert returns.flatten().tolist() == pytest.approx([0.96, 1.0])
    advantages, _ = gae_advantages(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), torch.ones(1, 2), gamma=0.5, lam=0.5)
    assert advantages.flatten().tolist() == pytest.approx([0.25, 1.0])


def test_ppo_loss_by_hand():
    old = torch.zeros(2, 1)
    new = torch.full((2, 1), math.log(1.5))  # ratio 1.5 for both samples
    advantages = torch.tensor([[2.0], [-2.0]])
    values = torch.tensor([[1.0], [1.0]])
    old_values = torch.tensor([[0.5], [0.5]])
    returns = torch.zeros(2, 1)
    terms = ppo_loss(
        new,
        values,
        old,
        old_values,
        advantages,
        returns,
        torch.ones(2, 1),
        cliprange=0.2,
        cliprange_value=0.2,
        vf_coef=0.1,
    )
    # A=2: max(-3, -2.4) = -2.4 (clipped); A=-2: max(3, 2.4) = 3 (unclipped)
    assert terms.policy_loss.item() == pytest.approx((-2.4 + 3.0) / 2)
    assert terms.policy_clipfrac.item() == pytest.approx(0.5)
    # v=1 vs clipped 0.7, return 0: max(1, 0.49) = 1 -> 0.5 * 1
    assert terms.value_loss.item() == pytest.approx(0.5)
    assert terms.value_clipfrac.item() == pytest.approx(0.0)
    assert terms.loss.item() == pytest.approx(0.3 + 0.1 * 0.5)
    assert terms.mean_ratio.item() == pytest.approx(1.5)
    assert terms.approx_kl.item() == pytest.approx(0.5 * math.log(1.5) ** 2)


def test_adaptive_kl_controller_by_hand():
    controller = AdaptiveKLController(0.2, target=6, horizon=10000)
    controller.update(9.0, n_steps=5)  # error clipped to +0.2
    assert controller.value == pytest.approx(0.2 * (1 + 0.2 * 5 / 10000))
    before = controller.value
    controller.update(6.0, n_steps=5)
    assert controller.value == pytest.approx(before)
    controller.update(4.5, n_steps=100)  # error -0.25 clipped to -0.2
    assert controller.value == pytest.approx(before * (1 - 0.2 * 100 / 10000))
    restored = AdaptiveKLController(1, 1, 1)
    restored.load_state_dict(controller.state_dict())
    assert restored.value == controller.value
    fixed = FixedKLController(0.3)
    fixed.update(100.0, 10)
    assert fixed.value == 0.3


def test_running_moments_match_numpy():
    import numpy as np

    running = RunningMoments()
    batch_mean, batch_std = running.update(torch.tensor([1.0, 2.0, 3.0]))
    assert (batch_mean, batch_std) == pytest.approx((2.0, 1.0))
    assert running.mean == pytest.approx(2.0)
    assert running.std == pytest.approx(1.0)
    running.update(torch.tensor([5.0]))
    data = np.array([1.0, 2.0, 3.0, 5.0])
    assert running.mean == pytest.approx(data.mean())
    assert running.std == pytest.approx(data.std(ddof=1))
    normalised = running.normalise(torch.tensor([5.0]))
    assert normalised.item() == pytest.approx((5 - data.mean()) / data.std(ddof=1), rel=1e-5)


def test_value_head_shapes_dropout_and_roundtrip(tmp_path):
    head = ValueHead(8)
    assert isinstance(head.dropout, torch.nn.Dropout) and head.dropout.p == pytest.approx(0.1)
    hidden = torch.randn(3, 8)
    head.eval()
    out = head(hidden)
    assert out.shape == (3,)
    assert torch.allclose(out, head.summary(hidden).squeeze(-1))
    head.save(tmp_path)
    other = ValueHead(8)
    assert other.load(tmp_path)
    other.eval()
    assert torch.equal(other(hidden), out)
    assert not ValueHead(8).load(tmp_path / "missing")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"ppo_epochs": 0}, "ppo_epochs"),
        ({"reward": "greedy"}, "reward"),
        ({"opponent": "nobody"}, "opponent"),
        ({"game": "poker"}, "game"),
        ({"lam": 1.5}, "lam"),
        ({"mini_batch_size": 99}, "mini_batch_size"),
        ({"algorithm": "dqn"}, "algorithm"),
        ({"report_to": "mlflow"}, "report_to"),
        ({"action_tokens": "a,b,c"}, "action_tokens"),
        ({"use_score_scaling": False}, "use_score_norm"),
        ({"lora_layers_to_transform": [0]}, "lora_layers_to_transform"),
        ({"algorithm": "grpo", "opponent": "llm"}, "grpo"),
    ],
)
def test_config_errors_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        TrainingConfig(**overrides)


def test_config_derived_sizes():
    config = TrainingConfig(num_envs=4, num_rounds=3, opponent="llm")
    assert config.batch_size == 12 and config.minibatch_size == 12
    assert config.learners == ["player_0", "player_1"]
    assert (
        TrainingConfig(reward="game_then_deontological", switch_episode=7).reward_spec("player_0").at(7).name
        == "deontological"
    )
