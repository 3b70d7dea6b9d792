"""Rollouts: ``num_envs`` PettingZoo ``MatrixGameEnv`` games played in lock-step by the episode runner
(:mod:`moralgym.agents.runner`), every decision batched.

The trainer never computes a reward: each env is wrapped in :class:`~moralgym.envs.MoralRewardWrapper` with one
reward per seat, and the reward a sample is trained on is the record's ``reward``, the env's ``rewards[seat]``. An
illegal answer is passed to the env as ``ILLEGAL`` and gets the env's illegal-move reward; it is still a training
sample.

Randomness is a pure function of ``(run seed, process rank, episode)``: env ``i`` is reset with its own derived
seed, the opponent's uniforms and each learner's sampling stream are reseeded per episode. A resumed run therefore
replays exactly what the uninterrupted run would have played.

Round one's "previous moves" are drawn by the env, except that a fixed opponent with an ``initial_move`` (Always
Cooperate: C, Always Defect: D) is shown making it in every episode, as in evaluation (the opening rule of
:mod:`moralgym.envs.openings`); the learner's own first previous move stays drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moralgym.agents.llm.seat import LLMSeat
from moralgym.agents.records import StepRecord, behaviour_metrics
from moralgym.agents.runner import derive_seed, run_episodes
from moralgym.agents.seats import StrategySeat
from moralgym.envs import MatrixGameEnv, MoralRewardWrapper
from moralgym.envs.matrix_game import AGENTS
from moralgym.envs.openings import opening_options
from moralgym.envs.rewards import DEFAULT_PARTNER_ILLEGAL

# Stream tags for derive_seed: one independent stream per purpose.
ENV_STREAM, OPPONENT_STREAM, POLICY_STREAM, TORCH_STREAM, SHUFFLE_STREAM = 1, 2, 3, 4, 5


@dataclass
class Rollout:
    """The step records of every learning seat for one episode (``record.decision`` holds the LLM's token ids and
    log-probs), ordered by round, then env."""

    samples: dict[str, list[StepRecord]] = field(default_factory=dict)


def make_envs(config: Any, start_episode: int) -> list[MoralRewardWrapper]:
    """``config.num_envs`` wrapped envs whose reward schedules start at ``start_episode``; the envs and the rewards
    both follow ``config.partner_illegal``."""
    rewards = (
        {agent: config.reward_spec(agent) for agent in AGENTS}
        if config.is_two_learners
        else {
            "player_0": config.reward_spec("player_0"),
            "player_1": "game",  # the fixed opponent's reward is never used
        }
    )
    rule = getattr(config, "partner_illegal", DEFAULT_PARTNER_ILLEGAL)
    return [
        MoralRewardWrapper(
            MatrixGameEnv(
                config.game,
                num_rounds=config.num_rounds,
                penalty=config.penalty,
                illegal_reward=config.illegal_reward,
                partner_illegal=rule,
            ),
            rewards,
            start_episode=start_episode,
        )
        for _ in range(config.num_envs)
    ]


def play_episode(
    envs: Sequence[MoralRewardWrapper],
    policies: Mapping[str, Any],
    opponent: Any,
    *,
    seed: int,
    episode: int,
    rank: int = 0,
    prompts: Sequence[Any] | None = None,
    token_schedule: str = "rotate",
) -> Rollout:
    """Play one episode in every env. ``policies`` maps each learning seat to its ``LLMPolicy``; ``opponent`` is a
    fixed strategy for ``player_1`` (``None`` when ``player_1`` learns too). ``prompts``: several
    ``PromptBuilder`` s (token pairs); with ``token_schedule="mix"`` env ``i`` uses ``prompts[(i + episode) % K]``,
    with ``"rotate"`` every env uses ``prompts[episode % K]``; ``None`` keeps each policy's own prompt."""
    n = len(envs)
    seats: dict[str, Any] = {}
    seat_seeds: dict[str, int] = {}
    for index, agent in enumerate(AGENTS):
        if agent in policies:
            seats[agent] = LLMSeat(policies[agent], name=agent, prompts=prompts, fresh_cache=True)
            seat_seeds[agent] = derive_seed(seed, POLICY_STREAM, rank, episode, index)
            if prompts:
                k = len(prompts)
                seats[agent].use_prompts(
                    [(i + episode) % k if token_schedule == "mix" else episode % k for i in range(n)]
                )
    if opponent is not None:
        seats[AGENTS[1]] = StrategySeat(opponent)
        seat_seeds[AGENTS[1]] = derive_seed(seed, OPPONENT_STREAM, rank, episode)
    records = run_episodes(
        envs,
        seats,
        seeds=[derive_seed(seed, ENV_STREAM, rank, episode, i) for i in range(n)],
        seat_seeds=seat_seeds,
        options=opening_options({AGENTS[1]: opponent}, envs[0].unwrapped.initial_state),
        record=list(policies),
    )
    return Rollout(samples={agent: [r for r in records if r.seat == AGENTS.index(agent)] for agent in policies})


ROLLOUT_METRICS = (
    "reward",
    "cooperation_rate",
    "defection_rate",
    "illegal_rate",
    "opponent_cooperation_rate",
)


def rollout_metrics(samples: Sequence[StepRecord], prefix: str = "") -> dict[str, float]:
    """Per-episode behaviour metrics of one seat (:func:`moralgym.agents.records.behaviour_metrics`): rewards by
    type, cooperation and illegal rates, action-type counts."""
    metrics = behaviour_metrics(samples)
    kept = [*ROLLOUT_METRICS, *(k for k in metrics if k.startswith(("reward_", "count_")))]
    return {f"{prefix}env/{name}": metrics[name] for name in kept}
