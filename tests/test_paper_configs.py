"""The paper path on every commit: each ``configs/paper/*.yaml`` runs through ``moralgym train`` on a tiny random
Gemma-2 (sliding-window and global layers, logit soft-capping, Gemma's chat template without a system role),
quantised to 4-bit NF4 with bitsandbytes on CPU, for two episodes with a checkpoint, then ``--resume`` to a third
episode, then the before/after evaluation.

Only the model, the run length and the evaluation's size are overridden; every other setting (LoRA r64 all-linear,
4 PPO epochs x 4 accumulation steps, adaptive KL, score scaling, bf16 compute, rewards, opponents, rounds) is the
paper config's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("yaml")
bnb = pytest.importorskip("bitsandbytes")

from moralgym.agents.llm.loading import load_causal_lm  # noqa: E402
from moralgym.agents.llm.prompts import PromptBuilder  # noqa: E402
from moralgym.envs.games import PAPER_GAMES  # noqa: E402
from moralgym.training.cli import main, parse_config, run  # noqa: E402
from moralgym.training.ppo import CHECKPOINTS_DIR  # noqa: E402
from moralgym.training.tracking import read_metrics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: The paper's experiments, and the transfer study's at paper scale (configs/transfer/, docs/transfer.md; its
#: cpu.yaml is an override file, not a run).
PAPER_CONFIGS = sorted((REPO / "configs" / "paper").glob("*.yaml")) + sorted(
    p for p in (REPO / "configs" / "transfer").glob("*.yaml") if p.stem != "cpu"
)


pytestmark = pytest.mark.usefixtures("one_thread")


def count_4bit(model) -> int:
    return sum(isinstance(module, bnb.nn.Linear4bit) for module in model.modules())


def test_tiny_gemma2_is_gemma_shaped_and_loads_in_4bit(tiny_gemma2_dir):
    model, tokenizer = load_causal_lm(tiny_gemma2_dir, dtype="bfloat16", load_in_4bit=True)
    config = model.config
    assert config.model_type == "gemma2"
    assert {"sliding_attention", "full_attention"} <= set(config.layer_types)
    assert (config.final_logit_softcapping, config.attn_logit_softcapping) == (30.0, 50.0)
    assert config.query_pre_attn_scalar == config.head_dim
    layers = config.num_hidden_layers
    assert count_4bit(model) == 7 * layers  # q k v o gate up down: every decoder Linear is NF4
    weight = model.model.layers[0].self_attn.q_proj.weight
    assert weight.quant_state.quant_type == "nf4" and weight.quant_state.dtype == torch.bfloat16
    # Like Gemma-2's template: no system role, and moralgym's single user turn renders as Gemma's.
    with pytest.raises(Exception, match="System role not supported"):
        tokenizer.apply_chat_template([{"role": "system", "content": "x"}, {"role": "user", "content": "y"}])
    rendered = PromptBuilder(tokens="action12").render(tokenizer, "ipd", [0, 1], (0, 1))
    assert rendered.startswith("<bos><start_of_turn>user\n") and rendered.endswith(
        "<end_of_turn>\n<start_of_turn>model\n"
    )
    # The sliding window never cuts a prompt (shorter windows are tested on their own).
    longest = max(
        len(tokenizer(PromptBuilder(tokens=t).render(tokenizer, g, [a, b], (1, 1)), add_special_tokens=False).input_ids)
        for t in ("action12", "action34")
        for g in PAPER_GAMES
        for a in range(3)
        for b in range(3)
    )
    assert longest + 8 < config.sliding_window
    with torch.no_grad():
        logits = model(**tokenizer(rendered, add_special_tokens=False, return_tensors="pt")).logits
    assert torch.isfinite(logits).all() and logits.abs().max() <= 30.0


def test_4bit_on_cpu_computes_the_same_in_eval_and_train_mode_and_after_a_checkpoint(tiny_gemma2_dir):
    """bitsandbytes repacks CPU Linear4bit weights on an eval no-grad forward (another kernel, other rounding) and
    unpacks them on ``state_dict()``; load_causal_lm keeps one kernel, so rollouts, updates and resumes agree."""
    model, tokenizer = load_causal_lm(tiny_gemma2_dir, dtype="bfloat16", load_in_4bit=True)
    ids = tokenizer("<bos><start_of_turn>user\nIPD<end_of_turn>\n", add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        rollout = model(**ids).logits
        model.state_dict()  # what a checkpoint does
        after_checkpoint = model(**ids).logits
        model.train()
        update = model(**ids).logits
    assert torch.equal(rollout, after_checkpoint) and torch.equal(rollout, update)


def paper_argv(path: Path, gemma_dir: Path, output_dir: Path, episodes: int) -> list[str]:
    argv = ["--config", str(path), "--model_name_or_path", str(gemma_dir), "--output_dir", str(output_dir)]
    argv += ["--num_episodes", str(episodes), "--save_every", "1"]
    argv += ["--progress_bar", "false", "--torch_num_threads", "1"]
    argv += ["--eval_episodes", "1", "--eval_rounds", "2", "--eval_games", "ipd", "chicken"]  # a small evaluation
    if "game_then" in path.stem:
        argv += ["--switch_episode", "1"]  # both phases of the schedule run
    return argv


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=[p.stem for p in PAPER_CONFIGS])
def test_paper_config_trains_checkpoints_resumes_and_evaluates(path, tiny_gemma2_dir, tmp_path):
    paper = parse_config(["--config", str(path)])
    assert paper.load_in_4bit and paper.evaluate and paper.model_name_or_path == "google/gemma-2-2b-it"
    out = tmp_path / "run"

    # 1. Two episodes, a checkpoint after the first, the trained model is 4-bit NF4 under LoRA.
    seen = {}

    def on_trained(model, tokenizer):
        seen["linear4bit"] = count_4bit(model)
        seen["lora"] = sum("lora_A" in name for name, _ in model.named_parameters())

    # (The evaluation and the plot wait for the resumed run, which finishes the run: half the cost.)
    first_argv = [*paper_argv(path, tiny_gemma2_dir, out, 2), "--evaluate", "false", "--plot", "false"]
    summary = run(parse_config(first_argv), on_trained=on_trained)
    assert summary["finished"] and summary["episodes"] == 2 and "evaluation" not in summary
    assert seen["linear4bit"] > 0 and seen["lora"] > 0
    checkpoint = out / CHECKPOINTS_DIR / "episode-000001"
    assert (checkpoint / "trainer_state.pt").exists()
    for seat in paper.learners:
        assert (checkpoint / f"adapter_{seat}" / "adapter_model.safetensors").exists()
    first = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["episode"] for line in first] == [0, 1]

    # 2. --resume to three episodes: continues from episode 1's checkpoint, no episode twice.
    assert main([*paper_argv(path, tiny_gemma2_dir, out, 3), "--resume"]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    records = read_metrics(out)
    assert [r["episode"] for r in records] == [0, 1, 2]
    assert lines[0] == first[0]  # episode 0 kept as written (wall-clock fields too): it was not re-run
    untimed = [{k: v for k, v in json.loads(line).items() if "time/" not in k} for line in (first[1], lines[1])]
    assert untimed[0] == untimed[1]  # episode 1 re-run from the checkpoint exactly as the first run played it
    if "game_then" in path.stem:
        key = "env/reward_name" if len(paper.learners) == 1 else "player_0/env/reward_name"
        names = [r[key] for r in records]
        assert names[0] == "game" and names[1] == names[2] == paper.reward.removeprefix("game_then_")

    # 3. The evaluation ran on the finished run: base and fine-tuned, both games.
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["episodes"] == 3
    evaluation = summary["evaluation"]
    # (an N-player run is evaluated on its own game, as moralgym.training.evaluate says)
    games = {paper.game} if paper.is_n_player else {"ipd", "chicken"}
    for model in ("base", "fine_tuned"):
        assert 0.0 <= evaluation[model]["illegal_rate"] <= 1.0
        assert set(evaluation["per_game"][model]) == games
    assert (out / "evaluation" / "evaluation.json").exists() and (out / "learning_curve.png").stat().st_size > 0
    for seat in paper.learners:
        name = "adapter" if seat == "player_0" else f"adapter_{seat}"
        assert (out / name / "adapter_model.safetensors").exists()
