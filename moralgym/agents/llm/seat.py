"""An :class:`~moralgym.agents.llm.policy.LLMPolicy` in a seat of the episode runner.

Several LLM seats in one round are decided together (:meth:`LLMSeat.act_together`): the rows of seats that share
one policy (an LLM playing itself) go into one ``decide`` call, and policies over one model object (two LoRA
adapters of one PEFT model, LLM vs LLM) share their forward passes through
:func:`~moralgym.agents.llm.policy.decide_jointly`. Each policy keeps its own random streams, so the decisions are
those of separate calls.

The same holds in N-player games: every LLM seat of a round is in the one joint call, one policy in several seats
(parameter sharing) gives one ``decide`` over all their rows, and one adapter per seat on one base model gives one
:func:`~moralgym.agents.llm.policy.decide_jointly` call; fixed strategies sit beside them in
:class:`~moralgym.agents.seats.NPlayerStrategySeat` s.

A seat may also play a different prompt in different games (training on several token pairs at once): give it
``prompts`` and, per episode, :meth:`LLMSeat.use_prompts` with the prompt index of each game.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from moralgym.agents.llm.policy import LLMPolicy, decide_jointly
from moralgym.agents.seats import SeatStep

__all__ = ["LLMSeat"]


class LLMSeat:
    """``LLMSeat(policy)``: the policy's decisions as a :class:`~moralgym.agents.seats.SeatStep` (actions, texts and
    the :class:`~moralgym.agents.llm.policy.Decision` s a trainer needs).

    ``reset(n, seed)`` reseeds the policy's streams when a seed is given and, with ``fresh_cache``, drops its
    prefix cache (a trainer does so every episode, after the adapter changed).
    """

    def __init__(
        self, policy: LLMPolicy, name: str = "llm", prompts: Sequence[Any] | None = None, fresh_cache: bool = False
    ) -> None:
        self.policy = policy
        self.name = name
        self.prompts = list(prompts) if prompts else None
        self.fresh_cache = fresh_cache
        self.prompt_of_game: list[int] | None = None

    def use_prompts(self, prompt_of_game: Sequence[int]) -> None:
        """Play ``prompts[prompt_of_game[i]]`` in game ``i`` (until the next call)."""
        if self.prompts is None:
            raise ValueError("use_prompts needs an LLMSeat built with prompts=[...]")
        self.prompt_of_game = [int(k) for k in prompt_of_game]

    def reset(self, n: int, seed: int | None = None) -> None:
        if seed is not None:
            self.policy.seed(seed)
        if self.fresh_cache:
            self.policy.invalidate_cache()

    def act(self, games: Sequence[Any], observations: np.ndarray, seat: int = 0) -> SeatStep:
        return self.act_together([(self, games, observations, seat)])[0]

    @staticmethod
    def act_together(requests: Sequence[tuple[LLMSeat, Sequence[Any], np.ndarray, int]]) -> list[SeatStep]:
        """Decide for several LLM seats at once (see the module docstring); one :class:`SeatStep` per request."""
        n = len(requests[0][1])
        schedules = {tuple(seat.prompt_of_game) if seat.prompt_of_game is not None else None for seat, *_ in requests}
        if len(schedules) > 1:
            raise ValueError("LLM seats decided together must play the same prompt in each game")
        (schedule,) = schedules
        groups: dict[int | None, list[int]] = {}
        for i in range(n):
            groups.setdefault(None if schedule is None else schedule[i], []).append(i)
        decisions: list[list[Any]] = [[None] * n for _ in requests]
        originals = {id(seat.policy): (seat.policy, seat.policy.prompt) for seat, *_ in requests}
        try:
            for key in sorted(groups, key=lambda k: -1 if k is None else k):
                members = groups[key]
                if key is not None:
                    for seat, *_ in requests:
                        seat.policy.prompt = seat.prompts[key]
                for index, rows in _decide_rows(requests, members):
                    for i, decision in zip(members, rows, strict=True):
                        decisions[index][i] = decision
        finally:
            for policy, prompt in originals.values():
                policy.prompt = prompt
        return [
            SeatStep(
                np.array([d.action for d in seat_decisions], dtype=np.int64),
                [d.text for d in seat_decisions],
                seat_decisions,
            )
            for seat_decisions in decisions
        ]


def _decide_rows(
    requests: Sequence[tuple[LLMSeat, Sequence[Any], np.ndarray, int]], members: list[int]
) -> list[tuple[int, list[Any]]]:
    """Decisions for rows ``members`` of every request: one ``decide`` per policy (its seats' rows concatenated in
    request order), policies over one model in one :func:`decide_jointly` call; ``(request index, decisions)``."""
    by_policy: dict[int, list[int]] = {}
    for index, (seat, *_) in enumerate(requests):
        by_policy.setdefault(id(seat.policy), []).append(index)
    by_model: dict[int, list[int]] = {}
    for key, indices in by_policy.items():
        by_model.setdefault(id(requests[indices[0]][0].policy.model), []).append(key)
    results: list[tuple[int, list[Any]]] = []
    for policy_keys in by_model.values():
        calls = []
        for key in policy_keys:
            indices = by_policy[key]
            policy = requests[indices[0]][0].policy
            games = [requests[j][1][i] for j in indices for i in members]
            observations = np.concatenate([np.asarray(requests[j][2])[members] for j in indices])
            seats = [requests[j][3] for j in indices for _ in members]
            calls.append((policy, games, observations, seats, indices))
        answers = decide_jointly([(policy, games, obs, seats) for policy, games, obs, seats, _ in calls])
        for (_, _, _, _, indices), decided in zip(calls, answers, strict=True):
            for position, j in enumerate(indices):
                results.append((j, decided[position * len(members) : (position + 1) * len(members)]))
    return results
