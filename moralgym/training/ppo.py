"""``MoralPPOTrainer``: the paper's PPO fine-tuning of an LLM agent on a matrix game, as one readable loop.

It also trains LLM agents in N-player games (docs/training.md "N-player games"): one learner per learning seat
(adapters named after the seats), or with ``parameter_sharing`` one learner, adapter ``shared``, trained on every
learning seat's samples concatenated in seat order; the other seats play a fixed N-player strategy.

Read it top to bottom (CleanRL style):

1. setup    -- base LM + one LoRA adapter and one value head per learning agent, Adam, KL controller, running
               reward moments, ``num_envs`` PettingZoo envs wrapped with the moral reward, the opponent;
2. rollout  -- :func:`moralgym.training.rollout.play_episode`: one episode in every env, each decision batched
               through ``LLMPolicy.decide`` (prefix cache on);
3. scoring  -- reward scaling/normalisation, old log-probs and values (policy), reference log-probs (adapter
               disabled, cached: the base never changes), per-token KL-penalised rewards, GAE, whitening;
4. update   -- ``ppo_epochs`` x minibatches of the clipped PPO loss, with gradient accumulation counted across
               epochs like Accelerate; ONE forward/backward per distinct context (:func:`score_contexts`).
               :meth:`MoralPPOTrainer.update` reads steps 3-4 as one screen; how the forward passes are cut (the
               fused single pass, chunked passes) lives in the named helpers below it;
5. logging  -- per-episode metrics to JSONL (+CSV, TensorBoard, W&B), checkpoints every ``save_every`` episodes.

Where it differs from TRL 0.9's ``PPOTrainer.step`` and why:

* train/eval mode: TRL 0.9's batched forward pass calls ``model.eval()``, and the update's gradient pass goes
  through it, so in the paper's runs every forward of a PPO step (old and reference log-probs, values, and the
  gradient pass) ran with dropout off and the first epoch's ratio was exactly 1; ``train_minibatch`` then called
  ``model.train()``, so the authors' next episode was SAMPLED with LoRA dropout on (every episode after the first
  update). Here the reference log-probs and the separate no-grad pass for old log-probs/values run in eval mode;
  the gradient pass runs in eval mode with ``disable_dropout`` (set in every paper config, as the authors), in
  train mode (dropout on) otherwise (the default; the fused pass then gives old values with dropout);
  sampling is always in eval mode, so the policy's prefix cache stays exact;
* with ``ppo_epochs == 1`` and one minibatch, the update's own forward pass provides the old log-probs and values
  (ratio exactly 1, as in the paper's effective one-step-per-episode update), saving a forward pass
  (``_fused_pass``);
* a minibatch of more than ``max_contexts_per_pass`` distinct contexts is cut into passes whose gradients add up
  exactly to the minibatch's (``_minibatch_backward``): bounded memory, same update;
* samples sharing a context share one forward/backward (exact, see :mod:`moralgym.training.model`).
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from moralgym.agents.records import StepRecord
from moralgym.training.checkpoints import (
    CHECKPOINTS_DIR,
    STATE_FILE,
    checkpoint_dirs,
    find_checkpoint,
    write_checkpoint,
)
from moralgym.training.config import TrainingConfig
from moralgym.training.memory import trim_heap
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
    SHUFFLE_STREAM,
    TORCH_STREAM,
    derive_seed,
    make_envs,
    play_episode,
    rollout_metrics,
)

__all__ = ["CHECKPOINTS_DIR", "STATE_FILE", "MoralPPOTrainer", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the state at the last completed episode was checkpointed to ``checkpoint``
    (``None`` on processes other than the main one)."""

    def __init__(self, episode: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted at episode {episode}")
        self.episode = episode
        self.checkpoint = checkpoint


@dataclass
class Learner:
    """Everything one learning agent owns: adapter name, value head, optimizer, KL controller, reward statistics.

    ``seats``: the seats it plays and learns from (its own, or every learning seat with a shared adapter), whose
    samples it trains on concatenated in this order; ``index``: the seat index its seeds derive from (its first
    seat's), so a two-player learner keeps the seeds it always had."""

    agent: str
    value_head: ValueHead
    optimizer: torch.optim.Optimizer
    kl_controller: AdaptiveKLController
    running: RunningMoments
    policy: Any
    backward_passes: int = 0
    optimizer_steps: int = 0
    params: list[torch.nn.Parameter] = field(default_factory=list)
    seats: list[str] = field(default_factory=list)
    index: int = 0


#: The per-minibatch statistics the update logs as ``ppo/<name>`` (each the mean over minibatches), in log order.
LOSS_STATS = (
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


def _tokens(sample: StepRecord) -> tuple[list[int], list[int]]:
    """A sample's query and response token ids: the one place the trainer reads the LLM's decision from a record."""
    return sample.decision.query_ids, sample.decision.response_ids


@dataclass
class _Batch:
    """One agent's samples of an episode, as the update reads them."""

    queries: list[list[int]]
    responses: list[list[int]]
    raw_scores: torch.Tensor  # (n,) the moral rewards, before scaling
    mask: torch.Tensor  # (n, R) ones: every response has exactly max_new_tokens tokens

    @classmethod
    def of(cls, samples: Sequence[StepRecord], device: torch.device) -> _Batch:
        tokens = [_tokens(s) for s in samples]
        queries, responses = [q for q, _ in tokens], [r for _, r in tokens]
        mask = torch.ones((len(samples), len(responses[0])), dtype=torch.float32, device=device)
        return cls(queries, responses, torch.tensor([s.reward for s in samples], dtype=torch.float32), mask)

    def __len__(self) -> int:
        return len(self.queries)

    def distinct_contexts(self) -> int:
        """Distinct (query, response prefix) pairs: what one deduplicated pass forwards."""
        return len({(tuple(q), tuple(r[:-1])) for q, r in zip(self.queries, self.responses, strict=True)})


class _Targets(NamedTuple):
    """What the clipped loss compares the current pass against, ``(n, R)`` each, fixed for the whole update."""

    old_logprobs: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


@dataclass
class _Plan:
    """The gradient passes of one update: ``passes[epoch][minibatch]`` lists that minibatch's passes (sample
    indices); ``fused``: the whole update is one pass, which also scores the old policy (``_fused_pass``)."""

    passes: list[list[list[list[int]]]]
    fused: bool


class Stopwatch:
    """Seconds per phase (``with clock("scoring"): ...``), also added to the run's ``totals``: keeps the timing out
    of the algorithm's lines. A phase that raises is not counted."""

    def __init__(self, totals: dict[str, float]) -> None:
        self.totals = totals
        self.seconds: dict[str, float] = dict.fromkeys(totals, 0.0)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed
        self.totals[phase] = self.totals.get(phase, 0.0) + elapsed


class MoralPPOTrainer:
    """Train one LLM agent (vs a fixed strategy) or two (LLM vs LLM) with PPO on moral rewards.

    Args:
        config: the run's :class:`TrainingConfig`.
        model, tokenizer: an already-loaded base model and tokenizer (tests pass tiny random models); ``None``
            loads ``config.model_name_or_path`` with :func:`moralgym.agents.llm.loading.load_causal_lm`.
        accelerator: an ``accelerate.Accelerator`` for multi-process runs (``None``: a plain one is made).
    """

    def __init__(
        self, config: TrainingConfig, model: Any = None, tokenizer: Any = None, accelerator: Any = None
    ) -> None:
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
        groups = config.learner_groups  # adapter name -> the seats it plays
        self.agents = list(groups)
        self.model = add_learner_adapters(model, self.agents, lora_config_from(config), config.init_adapter)
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
        for agent, seats in groups.items():
            index = config.learners.index(seats[0])  # the learning seats come first: the position is the seat index
            torch.manual_seed(derive_seed(config.seed, 7, index))  # value-head init is part of the run's seed
            head = ValueHead(hidden, config.value_head_dropout).to(self.device)
            if config.init_adapter is not None:
                head.load(config.init_adapter)
            params = adapter_parameters(self.model, agent)
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
                adapter_name=agent,
            )
            self.learners[agent] = Learner(
                agent, head, optimizer, controller, RunningMoments(), policy, params=params, seats=seats, index=index
            )
        #: Reference log-probs per (query, response): the base never changes, so each context is scored once.
        self.reference_cache: dict[tuple[tuple[int, ...], tuple[int, ...]], list[float]] = {}
        self.opponent = self._fixed_opponents()
        self.episode = 0
        self.timers = {"generate": 0.0, "scoring": 0.0, "update": 0.0}
        self._loggers: list[Any] = []

    def _fixed_opponents(self) -> Any:
        """What :func:`play_episode` seats beside the learners: the two-player opponent strategy (``None`` in LLM vs
        LLM), or in an N-player game ``{seat: N-player strategy}`` for every seat that does not learn."""
        config = self.config
        if config.is_n_player:
            from moralgym.envs.n_player import make_n_player_opponent

            return {seat: make_n_player_opponent(config.opponent) for seat in config.fixed_seats}
        if config.is_two_learners:
            return None
        from moralgym.envs import make_opponent

        return make_opponent(config.opponent)

    def _learner_samples(self, learner: Learner, rollout: Any) -> list[StepRecord]:
        """A learner's samples of an episode: its seats' records concatenated in seat order."""
        return [sample for seat in learner.seats for sample in rollout.samples[seat]]

    # -------------------------------------------------------------------------------------------- helpers
    @property
    def is_main(self) -> bool:
        return self.rank == 0 if hasattr(self, "rank") else True

    def _checkpoint_dirs(self) -> list[Path]:
        return checkpoint_dirs(self.output_dir)

    # -------------------------------------------------------------------------------------------- main loop
    def train(self, resume_from: str | os.PathLike | None = None) -> dict[str, Any]:
        """Run (or resume: from ``resume_from``, else the newest valid checkpoint) the configured number of episodes;
        returns the last episode's metrics.

        Ctrl-C (``KeyboardInterrupt``) during the episodes writes a checkpoint of the last completed episode (an
        interrupted episode's partial update is rolled back) and raises :class:`TrainingInterrupted`.
        """
        config = self.config
        if config.resume:
            self.resume(resume_from)
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
        try:
            while self.episode < stop:
                self._boundary = self._snapshot()  # restored if Ctrl-C lands inside the episode
                last = self.train_episode()
                self._boundary = None
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
        except KeyboardInterrupt:
            if progress is not None:
                progress.close()
            raise self._checkpoint_interrupted() from None
        if progress is not None:
            progress.close()
        self.check_in_sync()
        if self.episode >= config.num_episodes:
            self.save_final()
        elif self.episode == stop and (not config.save_every or self.episode % config.save_every):
            self.save_checkpoint()  # stopped early on purpose: leave a resumable state behind
        self.close_loggers()
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
        clock = Stopwatch(self.timers)
        policies = {seat: learner.policy for learner in self.learners.values() for seat in learner.seats}
        with clock("generate"):
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
        metrics: dict[str, Any] = {"episode": episode}
        for agent, learner in self.learners.items():
            prefix = "" if len(self.learners) == 1 else f"{agent}/"
            samples = self._learner_samples(learner, rollout)
            metrics.update(self._across_processes(rollout_metrics(samples, prefix)))
            names = list(dict.fromkeys(sample.reward_name for sample in samples))  # seats may differ (shared adapter)
            metrics[f"{prefix}env/reward_name"] = names[0] if len(names) == 1 else "+".join(map(str, names))
            metrics.update({f"{prefix}{k}": v for k, v in self.update(learner, samples, episode).items()})
        trim_heap()  # the update's freed activations below the mmap threshold (moralgym.training.memory)
        metrics["time/episode_s"] = time.perf_counter() - started
        metrics["time/generate_s"] = clock.seconds["generate"]
        self.episode += 1
        self._log(metrics)
        return metrics

    # -------------------------------------------------------------------------------------------- scoring
    def reference_logprobs(self, samples: Sequence[StepRecord]) -> torch.Tensor:
        """``(n, R)`` log-probs of the responses under the base model (all adapters disabled), cached."""
        from trl.trainer.utils import use_adapter

        keys = [(tuple(query), tuple(response)) for query, response in map(_tokens, samples)]
        missing = list(dict.fromkeys(k for k in keys if k not in self.reference_cache))
        if missing:
            was_training = self.model.training
            self.model.eval()
            queries = [list(q) for q, _ in missing]
            responses = [list(r) for _, r in missing]
            with torch.no_grad(), use_adapter(self.model, None), self._autocast():
                for part in self._chunks(range(len(missing)), queries, responses):  # bounded memory
                    scored = score_contexts(
                        self.model,
                        [queries[i] for i in part],
                        [responses[i] for i in part],
                        pad_token_id=self.pad_token_id,
                        tree_attention=self.config.tree_attention,
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
    def update(self, learner: Learner, samples: Sequence[StepRecord], episode: int) -> dict[str, float]:
        """One PPO step on one agent's samples of this episode, in CleanRL's order: score, KL-penalised rewards,
        GAE advantages, epochs x minibatches of the clipped loss with optimizer steps, adaptive KL, metrics.

        With ``bf16``, peft's cast of each LoRA layer's input to the adapter's float32 is off for the whole update
        (backward passes and their checkpoint recomputes included): autocast computes those layers in bfloat16 either
        way, so the cast only copied every activation (a fifth of the gradient pass with ``dtype: bfloat16``
        weights, docs/benchmarks.md). The rollout, without autocast, keeps it.
        """
        from peft.helpers import disable_input_dtype_casting

        with disable_input_dtype_casting(self.model, active=self.config.bf16):
            return self._update(learner, samples, episode)

    def _update(self, learner: Learner, samples: Sequence[StepRecord], episode: int) -> dict[str, float]:
        config = self.config
        set_trainable(self.model, learner.agent)
        clock = Stopwatch(self.timers)  # "scoring": reference + old log-probs/values; "update": gradient passes
        batch = _Batch.of(samples, self.device)
        n, mask = len(batch), batch.mask

        # --- score: normalised scores, reference log-probs (base model), the old policy's log-probs and values
        with clock("scoring"):
            scores = self.normalise_scores(learner, batch.raw_scores).to(self.device)
            ref_logprobs = self.reference_logprobs(samples)
            plan = self._plan(batch, episode, learner)
        if plan.fused:
            with clock("update"):  # the update's only gradient pass, run first: it also scores the old policy
                first = self._fused_pass(learner, batch)
            old_logprobs, old_values = first.logprobs.detach(), first.values.detach()
        else:
            first = None
            with clock("scoring"):
                old_logprobs, old_values = self._old_pass(learner, batch)

        # --- rewards: per-token KL penalty plus the score on the last token; GAE advantages, whitened
        kl_coef = learner.kl_controller.value
        rewards, kl = per_token_rewards(scores, old_logprobs, ref_logprobs, mask, kl_coef)
        advantages, returns = gae_advantages(rewards, old_values, mask, config.gamma, config.lam)
        if config.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        targets = _Targets(old_logprobs, old_values, advantages.detach(), returns.detach())

        # --- optimise: epochs x minibatches of the clipped loss; an optimizer step every gradient_accumulation_steps
        #     backward passes, counted across epochs (and episodes) as Accelerate counts them
        stats: dict[str, list[float]] = {key: [] for key in LOSS_STATS}
        with clock("update"):
            for minibatches in plan.passes:
                for passes in minibatches:
                    for key, value in self._minibatch_backward(learner, batch, passes, targets, reuse=first).items():
                        stats[key].append(value)
                    learner.backward_passes += 1
                    if learner.backward_passes % config.gradient_accumulation_steps == 0:
                        self._optimizer_step(learner)
            self.model.eval()
            learner.value_head.eval()

        # --- adaptive KL: the observed KL (sum over tokens, mean over samples and processes) steers beta
        mean_kl = kl.sum(dim=1).mean()
        if self.world_size > 1:
            mean_kl = self.accelerator.reduce(mean_kl, reduction="mean")
        learner.kl_controller.update(float(mean_kl), n * self.world_size)

        # --- metrics
        result = {f"ppo/{k}": float(np.mean(v)) for k, v in stats.items()}
        result.update(
            {
                "ppo/kl": float(mean_kl),
                "ppo/beta": kl_coef,
                "ppo/beta_next": learner.kl_controller.value,
                "ppo/score_mean": float(scores.mean()),
                "ppo/score_std": float(scores.std()) if n > 1 else 0.0,
                "ppo/advantage_mean": float(targets.advantages.mean()),
                "ppo/return_mean": float(targets.returns.mean()),
                "ppo/value_mean": float(old_values.mean()),
                "ppo/explained_variance": _explained_variance(old_values, targets.returns),
                "ppo/optimizer_steps": learner.optimizer_steps,
                "ppo/distinct_contexts": batch.distinct_contexts(),
                "ppo/samples": n,
                "running/score_mean": learner.running.mean,
                "running/score_std": learner.running.std,
                "time/scoring_s": clock.seconds["scoring"],
                "time/update_s": clock.seconds["update"],
            }
        )
        return result

    # -------------------------------------------------------------------------------------------- update: passes
    def _plan(self, batch: _Batch, episode: int, learner: Learner) -> _Plan:
        """Shuffle the samples into minibatches (:meth:`_minibatches`), split each into passes (:meth:`_chunks`),
        and decide whether the fused single pass (:meth:`_fused_pass`) applies: one epoch over one minibatch that
        fits one pass."""
        n = len(batch)
        minibatches = self._minibatches(n, episode, learner)
        passes = [[self._chunks(index, batch.queries, batch.responses) for index in epoch] for epoch in minibatches]
        fused = self.config.ppo_epochs == 1 and len(passes[0]) == 1 and len(passes[0][0]) == 1
        if fused:  # the one pass covers the samples in their own order: its rows are the old log-probs' rows
            passes[0][0] = [list(range(n))]
        return _Plan(passes, fused)

    def _forward(self, learner: Learner, batch: _Batch, index: Sequence[int], grad: bool) -> Any:
        """Score the samples ``index`` in one pass (:func:`score_contexts`; entropy too on gradient passes).

        No-grad passes run in eval mode; gradient passes in eval mode with ``disable_dropout``, as TRL 0.9's
        PPOTrainer (its batched forward pass calls ``model.eval()``), else in train mode (LoRA/value-head dropout on).
        """
        train_mode = grad and not self.config.disable_dropout
        self.model.train(train_mode)
        learner.value_head.train(train_mode)
        with torch.enable_grad() if grad else torch.no_grad(), self._autocast():
            return score_contexts(
                self.model,
                [batch.queries[i] for i in index],
                [batch.responses[i] for i in index],
                learner.value_head,
                self.pad_token_id,
                dedup=self.config.dedup,
                with_entropy=grad,
                tree_attention=self.config.tree_attention,
                gradient_checkpointing=grad and self.config.gradient_checkpointing,
            )

    def _autocast(self) -> torch.autocast:
        """bfloat16 autocast for the update's passes when ``bf16`` (a no-op context otherwise). Every pass the loss
        compares (reference, old policy, gradient) runs in the same precision, so the KL penalty and the ratio see
        no precision gap; log-softmax and the loss stay in float32 (:func:`score_contexts` upcasts the logits)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def _old_pass(self, learner: Learner, batch: _Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The old policy's ``(n, R)`` log-probs and values: no-grad passes of at most ``max_contexts_per_pass``
        distinct contexts each (:meth:`_chunks`, bounded memory), their rows put back in sample order. Used whenever
        the fused single pass does not apply."""
        n, length = batch.mask.shape
        parts = self._chunks(range(n), batch.queries, batch.responses)
        scored = [self._forward(learner, batch, part, grad=False) for part in parts]
        order = torch.as_tensor([i for part in parts for i in part])
        old_logprobs = torch.empty((n, length), device=self.device)
        old_values = torch.empty((n, length), device=self.device)
        old_logprobs[order] = torch.cat([s.logprobs for s in scored])
        old_values[order] = torch.cat([s.values for s in scored])
        return old_logprobs, old_values

    def _fused_pass(self, learner: Learner, batch: _Batch) -> Any:
        """The fused single-pass shortcut, for an update that is ONE gradient pass (``ppo_epochs == 1``, one
        minibatch, at most ``max_contexts_per_pass`` contexts: :meth:`_plan`): that pass, over the samples in their
        own order, also gives the old log-probs and values, saving the separate no-grad pass.

        Exact: before the first optimizer step the policy IS the old policy, so the ratio is exactly 1, as in the
        paper's effective one-step-per-episode update. The pass runs in the gradient passes' mode, so without
        ``disable_dropout`` the old values carry its dropout (the separate pass would run without).
        """
        return self._forward(learner, batch, range(len(batch)), grad=True)

    def _minibatch_backward(
        self, learner: Learner, batch: _Batch, passes: list[list[int]], targets: _Targets, reuse: Any = None
    ) -> dict[str, float]:
        """Backpropagate one minibatch's clipped PPO loss (divided by ``gradient_accumulation_steps``), pass by
        pass; returns its :data:`LOSS_STATS`. ``reuse``: the fused pass, already run (:meth:`_fused_pass`).

        Chunked passes: a minibatch of more than ``max_contexts_per_pass`` distinct contexts comes as several
        passes (:meth:`_chunks`). Each pass's loss terms are sums divided by the MINIBATCH's token count, so the
        passes' terms and accumulated gradients add up exactly to the minibatch's own (memory bounded, update
        unchanged). A pass whose mean ratio exceeds ``ratio_threshold`` is skipped (no backward).
        """
        config, mask = self.config, batch.mask
        if reuse is not None and len(passes) != 1:
            raise ValueError("the fused pass is the whole update: one minibatch of one pass")
        total = float(mask[torch.as_tensor([i for part in passes for i in part])].sum())
        sums = dict.fromkeys(LOSS_STATS, 0.0)
        for part in passes:
            scored = reuse if reuse is not None else self._forward(learner, batch, part, grad=True)
            idx = torch.as_tensor(part, device=self.device)
            terms = ppo_loss(
                scored.logprobs,
                scored.values,
                targets.old_logprobs[idx],
                targets.old_values[idx],
                targets.advantages[idx],
                targets.returns[idx],
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
        return sums

    def _chunks(
        self, index: Sequence[int], queries: Sequence[Sequence[int]], responses: Sequence[Sequence[int]]
    ) -> list[list[int]]:
        """Split sample indices into passes of at most ``max_contexts_per_pass`` distinct contexts (bounded memory),
        keeping the samples of one query together (they share its forward pass); a query with more contexts than
        the limit is one pass of its own."""
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
        """Per epoch, the shuffled minibatches of sample indices (seeded by run, rank, episode and agent)."""
        rng = np.random.default_rng(derive_seed(self.config.seed, SHUFFLE_STREAM, self.rank, episode, learner.index))
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
                raise RuntimeError(f"adapter {learner.agent} diverged between processes: checksums {gathered.tolist()}")

    # -------------------------------------------------------------------------------------------- logging
    def _open_loggers(self) -> None:
        from moralgym.training.tracking import MetricsLogger

        if self.is_main:
            self._loggers = [MetricsLogger(self.output_dir, self.config, start_episode=self.episode)]

    def _log(self, metrics: dict[str, Any]) -> None:
        for logger in self._loggers:
            logger.log(metrics)

    def close_loggers(self) -> None:
        """Flush and close the metric sinks (``train`` does so at its end; a caller driving ``train_episode``
        itself calls this once it is done)."""
        for logger in self._loggers:
            logger.close()
        self._loggers = []

    # -------------------------------------------------------------------------------------------- saving
    def save_final(self) -> dict[str, Path]:
        """Write each agent's adapter with its value head: ``adapter/`` for the one that plays player_0 (a shared
        adapter included), ``adapter_player_1/``, ``adapter_player_2/`` ... for the other seats' own."""
        paths = {}
        if self.is_main:
            for agent, learner in self.learners.items():
                name = "adapter" if "player_0" in learner.seats else f"adapter_{agent}"
                paths[agent] = save_adapter(self.model, agent, self.output_dir / name, learner.value_head)
        self.accelerator.wait_for_everyone()
        return paths

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the adapter weights that a resumed run needs."""
        learners = {}
        for agent, learner in self.learners.items():
            learners[agent] = {
                "optimizer": learner.optimizer.state_dict(),
                "kl_controller": learner.kl_controller.state_dict(),
                "running": learner.running.state_dict(),
                "backward_passes": learner.backward_passes,
                "optimizer_steps": learner.optimizer_steps,
                "policy_rng": _policy_rng_state(learner.policy),
                # gradients accumulated but not yet stepped (accumulation across an episode boundary)
                "grads": [None if p.grad is None else p.grad.detach().cpu().clone() for p in _trained(learner)],
            }
        return {
            "episode": self.episode,
            "learners": learners,
            "reference_cache": self.reference_cache,
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
            },
            "config": self.config.to_dict(),
        }

    def save_checkpoint(self, barrier: bool = True) -> Path | None:
        """``checkpoints/episode-NNNNNN/``: adapters + value heads + ``trainer_state.pt`` + ``manifest.json`` (sizes
        and SHA-256s), written into a temporary directory and renamed (atomic); keeps the last two."""
        directory = self.output_dir / CHECKPOINTS_DIR / f"episode-{self.episode:06d}"
        if self.is_main:

            def write(target: Path) -> None:
                for agent, learner in self.learners.items():
                    save_adapter(self.model, agent, target / f"adapter_{agent}", learner.value_head)
                torch.save(self.state_dict(), target / STATE_FILE)

            write_checkpoint(directory, write, {"episode": self.episode, "config": self.config.to_dict()})
            for old in self._checkpoint_dirs()[:-2]:
                shutil.rmtree(old, ignore_errors=True)
            for logger in self._loggers:
                logger.flush()
        if barrier:
            self.accelerator.wait_for_everyone()
        return directory

    def resume(self, directory: str | os.PathLike | None = None) -> bool:
        """Load the given checkpoint, or else the newest one that verifies against its manifest (a damaged newer
        one is named in a warning line and skipped); returns False when there is none (fresh start)."""
        if directory is None:
            found, problems = find_checkpoint(self.output_dir)
            for problem in problems:
                if self.is_main:
                    print(f"[moralgym] warning: skipping a damaged checkpoint: {problem}", file=sys.stderr)
            if found is None:
                if problems:
                    raise RuntimeError(f"no valid checkpoint in {self.output_dir / CHECKPOINTS_DIR}")
                return False
            directory = found
        directory = Path(directory)
        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
        for agent, learner in self.learners.items():
            load_adapter_weights(self.model, agent, directory / f"adapter_{agent}")
            learner.value_head.load(directory / f"adapter_{agent}")
            saved = state["learners"][agent]
            learner.optimizer.load_state_dict(saved["optimizer"])
            learner.kl_controller.load_state_dict(saved["kl_controller"])
            learner.running.load_state_dict(saved["running"])
            learner.backward_passes = int(saved["backward_passes"])
            learner.optimizer_steps = int(saved["optimizer_steps"])
            _set_policy_rng_state(learner.policy, saved.get("policy_rng"))
            _set_grads(learner, saved.get("grads"))
            if self.world_size > 1 and any(g is not None for g in saved.get("grads") or []) and self.is_main:
                print(
                    "[moralgym] warning: this checkpoint holds a partly accumulated gradient (gradient accumulation "
                    "across an episode boundary) of process 0 only; with several processes the resumed run is not "
                    "bit-identical to an uninterrupted one (use ppo_epochs x minibatches a multiple of "
                    "gradient_accumulation_steps)",
                    file=sys.stderr,
                )
            learner.policy.invalidate_cache()
        self.reference_cache = dict(state["reference_cache"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        self.episode = int(state["episode"])
        return True

    # -------------------------------------------------------------------------------------------- Ctrl-C
    def _snapshot(self) -> dict[str, Any]:
        """The episode-boundary state, in memory (trainable tensors cloned on their device): what a checkpoint at
        this boundary would hold. Costs one copy of the adapters, value heads and optimizer moments."""
        learners = {}
        for agent, learner in self.learners.items():
            learners[agent] = {
                "tensors": [p.detach().clone() for p in _trained(learner)],
                "grads": [None if p.grad is None else p.grad.detach().clone() for p in _trained(learner)],
                "optimizer": copy.deepcopy(learner.optimizer.state_dict()),
                "kl_controller": copy.deepcopy(learner.kl_controller.state_dict()),
                "running": copy.deepcopy(learner.running.state_dict()),
                "backward_passes": learner.backward_passes,
                "optimizer_steps": learner.optimizer_steps,
                "policy_rng": copy.deepcopy(_policy_rng_state(learner.policy)),
            }
        return {
            "episode": self.episode,
            "learners": learners,
            "reference_cache_size": len(self.reference_cache),
            "rng": (random.getstate(), np.random.get_state(), torch.get_rng_state()),
        }

    def _restore(self, snapshot: dict[str, Any]) -> None:
        """Undo a partly trained episode: back to the state :meth:`_snapshot` took at its start."""
        for agent, learner in self.learners.items():
            saved = snapshot["learners"][agent]
            with torch.no_grad():
                for p, value in zip(_trained(learner), saved["tensors"], strict=True):
                    p.copy_(value)
            _set_grads(learner, saved["grads"])
            learner.optimizer.load_state_dict(saved["optimizer"])
            learner.kl_controller.load_state_dict(saved["kl_controller"])
            learner.running.load_state_dict(saved["running"])
            learner.backward_passes = saved["backward_passes"]
            learner.optimizer_steps = saved["optimizer_steps"]
            _set_policy_rng_state(learner.policy, saved["policy_rng"])
            learner.policy.invalidate_cache()
        # the cache is insertion-ordered: entries scored during the interrupted episode come last
        self.reference_cache = dict(itertools.islice(self.reference_cache.items(), snapshot["reference_cache_size"]))
        python, numpy_state, torch_state = snapshot["rng"]
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        self.episode = snapshot["episode"]

    def _checkpoint_interrupted(self) -> TrainingInterrupted:
        """Ctrl-C: roll an unfinished episode back, checkpoint the last completed one, close the metric sinks."""
        boundary = getattr(self, "_boundary", None)
        if boundary is not None:
            self._restore(boundary)
            self._boundary = None
        self.close_loggers()
        directory = None
        if self.is_main:
            # No barrier: the other processes may be anywhere (or already gone) after a Ctrl-C.
            directory = self.save_checkpoint(barrier=False)
        return TrainingInterrupted(self.episode, directory)


def _policy_rng_state(policy: Any) -> dict[str, Any] | None:
    """The policy's sampling and shuffle generators (informational: every episode reseeds them anyway)."""
    return policy.rng_state() if hasattr(policy, "rng_state") else None


def _set_policy_rng_state(policy: Any, state: dict[str, Any] | None) -> None:
    if state is not None and hasattr(policy, "set_rng_state"):
        policy.set_rng_state(state)


def _trained(learner: Learner) -> list[torch.nn.Parameter]:
    """A agent's trained parameters in a fixed order: its adapter's, then its value head's."""
    return [*learner.params, *learner.value_head.parameters()]


def _set_grads(learner: Learner, grads: list[torch.Tensor | None] | None) -> None:
    if grads is None:  # a checkpoint from before gradients were saved
        return
    for p, grad in zip(_trained(learner), grads, strict=True):
        p.grad = None if grad is None else grad.to(device=p.device, dtype=p.dtype).clone()


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
