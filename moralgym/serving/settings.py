"""What one served match is made of, and how each of its pieces is built from the names a user types.

A match is a game (two-player or N-player), the fixed strategy in every other seat, the learner's reward and the
paper's prompt for the learner (action tokens, phrasing, table order, persona, answer prefix), over ``num_rounds``
rounds. :class:`MatchSettings` holds those names; building it validates every one of them by building the pieces
once, so ``moralgym serve`` refuses a bad value before it listens, with the registry's one-line message (it names
the value and lists the choices). Each session then builds its own pieces from the same settings
(:mod:`moralgym.serving.match`): sessions share nothing mutable.

The pieces are the ones moralgym's own loops use (docs/evaluation.md): the game from
:func:`~moralgym.evaluation.harness.resolve_game`, the opponents' seats from
:func:`~moralgym.evaluation.harness.opponent_seat`, the env wrapped in the moral-reward wrapper as in training,
and the prompt from :class:`~moralgym.agents.llm.prompts.PromptBuilder` (``for_game`` gives the N-player wording).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PENALTY

__all__ = ["MatchSettings"]


def _help(text: str, **metadata: Any) -> dict[str, Any]:
    return {"help": text, **metadata}


def one_line(error: BaseException) -> str:
    """An exception's text on one line (a ``KeyError``'s without its quotes)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split())


@dataclass(frozen=True)
class MatchSettings:
    """One served match: game x opponent x reward x prompt. Defaults are the paper's training setting (moralgym
    train's defaults): the Iterated Prisoner's Dilemma against Tit-for-Tat, Deontological reward, tokens action12.

    Building it checks every field and turns each name into its canonical spelling (``"Tit for Tat"`` becomes
    ``"tit_for_tat"``; an N-player game's ``num_players`` is filled in); a bad value is a ``ValueError`` on one line.
    """

    _argument_group_name = "match (game x opponent x reward x prompt)"

    game: str = field(
        default="ipd",
        metadata=_help("two-player game (ipd, stag_hunt, chicken, ...) or N-player game (public_goods, ...)"),
    )
    num_players: int | None = field(
        default=None, metadata=_help("players of an N-player game (default 4); two-player games have 2")
    )
    opponent: str = field(
        default="tit_for_tat",
        metadata=_help("fixed strategy in every other seat (tit_for_tat, random, always_defect, ...)"),
    )
    reward: str = field(
        default="deontological",
        metadata=_help("the learner's reward: game, deontological, utilitarian, game_deontological, ..."),
    )
    switch_episode: int = field(
        default=500, metadata=_help("episode (of a session) at which game_then_* rewards switch")
    )
    tokens: str = field(default="action12", metadata=_help("action tokens: a name (action34) or 'cooperate,defect'"))
    phrasing: str = field(default="paper", metadata=_help("prompt wording: paper, unstructured, ipd_like, ..."))
    table_order: str = field(
        default="original", metadata=_help("payoff table order: original, cols_reversed, rows_reversed, reversed")
    )
    persona: str | None = field(default=None, metadata=_help("value persona put first: utilitarian or deontologist"))
    answer_prefix: str = field(
        default="", metadata=_help("text the assistant turn is pre-filled with; answers are judged after it")
    )
    num_rounds: int = field(default=5, metadata=_help("rounds per episode", aliases=["--rounds"]))
    initial_state: str = field(
        default="random", metadata=_help("round one's previous moves: 'random' (the paper) or 'none'")
    )
    penalty: float = field(default=DEFAULT_PENALTY, metadata=_help("Deontological penalty xi"))
    illegal_reward: float = field(default=DEFAULT_ILLEGAL_REWARD, metadata=_help("reward of an illegal answer"))

    def __post_init__(self) -> None:
        try:
            self._check()
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(one_line(error)) from None

    def _check(self) -> None:
        """Build every piece once (what each session builds), then store the canonical names."""
        for name, least in (("num_rounds", 1), ("switch_episode", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                kind = "positive" if least else "non-negative"
                raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
        game = self.build_game()
        n_player = self.is_n_player(game)
        if not n_player and self.num_players not in (None, 2):
            raise ValueError(
                f"num_players applies to N-player games only; {game.name!r} is a two-player game (leave it unset)"
            )
        self.build_prompt(game)
        self.build_env(game)
        self.build_opponents(game, 1)
        canonical = {
            "game": game.name if not n_player else self._registry("games", game).canonical(self.game),
            "num_players": game.num_players if n_player else None,
            "opponent": self._registry("opponents", game).canonical(self.opponent),
            "reward": self._registry("rewards", game).canonical(self.reward),
        }
        for name, value in canonical.items():
            object.__setattr__(self, name, value)

    def _registry(self, kind: str, game: Any) -> Any:
        """The registry of ``kind`` (games, opponents, rewards) for ``game``'s family."""
        if self.is_n_player(game):
            from moralgym.envs.n_player.games import N_PLAYER_GAMES
            from moralgym.envs.n_player.opponents import N_PLAYER_OPPONENTS
            from moralgym.envs.n_player.rewards import N_PLAYER_REWARDS

            return {"games": N_PLAYER_GAMES, "opponents": N_PLAYER_OPPONENTS, "rewards": N_PLAYER_REWARDS}[kind]
        from moralgym.envs.games import GAMES
        from moralgym.envs.opponents import OPPONENTS
        from moralgym.envs.rewards import REWARDS

        return {"games": GAMES, "opponents": OPPONENTS, "rewards": REWARDS}[kind]

    # ------------------------------------------------------------------------------------------- the pieces
    @staticmethod
    def is_n_player(game: Any) -> bool:
        from moralgym.envs.n_player.games import SchellingGame

        return isinstance(game, SchellingGame)

    def build_game(self) -> Any:
        """The :class:`~moralgym.envs.games.MatrixGame` or :class:`~moralgym.envs.n_player.SchellingGame`."""
        from moralgym.evaluation.harness import resolve_game

        if not isinstance(self.game, str):
            raise TypeError(f"game must be a registered game's name, got {self.game!r}")
        return resolve_game(self.game, self.num_players)

    def build_prompt(self, game: Any) -> Any:
        """The prompt builder for ``game`` (an N-player builder for an N-player game)."""
        from moralgym.agents.llm.prompts import PromptBuilder

        builder = PromptBuilder(
            tokens=self.tokens,
            phrasing=self.phrasing,
            table_order=self.table_order,
            persona=self.persona,
            answer_prefix=self.answer_prefix,
        )
        return builder.for_game(game)

    def build_reward(self, game: Any) -> Any:
        """The learner's reward object, with this match's penalty and illegal-move reward (and ``switch_episode``
        for a schedule, as ``moralgym train`` builds it)."""
        from moralgym.envs.n_player.rewards import get_n_player_reward
        from moralgym.envs.rewards import get_reward
        from moralgym.registry import accepted_keywords

        build = get_n_player_reward if self.is_n_player(game) else get_reward
        kwargs: dict[str, Any] = {"penalty": self.penalty, "illegal_reward": self.illegal_reward}
        if "switch_episode" in (accepted_keywords(self._registry("rewards", game)[self.reward]) or ()):
            kwargs["switch_episode"] = self.switch_episode
        return build(self.reward, **kwargs)

    def build_env(self, game: Any) -> Any:
        """The PettingZoo parallel env, wrapped so that ``rewards["player_0"]`` is the learner's reward (the other
        seats get the Game reward, never used), as ``moralgym train`` wraps its envs."""
        if self.is_n_player(game):
            from moralgym.envs.n_player.env import NPlayerGameEnv
            from moralgym.envs.n_player.wrappers import NPlayerMoralRewardWrapper as Wrapper

            env: Any = NPlayerGameEnv(
                game,
                num_rounds=self.num_rounds,
                initial_state=self.initial_state,
                penalty=self.penalty,
                illegal_reward=self.illegal_reward,
            )
        else:
            from moralgym.envs.matrix_game import MatrixGameEnv
            from moralgym.envs.wrappers import MoralRewardWrapper as Wrapper

            env = MatrixGameEnv(
                game,
                num_rounds=self.num_rounds,
                initial_state=self.initial_state,
                penalty=self.penalty,
                illegal_reward=self.illegal_reward,
            )
        agents = env.possible_agents
        return Wrapper(env, {agents[0]: self.build_reward(game), **{agent: "game" for agent in agents[1:]}})

    def build_opponents(self, game: Any, count: int) -> list[Any]:
        """``count`` independent seats of the opponent strategy (each keeps its own memory and stream)."""
        from moralgym.evaluation.harness import opponent_seat

        if not isinstance(self.opponent, str):
            raise TypeError(f"opponent must be a strategy name, got {self.opponent!r}")
        return [opponent_seat(self.opponent, game) for _ in range(count)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for logs: ``ipd vs tit_for_tat, reward deontological, tokens action12, 5 rounds``."""
        players = f" ({self.num_players} players)" if self.num_players else ""
        prompt = f"tokens {self.tokens}, phrasing {self.phrasing}"
        if self.answer_prefix:
            prompt += f", answer prefix {self.answer_prefix!r}"
        return f"{self.game}{players} vs {self.opponent}, reward {self.reward}, {prompt}, {self.num_rounds} rounds"
