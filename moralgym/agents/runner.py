"""The one episode loop: any mix of seats playing many PettingZoo parallel games in lock-step.

``moralgym play``, the evaluation harness, the PPO rollouts and the GRPO rollouts all play through
:func:`play_round` (one round in every env) and :func:`run_episodes` (reset, then rounds until the episodes end).
Each round every seat is asked once for all the games it plays (one batched ``act``), every env steps, and one
:class:`~moralgym.agents.records.StepRecord` per recorded decision comes back.

Seats (:mod:`moralgym.agents.seats`) are asked in agent order, except that seats which can decide together (LLM
seats on one model: :class:`~moralgym.agents.llm.seat.LLMSeat`) are asked in one joint call at the first one's
turn, so two adapters of one model share their forward passes. Beside the players, ``shadows`` answer the very
observations a player sees (a reference model: the base model beside its fine-tuned version) and are scored on a
copy of the env against the same co-player moves; the answers in a seat's ``SeatStep.alternatives`` (a GRPO group)
are scored the same way. Neither moves the game.

N-player games (:class:`~moralgym.envs.n_player.NPlayerGameEnv`, any ``N``) run through the same loop: the loop
uses only the env's agents, observations and ``infos``, every seat sees ``[own_previous, others_cooperated]`` (the
env's default ``"count"`` observation) and gets the :class:`~moralgym.envs.n_player.SchellingGame` as its game, and
a record counts the others instead of naming an opponent (:class:`~moralgym.agents.records.StepRecord`). The kind
of game is read from the envs' ``game``; one call plays one kind.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moralgym.agents.records import StepRecord
from moralgym.agents.seats import SeatStep, as_seat_step
from moralgym.envs.n_player.games import SchellingGame

__all__ = ["ask_seats", "derive_seed", "play_round", "run_episodes"]


def derive_seed(seed: int, *parts: int) -> int:
    """An independent 32-bit seed for ``(seed, *parts)`` (numpy ``SeedSequence`` hashing): how callers give every
    env, seat and stream of a run its own seed from one run seed."""
    return int(np.random.SeedSequence([int(seed), *(int(p) for p in parts)]).generate_state(1, dtype=np.uint32)[0])


def ask_seats(
    seats: Mapping[str, Any],
    games: Sequence[Any],
    observations: Mapping[str, np.ndarray],
    seat_index: Mapping[str, int],
) -> dict[str, SeatStep]:
    """Every seat's :class:`SeatStep` for the rows of ``observations[agent]``; joint-capable seats in one call."""
    steps: dict[str, SeatStep] = {}
    for agent, seat in seats.items():
        if agent in steps:
            continue
        together = getattr(type(seat), "act_together", None)
        if together is None:
            steps[agent] = as_seat_step(
                seat.act(games, observations[agent], seat_index[agent]), len(games), getattr(seat, "name", agent)
            )
            continue
        group = [a for a, s in seats.items() if getattr(type(s), "act_together", None) is together]
        results = together([(seats[a], games, observations[a], seat_index[a]) for a in group])
        for member, result in zip(group, results, strict=True):
            steps[member] = as_seat_step(result, len(games), getattr(seats[member], "name", member))
    return steps


def _record(
    where: Mapping[str, Any], observation: np.ndarray, info: Mapping[str, Any], reward: float, answer: _Answer
) -> StepRecord:
    """A :class:`StepRecord` from the env's ``info`` for one seat; ``where`` names the env, episode, seat, player.

    An N-player info (it counts ``others_cooperated``) fills the record's N-player fields; ``observation`` is what
    the seat saw, so its second entry is the others' count as shown (``N`` when none of them had moved yet).
    """
    if "others_cooperated" in info:
        payoffs = tuple(float(p) for p in info["payoffs"])
        return StepRecord(
            **where,
            round=int(info["round"]),
            own_previous=int(observation[0]),
            opponent_previous=None,
            action=int(info["action"]),
            opponent_action=None,
            illegal=bool(info["illegal"]),
            game_payoff=float(info["game_payoff"]),
            opponent_payoff=None,
            moral_rewards=dict(info["moral_rewards"]),
            reward=float(reward),
            reward_name=info.get("reward_name"),
            text=answer.text,
            counterfactual=answer.counterfactual,
            decision=answer.decision,
            num_players=len(payoffs),
            others_previous_cooperated=int(observation[1]),
            others_cooperated=int(info["others_cooperated"]),
            payoffs=payoffs,
            total_payoff=float(info["total_payoff"]),
        )
    return StepRecord(
        **where,
        round=int(info["round"]),
        own_previous=int(observation[0]),
        opponent_previous=int(info["opponent_previous"]),
        action=int(info["action"]),
        opponent_action=int(info["opponent_action"]),
        illegal=bool(info["illegal"]),
        game_payoff=float(info["game_payoff"]),
        opponent_payoff=float(info["opponent_payoff"]),
        moral_rewards=dict(info["moral_rewards"]),
        reward=float(reward),
        reward_name=info.get("reward_name"),
        text=answer.text,
        counterfactual=answer.counterfactual,
        decision=answer.decision,
    )


@dataclass(frozen=True)
class _Answer:
    action: int
    text: str | None = None
    decision: Any = None
    counterfactual: bool = False


def _answer(step: SeatStep, i: int, counterfactual: bool = False) -> _Answer:
    """Game ``i``'s answer in ``step``."""
    return _Answer(
        int(step.actions[i]),
        step.texts[i] if step.texts is not None else None,
        step.decisions[i] if step.decisions is not None else None,
        counterfactual,
    )


def play_round(
    envs: Sequence[Any],
    observations: Sequence[Mapping[str, np.ndarray]],
    seats: Mapping[str, Any],
    *,
    episodes: Sequence[int] | None = None,
    record: Collection[str] | None = None,
    shadows: Mapping[str, Sequence[Any]] | None = None,
) -> tuple[list[dict[str, np.ndarray]], list[StepRecord]]:
    """Play one round in every env: ask every seat (and shadow), step, record.

    Args:
        envs: PettingZoo parallel envs with moralgym ``infos`` (possibly wrapped), all between rounds.
        observations: each env's current observations.
        seats: agent -> seat, one per agent of the envs.
        episodes: each env's episode label for the records (default: the env index).
        record: agents whose decisions are recorded (default: all).
        shadows: agent -> seats answering that agent's observations, scored on a copy of each env.

    Returns ``(next_observations, records)``; per round, records are ordered by recorded agent, then shadows (in
    the order given), then alternatives; within each, by env.
    """
    agents = list(envs[0].possible_agents)
    missing = [agent for agent in agents if agent not in seats]
    if missing:
        raise ValueError(f"no seat for agents {missing}; pass a seat for each of {agents}")
    seat_index = {agent: agents.index(agent) for agent in agents}
    games = [env.unwrapped.game for env in envs]
    episodes = list(range(len(envs))) if episodes is None else list(episodes)
    recorded = agents if record is None else [agent for agent in agents if agent in record]
    obs = {agent: np.stack([np.asarray(o[agent]) for o in observations]).astype(np.int64) for agent in agents}
    _check_observations(envs, games, next(iter(obs.values())).shape)
    steps = ask_seats({agent: seats[agent] for agent in agents}, games, obs, seat_index)
    joint = [{agent: int(steps[agent].actions[i]) for agent in agents} for i in range(len(envs))]

    def where(i: int, agent: str, player: Any) -> dict[str, Any]:
        name = getattr(player, "name", agent)
        return {
            "game": games[i].name,
            "env_index": i,
            "episode": int(episodes[i]),
            "seat": seat_index[agent],
            "player": name,
        }

    # Counterfactual answers first, each scored on a copy while every env still holds the round's state.
    counterfactual: list[StepRecord] = []
    for agent, group in (shadows or {}).items():
        for shadow in group:
            step = as_seat_step(shadow.act(games, obs[agent], seat_index[agent]), len(envs), shadow.name)
            for i, env in enumerate(envs):
                counterfactual.append(
                    _score_on_copy(env, joint[i], agent, where(i, agent, shadow), obs[agent][i], _answer(step, i, True))
                )
    for agent in recorded:
        alternatives = steps[agent].alternatives or ()
        for i, group in enumerate(alternatives):
            for action, decision in group:
                answer = _Answer(int(action), getattr(decision, "text", None), decision, True)
                counterfactual.append(
                    _score_on_copy(envs[i], joint[i], agent, where(i, agent, seats[agent]), obs[agent][i], answer)
                )
    next_observations: list[dict[str, np.ndarray]] = []
    played: dict[str, list[StepRecord]] = {agent: [] for agent in recorded}
    for i, env in enumerate(envs):
        step_obs, rewards, _, _, infos = env.step(joint[i])
        next_observations.append(step_obs)
        for agent in recorded:
            where_i = where(i, agent, seats[agent])
            played[agent].append(
                _record(where_i, obs[agent][i], infos[agent], rewards[agent], _answer(steps[agent], i))
            )
    return next_observations, [r for agent in recorded for r in played[agent]] + counterfactual


def _check_observations(envs: Sequence[Any], games: Sequence[Any], shape: tuple[int, ...]) -> None:
    """Refuse observations the seats cannot read: anything but ``[own_previous, opponent_previous]`` in a two-player
    game, or ``[own_previous, others_cooperated]`` (``observation_type="count"``) in an N-player one (where the
    ``"full"`` view has the same shape at ``N = 2`` but other values); and a mix of both kinds of game."""
    n_player = [isinstance(game, SchellingGame) for game in games]
    if any(n_player) and not all(n_player):
        raise ValueError("play_round got two-player and N-player games together; play each kind in its own call")
    if n_player[0]:
        kinds = sorted({str(getattr(env.unwrapped, "observation_type", None)) for env in envs})
        if kinds != ["count"]:
            raise ValueError(
                f"seats of N-player games read [own_previous, others_cooperated] observations, got observation_type "
                f"{', '.join(kinds)}; build the envs with observation_type='count' (the default)"
            )
        return
    if len(shape) != 2 or shape[1] != 2:
        raise ValueError(
            f"seats read [own_previous, opponent_previous] observations, got shape {shape[1:]} per env; "
            "build the envs with observation_type='multi_discrete' (the default)"
        )


def _score_on_copy(
    env: Any, joint: Mapping[str, int], agent: str, where: Mapping[str, Any], observation: np.ndarray, answer: _Answer
) -> StepRecord:
    """The record of ``agent`` answering ``answer.action`` instead of its move in ``joint``, scored by stepping a
    copy of ``env`` (the env itself does not move)."""
    _, rewards, _, _, infos = copy.deepcopy(env).step({**joint, agent: answer.action})
    return _record(where, observation, infos[agent], rewards[agent], answer)


def run_episodes(
    envs: Sequence[Any],
    seats: Mapping[str, Any],
    *,
    seeds: Sequence[int | None],
    seat_seeds: Mapping[str, int | None] | None = None,
    options: Mapping[str, Any] | None = None,
    episodes: Sequence[int] | None = None,
    record: Collection[str] | None = None,
    shadows: Mapping[str, Sequence[Any]] | None = None,
    on_round: Callable[[list[StepRecord]], None] | None = None,
) -> list[StepRecord]:
    """Reset every seat and env, then play rounds until the episodes end; return the records.

    Each seat (and each shadow, with the seed of the agent it shadows) is reset once for ``len(envs)`` games
    with ``seat_seeds[agent]``; a missing or ``None`` seed keeps the seat's own streams running. Env ``i`` is
    reset with ``seeds[i]`` and ``options``. ``on_round`` gets each round's records (e.g. for a progress bar).
    """
    if len(seeds) != len(envs):
        raise ValueError(f"got {len(seeds)} seeds for {len(envs)} envs; pass one seed (or None) per env")
    seat_seeds = seat_seeds or {}
    reset: set[int] = set()
    players = [(agent, seat) for agent, seat in seats.items()]
    players += [(agent, shadow) for agent, group in (shadows or {}).items() for shadow in group]
    for agent, player in players:
        if id(player) not in reset:  # a seat playing several agents (self-play) is reset once
            reset.add(id(player))
            player.reset(len(envs), seat_seeds.get(agent))
    observations = [env.reset(seed=seed, options=options)[0] for env, seed in zip(envs, seeds, strict=True)]
    records: list[StepRecord] = []
    while envs[0].agents:
        observations, round_records = play_round(
            envs, observations, seats, episodes=episodes, record=record, shadows=shadows
        )
        records += round_records
        if on_round is not None:
            on_round(round_records)
    return records
