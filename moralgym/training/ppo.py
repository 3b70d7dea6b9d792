"""``MoralPPOTrainer``: the paper's PPO fine-tuning of an LLM agent on a matrix game, as one readable loop.

Read it top to bottom (CleanRL style):

1. setup    -- base LM + one LoRA adapter and one value head per learning seat, Adam, KL controller, running
               reward moments, ``num_envs`` PettingZoo envs wrapped with the moral reward, the opponent;
2. rollout  -- :func:`moralgym.training.rollout.play_episode`: one episode in every env, each decision batched
               through ``LLMPolicy.decide`` (prefix cache on);
3. scoring  -- reward scaling/normalisation, old log-probs and values (policy), reference log-probs (adapter
               disabled, cached: the base never changes), per-token KL-penalised rewards, GAE, whitening;
4. update   -- ``ppo_epochs`` x minibatches of the clipped PPO loss, with gradient accumulation counted across
               epochs like Accelerate; ONE forward/backward per distinct context (:func:`score_contexts`);
5. logging  -- per-episode metrics to JSONL (+CSV, TensorBoard, W&B), checkpoints every ``save_every`` episodes.

Where it differs from TRL 0.9's ``PPOTrainer.step`` and why:

* train/eval mode: TRL 0.9's batched forward pass calls ``model.eval()``, and the update's gradient pass goes
  through it, so in the paper's runs every forward of a PPO step (old and reference log-probs, values, and the
  gradient pass) ran with dropout off and the first epoch's ratio was exactly 1; ``train_minibatch`` then called
  ``model.train()``, so the authors' next episode was SAMPLED with LoRA dropout on (every episode after the first
  update). Here the reference log-probs and the separate no-grad pass for old log-probs/values run in eval mode;
  the gradient pass runs in eval mode with ``disable_dropout`` (set in every paper config, as the authors), in
  train mode (dropout on) otherwise (the default; the fused pass below then gives old values with dropout);
  sampling is always in eval mode, so the policy's prefix cache stays exact;
* with ``ppo_epochs == 1`` and one minibatch, the update's own forward pass provides the old log-probs and values
  (ratio exactly 1, as in the paper's effective one-step-per-episode update), saving a forward pass;
* samples sharing a context share one forward/backward (exact, see :mod:`moralgym.training.model`).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moralgym.training.config import PPOConfig
from moralgym.training.model import (
    ValueHead,
    adapter_parameters,
    add_learner_adapters,
    hidden_size_of,
    load_adapter_weights,
    lora_config_from,
    save_adapter,
    score_contexts,
    set_trainable,
    write_json,
)
from moralgym.training.ppo_math import (
    AdaptiveKLController,
    FixedKLController,
    RunningMoments,
    gae_advantages,
    masked_whiten,
    per_token_rewards,
    ppo_loss,
)
from moralgym.training.rollout import (
    SEATS,
    SHUFFLE_STREAM,
    TORCH_STREAM,
    Sample,
    derive_seed,
    make_envs,
    play_episode,
    rollout_metrics,
)

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.pt"


@dataclass
class Learner:
    """Everything one learning seat owns: adapter name, value head, optimizer, KL controller, reward statistics."""

    seat: str
    value_head: ValueHead
    optimizer: torch.optim.Optimizer
    kl_controller: AdaptiveKLController
    running: RunningMoments
    policy: Any
    backward_passes: int = 0
    optimizer_steps: int = 0
    params: list[torch.nn.Parameter] = field(default_factory=list)


class MoralPPOTrainer:
    """Train one LLM agent (vs a fixed strategy) or two (LLM vs LLM) with PPO on moral rewards.

    Args:
        config: the run's :class:`PPOConfig`.
        model, tokenizer: an already-loaded base model and tokenizer (tests pass tiny random models); ``None``
            loads ``config.model_name_or_path`` with :func:`moralgym.agents.llm.loading.load_causal_lm`.
        accelerator: an ``accelerate.Accelerator`` for multi-process runs (``None``: a plain one is made).
    """

    def __init__(self, config: PPOConfig, model: Any = None, tokenizer: Any = None, accelerator: Any = None) -> None:
        from accelerate import Accelerator

        from moralgym.agents.llm.policy import LLMPolicy
        from moralgym.agents.llm.prompts import PromptBuilder

        self.config = config
        self.accelerator = accelerator if accelerator is not None else Accelerator(cpu=not torch.cuda.is_available())
        self.rank = self.accelerator.process_index
        self.world_size = self.accelerator.num_processes
        if config.torch_num_threads:
            torch.set_num_threads(config.torch_num_threads)
        seed_everything(derive_seed(config.seed, 0))
        self.output_dir = Path(config.output_dir)

        # ---------------------------------------------------------------------------------------- model
        if model is None:
            from moralgym.agents.llm.loading import load_causal_lm

            model, tokenizer = load_causal_lm(
                config.model_name_or_path, dtype=config.dtype, load_in_4bit=config.load_in_4bit, verbose=self.is_main
            )
            if config.load_in_4bit:
                from peft import prepare_model_for_kbit_training

                model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        elif tokenizer is None:
            raise ValueError("pass the tokenizer together with an already-loaded model")
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        self.tokenizer = tokenizer
        self.seats = config.learners
        self.model = add_learner_adapters(model, self.seats, lora_config_from(config), config.init_adapter)
        if not config.load_in_4bit:
            self.model.to(self.accelerator.device)
        self.device = self.accelerator.device
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = int(pad or 0)

        # ---------------------------------------------------------------------------------------- learners
        self.prompts = [
            PromptBuilder(tokens=tokens, phrasing=config.phrasing, answer_prefix=config.answer_prefix)
            for tokens in config.action_tokens
        ]
        prompt = self.prompts[0]
        hidden = hidden_size_of(self.model)
        self.learners: dict[str, Learner] = {}
        for index, seat in enumerate(self.seats):
            torch.manual_seed(derive_seed(config.seed, 7, index))  # value-head init is part of the run's seed
            head = ValueHead(hidden, config.value_head_dropout).to(self.device)
            if config.init_adapter is not None:
                head.load(config.init_adapter)
            params = adapter_parameters(self.model, seat)
            for p in params:
                p.requires_grad_(True)
            optimizer = torch.optim.Adam([*params, *head.parameters()], lr=config.learning_rate)
            controller = (
                AdaptiveKLController(config.init_kl_coef, config.target_kl, config.kl_horizon)
                if config.adap_kl_ctrl
                else FixedKLController(config.init_kl_coef)
            )
            policy = LLMPolicy(
                self.model,
                tokenizer,
                prompt=prompt,
                max_new_tokens=config.max_new_tokens,
                seed=config.seed,
                prefix_cache=True,
                adapter_name=seat,
            )
            self.learners[seat] = Learner(seat, head, optimizer, controller, RunningMoments(), policy, params=params)
        #: Reference log-probs per (query, response): the base never changes, so each context is scored once.
        self.reference_cache: dict[tuple[tuple[int, ...], tuple[int, ...]], list[float]] = {}
        self.opponent = None
        if not config.is_two_learners:
            from moralgym.envs import make_opponent

            self.opponent = make_opponent(config.opponent)
        self.episode = 0
        self.timers = {"generate": 0.0, "scoring": 0.0, "update": 0.0}
        self._loggers: list[Any] = []

    # -------------------------------------------------------------------------------------------- helpers
    @property
    def is_main(self) -> bool:
        return self.rank == 0 if hasattr(self, "rank") else True

    def _checkpoint_dirs(self) -> list[Path]:
        root = self.output_dir / CHECKPOINTS_DIR
        return sorted(root.glob("episode-*")) if root.exists() else []

    # -------------------------------------------------------------------------------------------- main loop
    def train(self) -> dict[str, Any]:
        """Run (or resume) the configured number of episodes; returns the last episode's metrics."""
        config = self.config
        if config.resume:
            self.resume()
        self.prepare()
        start = self.episode
        stop = config.num_episodes
        if config.stop_after_episodes is not None:
            stop = min(stop, start + config.stop_after_episodes)
        progress = None
        if config.progress_bar and self.is_main:
            from tqdm.auto import tqdm

            progress = tqdm(total=config.num_episodes, initial=start, desc="moralgym ppo", unit="episode")
        last: dict[str, Any] = {}
        while self.episode < stop:
            last = self.train_episode()
            if progress is not None:
                progress.update(1)
                postfix = {
                    k.split("/")[-1]: round(v, 3)
                    for k, v in last.items()
                    if k in ("env/cooperation_rate", "env/illegal_rate", "env/reward", "ppo/kl")
                }
                progress.set_postfix(postfix)
            if config.save_every and self.episode % config.save_every == 0 and self.episode < config.num_episodes:
                self.save_checkpoint()
        if progress is not None:
            progress.close()
        self.check_in_sync()
        if self.episode >= config.num_episodes:
            self.save_final()
        elif self.episode == stop and (not config.save_every or self.episode % config.save_every):
            self.save_checkpoint()  # stopped early on purpose: leave a resumable state behind
        self._close_loggers()
        return last

    def prepare(self) -> None:
        """Write the config, open the metric sinks and build the envs (from the current episode on)."""
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.output_dir / "config.json", self.config.to_dict())
        self._open_loggers()
        self.envs = make_envs(self.config, start_episode=self.episode)

    def train_episode(self) -> dict[str, Any]:
        """Play one episode in every env and make the PPO update(s); returns the episode's metrics."""
        config, episode = self.config, self.episode
        torch.manual_seed(derive_seed(config.seed, TORCH_STREAM, self.rank, episode))  # dropout masks
        started = time.perf_counter()
        policies = {seat: learner.policy for seat, learner in self.learners.items()}
        rollout = play_episode(
            self.envs,
            policies,
            self.opponent,
            seed=config.seed,
            episode=episode,
            rank=self.rank,
            prompts=self.prompts if len(self.prompts) > 1 else None,
            token_schedule=config.token_schedule,
        )
        generate_s = time.perf_counter() - started
        self.timers["generate"] += generate_s
        metrics: dict[str, Any] = {"episode": episode}
        for seat, learner in self.learners.items():
            prefix = "" if len(self.learners) == 1 else f"{seat}/"
            samples = rollout.samples[seat]
            metrics.update(self._across_processes(rollout_metrics(samples, prefix)))
            metrics[f"{prefix}env/reward_name"] = samples[0].reward_name
            metrics.update({f"{prefix}{k}": v for k, v in self.update(learner, samples, episode).items()})
        metrics["time/episode_s"] = time.perf_counter() - started
        metrics["time/generate_s"] = generate_s
        self.episode += 1
        self._log(metrics)
        return metrics

    # -------------------------------------------------------------------------------------------- scoring
    def reference_logprobs(self, samples: Sequence[Sample]) -> torch.Tensor:
        """``(n, R)`` log-probs of the responses under the base model (all adapters disabled), cached."""
        from trl.trainer.utils import use_adapter

        keys = [(tuple(s.query_ids), tuple(s.response_ids)) for s in samples]
        missing = list(dict.fromkeys(k for k in keys if k not in self.reference_cache))
        if missing:
            was_training = self.model.training
            self.model.eval()
            queries = [list(q) for q, _ in missing]
            responses = [list(r) for _, r in missing]
            with torch.no_grad(), use_adapter(self.model, None):
                for part in self._chunks(range(len(missing)), queries, responses):  # bounded memory
                    scored = score_contexts(
                        self.model,
                        [queries[i] for i in part],
                        [responses[i] for i in part],
                        pad_token_id=self.pad_token_id,
                    )
                    for i, row in zip(part, scored.logprobs.cpu().tolist(), strict=True):
                        self.reference_cache[missing[i]] = row
            self.model.train(was_training)
        return torch.tensor([self.reference_cache[k] for k in keys], dtype=torch.float32, device=self.device)

    def normalise_scores(self, learner: Learner, scores: torch.Tensor) -> torch.Tensor:
        """TRL's score scaling/normalisation with running moments over every score seen (all processes)."""
        config = self.config
        if config.use_score_scaling:
            gathered = self.accelerator.gather(scores.to(self.device)) if self.world_size > 1 else scores
            learner.running.update(gathered.detach().cpu())
            scores = learner.running.normalise(scores, shift_mean=config.use_score_norm)
        if config.score_clip is not None:
            scores = torch.clamp(scores, -config.score_clip, config.score_clip)
        return scores

    # -------------------------------------------------------------------------------------------- update
    def update(self, learner: Learner, samples: Sequence[Sample], episode: int) -> dict[str, float]:
        """One PPO step on one seat's samples of this episode."""
        config = self.config
        set_trainable(self.model, learner.seat)
        t0 = time.perf_counter()
        queries = [s.query_ids for s in samples]
        responses = [s.response_ids for s in samples]
        n, length = len(samples), len(responses[0])
        mask = torch.ones((n, length), dtype=torch.float32, device=self.device)
        raw_scores = torch.tensor([s.reward for s in samples], dtype=torch.float32)
        scores = self.normalise_scores(learner, raw_scores).to(self.device)
        ref_logprobs = self.reference_logprobs(samples)
        minibatches = self._minibatches(n, episode, learner)
        chunked = [[self._chunks(index, queries, responses) for index in epoch] for epoch in minibatches]
        # With one epoch over one minibatch that fits one pass, that pass gives the old log-probs and values too.
        fused = config.ppo_epochs == 1 and len(minibatches[0]) == 1 and len(chunked[0][0]) == 1
        if fused:  # the one pass covers the samples in their own order (the old log-probs come from it)
            chunked[0][0] = [list(range(n))]

        def forward(index: Sequence[int], grad: bool) -> Any:
            # No-grad passes: eval mode. Gradient passes: eval mode with disable_dropout, as TRL 0.9's PPOTrainer
            # (its batched forward pass calls model.eval()), else train mode (LoRA/value-head dropout on).
            train_mode = grad and not config.disable_dropout
            self.model.train(train_mode)
            learner.value_head.train(train_mode)
            with torch.enable_grad() if grad else torch.no_grad():
                return score_contexts(
                    self.model,
                    [queries[i] for i in index],
                    [responses[i] for i in index],
                    learner.value_head,
                    self.pad_token_id,
                    dedup=config.dedup,
                    with_entropy=grad,
                )

        t1 = time.perf_counter()
        first = None
        if fused:  # ratio exactly 1 on this pass, as in the paper's effective update
            first = forward(chunked[0][0][0], grad=True)
            old_logprobs, old_values = first.logprobs.detach(), first.values.detach()
        else:
            parts = [forward(part, grad=False) for part in self._chunks(range(n), queries, responses)]
            order = torch.as_tensor([i for part in self._chunks(range(n), queries, responses) for i in part])
            old_logprobs = torch.empty((n, length), device=self.device)
            old_values = torch.empty((n, length), device=self.device)
            old_logprobs[order] = torch.cat([p.logprobs for p in parts])
            old_values[order] = torch.cat([p.values for p in parts])
        t2 = time.perf_counter()

        # --- algorithm: KL-penalised per-token rewards, GAE, whitened advantages
        kl_coef = learner.kl_controller.value
        rewards, kl = per_token_rewards(scores, old_logprobs, ref_logprobs, mask, kl_coef)
        advantages, returns = gae_advantages(rewards, old_values, mask, config.gamma, config.lam)
        if config.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        advantages, returns = advantages.detach(), returns.detach()

        # --- algorithm: clipped PPO epochs over minibatches, gradient accumulation across them
        t3 = time.perf_counter()
        stats: dict[str, list[float]] = {
            k: []
            for k in (
                "policy_loss",
                "value_loss",
                "loss",
                "clipfrac",
                "value_clipfrac",
                "approx_kl",
                "policy_kl",
                "ratio",
                "entropy",
                "skipped",
            )
        }
        for epoch in range(config.ppo_epochs):
            for mb_index, index in enumerate(minibatches[epoch]):
                total = float(mask[torch.as_tensor(index)].sum())
                sums = dict.fromkeys(stats, 0.0)
                # A minibatch too large for one pass is split into chunks; their loss terms are sums divided by the
                # minibatch's token count, so the accumulated gradient is the minibatch's gradient.
                for part in chunked[epoch][mb_index]:
                    scored = first if (fused and epoch == 0) else forward(part, grad=True)
                    idx = torch.as_tensor(part, device=self.device)
                    terms = ppo_loss(
                        scored.logprobs,
                        scored.values,
                        old_logprobs[idx],
                        old_values[idx],
                        advantages[idx],
                        returns[idx],
                        mask[idx],
                        config.cliprange,
                        config.cliprange_value,
                        config.vf_coef,
                        token_count=total,
                    )
                    share = float(mask[idx].sum()) / total
                    skip = float(terms.mean_ratio) / share > config.ratio_threshold  # this pass's mean ratio
                    if not skip:
                        (terms.loss / config.gradient_accumulation_steps).backward()
                    for key, value in (
                        ("policy_loss", terms.policy_loss),
                        ("value_loss", terms.value_loss),
                        ("loss", terms.loss),
                        ("clipfrac", terms.policy_clipfrac),
                        ("value_clipfrac", terms.value_clipfrac),
                        ("approx_kl", terms.approx_kl),
                        ("policy_kl", terms.policy_kl),
                        ("ratio", terms.mean_ratio),
                    ):
                        sums[key] += float(value.detach())
                    sums["entropy"] += float((scored.entropy.detach() * mask[idx]).sum()) / total
                    sums["skipped"] += float(skip) * share
                learner.backward_passes += 1
                if learner.backward_passes % config.gradient_accumulation_steps == 0:
                    self._optimizer_step(learner)
                for key, value in sums.items():
                    stats[key].append(value)
        self.model.eval()
        learner.value_head.eval()
        # Timing: "scoring" = reference + old log-probs/values (no grad); "update" = every pass with gradients.
        scoring_s = (t1 - t0) + (0.0 if fused else t2 - t1)
        update_s = (time.perf_counter() - t3) + (t2 - t1 if fused else 0.0)
        self.timers["scoring"] += scoring_s
        self.timers["update"] += update_s

        # --- algorithm: adapt the KL coefficient to the observed KL (sum over tokens, mean over samples)
        mean_kl = kl.sum(dim=1).mean()
        if self.world_size > 1:
            mean_kl = self.accelerator.reduce(mean_kl, reduction="mean")
        learner.kl_controller.update(float(mean_kl), n * self.world_size)

        distinct = len({(tuple(q), tuple(r[:-1])) for q, r in zip(queries, responses, strict=True)})
        result = {f"ppo/{k}": float(np.mean(v)) for k, v in stats.items()}
        result.update(
            {
                "ppo/kl": float(mean_kl),
                "ppo/beta": kl_coef,
                "ppo/beta_next": learner.kl_controller.value,
                "ppo/score_mean": float(scores.mean()),
                "ppo/score_std": float(scores.std()) if n > 1 else 0.0,
                "ppo/advantage_mean": float(advantages.mean()),
                "ppo/return_mean": float(returns.mean()),
                "ppo/value_mean": float(old_values.mean()),
                "ppo/explained_variance": _explained_variance(old_values, returns),
                "ppo/optimizer_steps": learner.optimizer_steps,
                "ppo/distinct_contexts": distinct,
                "ppo/samples": n,
                "running/score_mean": learner.running.mean,
                "running/score_std": learner.running.std,
                "time/scoring_s": scoring_s,
                "time/update_s": update_s,
            }
        )
        return result

    def _chunks(
        self, index: Sequence[int], queries: Sequence[Sequence[int]], responses: Sequence[Sequence[int]]
    ) -> list[list[int]]:
        """Split sample indices into passes of at most ``max_contexts_per_pass`` distinct contexts, keeping the
        samples of one query together (they share its forward pass)."""
        by_query: dict[tuple[int, ...], list[int]] = {}
        for i in index:
            by_query.setdefault(tuple(queries[i]), []).append(i)
        limit = self.config.max_contexts_per_pass
        chunks: list[list[int]] = []
        current: list[int] = []
        current_contexts = 0
        for members in by_query.values():
            contexts = len({tuple(responses[i][:t]) for i in members for t in range(len(responses[i]))})
            if current and current_contexts + contexts > limit:
                chunks.append(current)
                current, current_contexts = [], 0
            current = current + members
            current_contexts += contexts
        if current:
            chunks.append(current)
        return chunks

    def _minibatches(self, n: int, episode: int, learner: Learner) -> list[list[list[int]]]:
        """Per epoch, the shuffled minibatches of sample indices (seeded by run, rank, episode and seat)."""
        rng = np.random.default_rng(
            derive_seed(self.config.seed, SHUFFLE_STREAM, self.rank, episode, SEATS.index(learner.seat))
        )
        size = self.config.minibatch_size
        epochs = []
        for _ in range(self.config.ppo_epochs):
            order = rng.permutation(n).tolist() if size < n else list(range(n))
            epochs.append([order[i : i + size] for i in range(0, n, size)])
        return epochs

    def _optimizer_step(self, learner: Learner) -> None:
        params = [*learner.params, *learner.value_head.parameters()]
        if self.world_size > 1:
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                p.grad = self.accelerator.reduce(p.grad, reduction="mean")
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        learner.optimizer.step()
        learner.optimizer.zero_grad(set_to_none=True)
        learner.optimizer_steps += 1
        learner.policy.invalidate_cache()

    def _across_processes(self, metrics: dict[str, float]) -> dict[str, float]:
        """Average per-episode behaviour metrics over processes (counts are summed)."""
        if self.world_size == 1:
            return metrics
        keys = list(metrics)
        values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=self.device)
        summed = self.accelerator.reduce(values, reduction="sum").tolist()
        return {k: (int(v) if "/count_" in k else v / self.world_size) for k, v in zip(keys, summed, strict=True)}

    def check_in_sync(self) -> None:
        """Multi-process runs: every process must hold the same adapters (same init, all-reduced gradients)."""
        if self.world_size == 1:
            return
        for learner in self.learners.values():
            checksum = torch.stack([p.detach().double().sum() for p in learner.params]).sum().reshape(1)
            gathered = self.accelerator.gather(checksum.to(self.device))
            if not torch.allclose(gathered, gathered[:1].expand_as(gathered), rtol=1e-6, atol=1e-9):
                raise RuntimeError(f"adapter {learner.seat} diverged between processes: checksums {gathered.tolist()}")

    # -------------------------------------------------------------------------------------------- logging
    def _open_loggers(self) -> None:
        from moralgym.training.tracking import MetricsLogger

        if self.is_main:
            self._loggers = [MetricsLogger(self.output_dir, self.config, start_episode=self.episode)]

    def _log(self, metrics: dict[str, Any]) -> None:
        for logger in self._loggers:
            logger.log(metrics)

    def _close_loggers(self) -> None:
        for logger in self._loggers:
            logger.close()
        self._loggers = []

    # -------------------------------------------------------------------------------------------- saving
    def save_final(self) -> dict[str, Path]:
        """Write each seat's adapter (``adapter/`` for player_0, ``adapter_player_1/``) with its value head."""
        paths = {}
        if self.is_main:
            for seat, learner in self.learners.items():
                name = "adapter" if seat == "player_0" else f"adapter_{seat}"
                paths[seat] = save_adapter(self.model, seat, self.output_dir / name, learner.value_head)
        self.accelerator.wait_for_everyone()
        return paths

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the adapter weights that a resumed run needs."""
        learners = {}
        for seat, learner in self.learners.items():
            learners[seat] = {
                "optimizer": learner.optimizer.state_dict(),
                "kl_controller": learner.kl_controller.state_dict(),
                "running": learner.running.state_dict(),
                "backward_passes": learner.backward_passes,
                "optimizer_steps": learner.optimizer_steps,
                "policy_rng": _policy_rng_state(learner.policy),
            }
        return {
            "episode": self.episode,
            "learners": learners,
            "reference_cache": self.reference_cache,
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "envs": [env.unwrapped._rng.state() for env in getattr(self, "envs", [])],
            },
            "config": self.config.to_dict(),
        }

    def save_checkpoint(self) -> Path | None:
        """``checkpoints/episode-NNNNNN/``: adapters + value heads + ``trainer_state.pt``; keeps the last two."""
        directory = self.output_dir / CHECKPOINTS_DIR / f"episode-{self.episode:06d}"
        if self.is_main:
            partial = directory.with_name(directory.name + ".partial")
            if partial.exists():
                shutil.rmtree(partial)
            for seat, learner in self.learners.items():
                save_adapter(self.model, seat, partial / f"adapter_{seat}", learner.value_head)
            torch.save(self.state_dict(), partial / STATE_FILE)
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(partial, directory)  # atomic: a kill mid-write never leaves a half checkpoint
            for old in self._checkpoint_dirs()[:-2]:
                shutil.rmtree(old, ignore_errors=True)
            for logger in self._loggers:
                logger.flush()
        self.accelerator.wait_for_everyone()
        return directory

    def resume(self, directory: str | os.PathLike | None = None) -> bool:
        """Load the latest (or the given) checkpoint; returns False when there is none (fresh start)."""
        if directory is None:
            found = self._checkpoint_dirs()
            found = [d for d in found if (d / STATE_FILE).exists()]
            if not found:
                return False
            directory = found[-1]
        directory = Path(directory)
        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
        for seat, learner in self.learners.items():
            load_adapter_weights(self.model, seat, directory / f"adapter_{seat}")
            learner.value_head.load(directory / f"adapter_{seat}")
            saved = state["learners"][seat]
            learner.optimizer.load_state_dict(saved["optimizer"])
            learner.kl_controller.load_state_dict(saved["kl_controller"])
            learner.running.load_state_dict(saved["running"])
            learner.backward_passes = int(saved["backward_passes"])
            learner.optimizer_steps = int(saved["optimizer_steps"])
            _set_policy_rng_state(learner.policy, saved.get("policy_rng"))
            learner.policy.invalidate_cache()
        self.reference_cache = dict(state["reference_cache"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        self.episode = int(state["episode"])
        return True


def _policy_rng_state(policy: Any) -> dict[str, Any] | None:
    """The policy's sampling and shuffle generators (informational: every episode reseeds them anyway)."""
    return policy.rng_state() if hasattr(policy, "rng_state") else None


def _set_policy_rng_state(policy: Any, state: dict[str, Any] | None) -> None:
    if state is not None and hasattr(policy, "set_rng_state"):
        policy.set_rng_state(state)


def _explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    variance = float(returns.var()) if returns.numel() > 1 else 0.0
    if variance == 0 or math.isnan(variance):
        return float("nan")
    return 1.0 - float((returns - values).var()) / variance


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch global generators (the run's own streams are derived separately)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
