"""The wire types of a served match: OpenEnv ``Action`` / ``Observation`` / ``State`` subclasses (pydantic).

Why the validators raise ``PydanticCustomError`` and never ``ValueError``: OpenEnv's WebSocket handler sends a
request's validation errors back as JSON, and a ``ValueError`` inside them cannot be serialised, which would end
the session instead of answering it. A custom error carries only JSON values, so a malformed step is answered with
an ``Invalid message`` error that lists what is wrong, and the session goes on.
"""

from __future__ import annotations

from typing import Any

from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from moralgym.serving.match import ACTION_IDS

__all__ = ["MoralGymAction", "MoralGymObservation", "MoralGymState"]


class MoralGymAction(Action):
    """The learner's answer for one round: the model's ``text`` (judged after the answer prefix, by the paper's
    strict rule) or an ``action_id`` (0 cooperate, 1 defect, -1 an answer that is not a move); exactly one."""

    text: str | None = Field(default=None, description="the model's answer, as generated after the answer prefix")
    action_id: int | None = Field(default=None, description="0 (cooperate), 1 (defect) or -1 (illegal answer)")

    @field_validator("action_id", mode="before")
    @classmethod
    def _known_action_id(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or value not in ACTION_IDS):
            raise PydanticCustomError(
                "unknown_action_id",
                "action_id must be 0 (cooperate), 1 (defect) or -1 (illegal answer), got {value}",
                {"value": repr(value)},
            )
        return value

    @model_validator(mode="after")
    def _one_answer(self) -> MoralGymAction:
        if (self.text is None) == (self.action_id is None):
            raise PydanticCustomError(
                "one_answer", "give exactly one of 'text' (the model's answer) or 'action_id' (0, 1 or -1)"
            )
        return self


class MoralGymObservation(Observation):
    """What the learner sees before its next decision, and what the round it just played gave.

    ``reward`` (inherited) is the learner's reward for that round (``None`` after ``reset``); the last-round fields
    are ``None`` (empty for the dicts) after ``reset``.
    """

    prompt: str = Field(description="the paper's prompt for the next decision (user turn; '' once done)")
    answer_prefix: str = Field(description="text the assistant turn starts with; answers are judged after it")
    action_tokens: list[str] = Field(description="[cooperate token, defect token]")
    observation: list[int] = Field(
        description="[own previous move, opponent's previous move] (2 = none); N-player: [own, others who cooperated]"
    )
    round: int = Field(description="rounds played so far")
    num_rounds: int = Field(description="rounds per episode")
    game: str
    num_players: int
    opponent: str = Field(description="the fixed strategy in every other seat")
    reward_name: str = Field(description="the reward in force for the learner")
    seed: int = Field(description="the episode's seed: reset(seed=...) replays it")
    episode_reward: float = Field(description="the learner's rewards summed over the episode so far")
    answer: str | None = Field(default=None, description="the text judged: answer prefix + the answer (None: id)")
    action: int | None = Field(default=None, description="the learner's move: 0, 1 or -1 (illegal)")
    legal: bool | None = Field(default=None, description="whether the answer was a move (the strict parser)")
    last_moves: dict[str, int] = Field(default_factory=dict, description="every seat's move in the round played")
    game_payoff: float | None = Field(default=None, description="the learner's game payoff in the round played")
    moral_rewards: dict[str, float] = Field(
        default_factory=dict, description="every moral reward component of the learner's round"
    )


class MoralGymState(State):
    """Where a session's episode stands, and the match it serves."""

    seed: int | None = None
    round: int = 0
    num_rounds: int = 0
    done: bool = False
    episode_reward: float = 0.0
    settings: dict[str, Any] = Field(default_factory=dict)
