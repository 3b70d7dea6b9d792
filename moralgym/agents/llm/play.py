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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moralgym.agents.llm.policy import LLMPolicy
from moralgym.agents.llm.seat import LLMSeat
from moralgym.agents.records import StepRecord, behaviour_metrics
from moralgym.agents.runner import run_episodes
from moralgym.agents.seats import StrategySeat
from moralgym.envs import MatrixGameEnv, get_game, make_opponent
from moralgym.envs.games import MatrixGame
from moralgym.envs.openings import opening_options

__all__ = ["PlayConfig", "PlayResult", "main", "play"]

_RATES = ("decisions", "cooperation_rate", "defection_rate", "illegal_rate", "mean_game_payoff")


@dataclass
class PlayResult:
    """Every decision's record and the summary rates (overall and per game)."""

    records: list[StepRecord]
    summary: dict[str, Any]


def _rates(records: Sequence[StepRecord]) -> dict[str, float]:
    metrics = behaviour_metrics(records)
    return {name: metrics.get(name, 0.0) for name in _RATES}


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
            :class:`LLMPolicy` (e.g. another adapter on the same base model: both seats then share forward passes).
        game: one game or a list of games; all of them run side by side.
        num_parallel: environments run at once (default: all episodes of all games).

    Records hold ``policy``'s decisions (seat 0), and seat 1's too when the same policy plays both seats.
    """
    games = [get_game(g) for g in ([game] if isinstance(game, (str, MatrixGame)) else game)]
    jobs = [(g, e) for e in range(num_episodes) for g in games]
    num_parallel = len(jobs) if num_parallel is None else max(1, int(num_parallel))
    if isinstance(opponent, str) and opponent.strip().lower() == "llm":
        opponent = policy
    seats: dict[str, Any] = {"player_0": LLMSeat(policy)}
    if isinstance(opponent, LLMPolicy):
        seats["player_1"] = seats["player_0"] if opponent is policy else LLMSeat(opponent, name="opponent")
    else:  # one stream of opponent uniforms for the whole call
        seats["player_1"] = StrategySeat(make_opponent(opponent), rng=np.random.default_rng(seed))
    self_play = seats["player_1"] is seats["player_0"]
    record = ("player_0", "player_1") if self_play else ("player_0",)
    options = opening_options({"player_1": seats["player_1"]}, initial_state)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs) * num_rounds * len(record), unit="decision", file=sys.stderr)
    records: list[StepRecord] = []
    started = time.perf_counter()
    for start in range(0, len(jobs), num_parallel):
        chunk = jobs[start : start + num_parallel]
        records += run_episodes(
            [MatrixGameEnv(g, num_rounds=num_rounds, initial_state=initial_state) for g, _ in chunk],
            seats,
            seeds=[seed + e for _, e in chunk],
            options=options,
            episodes=[e for _, e in chunk],
            record=record,
            on_round=None if bar is None else (lambda rows: bar.update(len(rows))),
        )
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
    num_episodes: int = field(default=10, metadata={"help": "episodes per game", "aliases": ["--episodes"]})
    num_rounds: int = field(default=5, metadata={"help": "rounds per episode", "aliases": ["--rounds"]})
    num_parallel: int | None = field(
        default=None, metadata={"help": "environments run at once (default: all)", "aliases": ["--parallel"]}
    )
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
        if self.num_episodes < 1 or self.num_rounds < 1:
            raise ValueError(f"--episodes and --rounds must be positive, got {self.num_episodes} and {self.num_rounds}")


class PlayError(Exception):
    """A mistake on the ``moralgym play`` command line: one line ``moralgym play: error: ...``, exit code 2."""


def _parse(argv: Sequence[str] | None) -> PlayConfig:
    from moralgym.cli_args import dataclass_parser

    parser = dataclass_parser(PlayConfig, prog="moralgym play", description=PlayConfig.__doc__)
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
        num_episodes=config.num_episodes,
        num_parallel=config.num_parallel,
        num_rounds=config.num_rounds,
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
                handle.write(json.dumps(record.to_dict()) + "\n")
        print(f"wrote {len(result.records)} decisions to {config.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
