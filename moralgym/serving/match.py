"""One served match, played one round at a time with the learner's answers coming from outside.

The learner sits in seat 0 (``player_0``) and every other seat holds the opponent strategy. Each round goes
through the episode runner (:func:`moralgym.agents.runner.play_round`, the loop of ``moralgym play``, the
evaluation and training): the answer is put into a seat of its own, the opponents' seats decide, the wrapped env
steps, and the runner's records carry the moves, the learner's reward and every moral reward component. The prompt
is the paper's text from the prompt builder (:meth:`PromptBuilder.user_text`, no chat template: the trainer applies
its model's) and an answer is judged by the strict parser (:func:`~moralgym.agents.llm.parsing.parse_action`) on
``answer_prefix + text``, as an LLM seat's answer is.

Seeding (why these streams): ``reset(seed)`` plays exactly the episode that
:func:`moralgym.evaluation.harness.play_match` plays with ``seed`` and ``num_episodes=1`` (``moralgym evaluate
--seed SEED --episodes 1``): the env is reset with ``derive_seed(seed, 0, 0)``, seat ``j`` is seeded
``derive_seed(seed, 1 + j)``, and the learner's seed drives the prompts' token-order shuffles, as it drives an LLM
policy's (docs/openenv.md). So the same seed gives the same
initial state, the same opponent moves (for the same answers) and the same prompt texts here, in the evaluation and
in a native env played by hand with those seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from moralgym.agents.llm.n_player_prompts import n_player_state
from moralgym.agents.llm.parsing import parse_action
from moralgym.agents.runner import derive_seed, play_round
from moralgym.agents.seats import SeatStep
from moralgym.envs.games import ILLEGAL
from moralgym.envs.openings import opening_options
from moralgym.serving.settings import MatchSettings

__all__ = ["ACTION_IDS", "Match", "MatchError", "env_seed", "seat_seed"]

#: Action ids a step may name: 0 (cooperate), 1 (defect), -1 (an answer that is not a move).
ACTION_IDS = (0, 1, ILLEGAL)


class MatchError(ValueError):
    """A request the match cannot take in its state (a step before ``reset`` or after the last round)."""


def env_seed(seed: int) -> int:
    """The env's reset seed for episode seed ``seed`` (the evaluation's first env)."""
    return derive_seed(seed, 0, 0)


def seat_seed(seed: int, seat: int) -> int:
    """Seat ``seat``'s seed for episode seed ``seed`` (seat 0's drives the prompt shuffles)."""
    return derive_seed(seed, 1 + seat)


class _AnswerSeat:
    """The learner's seat: it plays the answer it was handed for this round (one game at a time)."""

    name = "learner"

    def __init__(self) -> None:
        self.action = ILLEGAL
        self.text: str | None = None

    def reset(self, n: int, seed: int | None = None) -> None:
        self.action, self.text = ILLEGAL, None

    def act(self, games: Sequence[Any], observations: np.ndarray, seat: int = 0) -> SeatStep:
        return SeatStep(np.array([self.action], dtype=np.int64), None if self.text is None else [self.text])


class Match:
    """One match of ``settings``: :meth:`reset` starts an episode, :meth:`step` plays a round; both return the
    fields of the observation (:class:`~moralgym.serving.models.MoralGymObservation`) as a dict."""

    def __init__(self, settings: MatchSettings) -> None:
        self.settings = settings
        self.game = settings.build_game()
        self.n_player = settings.is_n_player(self.game)
        self.builder = settings.build_prompt(self.game)
        self.tokens = self.builder.action_tokens
        self.env = settings.build_env(self.game)
        self.agents = list(self.env.possible_agents)
        self.learner = _AnswerSeat()
        opponents = settings.build_opponents(self.game, len(self.agents) - 1)
        self.seats: dict[str, Any] = {
            self.agents[0]: self.learner,
            **dict(zip(self.agents[1:], opponents, strict=True)),
        }
        self.seed: int | None = None
        self.round = 0
        self.episode_reward = 0.0
        self._observations: dict[str, np.ndarray] | None = None
        self._order_rng: np.random.Generator | None = None
        self._prompt = ""
        self._reward_name = ""

    @property
    def started(self) -> bool:
        return self._observations is not None

    @property
    def done(self) -> bool:
        return self.started and not self.env.agents

    def reset(self, seed: int) -> dict[str, Any]:
        """Start the episode of ``seed`` (see the module docstring for the streams it seeds)."""
        self.seed = int(seed)
        for index, agent in enumerate(self.agents):
            self.seats[agent].reset(1, seat_seed(self.seed, index))
        self._order_rng = np.random.default_rng(seat_seed(self.seed, 0))
        others = {agent: self.seats[agent] for agent in self.agents[1:]}
        observations, infos = self.env.reset(
            seed=env_seed(self.seed), options=opening_options(others, self.settings.initial_state)
        )
        self._observations = observations
        self._reward_name = str(infos[self.agents[0]].get("reward_name", self.settings.reward))
        self.round, self.episode_reward = 0, 0.0
        self._prompt = self._render()
        return self._view()

    def step(self, text: str | None = None, action_id: int | None = None) -> dict[str, Any]:
        """Play one round with the learner's answer: ``text`` (what the model wrote after the answer prefix) or
        ``action_id`` (0, 1 or -1), exactly one of them."""
        if not self.started:
            raise MatchError("step() before reset(): call reset() to start an episode first")
        if self.done:
            raise MatchError(
                f"the episode is over ({self.round} of {self.settings.num_rounds} rounds played); call reset() for a "
                "new one"
            )
        if (text is None) == (action_id is None):
            raise MatchError("give exactly one of text (the model's answer) or action_id (0, 1 or -1)")
        if text is not None:
            answer: str | None = self.settings.answer_prefix + text
            action = parse_action(answer, self.tokens)
        else:
            if isinstance(action_id, bool) or action_id not in ACTION_IDS:
                raise MatchError(f"action_id must be 0 (cooperate), 1 (defect) or -1 (illegal), got {action_id!r}")
            answer, action = None, int(action_id)
        self.learner.action, self.learner.text = action, answer
        (self._observations,), records = play_round([self.env], [self._observations], self.seats)
        mine = records[0]
        self.round = mine.round
        self.episode_reward += mine.reward
        self._reward_name = mine.reward_name or self._reward_name
        self._prompt = "" if self.done else self._render()
        moves = {agent: int(record.action) for agent, record in zip(self.agents, records, strict=True)}
        return self._view(
            answer=answer,
            action=int(mine.action),
            legal=not mine.illegal,
            last_moves=moves,
            game_payoff=float(mine.game_payoff),
            moral_rewards={name: float(value) for name, value in mine.moral_rewards.items()},
            reward=float(mine.reward),
        )

    def _render(self) -> str:
        """The learner's next prompt; draws its token-order bits from the learner's stream."""
        observation = self._observations[self.agents[0]]
        bits = self.builder.draw_order_bits(self._order_rng, 1)[0]
        state = n_player_state(self.game, observation) if self.n_player else observation
        return self.builder.user_text(self.game, state, bits, 0)

    def _view(self, **last_round: Any) -> dict[str, Any]:
        observation = self._observations[self.agents[0]]
        return {
            "prompt": self._prompt,
            "answer_prefix": self.settings.answer_prefix,
            "action_tokens": [self.tokens.cooperate, self.tokens.defect],
            "observation": [int(v) for v in np.asarray(observation).reshape(-1)],
            "round": self.round,
            "num_rounds": self.settings.num_rounds,
            "game": self.settings.game,
            "num_players": len(self.agents),
            "opponent": self.settings.opponent,
            "reward_name": self._reward_name,
            "seed": self.seed,
            "episode_reward": self.episode_reward,
            "done": self.done,
            **last_round,
        }

    def summary(self) -> dict[str, Any]:
        """Where the episode stands (for the state endpoint)."""
        return {
            "seed": self.seed,
            "round": self.round,
            "num_rounds": self.settings.num_rounds,
            "done": self.done,
            "episode_reward": self.episode_reward,
            "settings": self.settings.to_dict(),
        }
