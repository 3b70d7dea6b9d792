"""The paper's evaluation protocol (docs/reproduction.md) for any agent, and round-robin tournaments.

Defaults follow the paper: a Random opponent, 10 episodes x 5 rounds from random initial states, the five games,
evaluation seed 100. The seed is re-used for every game, opponent and variant, so every evaluated agent sees the same
initial states, the same Random-opponent moves and (for LLM agents) the same token-order shuffles. Each game's
episodes run side by side in ``num_episodes`` :class:`~moralgym.envs.matrix_game.MatrixGameEnv` instances stepped
through ``reset``/``step``; the agent decides for all of them in one batched ``act`` call per round.

A *reference* agent (for an LLM: the base model without fine-tuning) answers the very same observations at every
round; its answers are scored against the same opponent move but do not change the trajectory, which follows the
evaluated agent (as in the authors' code).

Deontological penalty at evaluation: ``penalty=3`` by default, the training value. The authors' evaluation code
used 4 (docs/reproduction.md); pass ``penalty=4`` to reproduce that scale. Regrets and moral rewards use this setting.

N-player games (a name of :func:`~moralgym.envs.n_player.list_n_player_games` in ``games``, built for
``num_players``, default 4) follow the same protocol in :class:`~moralgym.envs.n_player.NPlayerGameEnv` s: the
evaluated agent sits in seat 0 and every other seat holds an independent copy of the opponent (the *co-players*:
Random by default), each seat with its own stream from the evaluation seed, so every agent again meets the same
co-player moves. Their rows count the others instead of naming an opponent (:func:`n_player_decision_rows`) and
add a Game regret; a fixed two-player strategy plays as the N-player strategy of its name
(:func:`~moralgym.evaluation.agents.seat_for_game`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moralgym.agents.records import StepRecord
from moralgym.agents.runner import derive_seed, run_episodes
from moralgym.agents.seats import NPlayerStrategySeat, StrategySeat
from moralgym.envs.games import GAMES, PAPER_GAMES, MatrixGame, get_game, list_games
from moralgym.envs.matrix_game import MatrixGameEnv
from moralgym.envs.n_player.env import NPlayerGameEnv
from moralgym.envs.n_player.games import N_PLAYER_GAMES, SchellingGame, get_n_player_game, list_n_player_games
from moralgym.envs.n_player.rewards import N_PLAYER_COMPONENT_NAMES
from moralgym.envs.openings import opening_options
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PENALTY
from moralgym.evaluation.agents import agent_variants, as_agent, seat_for_game, spawn
from moralgym.evaluation.metrics import (
    ACTION_TYPES,
    OUTCOMES,
    action_types,
    deontological_regret,
    episode_means,
    game_regret,
    mean_ci,
    n_player_action_type_labels,
    n_player_action_types,
    n_player_outcome_labels,
    n_player_outcomes,
    outcomes,
    utilitarian_regret,
)

#: The paper's evaluation seed (authors' code re-initialises it before each game).
EVALUATION_SEED = 100
REWARD_NAMES = ("game", "deontological", "utilitarian", "game_deontological")
#: Metrics averaged per episode then over episodes, each reported with a ``_ci95`` half-width.
SUMMARY_METRICS = (
    "cooperation_rate",
    "illegal_rate",
    "game_payoff",
    *(f"reward_{name}" for name in REWARD_NAMES),
    "regret_deontological",
    "regret_utilitarian",
)
#: The same for N-player games: the others' cooperation, the collective payoff, all eight reward components and the
#: Game regret besides the two moral ones.
N_PLAYER_SUMMARY_METRICS = (
    "cooperation_rate",
    "illegal_rate",
    "others_cooperation_rate",
    "game_payoff",
    "total_payoff",
    *(f"reward_{name}" for name in N_PLAYER_COMPONENT_NAMES),
    "regret_deontological",
    "regret_utilitarian",
    "regret_game",
)
DEFAULT_GROUP_KEYS = ("run", "agent", "role", "game", "num_players", "opponent", "variant")


def resolve_game(game: str | MatrixGame | SchellingGame, num_players: int | None = None) -> MatrixGame | SchellingGame:
    """The game ``game`` names in either family: a two-player game (:func:`~moralgym.envs.games.get_game`;
    ``num_players`` does not apply to it) or an N-player game built for ``num_players`` (default 4,
    :func:`~moralgym.envs.n_player.get_n_player_game`). The two registries share no name.

    Raises:
        KeyError: a name of neither family; the message lists both.
    """
    if isinstance(game, SchellingGame) or (isinstance(game, str) and game in N_PLAYER_GAMES):
        return get_n_player_game(game, num_players)
    if isinstance(game, str) and game not in GAMES:
        raise KeyError(
            f"unknown game {game!r}; known two-player games: {', '.join(list_games())}; N-player games: "
            f"{', '.join(list_n_player_games())}"
        )
    return get_game(game)


def _game_name(game: str | MatrixGame, num_players: int | None) -> str:
    """The registered name of ``game`` (checked by building it, so a bad ``num_players`` fails here)."""
    built = resolve_game(game, num_players)
    if isinstance(game, str) and isinstance(built, SchellingGame):
        return N_PLAYER_GAMES.canonical(game)
    return built.name


@dataclass
class EvaluationConfig:
    """Settings of one evaluation (defaults = the paper's protocol)."""

    games: tuple[str, ...] = tuple(game.name for game in PAPER_GAMES)
    num_players: int | None = None  # players of the N-player games among ``games`` (None: 4); two-player games have 2
    opponents: tuple[str, ...] = ("random",)  # N-player games: every other seat's (or a list: one per seat)
    variants: tuple[str, ...] | None = None  # None: every variant the agent offers (["default"] for non-LLM agents)
    num_episodes: int = 10
    num_rounds: int = 5
    seed: int = EVALUATION_SEED
    penalty: float = DEFAULT_PENALTY  # authors' evaluation code used 4 (docs/reproduction.md)
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD
    initial_state: str = "random"

    def __post_init__(self) -> None:
        players = self.num_players
        if players is not None and (
            isinstance(players, bool) or not isinstance(players, (int, np.integer)) or players < 2
        ):
            raise ValueError(f"num_players must be an integer >= 2 (players of the N-player games), got {players!r}")
        games = [self.games] if isinstance(self.games, str) else self.games
        self.games = tuple(_game_name(g, players) for g in games)
        if players is not None and not any(g in N_PLAYER_GAMES for g in self.games):
            raise ValueError(
                f"num_players={players} sets the size of N-player games, but the games {', '.join(self.games)} have two "
                f"players; add an N-player game ({', '.join(list_n_player_games())}) or leave num_players unset"
            )
        self.opponents = (self.opponents,) if isinstance(self.opponents, str) else tuple(self.opponents)
        if isinstance(self.variants, str):
            self.variants = (self.variants,)
        for name in ("num_episodes", "num_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.opponents:
            raise ValueError("opponents must name at least one opponent, e.g. ('random',)")


@dataclass
class EvaluationResult:
    """Tidy tables: ``decisions`` (one dict per decision) and ``summary`` (one dict per group, see
    :func:`summarise`); ``write(out_dir)`` saves them as JSONL/CSV."""

    decisions: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        from moralgym.evaluation.io import write_csv, write_json, write_jsonl

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "decisions": write_jsonl(out / "decisions.jsonl", self.decisions),
            "summary": write_jsonl(out / "summary.jsonl", self.summary),
            "summary_csv": write_csv(out / "summary.csv", self.summary),
            "config": write_json(out / "evaluation.json", self.config),
        }
        return paths


def play_match(
    row_agent: Any,
    col_agent: Any,
    game: str | MatrixGame | SchellingGame,
    *,
    num_episodes: int = 10,
    num_rounds: int = 5,
    seed: int = EVALUATION_SEED,
    penalty: float = DEFAULT_PENALTY,
    illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
    initial_state: str = "random",
    num_players: int | None = None,
    references: Sequence[Any] = (),
    context: dict[str, Any] | None = None,
    record_column: bool = False,
    fresh_states: bool = False,
) -> list[dict[str, Any]]:
    """Play ``num_episodes`` episodes of ``game`` in parallel envs; return one record per decision of the row seat
    (and of the column seat if ``record_column``), plus one per decision of each ``references`` agent.

    An N-player game (a :class:`~moralgym.envs.n_player.SchellingGame` or its name, built for ``num_players``) puts
    ``col_agent`` in every other seat (independent copies; or pass a list of ``N - 1`` agents), seat ``j`` seeded
    ``derive_seed(seed, 1 + j)`` as the two seats of a two-player game are; ``record_column`` records them all.

    ``fresh_states``: every one of the ``num_episodes x num_rounds`` decisions starts from its own random previous-move
    state (each is a one-round episode, all played in one batch) instead of following a trajectory; the records
    keep ``episode``/``round`` labels as if they were rounds. This is how the authors evaluated the phrasing and
    "unrelated" prompt variants.

    Records carry ``context`` (e.g. run/variant names) and the fields listed in :func:`decision_rows`.
    """
    game = resolve_game(game, num_players)
    context = dict(context or {})
    num_parallel, rounds_played = (num_episodes * num_rounds, 1) if fresh_states else (num_episodes, num_rounds)
    make_env = NPlayerGameEnv if isinstance(game, SchellingGame) else MatrixGameEnv
    envs = [
        make_env(
            game, num_rounds=rounds_played, initial_state=initial_state, penalty=penalty, illegal_reward=illegal_reward
        )
        for _ in range(num_parallel)
    ]
    agents = list(envs[0].possible_agents)
    row_agent = seat_for_game(row_agent, game)
    co_players = _co_players(col_agent, game, len(agents) - 1)
    references = [seat_for_game(reference, game) for reference in references]
    stream = 3 if fresh_states else 0  # fresh states come from their own stream, not the trajectories' first states
    seats = {agents[0]: row_agent, **dict(zip(agents[1:], co_players, strict=True))}
    # The other seats' declared openings (Always Cooperate / Defect) are shown; the evaluated seat's own stays drawn.
    records = run_episodes(
        envs,
        seats,
        seeds=[derive_seed(seed, stream, i) for i in range(num_parallel)],
        # Every seat's randomness comes from the evaluation seed alone: the same for every agent, game and variant;
        # a reference shares the row seat's seed, so it sees the same token orders and sampling uniforms.
        seat_seeds={agent: derive_seed(seed, 1 + j) for j, agent in enumerate(agents)},
        options=opening_options({agent: seats[agent] for agent in agents[1:]}, initial_state),
        episodes=np.arange(num_parallel) // num_rounds if fresh_states else range(num_episodes),
        record=agents if record_column else agents[:1],
        shadows={agents[0]: list(references)} if references else None,
    )
    if fresh_states:  # query q is "round" q % num_rounds + 1 of "episode" q // num_rounds
        for record in records:
            record.round = record.env_index % num_rounds + 1
    names = [seat.name for seat in co_players]
    others = names[0] if len(set(names)) == 1 else "+".join(names)  # what the row seat plays against
    if isinstance(game, SchellingGame):
        flat = n_player_decision_rows(records, game, illegal_reward)
    else:
        flat = decision_rows(records, game.max_collective_payoff, illegal_reward)
    rows = []
    for record, row in zip(records, flat, strict=True):
        if record.counterfactual:
            who = {"agent": record.player, "opponent": others, "role": "reference", "reference_of": row_agent.name}
        else:
            role = context.get("role", "agent") if record.seat == 0 else "agent"
            who = {"agent": record.player, "opponent": others if record.seat == 0 else row_agent.name, "role": role}
        rows.append({**context, "game": game.name, **who, **row})
    return rows


def _co_players(col_agent: Any, game: MatrixGame | SchellingGame, count: int) -> list[Any]:
    """The seats of the ``count`` players beside the row seat, each as it plays ``game``: ``col_agent`` and
    independent copies of it, or a list of ``count`` agents (an agent listed twice is copied, because a seat keeps
    the memory of the games it plays)."""
    if isinstance(col_agent, (list, tuple)):
        if len(col_agent) != count:
            raise ValueError(
                f"got {len(col_agent)} co-players for the {count} other seats of {game.name!r}; pass one agent (copied "
                f"into every seat) or a list of {count}"
            )
        listed = list(col_agent)
    else:
        listed = [col_agent] * count
    seats: list[Any] = []
    for agent in listed:
        seat = seat_for_game(agent, game)
        seats.append(spawn(seat) if any(seat is other for other in seats) else seat)
    return seats


def decision_rows(
    records: Sequence[StepRecord], max_collective_payoff: float, illegal_reward: float
) -> list[dict[str, Any]]:
    """The evaluation's flat view of each decision: the record's fields, its action type and outcome, each reward
    component as ``reward_<name>`` and both moral regrets (computed on arrays, once for all records)."""
    actions = np.array([r.action for r in records], dtype=np.int64)
    types = action_types(actions, np.array([r.opponent_previous for r in records], dtype=np.int64))
    joint = outcomes(actions, np.array([r.opponent_action for r in records], dtype=np.int64))
    regret_de = deontological_regret(np.array([r.moral_rewards["deontological"] for r in records]))
    regret_ut = utilitarian_regret(
        np.array([r.moral_rewards["utilitarian"] for r in records]), max_collective_payoff, illegal_reward
    )
    rows = []
    for i, record in enumerate(records):
        rewards = record.moral_rewards
        row = {
            "round": record.round,
            "seat": record.seat,
            "episode": record.episode,
            "own_previous": record.own_previous,
            "opponent_previous": record.opponent_previous,
            "action": record.action,
            "opponent_action": record.opponent_action,
            "action_type": str(types[i]),
            "outcome": str(joint[i]),
            "cooperated": record.action == 0,
            "illegal": record.illegal,
            "game_payoff": record.game_payoff,
            "opponent_payoff": record.opponent_payoff,
            **{f"reward_{name}": float(rewards[name]) for name in REWARD_NAMES},
            "regret_deontological": float(regret_de[i]),
            "regret_utilitarian": float(regret_ut[i]),
        }
        if record.text is not None:
            row["text"] = record.text
        rows.append(row)
    return rows


def n_player_decision_rows(
    records: Sequence[StepRecord], game: SchellingGame, illegal_reward: float
) -> list[dict[str, Any]]:
    """:func:`decision_rows` for an N-player game: the others counted instead of an opponent
    (``others_previous_cooperated`` as the player saw it, ``others_cooperated`` this round), every seat's
    ``payoffs`` and their sum ``total_payoff``, the N-player action type and outcome
    (:mod:`moralgym.agents.records`), every reward component, and three regrets with the game's maxima read off its
    Schelling diagram: Deontological (the N-player penalty incurred), Utilitarian (the shortfall from the best
    collective payoff, normalised as for two players) and Game (the shortfall from the best reply to the others)."""
    n = game.num_players
    actions = np.array([r.action for r in records], dtype=np.int64)
    seen = np.array([r.others_previous_cooperated for r in records], dtype=np.int64)
    others_now = np.array([r.others_cooperated for r in records], dtype=np.int64)
    types = n_player_action_types(actions, seen, n)
    joint = n_player_outcomes(actions, others_now)
    regret_de = deontological_regret(np.array([r.moral_rewards["deontological"] for r in records]))
    regret_ut = utilitarian_regret(
        np.array([r.moral_rewards["utilitarian"] for r in records]), game.max_collective_payoff, illegal_reward
    )
    regret_game = game_regret(np.array([r.moral_rewards["game"] for r in records]), others_now, game)
    rows = []
    for i, record in enumerate(records):
        row = {
            "round": record.round,
            "seat": record.seat,
            "episode": record.episode,
            "num_players": n,
            "own_previous": record.own_previous,
            "others_previous_cooperated": record.others_previous_cooperated,
            "action": record.action,
            "others_cooperated": record.others_cooperated,
            "action_type": str(types[i]),
            "outcome": str(joint[i]),
            "cooperated": record.action == 0,
            "illegal": record.illegal,
            "game_payoff": record.game_payoff,
            "total_payoff": record.total_payoff,
            "payoffs": list(record.payoffs),
            **{f"reward_{name}": float(value) for name, value in record.moral_rewards.items()},
            "regret_deontological": float(regret_de[i]),
            "regret_utilitarian": float(regret_ut[i]),
            "regret_game": float(regret_game[i]),
        }
        if record.text is not None:
            row["text"] = record.text
        rows.append(row)
    return rows


def summarise(
    decisions: Iterable[dict[str, Any]], group_keys: Sequence[str] = DEFAULT_GROUP_KEYS
) -> list[dict[str, Any]]:
    """One row per group of decisions: counts, shares of each action type and outcome, and every metric of
    :data:`SUMMARY_METRICS` as ``mean`` with its ``_ci95`` half-width over episodes (rounds averaged first); for
    N-player decisions (they have ``num_players``) those of :data:`N_PLAYER_SUMMARY_METRICS` and the N-player action
    types and outcomes.

    Keys missing from the decisions are left out of the grouping.
    """
    decisions = list(decisions)
    if not decisions:
        return []
    keys = [k for k in group_keys if any(k in d for d in decisions)]
    groups: dict[tuple, list[dict]] = {}
    for record in decisions:
        groups.setdefault(tuple(record.get(k) for k in keys), []).append(record)
    rows = []
    for key, members in groups.items():
        episode = np.array([m.get("episode", 0) for m in members])
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["num_decisions"] = len(members)
        row["num_episodes"] = int(np.unique(episode).size)
        columns = {
            "cooperation_rate": np.array([m["cooperated"] for m in members], dtype=float),
            "illegal_rate": np.array([m["illegal"] for m in members], dtype=float),
        }
        kinds = {"num_players" in m for m in members}
        if len(kinds) > 1:
            raise ValueError(f"group {key} mixes two-player and N-player decisions; group them by 'game'")
        if kinds == {True}:
            players = np.array([m["num_players"] for m in members])
            others = np.array([m["others_cooperated"] for m in members], dtype=float) / (players - 1)
            columns["others_cooperation_rate"] = others
            metrics, type_labels = N_PLAYER_SUMMARY_METRICS, n_player_action_type_labels(int(players.max()))
            outcome_labels = n_player_outcome_labels(int(players.max()))
        else:
            metrics, type_labels, outcome_labels = SUMMARY_METRICS, ACTION_TYPES, OUTCOMES
        for name in metrics[len(columns) :]:  # the rest are the rows' own columns
            columns[name] = np.array([m[name] for m in members], dtype=float)
        for name, values in columns.items():
            row[name], row[f"{name}_ci95"] = mean_ci(episode_means(values, episode))
        types = np.array([m["action_type"] for m in members])
        for label in type_labels:
            share, ci = mean_ci(episode_means((types == label).astype(float), episode))
            row[f"share_{label}"], row[f"share_{label}_ci95"] = share, ci
        joint = np.array([m["outcome"] for m in members])
        for label in outcome_labels:
            row[f"share_{label}"] = float((joint == label).mean())
        rows.append(row)
    return rows


@dataclass(frozen=True)
class _DefaultProtocol:
    games: tuple[str, ...] | None = None
    fresh_states: bool = False


def _variant_protocol(agent: Any, variant: str) -> Any:
    """The agent's protocol for ``variant`` (games, state sampling), or the evaluation's defaults."""
    method = getattr(agent, "variant_protocol", None)
    return method(variant) if callable(method) else _DefaultProtocol()


def _protocol_record(agent: Any, variant: str, config: EvaluationConfig) -> dict[str, Any]:
    """What a variant was run under, for the evaluation's record (``max_new_tokens`` ``None``: the policy's)."""
    protocol = _variant_protocol(agent, variant)
    games = protocol.games if protocol.games is not None else config.games
    return {
        "games": list(games),
        "max_new_tokens": getattr(protocol, "max_new_tokens", None),
        "fresh_states": bool(protocol.fresh_states),
    }


def match_settings(config: EvaluationConfig) -> dict[str, Any]:
    """The :func:`play_match` keyword arguments ``config`` sets (episodes, rounds, seed, rewards, initial state,
    players of the N-player games)."""
    names = ("num_episodes", "num_rounds", "seed", "penalty", "illegal_reward", "initial_state", "num_players")
    return {name: getattr(config, name) for name in names}


def evaluate(
    agent: Any,
    config: EvaluationConfig | None = None,
    *,
    reference: Any = None,
    run: str | None = None,
    **overrides: Any,
) -> EvaluationResult:
    """Evaluate ``agent`` (an evaluation agent, a strategy, or a :func:`~moralgym.evaluation.agents.make_agent`
    spec) under ``config`` (keyword ``overrides`` replace its fields). ``reference`` answers the same prompts.

    >>> result = evaluate("tit_for_tat", games=("ipd",), num_episodes=2, num_rounds=3)
    >>> len(result.decisions), result.summary[0]["num_episodes"]
    (6, 2)
    """
    config = EvaluationConfig(**{**(asdict(config) if config else {}), **overrides})
    agent = as_agent(agent)
    references = [as_agent(reference)] if reference is not None else []
    run = run or agent.name
    variants = list(config.variants) if config.variants else agent_variants(agent)
    decisions: list[dict[str, Any]] = []
    started = time.perf_counter()
    for variant in variants:
        for seat in [agent, *references]:
            if hasattr(seat, "set_variant"):
                seat.set_variant(variant)
        protocol = _variant_protocol(agent, variant)
        games = protocol.games if protocol.games is not None else config.games
        for opponent_spec in config.opponents:
            for game in games:
                decisions += play_match(
                    agent,
                    _opponent(opponent_spec, resolve_game(game, config.num_players)),
                    game,
                    **match_settings(config),
                    references=references,
                    context={"run": run, "variant": variant},
                    fresh_states=protocol.fresh_states,
                )
    summary = summarise(decisions)
    meta = {
        **asdict(config),
        "variants": variants,
        "variant_protocols": {variant: _protocol_record(agent, variant, config) for variant in variants},
        "agent": agent.name,
        "run": run,
        "reference": references[0].name if references else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return EvaluationResult(decisions, summary, meta)


def opponent_seat(name: str, game: MatrixGame | SchellingGame) -> Any:
    """The seat of the fixed strategy ``name`` in ``game``: looked up among the two-player strategies or, in an
    N-player game, among the N-player ones (``"conditional_cooperator"`` exists only there)."""
    return NPlayerStrategySeat(name) if isinstance(game, SchellingGame) else StrategySeat(name)


def _opponent(spec: Any, game: MatrixGame | SchellingGame) -> Any:
    """The opponent of an :class:`EvaluationConfig` entry in ``game``: a strategy name's seat, an agent, or (an
    N-player game's co-players one by one) a list of either."""
    if isinstance(spec, str):
        return opponent_seat(spec, game)
    if isinstance(spec, (list, tuple)):
        return [_opponent(member, game) for member in spec]
    return as_agent(spec)


@dataclass
class TournamentResult:
    """``table``: one row per (agent, opponent, game) with the row agent's summary metrics; ``decisions`` tidy."""

    agents: list[str]
    decisions: list[dict[str, Any]]
    table: list[dict[str, Any]]

    def matrix(self, metric: str = "game_payoff", game: str | None = None) -> np.ndarray:
        """``agents x agents`` array of ``metric`` for the row agent (mean over games when ``game`` is None)."""
        index = {name: i for i, name in enumerate(self.agents)}
        total = np.zeros((len(self.agents),) * 2)
        count = np.zeros_like(total)
        for row in self.table:
            if game is None or row["game"] == resolve_game(game).name:
                i, j = index[row["agent"]], index[row["opponent"]]
                total[i, j] += row[metric]
                count[i, j] += 1
        with np.errstate(invalid="ignore"):
            return total / count


def tournament(
    agents: Sequence[Any] | dict[str, Any], config: EvaluationConfig | None = None, **overrides: Any
) -> TournamentResult:
    """Round robin: every agent plays every agent (itself included, as an independent copy) in the row seat, on
    every game of ``config`` (keyword ``overrides`` replace its fields; its opponents and variants are not used);
    in an N-player game the column agent fills every other seat. Returns the tidy decisions and a table with one
    row per (agent, opponent, game).

    >>> result = tournament(["tit_for_tat", "always_defect"], games=("ipd",), num_episodes=2, num_rounds=3)
    >>> len(result.table), result.matrix().shape
    (4, (2, 2))
    """
    config = EvaluationConfig(**{**(asdict(config) if config else {}), **overrides})
    if isinstance(agents, dict):
        built = []
        for name, agent in agents.items():
            agent = as_agent(agent)
            agent.name = name
            built.append(agent)
    else:
        built = [as_agent(agent) for agent in agents]
    names = [agent.name for agent in built]
    if len(set(names)) != len(names):
        raise ValueError(f"tournament agents need distinct names, got {names}; pass a dict name -> agent")
    decisions: list[dict[str, Any]] = []
    for row_agent in built:
        for col_agent in built:
            opponent = spawn(col_agent)
            for game in config.games:
                decisions += play_match(
                    row_agent, opponent, game, **match_settings(config), context={"run": "tournament"}
                )
    table = summarise(decisions, group_keys=("agent", "opponent", "game", "num_players"))
    return TournamentResult(names, decisions, table)
