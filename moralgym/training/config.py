"""``TrainingConfig``: every knob of a training run, as one TRL-style dataclass made of argument groups.

Each field carries ``metadata={"help": ...}``, so :class:`transformers.HfArgumentParser` / :class:`trl.TrlParser`
turn it into a CLI (``--learning_rate 1e-4``) and a YAML schema (``configs/*.yaml``) for free. ``__post_init__``
rejects bad values with a ``ValueError`` that names the field, the value received and what is accepted.

The fields come in groups, each its own dataclass: :class:`RunArguments`, :class:`ModelArguments`,
:class:`EnvironmentArguments`, :class:`PromptArguments`, :class:`PPOArguments`, :class:`TrainingEvaluationArguments`
(the evaluation after training) and :class:`GRPOArguments` (read only by ``algorithm: grpo``). ``TrainingConfig``
inherits them all, so a run's config stays flat: the YAML files in ``configs/`` set ``num_generations`` or
``eval_episodes`` at the top level, ``config.json`` records every field under its own name, ``--resume`` compares
fields by name (:data:`RESULT_NEUTRAL_FIELDS`) and readers write ``config.eval_seed``. The CLI parses the groups as
separate dataclasses (:data:`TRAINING_ARGUMENT_GROUPS`), so ``moralgym train --help`` lists the fields by group, and
joins them with :meth:`TrainingConfig.from_parts`. The class is not called ``PPOConfig``: TRL has a class of that
name, and this one configures GRPO runs and the evaluation too.

Defaults are the paper's (Tennant, Hailes, Musolesi, ICLR 2025, via TRL 0.9 defaults; see docs/reproduction.md):
Adam at 1.41e-5, one episode of ``num_rounds`` rounds per batch, 4 PPO epochs over one minibatch, 4 gradient
accumulation steps, clip 0.2/0.2, ``vf_coef`` 0.1, ``gamma`` 1, ``lam`` 0.95, adaptive KL (0.2, target 6, horizon
10000), score scaling + normalisation, ratio threshold 10, LoRA r=64 / alpha 32 / dropout 0.05 on all linear layers.

A note on the paper's gradient accumulation: the authors set ``gradient_accumulation_steps=4`` on TRL's config after
it was built, so TRL still ran 4 epochs x 1 minibatch per episode while Accelerate accumulated over 4 backward
passes. The effect is ONE Adam step per episode, on the full batch, with the 4 passes computed at identical weights
(ratio 1). ``gradient_accumulation_steps`` here counts backward passes across epochs exactly as Accelerate did, so
the paper config reproduces that; ``ppo_epochs: 1, gradient_accumulation_steps: 1`` gives the same update 4x cheaper
(exactly with ``disable_dropout``, as in the paper configs; up to dropout noise without it).

Train/eval mode: TRL 0.9's PPOTrainer ran every forward of a PPO step in eval mode, the gradient pass included
(its batched forward pass calls ``model.eval()``), so the authors' update had no dropout and the first-epoch ratio
was exactly 1; ``disable_dropout: true`` (every paper config) does the same. Its ``train_minibatch`` then left the
model in train mode, so the authors sampled each episode after the first update with LoRA dropout on; moralgym
always samples in eval mode (no dropout), which keeps the policy's prefix cache exact.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

ALGORITHMS = ("ppo", "grpo")
OPPONENT_LLM = "llm"
#: The adapter (and learner) name of the learning seats of an N-player run with ``parameter_sharing``.
SHARED_ADAPTER = "shared"
REPORT_TO = ("none", "tensorboard", "wandb", "all")
DTYPES = ("float32", "bfloat16", "float16", "auto")
#: Seeds are 32-bit (numpy's ``np.random.seed`` and torch generators take them as is).
MAX_SEED = 2**32 - 1
#: glibc caps ``M_MMAP_THRESHOLD`` at 32 MiB on 64-bit systems (``mallopt`` refuses more).
MAX_MMAP_THRESHOLD_MIB = 32


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class RunArguments:
    """What the run is (algorithm, seed, length) and where and how it writes, logs, checkpoints and stops."""

    _argument_group_name = "run"

    output_dir: str = field(default="runs/moralgym", metadata=_help("Directory for the adapter, metrics, checkpoints."))
    algorithm: str = field(default="ppo", metadata=_help("'ppo' (the paper's algorithm) or 'grpo' (TRL GRPOTrainer)."))
    seed: int = field(
        default=1, metadata=_help("Run seed: every random source (envs, sampling, shuffles) derives from it.")
    )
    num_episodes: int = field(default=1000, metadata=_help("Training episodes (= PPO updates). Paper: 1000."))
    stop_after_episodes: int | None = field(
        default=None,
        metadata=_help("Stop (with a checkpoint) after this many episodes of the run, as if killed; for resume tests."),
    )
    save_every: int = field(
        default=100, metadata=_help("Write a resumable checkpoint every this many episodes (0: never).")
    )
    resume: bool = field(
        default=False,
        metadata=_help(
            "Continue from the newest valid checkpoint in output_dir (refused if a field outside "
            "moralgym.training.config.RESULT_NEUTRAL_FIELDS changed)."
        ),
    )
    overwrite: bool = field(
        default=False,
        metadata=_help(
            "Replace the run already in output_dir: its run files (adapter, metrics, checkpoints...) are "
            "deleted first. Without it (or --resume) an output_dir holding a run is refused."
        ),
    )
    report_to: str = field(default="none", metadata=_help("Also log to 'tensorboard', 'wandb', 'all' or 'none'."))
    log_csv: bool = field(default=False, metadata=_help("Also write metrics.csv next to metrics.jsonl."))
    plot: bool = field(default=True, metadata=_help("Write learning_curve.png (matplotlib) at the end."))
    progress_bar: bool = field(default=True, metadata=_help("Show a tqdm progress bar."))
    torch_num_threads: int | None = field(
        default=None, metadata=_help("torch.set_num_threads (None: torch's default).")
    )
    mmap_threshold_mib: int = field(
        default=1,
        metadata=_help(
            "glibc's mmap threshold while training, in MiB (1-32): a freed block from this size up goes straight "
            "back to the system. Higher: fewer page faults (faster), more memory held. The evaluation after "
            "training runs at 1; MALLOC_MMAP_THRESHOLD_ in the environment overrides both (moralgym.training.memory)."
        ),
    )
    run_name: str | None = field(
        default=None, metadata=_help("Name shown in TensorBoard / W&B (default: output_dir's name).")
    )


@dataclass
class ModelArguments:
    """The base model, its dtype and quantisation, and the LoRA adapter trained on it."""

    _argument_group_name = "model"

    model_name_or_path: str = field(
        default="default",
        metadata=_help("'default' (embedded SmolLM2-135M-Instruct), a hub id (google/gemma-2-2b-it) or a local path."),
    )
    dtype: str = field(default="float32", metadata=_help("Weights dtype: float32, bfloat16, float16 or auto."))
    load_in_4bit: bool = field(default=False, metadata=_help("Quantise the base to NF4 with bitsandbytes (QLoRA)."))
    lora_r: int = field(default=64, metadata=_help("LoRA rank. Paper: 64."))
    lora_alpha: int = field(default=32, metadata=_help("LoRA alpha. Paper code: 32."))
    lora_dropout: float = field(default=0.05, metadata=_help("LoRA dropout. Paper code: 0.05."))
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata=_help("Modules LoRA adapts: 'all-linear' (paper) or names such as q_proj v_proj."),
    )
    lora_layers_to_transform: list[int] | None = field(
        default=None, metadata=_help("Only adapt these decoder layers (None: all). Needs explicit target module names.")
    )
    init_adapter: str | None = field(
        default=None, metadata=_help("Start from this saved adapter directory (e.g. a Game-trained model).")
    )
    value_head_dropout: float = field(default=0.1, metadata=_help("Dropout before the value head's Linear (TRL: 0.1)."))
    disable_dropout: bool = field(
        default=False,
        metadata=_help(
            "Run the update's gradient passes in eval mode (LoRA and value-head dropout off), as TRL 0.9's PPOTrainer "
            "did for the paper: first-epoch ratio exactly 1. Paper configs: true. Default false (gradient passes in "
            "train mode, dropout on) keeps earlier runs' results. Without dropout the shared-context (dedup) pass is "
            "also exactly the per-sample one. Sampling and no-grad scoring passes are always in eval mode."
        ),
    )


@dataclass
class EnvironmentArguments:
    """The training game, the opponent, and the rewards the learner(s) are paid."""

    _argument_group_name = "environment"

    game: str = field(
        default="ipd",
        metadata=_help(
            "Training game: a two-player game name (paper: ipd) or an N-player one (public_goods, n_player_ipd, "
            "threshold_public_good, volunteers_dilemma, n_player_snowdrift)."
        ),
    )
    num_players: int | None = field(
        default=None,
        metadata=_help(
            "Players of an N-player game (null: moralgym.envs.n_player.DEFAULT_NUM_PLAYERS, 4); two-player games "
            "leave it null."
        ),
    )
    game_params: dict | str | None = field(
        default=None,
        metadata=_help(
            "Parameters of an N-player game's builder, a YAML mapping (or JSON on the command line), e.g. "
            "{multiplier: 3.0} for public_goods."
        ),
    )
    opponent: str = field(
        default="tit_for_tat",
        metadata=_help(
            "A fixed strategy name (tit_for_tat, random, ...; in an N-player game one of the N-player strategies, "
            "played in every seat that does not learn) or 'llm' (every seat learns)."
        ),
    )
    learning_seats: int = field(
        default=1,
        metadata=_help(
            "N-player games: the first k seats are LLM learners, the other num_players - k play the opponent "
            "strategy (two-player games: 1; use opponent 'llm' for two learners)."
        ),
    )
    parameter_sharing: bool = field(
        default=False,
        metadata=_help(
            "N-player games with several learning seats: one adapter, value head and optimizer (adapter 'shared') "
            "trained on every learning seat's samples together; false: one adapter and PPO per seat on one base."
        ),
    )
    reward: str = field(
        default="deontological",
        metadata=_help(
            "Reward of the learner (N-player: of every learning seat, unless opponent_reward): game, deontological, "
            "utilitarian, game_deontological, game_then_deontological, game_then_utilitarian (N-player games also "
            "inequity_aversion and the virtues)."
        ),
    )
    opponent_reward: str | None = field(
        default=None,
        metadata=_help(
            "Reward of the second learner when opponent is 'llm'; in an N-player game that of every learning seat "
            "but player_0 (default: same as reward)."
        ),
    )
    switch_episode: int = field(
        default=500, metadata=_help("Episode at which game_then_* schedules switch. Paper: 500.")
    )
    penalty: float = field(default=3.0, metadata=_help("Deontological penalty xi. Paper: 3."))
    reward_norm: str = field(
        default="share",
        metadata=_help(
            "N-player games: the Deontological norm, how much a defection weighs given the others' cooperation "
            "last round: share, any or majority (moralgym.envs.n_player.rewards)."
        ),
    )
    illegal_reward: float = field(default=-6.0, metadata=_help("Reward of an illegal answer. Paper: -6."))
    partner_illegal: str = field(
        default="last_legal",
        metadata=_help(
            "How a legal answer is paid when the partner's answer was illegal (LLM vs LLM only): 'last_legal' scores "
            "the round as if the partner had repeated its last legal move; 'authors' is the paper code's rule "
            "(Utilitarian 0, Game+Deontological the illegal reward, Game and Deontological as 'last_legal'). "
            "Paper LLM-vs-LLM configs: authors. Table in moralgym.envs.matrix_game."
        ),
    )
    num_rounds: int = field(default=5, metadata=_help("Rounds per episode. Paper: 5 vs a fixed opponent, 3 vs an LLM."))
    num_envs: int = field(
        default=1, metadata=_help("Parallel games per episode (batch = num_envs x num_rounds decisions). Paper: 1.")
    )


@dataclass
class PromptArguments:
    """How a decision is asked of the LLM and how many tokens it answers with."""

    _argument_group_name = "prompt"

    action_tokens: list[str] = field(
        default_factory=lambda: ["action12"],
        metadata=_help(
            "Training token pair(s): a name (action12) or 'c,d'. Paper: action12. Several pairs teach the rule "
            "rather than one literal answer; token_schedule says how they are used."
        ),
    )
    token_schedule: str = field(
        default="rotate",
        metadata=_help(
            "With several action_tokens: 'rotate' (episode e uses pair e mod K: cost of one pair) or 'mix' (game i "
            "of episode e uses pair (i + e) mod K: every batch mixes them, K times the distinct prompts)."
        ),
    )
    phrasing: str = field(default="paper", metadata=_help("Prompt wording (moralgym.agents.llm.prompts.PHRASINGS)."))
    answer_prefix: str = field(
        default="",
        metadata=_help("Text the assistant turn is pre-filled with ('action' helps small models). Paper: ''."),
    )
    max_new_tokens: int = field(
        default=2, metadata=_help("Tokens sampled per decision, always exactly this many. Paper: 2.")
    )


@dataclass
class PPOArguments:
    """The PPO update (the paper's algorithm; TRL 0.9 semantics, see the module docstring)."""

    _argument_group_name = "PPO"

    learning_rate: float = field(default=1.41e-5, metadata=_help("Adam learning rate. Paper: 1.41e-5."))
    ppo_epochs: int = field(default=4, metadata=_help("Passes over each batch. Paper: 4."))
    mini_batch_size: int | None = field(
        default=None, metadata=_help("Decisions per minibatch (None: the whole batch, as the paper).")
    )
    gradient_accumulation_steps: int = field(
        default=4,
        metadata=_help("Backward passes per optimizer step, counted across epochs (Accelerate's way). Paper: 4."),
    )
    cliprange: float = field(default=0.2, metadata=_help("PPO ratio clip range."))
    cliprange_value: float = field(default=0.2, metadata=_help("Value clip range around the old values."))
    vf_coef: float = field(default=0.1, metadata=_help("Value loss coefficient."))
    gamma: float = field(default=1.0, metadata=_help("Discount over response tokens."))
    lam: float = field(default=0.95, metadata=_help("GAE lambda over response tokens."))
    whiten_advantages: bool = field(default=True, metadata=_help("Whiten advantages over the batch (TRL always did)."))
    adap_kl_ctrl: bool = field(default=True, metadata=_help("Adaptive KL coefficient (else fixed at init_kl_coef)."))
    init_kl_coef: float = field(default=0.2, metadata=_help("Initial KL penalty coefficient beta."))
    target_kl: float = field(default=6.0, metadata=_help("Target KL of the adaptive controller (TRL 'target')."))
    kl_horizon: float = field(default=10000, metadata=_help("Horizon of the adaptive controller (TRL 'horizon')."))
    use_score_scaling: bool = field(default=True, metadata=_help("Divide scores by their running std."))
    use_score_norm: bool = field(default=True, metadata=_help("Also subtract the running mean (needs score scaling)."))
    score_clip: float | None = field(
        default=None, metadata=_help("Clip normalised scores to +-score_clip (paper: off).")
    )
    ratio_threshold: float = field(default=10.0, metadata=_help("Skip a minibatch whose mean ratio exceeds this."))
    max_grad_norm: float | None = field(
        default=None, metadata=_help("Clip the gradient norm (None: off, as the paper).")
    )
    max_contexts_per_pass: int = field(
        default=64,
        metadata=_help(
            "Most distinct contexts per forward/backward pass (memory bound); a larger minibatch is "
            "split into chunks whose gradients add up exactly."
        ),
    )
    dedup: bool = field(
        default=True, metadata=_help("One forward/backward per distinct (query, response) context (same gradient).")
    )
    tree_attention: bool = field(
        default=True,
        metadata=_help(
            "Forward a pass's distinct contexts as one row of distinct tokens under an ancestor mask (no copy of "
            "the shared prefixes' KV cache per context); false: one batched pass per prefix-tree level."
        ),
    )
    bf16: bool = field(
        default=False,
        metadata=_help(
            "Run the update's passes (reference, old policy, gradient) under bfloat16 autocast: about 2x faster on "
            "CPUs with AMX or avx512_bf16, and half the activations; sampling stays in the weights' dtype."
        ),
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata=_help(
            "Recompute each decoder layer in the backward pass instead of keeping its activations (one extra "
            "forward; same gradient). Applies to tree-attention passes."
        ),
    )


@dataclass
class TrainingEvaluationArguments:
    """The before/after evaluation run once after training (``evaluate: true``).

    Every field here is result-neutral (:data:`RESULT_NEUTRAL_FIELDS`): the evaluation runs after the last episode,
    so a ``--resume`` may change it and config.json then describes the evaluation that actually ran.
    """

    _argument_group_name = "evaluation after training"

    evaluate: bool = field(default=False, metadata=_help("Evaluate the base and the trained model (paper protocol)."))
    eval_games: list[str] = field(
        default_factory=lambda: ["ipd", "stag_hunt", "chicken", "bach_or_stravinsky", "defective_coordination"],
        metadata=_help("Games of the before/after evaluation (an N-player run is evaluated on its training game)."),
    )
    eval_action_tokens: str = field(default="action34", metadata=_help("Token pair at evaluation. Paper: action34."))
    eval_episodes: int = field(default=10, metadata=_help("Evaluation episodes per game. Paper: 10."))
    eval_rounds: int = field(default=5, metadata=_help("Rounds per evaluation episode. Paper: 5."))
    eval_opponent: str = field(default="random", metadata=_help("Evaluation opponent. Paper: random."))
    eval_seed: int = field(default=100, metadata=_help("Fixed evaluation seed (same prompts for base and trained)."))
    eval_kv_cache_mib: int = field(
        default=256,
        metadata=_help(
            "KV-cache budget of each evaluation policy (base and fine-tuned), in MiB: kept prompt prefixes make "
            "later decisions one-token steps. Lower: less memory, more time. bfloat16 KV holds twice the prefixes."
        ),
    )


@dataclass
class GRPOArguments:
    """Knobs only ``algorithm: grpo`` reads (TRL's GRPOTrainer); PPO runs ignore them but still record them."""

    _argument_group_name = "GRPO (algorithm: grpo)"

    num_generations: int = field(default=4, metadata=_help("GRPO: samples per state (group size), >= 2."))
    grpo_beta: float = field(
        default=0.04, metadata=_help("GRPO: KL coefficient in the loss (0 disables the reference).")
    )


#: Fields a ``--resume`` may change without changing the result, so the resumed run is still the same run: where
#: results go (``output_dir``, ``run_name``), how they are logged (``report_to``, ``log_csv``, ``progress_bar``,
#: ``plot``), when checkpoints are written and the run stops (``save_every``, ``stop_after_episodes``, ``resume``,
#: ``overwrite``: every episode's randomness is derived from (seed, episode), so checkpoints do not steer it), the
#: thread count (``torch_num_threads``: a machine setting, like the CPU; bit-identity is tested at equal thread
#: counts), and the evaluation that runs once after training (``evaluate``, ``eval_*``: config.json then describes
#: the evaluation that actually ran). ``num_episodes`` may also change, to any value not below the checkpoint's
#: episode: an N-episode run is the first N episodes of a longer one. Any other change is refused, listing the fields.
RESULT_NEUTRAL_FIELDS = frozenset(
    {
        "output_dir",
        "run_name",
        "report_to",
        "log_csv",
        "plot",
        "progress_bar",
        "torch_num_threads",
        "gradient_checkpointing",
        "save_every",
        "stop_after_episodes",
        "resume",
        "overwrite",
        *(f.name for f in dataclasses.fields(TrainingEvaluationArguments)),
    }
)


@dataclass
class TrainingConfig(
    GRPOArguments,
    TrainingEvaluationArguments,
    PPOArguments,
    PromptArguments,
    EnvironmentArguments,
    ModelArguments,
    RunArguments,
):
    """Configuration of a moralgym training run (PPO as in the paper, or GRPO as a second algorithm).

    The bases are listed last group first: a dataclass orders inherited fields from the last base to the first, so
    the fields keep the order of the groups (run, model, ..., GRPO), which is the order of ``config.json``.
    """

    _argument_group_name = "training"

    def __post_init__(self) -> None:
        if isinstance(self.action_tokens, str):
            self.action_tokens = [self.action_tokens]
        if not self.action_tokens:
            raise ValueError("action_tokens must name at least one token pair, e.g. [action12]")
        if isinstance(self.lora_target_modules, str):
            self.lora_target_modules = [self.lora_target_modules]
        if isinstance(self.eval_games, str):
            self.eval_games = [g.strip() for g in self.eval_games.split(",")]
        self._check_choice("algorithm", ALGORITHMS)
        self._check_choice("token_schedule", ("rotate", "mix"))
        self._check_choice("report_to", REPORT_TO)
        self._check_choice("dtype", DTYPES)
        from moralgym.envs.rewards import PARTNER_ILLEGAL_RULES

        self._check_choice("partner_illegal", PARTNER_ILLEGAL_RULES)
        for name in (
            "num_episodes",
            "num_rounds",
            "num_envs",
            "ppo_epochs",
            "gradient_accumulation_steps",
            "max_new_tokens",
            "eval_episodes",
            "eval_rounds",
            "lora_r",
            "lora_alpha",
            "max_contexts_per_pass",
            "learning_seats",
            "eval_kv_cache_mib",
        ):
            self._check_positive_int(name)
        self._check_players()
        for f in dataclasses.fields(self):  # NaN / inf pass most range checks: refuse them everywhere
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}; pass a number such as 0.1")
        for name in ("seed", "eval_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
                raise ValueError(f"{name} must be an integer in [0, {MAX_SEED}], got {value!r}; e.g. --{name} 1")
        threshold = self.mmap_threshold_mib
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int)
            or not 1 <= threshold <= MAX_MMAP_THRESHOLD_MIB
        ):
            raise ValueError(
                f"mmap_threshold_mib must be an integer in [1, {MAX_MMAP_THRESHOLD_MIB}] (glibc's range), got "
                f"{threshold!r}; e.g. --mmap_threshold_mib 4"
            )
        for name in ("save_every", "switch_episode"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("learning_rate", "cliprange", "cliprange_value", "target_kl", "kl_horizon", "ratio_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("vf_coef", "init_kl_coef", "grpo_beta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        for name in ("gamma", "lam"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        for name in ("lora_dropout", "value_head_dropout"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
        if self.mini_batch_size is not None:
            self._check_positive_int("mini_batch_size")
            if self.mini_batch_size > self.batch_size:
                raise ValueError(
                    f"mini_batch_size ({self.mini_batch_size}) is larger than the batch ({self._batch_formula()} = "
                    f"{self.batch_size}); lower it or set it to null for the whole batch"
                )
        if self.stop_after_episodes is not None:
            self._check_positive_int("stop_after_episodes")
        if self.use_score_norm and not self.use_score_scaling:
            raise ValueError("use_score_norm=True needs use_score_scaling=True (TRL semantics); enable both or neither")
        if self.score_clip is not None and not self.score_clip > 0:
            raise ValueError(f"score_clip must be positive or null, got {self.score_clip!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive or null, got {self.max_grad_norm!r}")
        if self.lora_layers_to_transform is not None and self.lora_target_modules == ["all-linear"]:
            raise ValueError(
                "lora_layers_to_transform needs explicit lora_target_modules (peft cannot combine it with "
                "'all-linear'); e.g. --lora_target_modules q_proj k_proj v_proj o_proj gate_proj up_proj down_proj"
            )
        if self.algorithm == "grpo":
            if self.num_generations < 2:
                raise ValueError(
                    f"num_generations must be >= 2 for GRPO (it needs a group baseline), got {self.num_generations}"
                )
            if self.is_two_learners:
                raise ValueError(
                    "algorithm 'grpo' supports fixed opponents only; use algorithm 'ppo' for opponent 'llm'"
                )
        self._check_names()

    # ------------------------------------------------------------------------------------------------ derived
    @property
    def batch_size(self) -> int:
        """Decisions per learner per episode (the PPO batch): a shared adapter learns from all its seats."""
        return self.num_envs * self.num_rounds * self.seats_per_learner

    @property
    def seats_per_learner(self) -> int:
        """Seats whose samples one learner trains on: every learning seat with ``parameter_sharing``, else one."""
        return len(self.learners) if self.parameter_sharing else 1

    def _batch_formula(self) -> str:
        return "num_envs x num_rounds" + (" x learning seats" if self.seats_per_learner > 1 else "")

    @property
    def minibatch_size(self) -> int:
        return self.mini_batch_size or self.batch_size

    @property
    def is_two_learners(self) -> bool:
        return self.opponent.strip().lower() == OPPONENT_LLM

    @property
    def is_n_player(self) -> bool:
        """The game is a name of the N-player registry (:mod:`moralgym.envs.n_player`; the two registries share no
        name)."""
        from moralgym.envs.n_player.games import N_PLAYER_GAMES

        return self.game in N_PLAYER_GAMES

    @property
    def seats(self) -> list[str]:
        """Every seat of the training game, in seat order."""
        return [f"player_{j}" for j in range(self.num_players if self.is_n_player else 2)]

    @property
    def learners(self) -> list[str]:
        """Seats that learn: ``["player_0"]``, or both in LLM-vs-LLM; in an N-player game the first
        ``learning_seats`` seats, or every seat with opponent ``llm``."""
        if not self.is_n_player:
            return ["player_0", "player_1"] if self.is_two_learners else ["player_0"]
        count = self.num_players if self.is_two_learners else self.learning_seats
        return self.seats[:count]

    @property
    def fixed_seats(self) -> list[str]:
        """Seats that play the fixed ``opponent`` strategy (none when every seat learns)."""
        return self.seats[len(self.learners) :]

    @property
    def learner_groups(self) -> dict[str, list[str]]:
        """Adapter name -> the seats it plays: one adapter per learning seat, named after it, or with
        ``parameter_sharing`` the one adapter :data:`SHARED_ADAPTER` for all of them (in seat order, the order its
        samples are concatenated in)."""
        if self.parameter_sharing:
            return {SHARED_ADAPTER: self.learners}
        return {seat: [seat] for seat in self.learners}

    def adapter_of(self, seat: str) -> str:
        """The adapter that plays ``seat`` (a learning seat)."""
        return SHARED_ADAPTER if self.parameter_sharing else seat

    def reward_spec(self, agent: str) -> Any:
        """The reward object of a agent, built by name (schedules get ``switch_episode``); in an N-player game the
        N-player reward of that name, with ``reward_norm``."""
        name = self.reward if agent == "player_0" or self.opponent_reward is None else self.opponent_reward
        kwargs: dict[str, Any] = {"illegal_reward": self.illegal_reward, "penalty": self.penalty}
        if name.replace("-", "_").lower().startswith("game_then"):
            kwargs["switch_episode"] = self.switch_episode
        if self.is_n_player:
            from moralgym.envs.n_player.rewards import get_n_player_reward

            return get_n_player_reward(name, norm=self.reward_norm, **kwargs)
        from moralgym.envs import get_reward

        return get_reward(name, **kwargs)

    @classmethod
    def from_parts(cls, *parts: Any) -> TrainingConfig:
        """Join argument groups parsed separately (the CLI's :data:`TRAINING_ARGUMENT_GROUPS`) into one validated
        config; every field must come from exactly one part."""
        values: dict[str, Any] = {}
        for part in parts:
            for f in dataclasses.fields(part):
                if f.name in values:
                    raise ValueError(f"field {f.name} is given by two argument groups")
                values[f.name] = getattr(part, f.name)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def result_changes(self, saved: dict[str, Any], episode: int = 0) -> dict[str, tuple[Any, Any]]:
        """Fields that differ from ``saved`` (a checkpoint's or config.json's config) and would change the result
        of a run resumed at ``episode``: ``{name: (saved value, this value)}``. Fields missing from ``saved`` (an
        older moralgym) count as their default."""
        changes: dict[str, tuple[Any, Any]] = {}
        for f in dataclasses.fields(self):
            if f.name in RESULT_NEUTRAL_FIELDS:
                continue
            if f.name in saved:
                old = saved[f.name]
            elif f.default is not dataclasses.MISSING:
                old = f.default
            elif f.default_factory is not dataclasses.MISSING:
                old = f.default_factory()
            else:  # pragma: no cover - every field has a default
                continue
            new = getattr(self, f.name)
            if isinstance(old, tuple):
                old = list(old)
            if f.name == "num_episodes":
                if new < episode:
                    changes[f.name] = (old, new)
                continue
            if old != new:
                changes[f.name] = (old, new)
        return changes

    # ------------------------------------------------------------------------------------------------ checks
    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")

    def _check_positive_int(self, name: str) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def _check_players(self) -> None:
        """The N-player fields against the game's kind (two-player or N-player), with one-line errors that name the
        value and the fix; resolves ``num_players`` (null -> the N-player default) and a JSON ``game_params``."""
        from moralgym.envs.n_player.games import DEFAULT_NUM_PLAYERS, list_n_player_games
        from moralgym.envs.n_player.rewards import DEFAULT_NORM, DEONTOLOGICAL_NORMS

        self._check_choice("reward_norm", tuple(DEONTOLOGICAL_NORMS))
        self.game_params = _parse_game_params(self.game_params)
        if not self.is_n_player:
            n_player_games = ", ".join(list_n_player_games())
            for name, value, default in (
                ("num_players", self.num_players, None),
                ("game_params", self.game_params, None),
                ("learning_seats", self.learning_seats, 1),
                ("parameter_sharing", self.parameter_sharing, False),
                ("reward_norm", self.reward_norm, DEFAULT_NORM),
            ):
                if value != default:
                    leave = "unset" if default is None else f"at {default!r}"
                    raise ValueError(
                        f"{name}={value!r} applies to N-player games, but game {self.game!r} is not one; pick an "
                        f"N-player game ({n_player_games}) or leave {name} {leave}"
                        + (" (two learners in a two-player game: opponent llm)" if name == "learning_seats" else "")
                    )
            return
        if self.num_players is None:
            self.num_players = DEFAULT_NUM_PLAYERS
        players = self.num_players
        if isinstance(players, bool) or not isinstance(players, int) or players < 2:
            raise ValueError(f"num_players must be an integer >= 2 (players of {self.game!r}), got {players!r}")
        if self.learning_seats > players:
            raise ValueError(
                f"learning_seats ({self.learning_seats}) is larger than num_players ({players}); pass at most "
                f"{players} (opponent llm: every seat learns)"
            )
        if self.is_two_learners and self.learning_seats not in (1, players):
            raise ValueError(
                f"opponent 'llm' makes all {players} seats learn, but learning_seats is {self.learning_seats}; "
                f"leave learning_seats at 1 (or {players}), or name a fixed strategy as opponent"
            )
        if self.parameter_sharing and len(self.learners) < 2:
            raise ValueError(
                "parameter_sharing shares one adapter between learning seats, but only player_0 learns; set "
                "learning_seats >= 2 (or opponent llm), or parameter_sharing false"
            )
        if self.partner_illegal != "last_legal":
            raise ValueError(
                f"partner_illegal {self.partner_illegal!r} is a two-player rule; N-player games score an illegal "
                "answer's partners by 'last_legal' (moralgym.envs.n_player.rewards): leave partner_illegal at last_legal"
            )
        if self.algorithm == "grpo":
            raise ValueError(
                f"algorithm 'grpo' trains on two-player games only, got the N-player game {self.game!r}; use "
                "algorithm 'ppo'"
            )
        if self.evaluate and self.game_params:
            raise ValueError(
                f"evaluate: the evaluation after training plays {self.game!r} with its default parameters (the "
                f"harness takes no game_params), not game_params {self.game_params}; set evaluate false, or drop "
                "game_params"
            )

    def _check_names(self) -> None:
        """Resolve game, opponent, rewards and tokens now, so a typo fails before the model loads."""
        if self.is_n_player:
            self._check_n_player_names()
        else:
            self._check_two_player_names()
        self._check_tokens()

    def _check_n_player_names(self) -> None:
        """:meth:`_check_names` of an N-player run: game, rewards and strategies in the N-player registries."""
        from moralgym.envs.n_player import get_n_player_game, make_n_player_opponent

        try:
            get_n_player_game(self.game, self.num_players, **(self.game_params or {}))
        except (KeyError, TypeError, ValueError) as error:
            which = "game_params" if self.game_params and not isinstance(error, KeyError) else "game"
            raise ValueError(f"{which}: {_message(error)}") from None
        for agent in self.learners:
            try:
                self.reward_spec(agent)
            except (KeyError, TypeError) as error:
                which = "reward" if agent == "player_0" or self.opponent_reward is None else "opponent_reward"
                raise ValueError(f"{which}: {_message(error)}") from None
        for name in ("opponent", "eval_opponent"):
            value = getattr(self, name)
            if name == "opponent" and self.is_two_learners:
                continue
            try:
                make_n_player_opponent(value)
            except (KeyError, TypeError) as error:
                hint = "; or 'llm' for every seat to learn" if name == "opponent" else ""
                raise ValueError(f"{name}: {_message(error)} (N-player game {self.game!r}{hint})") from None

    def _check_two_player_names(self) -> None:
        """:meth:`_check_names` of a two-player run."""
        from moralgym.envs import get_game, make_opponent

        try:
            get_game(self.game)
        except KeyError as error:
            from moralgym.envs.n_player.games import list_n_player_games

            raise ValueError(f"game: {_message(error)}; N-player games: {', '.join(list_n_player_games())}") from None
        except ValueError as error:
            raise ValueError(f"game: {error}") from None
        for agent in self.learners:
            try:
                self.reward_spec(agent)
            except (KeyError, TypeError) as error:
                which = "reward" if agent == "player_0" else "opponent_reward"
                raise ValueError(f"{which}: {error}") from None
        for name in ("opponent", "eval_opponent"):
            value = getattr(self, name)
            if name == "opponent" and self.is_two_learners:
                continue
            try:
                make_opponent(value)
            except (KeyError, TypeError) as error:
                raise ValueError(f"{name}: {error} (or 'llm' for a second learning LLM)") from None

    def _check_tokens(self) -> None:
        try:
            from moralgym.agents.llm.prompts import get_action_tokens

            for name in ("action_tokens", "eval_action_tokens"):
                values = getattr(self, name)
                for value in values if isinstance(values, list) else [values]:
                    try:
                        get_action_tokens(value)
                    except (KeyError, TypeError, ValueError) as error:
                        raise ValueError(f"{name}: {error}") from None
        except ImportError:  # the LLM extra is not installed: checked again when the model loads
            pass


def _message(error: BaseException) -> str:
    """An error's message, without the quotes ``str(KeyError(...))`` adds."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def _parse_game_params(value: Any) -> dict[str, Any] | None:
    """``game_params`` as a dict: a YAML mapping as is, a command-line string parsed as JSON (``{"multiplier": 3}``)
    or YAML; null or an empty mapping is ``None``."""
    if isinstance(value, str):
        import yaml

        try:
            value = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise ValueError(
                f"game_params must be a mapping such as '{{\"multiplier\": 3.0}}', got {value!r}"
            ) from None
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ValueError(
            f"game_params must be a mapping of parameter names to values, e.g. {{multiplier: 3.0}}, got {value!r}"
        )
    return dict(value) or None


#: The argument groups of :class:`TrainingConfig` in field order: the CLI parses each as its own dataclass (one
#: ``--help`` section each) and joins them with :meth:`TrainingConfig.from_parts`.
TRAINING_ARGUMENT_GROUPS: tuple[type, ...] = (
    RunArguments,
    ModelArguments,
    EnvironmentArguments,
    PromptArguments,
    PPOArguments,
    TrainingEvaluationArguments,
    GRPOArguments,
)
