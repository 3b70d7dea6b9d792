"""``algorithm: grpo`` -- TRL's ``GRPOTrainer`` on the same environments and rewards. NOT the paper's algorithm.

Differences from the paper's PPO (docs/reproduction.md), stated plainly:

* no value head and no GAE: the baseline is the mean reward of ``num_generations`` answers to the SAME prompt
  (a group), and advantages are standardised within the group;
* the KL to the base model (adapter disabled, no copy) is a k3 term in the loss with a fixed ``grpo_beta``, not an
  adaptive per-token penalty in the reward;
* every environment step costs ``num_generations`` samples: the opponent's move is drawn once per group, each
  answer is scored by the episode runner on a copy of the env (the reward still comes from the env's
  ``MoralRewardWrapper``), and the real episode advances with the group's first answer.

The rollout is ``GRPOTrainer(rollout_func=...)`` (TRL >= 0.25, experimental); ``train_dataset`` rows are
placeholders that only set how many groups a step has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moralgym.agents.records import StepRecord, behaviour_metrics
from moralgym.agents.runner import play_round
from moralgym.agents.seats import SeatStep, StrategySeat
from moralgym.envs.openings import opening_options
from moralgym.training.rollout import AGENTS, derive_seed, make_envs
from moralgym.training.tracking import MetricsLogger


@dataclass
class GroupAnswer:
    """One answer of a group: its token ids and sampling log-probs (what GRPO trains on) and its text."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    text: str


class GroupSampler:
    """The learner's seat in GRPO rollouts: ``num_generations`` answers to one prompt. The first answer moves the
    game; the others are the seat's ``alternatives``, scored by the runner on a copy of the env against the same
    opponent move."""

    name = "player_0"

    def __init__(self, tokenizer: Any, max_new_tokens: int, rng: np.random.Generator) -> None:
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.rng = rng
        self.prompt: Any = None
        self.model: Any = None
        self.group = 1

    def reset(self, n: int, seed: int | None = None) -> None:
        pass

    def act(self, games: list[Any], observations: np.ndarray, seat: int = 0) -> SeatStep:
        import torch

        from moralgym.agents.llm.parsing import parse_action

        (game,), (observation,) = games, observations
        prompt, model = self.prompt, self.model
        text = prompt.render(self.tokenizer, game, observation, prompt.draw_order_bits(self.rng, 1)[0])
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids] * self.group, device=model.device)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            generated = model.generate(
                input_ids=x,
                attention_mask=torch.ones_like(x),
                do_sample=True,
                top_k=0,
                top_p=1.0,
                temperature=1.0,
                max_new_tokens=self.max_new_tokens,
                min_new_tokens=self.max_new_tokens,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        model.train(was_training)
        completions = generated.sequences[:, len(ids) :]
        logprobs = torch.stack(generated.scores, 1).float().log_softmax(-1).gather(-1, completions[..., None])[..., 0]
        answers = []
        for completion, completion_logprobs in zip(completions.tolist(), logprobs.tolist(), strict=True):
            answer = prompt.answer_prefix + self.tokenizer.decode(completion, skip_special_tokens=True)
            answers.append(
                (parse_action(answer, prompt.action_tokens), GroupAnswer(ids, completion, completion_logprobs, answer))
            )
        (first_action, first), others = answers[0], answers[1:]
        return SeatStep(np.array([first_action]), [first.text], [first], alternatives=[others])


class GroupRollout:
    """The live envs and opponent behind ``rollout_func``; one group of answers per env step, played through the
    episode runner (:func:`moralgym.agents.runner.play_round`)."""

    def __init__(self, config: Any, tokenizer: Any) -> None:
        from moralgym.agents.llm.prompts import PromptBuilder
        from moralgym.envs import make_opponent

        self.config = config
        self.tokenizer = tokenizer
        self.prompts = [
            PromptBuilder(tokens=tokens, phrasing=config.phrasing, answer_prefix=config.answer_prefix)
            for tokens in config.action_tokens
        ]
        self.groups_played = 0
        self.envs = make_envs(config, start_episode=0)
        self.opponent = make_opponent(config.opponent)
        # One stream for the prompts' token orders and the opponent's uniforms, drawn in that order each step.
        self.rng = np.random.default_rng(derive_seed(config.seed, 11))
        self.sampler = GroupSampler(tokenizer, config.max_new_tokens, self.rng)
        self.opponent_seats = [StrategySeat(self.opponent, rng=self.rng) for _ in self.envs]
        self.episodes_started = 0
        self.observations: list[Any] = [None] * len(self.envs)
        self.records: list[StepRecord] = []

    def _observation(self, index: int) -> dict[str, np.ndarray]:
        env = self.envs[index]
        if self.observations[index] is None or not env.agents:
            self.observations[index], _ = env.reset(
                seed=derive_seed(self.config.seed, 12, self.episodes_started),
                options=opening_options({AGENTS[1]: self.opponent}, env.unwrapped.initial_state),
            )
            self.episodes_started += 1
            self.opponent_seats[index].reset(1)
        return self.observations[index]

    def __call__(self, prompts: list[str], trainer: Any) -> dict[str, list]:
        self.sampler.group = trainer.num_generations
        self.sampler.model = trainer.accelerator.unwrap_model(trainer.model)
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_reward": []}
        for g in range(len(prompts) // self.sampler.group):
            index = g % len(self.envs)
            observation = self._observation(index)
            self.sampler.prompt = self.prompts[self.groups_played % len(self.prompts)]
            self.groups_played += 1
            seats = {AGENTS[0]: self.sampler, AGENTS[1]: self.opponent_seats[index]}
            (self.observations[index],), records = play_round(
                [self.envs[index]], [observation], seats, record=[AGENTS[0]]
            )
            for record in records:  # the played answer, then the rest of the group
                out["prompt_ids"].append(record.decision.prompt_ids)
                out["completion_ids"].append(record.decision.completion_ids)
                out["logprobs"].append(record.decision.logprobs)
                out["env_reward"].append(record.reward)
            self.records += records
        return out

    def pop_metrics(self) -> dict[str, float]:
        if not self.records:
            return {}
        metrics = behaviour_metrics(self.records)
        self.records = []
        kept = ("reward", "cooperation_rate", "illegal_rate", *(k for k in metrics if k.startswith("reward_")))
        return {f"env/{name}": metrics[name] for name in kept}


def env_reward(completions: list, env_reward: list[float], **_: Any) -> list[float]:
    """The reward function GRPO calls: the env's reward, passed through from the rollout."""
    return list(env_reward)


def train_grpo(config: Any, model: Any = None, tokenizer: Any = None) -> dict[str, Any]:
    """Train with ``trl.GRPOTrainer``; saves ``adapter/`` and ``metrics.jsonl`` like the PPO path."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from moralgym.training.model import lora_config_from, save_adapter

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if model is None:
        from moralgym.agents.llm.loading import load_causal_lm

        model, tokenizer = load_causal_lm(
            config.model_name_or_path, dtype=config.dtype, load_in_4bit=config.load_in_4bit
        )
    output_dir = Path(config.output_dir)
    rollout = GroupRollout(config, tokenizer)
    group = config.num_generations
    groups_per_step = config.num_envs
    batch = group * groups_per_step
    args = GRPOConfig(
        output_dir=str(output_dir / "grpo"),
        use_cpu=not torch.cuda.is_available(),
        bf16=config.bf16,
        learning_rate=config.learning_rate,
        num_generations=group,
        per_device_train_batch_size=batch,
        max_completion_length=config.max_new_tokens,
        beta=config.grpo_beta,
        num_iterations=config.ppo_epochs,
        epsilon=config.cliprange,
        max_steps=config.num_episodes,
        logging_steps=1,
        seed=config.seed,
        gradient_checkpointing=config.gradient_checkpointing,  # TRL's own (full rows: no tree attention)
        report_to=[] if config.report_to == "none" else [config.report_to],
        save_strategy="no",
        temperature=1.0,
        top_k=0,
        disable_tqdm=not config.progress_bar,
    )
    logger = MetricsLogger(output_dir, config)
    last: dict[str, Any] = {}

    class LogToJsonl(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            nonlocal last
            if not logs or "loss" not in logs:
                return
            record = {"episode": state.global_step - 1, **rollout.pop_metrics()}
            record.update({f"grpo/{k}": v for k, v in logs.items() if isinstance(v, (int, float))})
            if "kl" in logs:
                record["ppo/kl"] = logs["kl"]
            logger.log(record)
            last = record

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=env_reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": ["."] * (batch * config.num_episodes)}),
        processing_class=tokenizer,
        peft_config=lora_config_from(config),
        rollout_func=rollout,
        callbacks=[LogToJsonl()],
    )
    trainer.train()
    logger.close()
    peft_model = trainer.accelerator.unwrap_model(trainer.model)
    adapter_name = peft_model.active_adapter if isinstance(peft_model.active_adapter, str) else "default"
    save_adapter(peft_model, adapter_name, output_dir / "adapter")
    return {"model": peft_model, "tokenizer": tokenizer, "last": last, "agent": adapter_name}


__all__ = ["GroupAnswer", "GroupRollout", "GroupSampler", "env_reward", "train_grpo"]
