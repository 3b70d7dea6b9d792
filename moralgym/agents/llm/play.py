"""Let an LLM play moralgym games through the environment API, many games at once: ``play`` and ``moralgym play``.

``play`` runs ``num_parallel`` :class:`~moralgym.envs.MatrixGameEnv` instances side by side through ``reset`` /
``step`` and, each round, asks the :class:`~moralgym.agents.llm.policy.LLMPolicy` for every waiting move in one
``decide`` call (both seats too when an LLM plays itself). Games given as a list run side by side as well, so the
paper's evaluation (five games x 10 episodes x 5 rounds vs Random) is five ``decide`` calls of 50 decisions.

Seeding follows the paper's evaluation: episode ``e`` of every game is reset with seed ``seed + e`` (the same
initial states in every game) and the opponent's uniforms come from one numpy stream seeded with ``seed``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from moralgym.agents.llm.policy import LLMPolicy, decide_jointly
from moralgym.envs import MatrixGameEnv, get_game, make_opponent
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL, MatrixGame

__all__ = ["PlayConfig", "PlayRecord", "PlayResult", "main", "play"]


@dataclass
class PlayRecord:
    """One LLM decision and what the environment made of it."""

    game: str
    episode: int
    round: int
    seat: int
    observation: tuple[int, int]
    action: int
    opponent_action: int
    text: str
    illegal: bool
    game_payoff: float
    moral_rewards: dict[str, float]


@dataclass
class PlayResult:
    """Every decision's record and the summary rates (overall and per game)."""

    records: list[PlayRecord]
    summary: dict[str, Any]


def _rates(records: Sequence[PlayRecord]) -> dict[str, float]:
    actions = np.array([r.action for r in records])
    n = max(len(actions), 1)
    return {
        "decisions": len(actions),
        "cooperation_rate": float((actions == COOPERATE).sum() / n),
        "defection_rate": float((actions == DEFECT).sum() / n),
        "illegal_rate": float((actions == ILLEGAL).sum() / n),
        "mean_game_payoff": float(np.mean([r.game_payoff for r in records])) if records else 0.0,
    }


def play(
    policy: LLMPolicy,
    opponent: str | Any = "random",
    game: str | MatrixGame | Sequence[str | MatrixGame] = "ipd",
    num_episodes: int = 10,
    num_parallel: int | None = None,
    num_rounds: int = 5,
    seed: int = 0,
    initial_state: str = "random",
    progress: bool = False,
) -> PlayResult:
    """Play ``num_episodes`` episodes of each game against ``opponent`` and record every LLM decision.

    Args:
        policy: the LLM in seat 0 (``player_0``).
        opponent: a strategy name or object (``make_opponent``), ``"llm"`` for the same policy in seat 1, or a second
            :class:`LLMPolicy` (e.g. another adapter on the same base model).
        game: one game or a list of games; all of them run side by side.
        num_parallel: environments run at once (default: all episodes of all games).

    Records hold ``policy``'s decisions (seat 0), and seat 1's too when the same policy plays both seats. A second
    :class:`LLMPolicy` is asked in its own ``decide`` call (its own adapter and streams).
    """
    games = [get_game(g) for g in ([game] if isinstance(game, (str, MatrixGame)) else game)]
    jobs = [(g, e) for e in range(num_episodes) for g in games]
    num_parallel = len(jobs) if num_parallel is None else max(1, int(num_parallel))
    if isinstance(opponent, str) and opponent.strip().lower() == "llm":
        opponent = policy
    llm_opponent = isinstance(opponent, LLMPolicy)
    strategy = None if llm_opponent else make_opponent(opponent)
    opponent_rng = np.random.default_rng(seed)
    fixed_move = getattr(strategy, "initial_move", None) if initial_state == "random" else None
    options = {"previous_moves": {"player_1": fixed_move}} if fixed_move is not None else None  # docs/reproduction.md
    records: list[PlayRecord] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs) * num_rounds * (2 if llm_opponent else 1), unit="decision", file=sys.stderr)
    started = time.perf_counter()
    for start in range(0, len(jobs), num_parallel):
        chunk = jobs[start : start + num_parallel]
        envs = [MatrixGameEnv(g, num_rounds=num_rounds, initial_state=initial_state) for g, _ in chunk]
        observations = [env.reset(seed=seed + e, options=options)[0] for env, (_, e) in zip(envs, chunk, strict=True)]
        memory = strategy.initial_memory(len(chunk)) if strategy is not None else None
        for _ in range(num_rounds):
            seat0 = np.stack([obs["player_0"] for obs in observations])
            seat1 = np.stack([obs["player_1"] for obs in observations])
            chunk_games = [g for g, _ in chunk]
            if llm_opponent and opponent is policy:
                both = policy.decide(
                    chunk_games * 2, np.concatenate([seat0, seat1]), [0] * len(chunk) + [1] * len(chunk)
                )
                mine, theirs = both[: len(chunk)], both[len(chunk) :]
                opponent_actions = [d.action for d in theirs]
            elif llm_opponent and opponent.model is policy.model:  # e.g. two adapters: shared passes
                mine, theirs = decide_jointly(
                    [(policy, chunk_games, seat0, [0] * len(chunk)), (opponent, chunk_games, seat1, [1] * len(chunk))]
                )
                opponent_actions = [d.action for d in theirs]
            elif llm_opponent:
                mine = policy.decide(chunk_games, seat0, [0] * len(chunk))
                theirs = opponent.decide(chunk_games, seat1, [1] * len(chunk))
                opponent_actions = [d.action for d in theirs]
            else:
                mine, theirs = policy.decide(chunk_games, seat0, [0] * len(chunk)), []
                acts, memory = strategy.act_batch(seat1, memory, opponent_rng.random(len(chunk)))
                opponent_actions = [int(a) for a in acts]
            next_observations = []
            for k, env in enumerate(envs):
                actions = {"player_0": mine[k].action, "player_1": opponent_actions[k]}
                obs, _, _, _, infos = env.step(actions)
                next_observations.append(obs)
                seats = [(0, "player_0", mine[k], seat0[k])]
                if theirs and opponent is policy:
                    seats.append((1, "player_1", theirs[k], seat1[k]))
                for seat, agent, decision, seen in seats:
                    info = infos[agent]
                    records.append(
                        PlayRecord(
                            game=env.game.name,
                            episode=chunk[k][1],
                            round=info["round"],
                            seat=seat,
                            observation=(int(seen[0]), int(seen[1])),
                            action=decision.action,
                            opponent_action=info["other_action"],
                            text=decision.text,
                            illegal=info["illegal"],
                            game_payoff=info["game_payoff"],
                            moral_rewards=dict(info["moral_rewards"]),
                        )
                    )
            observations = next_observations
            if bar is not None:
                bar.update(len(chunk) * (2 if llm_opponent else 1))
    elapsed = time.perf_counter() - started
    if bar is not None:
        bar.close()
    summary: dict[str, Any] = _rates(records)
    summary["per_game"] = {g.name: _rates([r for r in records if r.game == g.name]) for g in games}
    summary["seconds"] = elapsed
    summary["decisions_per_second"] = len(records) / elapsed if elapsed > 0 else float("inf")
    summary["mean_prompt_tokens"] = float(np.mean(policy.prompt_lengths)) if policy.prompt_lengths else 0.0
    return PlayResult(records, summary)


# ----------------------------------------------------------------------------------------------- CLI
@dataclass
class PlayConfig:
    """``moralgym play``: let an LLM play matrix games and print its cooperation and illegal-move rates."""

    model: str = field(
        default="default", metadata={"help": "'default' (embedded SmolLM2-135M-Instruct), a hub id or a local path"}
    )
    adapter: str | None = field(default=None, metadata={"help": "PEFT adapter directory to load on top of the model"})
    opponent: str = field(
        default="random", metadata={"help": "a strategy name (tit_for_tat, random, ...) or 'llm' (self-play)"}
    )
    game: str = field(
        default="ipd",
        metadata={
            "help": "comma-separated games (ipd,stag_hunt,chicken,bach_or_stravinsky,defective_coordination) or 'all'"
        },
    )
    episodes: int = field(default=10, metadata={"help": "episodes per game"})
    rounds: int = field(default=5, metadata={"help": "rounds per episode"})
    parallel: int | None = field(default=None, metadata={"help": "environments run at once (default: all)"})
    tokens: str = field(
        default="action12", metadata={"help": "action tokens: a registered name (action34) or 'cooperate,defect'"}
    )
    prompt: str = field(
        default="paper",
        metadata={"help": "prompt phrasing: paper, unstructured, ipd_like, explicit_ipd, action_only, ..."},
    )
    table_order: str = field(
        default="original", metadata={"help": "payoff table order: original, cols_reversed, rows_reversed, reversed"}
    )
    persona: str | None = field(default=None, metadata={"help": "value persona: utilitarian or deontologist"})
    answer_prefix: str = field(default="", metadata={"help": "text the answer is pre-filled with, e.g. 'action'"})
    max_new_tokens: int = field(default=2, metadata={"help": "tokens sampled per decision (paper: 2)"})
    seed: int = field(default=0, metadata={"help": "seed for environments, opponent and sampling"})
    dtype: str | None = field(default=None, metadata={"help": "auto, bf16 or fp32"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: where the model loads)"})
    no_prefix_cache: bool = field(
        default=False, metadata={"help": "recompute every prefix (slower; same distribution)"}
    )
    output: str | None = field(default=None, metadata={"help": "write every decision as JSON lines to this file"})

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.rounds < 1:
            raise ValueError(
                f"episodes and rounds must be positive, got episodes={self.episodes}, rounds={self.rounds}"
            )


class PlayError(Exception):
    """A mistake on the ``moralgym play`` command line: one line ``moralgym play: error: ...``, exit code 2."""


def _parse(argv: Sequence[str] | None) -> PlayConfig:
    from transformers import HfArgumentParser

    class Parser(HfArgumentParser):
        def error(self, message: str) -> NoReturn:  # one line, no usage dump
            self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    parser = Parser(PlayConfig, prog="moralgym play", description=PlayConfig.__doc__, allow_abbrev=False)
    try:
        (config,) = parser.parse_args_into_dataclasses(args=list(argv) if argv is not None else None)
    except ValueError as error:  # PlayConfig.__post_init__
        raise PlayError(error) from error
    return config


def _one_line(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split())


def _check_path(text: str | None, what: str, adapter: bool = False) -> None:
    """A local path that is not there (a hub id ``owner/name`` is left to the loader), or an adapter directory
    without its ``adapter_config.json``."""
    if text is None or text == "default":
        return
    path = Path(text).expanduser()
    meant_local = text.startswith(("/", ".", "~")) or text.count("/") > 1 or Path(text.split("/")[0]).is_dir()
    if not path.exists() and (meant_local or adapter):
        raise PlayError(f"--{what} {text}: no such file or directory")
    if adapter and not (path / "adapter_config.json").is_file():
        raise PlayError(f"--{what} {text}: no adapter_config.json there (not a PEFT adapter directory)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``moralgym play``; returns the exit status (2 for a mistake on the command line)."""
    try:
        return _main(argv)
    except PlayError as error:
        print(f"moralgym play: error: {_one_line(error)}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None) -> int:
    from moralgym.agents.llm.loading import load_causal_lm
    from moralgym.agents.llm.prompts import PromptBuilder
    from moralgym.envs.games import PAPER_GAMES

    config = _parse(argv)
    games = [g.name for g in PAPER_GAMES] if config.game == "all" else [g.strip() for g in config.game.split(",")]
    # Everything that can be checked before the model loads is checked here.
    try:
        for name in games:
            get_game(name)
        if config.opponent.strip().lower() != "llm":
            make_opponent(config.opponent)
        builder = PromptBuilder(
            tokens=config.tokens,
            phrasing=config.prompt,
            table_order=config.table_order,
            persona=config.persona,
            answer_prefix=config.answer_prefix,
        )
        if isinstance(config.max_new_tokens, bool) or config.max_new_tokens < 1:
            raise ValueError(f"--max_new_tokens must be a positive integer, got {config.max_new_tokens}")
    except (KeyError, ValueError, TypeError) as error:
        raise PlayError(error) from error
    _check_path(config.model, "model")
    _check_path(config.adapter, "adapter", adapter=True)
    try:
        model, tokenizer = load_causal_lm(
            config.model, dtype=config.dtype, adapter=config.adapter, device=config.device
        )
    except (ValueError, OSError) as error:
        raise PlayError(error) from error
    policy = LLMPolicy(
        model,
        tokenizer,
        prompt=builder,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        prefix_cache=not config.no_prefix_cache,
    )
    result = play(
        policy,
        config.opponent,
        games,
        num_episodes=config.episodes,
        num_parallel=config.parallel,
        num_rounds=config.rounds,
        seed=config.seed,
        progress=True,
    )
    s = result.summary
    print(
        f"{config.model} vs {config.opponent}: {s['decisions']} decisions, {s['decisions_per_second']:.1f}/s, "
        f"prompt {s['mean_prompt_tokens']:.0f} tokens"
    )
    for name, rates in s["per_game"].items():
        print(
            f"  {name:<24} cooperation {rates['cooperation_rate']:6.1%}  defection {rates['defection_rate']:6.1%}  "
            f"illegal {rates['illegal_rate']:6.1%}"
        )
    print(
        f"  {'all':<24} cooperation {s['cooperation_rate']:6.1%}  defection {s['defection_rate']:6.1%}  "
        f"illegal {s['illegal_rate']:6.1%}"
    )
    if config.output:
        with open(config.output, "w") as handle:
            for record in result.records:
                handle.write(json.dumps(asdict(record)) + "\n")
        print(f"wrote {len(result.records)} decisions to {config.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
