"""Rollouts: ``num_envs`` PettingZoo ``MatrixGameEnv`` games played in lock-step, every decision batched.

The trainer never computes a reward: each env is wrapped in :class:`~moralgym.envs.MoralRewardWrapper` with one
reward per seat, and the reward a sample is trained on is ``rewards[seat]`` returned by ``env.step``. An illegal
answer is passed to the env as ``ILLEGAL`` and gets the env's illegal-move reward; it is still a training sample.

Randomness is a pure function of ``(run seed, process rank, episode)``: env ``i`` is reset with its own derived
seed, the opponent's uniforms and each learner's sampling stream are reseeded per episode. A resumed run therefore
replays exactly what the uninterrupted run would have played.

Round one's "previous moves" are drawn by the env, except that a fixed opponent with an ``initial_move`` (Always
Cooperate: C, Always Defect: D; docs/reproduction.md) is shown making it in every episode, as in evaluation
(:func:`moralgym.evaluation.harness.play_match`); the learner's own first previous move stays drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moralgym.agents.llm.policy import decide_jointly
from moralgym.envs import ILLEGAL, MatrixGameEnv, MoralRewardWrapper
from moralgym.envs.rewards import DEFAULT_PARTNER_ILLEGAL

SEATS = ("player_0", "player_1")

# Stream tags for derive_seed: one independent stream per purpose.
ENV_STREAM, OPPONENT_STREAM, POLICY_STREAM, TORCH_STREAM, SHUFFLE_STREAM = 1, 2, 3, 4, 5


def derive_seed(seed: int, *parts: int) -> int:
    """An independent 32-bit seed for ``(seed, *parts)`` (numpy ``SeedSequence`` hashing)."""
    return int(np.random.SeedSequence([int(seed), *(int(p) for p in parts)]).generate_state(1, dtype=np.uint32)[0])


@dataclass
class Sample:
    """One decision of one learner: what PPO trains on, plus what the metrics need."""

    query_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    reward: float
    action: int
    text: str
    env_index: int
    round: int
    own_previous: int
    other_previous: int
    other_action: int
    moral_rewards: dict[str, float]
    reward_name: str


@dataclass
class Rollout:
    """The samples of every learning seat for one episode."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)
    opponent_actions: list[int] = field(default_factory=list)


def make_envs(config: Any, start_episode: int) -> list[MoralRewardWrapper]:
    """``config.num_envs`` wrapped envs whose reward schedules start at ``start_episode``; the envs and the rewards
    both follow ``config.partner_illegal``."""
    rewards = (
        {seat: config.reward_spec(seat) for seat in SEATS}
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


def reset_options(opponent: Any, env: Any) -> dict[str, Any] | None:
    """``reset`` options that show a fixed opponent's ``initial_move`` as its round-one previous move (Always
    Cooperate: C, Always Defect: D; docs/reproduction.md), as evaluation does; ``None`` when it has none (TFT, Random, an LLM)
    or the env does not draw a random initial state."""
    move = getattr(opponent, "initial_move", None) if opponent is not None else None
    if move is None or env.unwrapped.initial_state != "random":
        return None
    return {"previous_moves": {SEATS[1]: int(move)}}


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
    groups = None
    if prompts:
        groups = {}
        for i in range(n):
            k = (i + episode) % len(prompts) if token_schedule == "mix" else episode % len(prompts)
            groups.setdefault(k, []).append(i)
    for index, seat in enumerate(SEATS):
        if seat in policies:
            policies[seat].seed(derive_seed(seed, POLICY_STREAM, rank, episode, index))
            policies[seat].invalidate_cache()
    observations = [
        env.reset(seed=derive_seed(seed, ENV_STREAM, rank, episode, i), options=reset_options(opponent, env))[0]
        for i, env in enumerate(envs)
    ]
    opponent_rng = np.random.default_rng(derive_seed(seed, OPPONENT_STREAM, rank, episode))
    memory = opponent.initial_memory(n) if opponent is not None else None
    game = envs[0].unwrapped.game
    rollout = Rollout(samples={seat: [] for seat in policies})
    round_index = 0
    while envs[0].agents:
        obs = {seat: np.stack([o[seat] for o in observations]) for seat in SEATS}
        decisions = _decide_seats(policies, game, obs, groups, prompts)
        actions = {seat: np.array([d.action for d in decisions[seat]], dtype=np.int64) for seat in decisions}
        uniforms = opponent_rng.random(n)
        if opponent is not None:
            actions["player_1"], memory = opponent.act_batch(obs["player_1"], memory, uniforms)
        next_observations = []
        for i, env in enumerate(envs):
            step_obs, rewards, _, _, infos = env.step({seat: int(actions[seat][i]) for seat in SEATS})
            next_observations.append(step_obs)
            for seat, seat_decisions in decisions.items():
                d, info = seat_decisions[i], infos[seat]
                rollout.samples[seat].append(
                    Sample(
                        query_ids=list(d.query_ids),
                        response_ids=list(d.response_ids),
                        logprobs=list(d.logprobs),
                        reward=float(rewards[seat]),
                        action=int(d.action),
                        text=d.text,
                        env_index=i,
                        round=round_index,
                        own_previous=int(obs[seat][i, 0]),
                        other_previous=int(info["other_previous"]),
                        other_action=int(info["other_action"]),
                        moral_rewards=dict(info["moral_rewards"]),
                        reward_name=str(info.get("reward_name", "")),
                    )
                )
            if opponent is not None:
                rollout.opponent_actions.append(int(actions["player_1"][i]))
        observations = next_observations
        round_index += 1
    return rollout


def _decide_seats(
    policies: dict[str, Any], game: Any, obs: dict[str, np.ndarray], groups: dict | None, prompts: Sequence[Any] | None
) -> dict[str, list[Any]]:
    """Every learning seat's decisions: one joint call per prompt variant in use (all games at once when there is
    one), so both seats of LLM vs LLM share each forward pass; each policy keeps its own random streams."""
    seats = list(policies)
    n = len(obs[seats[0]])
    variants = {0: list(range(n))} if groups is None else dict(sorted(groups.items()))
    decisions: dict[str, list[Any]] = {seat: [None] * n for seat in seats}
    originals = {seat: policies[seat].prompt for seat in seats}
    try:
        for k, members in variants.items():
            if groups is not None:
                for seat in seats:
                    policies[seat].prompt = prompts[k]
            requests = [
                (policies[seat], [game] * len(members), obs[seat][members], [SEATS.index(seat)] * len(members))
                for seat in seats
            ]
            for seat, seat_decisions in zip(seats, decide_jointly(requests), strict=True):
                for i, decision in zip(members, seat_decisions, strict=True):
                    decisions[seat][i] = decision
    finally:
        for seat, prompt in originals.items():
            policies[seat].prompt = prompt
    return decisions


ACTION_TYPE_LABELS = ("C|C", "C|D", "D|C", "D|D", "illegal|C", "illegal|D")


def rollout_metrics(samples: Sequence[Sample], prefix: str = "") -> dict[str, float]:
    """Per-episode behaviour metrics of one seat: rewards by type, cooperation and illegal rates, action types."""
    actions = np.array([s.action for s in samples])
    other_previous = np.array([s.other_previous for s in samples])
    metrics: dict[str, float] = {
        "env/reward": float(np.mean([s.reward for s in samples])),
        "env/cooperation_rate": float(np.mean(actions == 0)),
        "env/defection_rate": float(np.mean(actions == 1)),
        "env/illegal_rate": float(np.mean(actions == ILLEGAL)),
        "env/opponent_cooperation_rate": float(np.mean(np.array([s.other_action for s in samples]) == 0)),
    }
    for name in samples[0].moral_rewards:
        metrics[f"env/reward_{name}"] = float(np.mean([s.moral_rewards[name] for s in samples]))
    letters = {0: "C", 1: "D", ILLEGAL: "illegal"}
    for label in ACTION_TYPE_LABELS:
        own, prev = label.split("|")
        metrics[f"env/count_{label}"] = int(
            np.sum((np.vectorize(letters.get)(actions) == own) & (other_previous == (0 if prev == "C" else 1)))
        )
    return {f"{prefix}{k}": v for k, v in metrics.items()}
