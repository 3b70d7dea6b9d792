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

N-player games (``config.is_n_player``, docs/training.md "N-player games") play the same way in
:class:`~moralgym.envs.n_player.NPlayerGameEnv` s wrapped in
:class:`~moralgym.envs.n_player.NPlayerMoralRewardWrapper`: the learning seats are :class:`LLMSeat` s (one policy
object in every seat when they share an adapter), the other seats :class:`NPlayerStrategySeat` s of the opponent
strategy, each fixed seat with its own stream; every LLM seat of a round is decided in one joint call
(:meth:`LLMSeat.act_together`), so the seats' adapters share their forward passes and the prefix cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moralgym.agents.llm.seat import LLMSeat
from moralgym.agents.records import StepRecord, behaviour_metrics
from moralgym.agents.runner import derive_seed, run_episodes
from moralgym.agents.seats import NPlayerStrategySeat, StrategySeat
from moralgym.envs import MatrixGameEnv, MoralRewardWrapper
from moralgym.envs.matrix_game import AGENTS
from moralgym.envs.n_player import NPlayerGameEnv, NPlayerMoralRewardWrapper, SchellingGame
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
    both follow ``config.partner_illegal`` (N-player games: :func:`make_n_player_envs`)."""
    if getattr(config, "is_n_player", False):
        return make_n_player_envs(config, start_episode)
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


def make_n_player_envs(config: Any, start_episode: int) -> list[NPlayerMoralRewardWrapper]:
    """``config.num_envs`` N-player envs (``config.game`` for ``config.num_players``, with ``config.game_params``),
    each learning seat paid its own moral reward (``config.reward_spec``), the fixed seats the Game reward (never
    used); the envs' reported components use the run's penalty, illegal reward and ``reward_norm``."""
    learners = set(config.learners)
    rewards = {seat: config.reward_spec(seat) if seat in learners else "game" for seat in config.seats}
    return [
        NPlayerMoralRewardWrapper(
            NPlayerGameEnv(
                config.game,
                num_players=config.num_players,
                game_params=config.game_params,
                num_rounds=config.num_rounds,
                penalty=config.penalty,
                illegal_reward=config.illegal_reward,
                norm=config.reward_norm,
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
    """Play one episode in every env. ``policies`` maps each learning seat to its ``LLMPolicy`` (the same object
    for seats that share an adapter); ``opponent`` is a fixed strategy for ``player_1`` (``None`` when ``player_1``
    learns too) or, in an N-player game, ``{seat: N-player strategy}`` for every seat that does not learn.
    ``prompts``: several ``PromptBuilder`` s (token pairs); with ``token_schedule="mix"`` env ``i`` uses
    ``prompts[(i + episode) % K]``, with ``"rotate"`` every env uses ``prompts[episode % K]``; ``None`` keeps each
    policy's own prompt.

    Seeds: each policy's streams are reseeded once per episode, from the first seat it plays; a fixed seat ``j``
    of an N-player game gets its own stream (``OPPONENT_STREAM``, ``j``); a two-player opponent keeps the stream it
    always had."""
    n = len(envs)
    agents = list(envs[0].possible_agents)
    seats, seat_seeds = _llm_seats(agents, policies, seed, episode, rank, n, prompts, token_schedule)
    fixed = _fixed_strategies(opponent)
    n_player = isinstance(envs[0].unwrapped.game, SchellingGame)
    for agent, strategy in fixed.items():
        seats[agent] = NPlayerStrategySeat(strategy, name=agent) if n_player else StrategySeat(strategy)
        parts = (agents.index(agent),) if n_player else ()  # the two-player opponent's stream, unchanged
        seat_seeds[agent] = derive_seed(seed, OPPONENT_STREAM, rank, episode, *parts)
    records = run_episodes(
        envs,
        seats,
        seeds=[derive_seed(seed, ENV_STREAM, rank, episode, i) for i in range(n)],
        seat_seeds=seat_seeds,
        options=opening_options(fixed, envs[0].unwrapped.initial_state),
        record=list(policies),
    )
    return Rollout(samples={agent: [r for r in records if r.seat == agents.index(agent)] for agent in policies})


def _llm_seats(
    agents: Sequence[str],
    policies: Mapping[str, Any],
    seed: int,
    episode: int,
    rank: int,
    n: int,
    prompts: Sequence[Any] | None,
    token_schedule: str,
) -> tuple[dict[str, Any], dict[str, int]]:
    """The learning seats' :class:`LLMSeat` s (seat order) and their seeds: a policy is reseeded from the first
    seat it plays (seat index ``index``), so a policy shared by several seats draws one stream over all their rows,
    as its one ``decide`` call per round does."""
    seats: dict[str, Any] = {}
    seat_seeds: dict[str, int] = {}
    seeded: set[int] = set()
    for index, agent in enumerate(agents):
        if agent not in policies:
            continue
        policy = policies[agent]
        seats[agent] = LLMSeat(policy, name=agent, prompts=prompts, fresh_cache=True)
        if id(policy) not in seeded:
            seeded.add(id(policy))
            seat_seeds[agent] = derive_seed(seed, POLICY_STREAM, rank, episode, index)
        if prompts:
            k = len(prompts)
            seats[agent].use_prompts([(i + episode) % k if token_schedule == "mix" else episode % k for i in range(n)])
    return seats, seat_seeds


def _fixed_strategies(opponent: Any) -> dict[str, Any]:
    """``{seat: strategy}`` of the seats that do not learn: ``player_1``'s in a two-player game (none when it
    learns), or the N-player mapping as given."""
    if isinstance(opponent, Mapping):
        return dict(opponent)
    return {} if opponent is None else {AGENTS[1]: opponent}


ROLLOUT_METRICS = (
    "reward",
    "cooperation_rate",
    "defection_rate",
    "illegal_rate",
    "opponent_cooperation_rate",
)


#: :data:`ROLLOUT_METRICS` of an N-player game: the others' cooperation rate instead of the opponent's, and the
#: collective payoff.
N_PLAYER_ROLLOUT_METRICS = (
    "reward",
    "cooperation_rate",
    "defection_rate",
    "illegal_rate",
    "others_cooperation_rate",
    "mean_total_payoff",
)


def rollout_metrics(samples: Sequence[StepRecord], prefix: str = "") -> dict[str, float]:
    """Per-episode behaviour metrics of one learner's samples (:func:`moralgym.agents.records.behaviour_metrics`):
    rewards by type, cooperation and illegal rates, action-type counts (N-player: :data:`N_PLAYER_ROLLOUT_METRICS`
    and the N-player action types)."""
    metrics = behaviour_metrics(samples)
    names = N_PLAYER_ROLLOUT_METRICS if samples and samples[0].n_player else ROLLOUT_METRICS
    kept = [*names, *(k for k in metrics if k.startswith(("reward_", "count_")))]
    return {f"{prefix}env/{name}": metrics[name] for name in kept}
