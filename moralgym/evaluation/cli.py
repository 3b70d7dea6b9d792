"""``moralgym evaluate AGENT`` and ``moralgym compare RUN ...``: thin argument parsing over the library.

Both command lines are built from dataclasses by :func:`moralgym.cli_args.dataclass_parser` (HfArgumentParser, as
``moralgym train`` and ``play``; ``--config FILE.yaml`` sets options by field name). ``evaluate``'s protocol options
are :class:`~moralgym.evaluation.harness.EvaluationConfig`'s own fields and defaults (:func:`protocol_arguments`), so
the command and the library cannot disagree on the paper's protocol.

``evaluate`` writes into ``--out`` (default ``runs/evaluate/<agent>``): ``decisions.jsonl`` (one row per decision),
``summary.jsonl`` / ``summary.csv`` (one row per agent x game x opponent x variant), ``evaluation.json`` (settings),
``figures/*.png``, optionally ``tournament.csv`` and ``report.html`` (figures inline).
``compare`` reads the ``summary.jsonl`` of each run directory and writes ``comparison.csv``/``.jsonl``,
``comparison.png`` and ``report.html`` into ``--out``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moralgym.cli_args import POSITIONAL, SWITCH, dataclass_parser
from moralgym.evaluation.report import build_evaluation_report

DEFAULT_TOURNAMENT = (
    "tit_for_tat",
    "always_cooperate",
    "always_defect",
    "random",
    "grim_trigger",
    "win_stay_lose_shift",
)


class CLIError(Exception):
    """A mistake on the command line: printed as one line ``moralgym <command>: error: ...``, exit code 2."""


def _message(error: BaseException) -> str:
    """An exception's text on one line (a KeyError's without its quotes)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split())


def _fail(command: str, error: BaseException) -> int:
    print(f"moralgym {command}: error: {_message(error)}", file=sys.stderr)
    return 2


def _help(text: str, **metadata: Any) -> dict[str, Any]:
    return {"help": text, **metadata}


# ----------------------------------------------------------------------------------------------- evaluate's options
@dataclass
class EvaluateArguments:
    """What ``moralgym evaluate`` evaluates, against which reference, and where the results go.

    The protocol's settings (games, episodes, ...) are not declared here: they are EvaluationConfig's own fields and
    defaults (:func:`protocol_arguments`), and the LLM prompt's are :class:`LLMPromptArguments`.
    """

    agent: str = field(
        metadata=_help(
            "strategy name, 'q_learning:<reward>[:<opponent>]', 'sb3:<algo>:<path.zip>', 'default', a model id, a "
            "model directory or an adapter directory (e.g. runs/quickstart/adapter)",
            cli=POSITIONAL,
        )
    )
    out: str | None = field(default=None, metadata=_help("output directory (default runs/evaluate/<agent>)"))
    overwrite: bool = field(
        default=False, metadata=_help("replace the results of another agent already in --out", cli=SWITCH)
    )
    reference: str = field(
        default="auto",
        metadata=_help("agent answering the same prompts ('none'; 'auto' = the base model under an adapter)"),
    )
    adapter: str | None = field(default=None, metadata=_help("LoRA adapter directory on top of an LLM agent"))
    model: str | None = field(
        default=None, metadata=_help("an adapter's base model (default: the one in its adapter_config.json)")
    )
    tournament: bool = field(default=False, metadata=_help("also run a round robin vs classic strategies", cli=SWITCH))
    tournament_agents: list[str] = field(
        default_factory=lambda: list(DEFAULT_TOURNAMENT),
        metadata=_help("the round robin's other entrants (strategy names)"),
    )
    training_metrics: str | None = field(
        default=None,
        metadata=_help("training metrics JSONL to plot learning curves (default: the adapter's run metrics.jsonl)"),
    )
    seed_train: int = field(default=0, metadata=_help("seed for baselines trained on the fly"))
    no_report: bool = field(default=False, metadata=_help("write tables only", cli=SWITCH))


@dataclass
class LLMPromptArguments:
    """The LLM agent's prompt; each unset option is the adapter's run's setting (its config.json), else the default
    of the training config's field of that name (``RUN_PROMPT_SETTINGS`` of :mod:`moralgym.evaluation.llm_agent`)."""

    _argument_group_name = "LLM prompt (default: the adapter's run config.json, else the training defaults)"

    answer_prefix: str | None = field(default=None, metadata=_help("text the answer is pre-filled with"))
    phrasing: str | None = field(default=None, metadata=_help("prompt phrasing of the default variant"))
    tokens: str | None = field(
        default=None, metadata=_help("action tokens of the default variant (the run's eval_action_tokens)")
    )
    max_new_tokens: int | None = field(default=None, metadata=_help("tokens sampled per answer"))


#: How ``moralgym evaluate`` spells and explains EvaluationConfig's fields. A field missing here is an option all the
#: same (``--<field>``, its default EvaluationConfig's): :func:`protocol_arguments` reads the fields themselves.
PROTOCOL_OPTIONS: dict[str, dict[str, Any]] = {
    "games": _help("games to play: two-player (ipd, ...) and/or N-player (public_goods, volunteers_dilemma, ...)"),
    "num_players": _help("players of the N-player games (default 4); the two-player games always have 2"),
    "opponents": _help("opponent strategies, in N-player games every co-player's ('all' = every one)"),
    "variants": _help(
        "prompt variants for LLM agents (default: the run's evaluation prompt, else action34; 'all' = every variant)"
    ),
    "num_episodes": _help("episodes per game", aliases=["--episodes"]),
    "num_rounds": _help("rounds per episode", aliases=["--rounds"]),
    "seed": _help("evaluation seed (same states for every agent)"),
    "penalty": _help("Deontological penalty at evaluation (training value 3; the authors' eval code used 4)"),
    "illegal_reward": _help("reward of an illegal answer"),
    "initial_state": _help("round one's previous moves: 'random' (the paper) or 'none'"),
}


def _as_list_type(annotation: Any) -> Any:
    """``tuple[X, ...]`` -> ``list[X]`` (also inside ``| None``): HfArgumentParser reads lists, not tuples."""
    if typing.get_origin(annotation) is tuple:
        return list[typing.get_args(annotation)[0]]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.Union[tuple(_as_list_type(a) for a in typing.get_args(annotation))]  # noqa: UP007
    return annotation


def protocol_arguments(config_class: type | None = None) -> type:
    """A dataclass of ``config_class``'s fields (default :class:`~moralgym.evaluation.harness.EvaluationConfig`) as
    ``moralgym evaluate`` options: same names, same defaults, read when the parser is built, so a new or changed
    EvaluationConfig default is the command's without an edit here; :data:`PROTOCOL_OPTIONS` adds the help and the
    historical spellings (``--episodes``)."""
    if config_class is None:
        from moralgym.evaluation.harness import EvaluationConfig as config_class
    hints = typing.get_type_hints(config_class)
    fields = []
    for f in dataclasses.fields(config_class):
        if not f.init:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        metadata = {"help": f"EvaluationConfig.{f.name}", **f.metadata, **PROTOCOL_OPTIONS.get(f.name, {})}
        if isinstance(default, tuple):
            spec = field(default_factory=lambda d=default: list(d), metadata=metadata)
        elif default is dataclasses.MISSING:
            spec = field(metadata=metadata)
        else:
            spec = field(default=default, metadata=metadata)
        fields.append((f.name, _as_list_type(hints[f.name]), spec))
    return dataclasses.make_dataclass(
        "EvaluationArguments",
        fields,
        namespace={"_argument_group_name": f"evaluation protocol ({config_class.__name__}; defaults: the paper's)"},
    )


def evaluation_config(protocol: Any, config_class: type | None = None, **overrides: Any) -> Any:
    """The EvaluationConfig of parsed :func:`protocol_arguments` (lists back to tuples), ``overrides`` applied."""
    if config_class is None:
        from moralgym.evaluation.harness import EvaluationConfig as config_class
    values = {}
    for f in dataclasses.fields(protocol):
        value = overrides.pop(f.name) if f.name in overrides else getattr(protocol, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return config_class(**values, **overrides)


def _evaluate_parser() -> Any:
    from moralgym.evaluation.harness import EvaluationConfig

    paper = EvaluationConfig()
    return dataclass_parser(
        (EvaluateArguments, protocol_arguments(EvaluationConfig), LLMPromptArguments),
        prog="moralgym evaluate",
        dashed=True,
        description=(
            f"Evaluate an agent the paper's way (vs {', '.join(paper.opponents)}, {paper.num_episodes} episodes x "
            f"{paper.num_rounds} rounds, {len(paper.games)} games, seed {paper.seed}).\n--config FILE.yaml sets any "
            "option by its field name (num_episodes: 3); flags override the file."
        ),
    )


def parse_evaluate_args(argv: Sequence[str] | None = None) -> tuple[EvaluateArguments, Any, LLMPromptArguments]:
    """``moralgym evaluate``'s command line -> (its options, the protocol options, the LLM prompt options); a usage
    mistake exits with a one-line error, code 2."""
    return _evaluate_parser().parse(argv)


def main_evaluate(argv: list[str] | None = None) -> int:
    args, protocol, prompt = parse_evaluate_args(argv)
    try:
        return _evaluate(args, protocol, prompt)
    except CLIError as error:
        return _fail("evaluate", error)


def _strategy_registries(games: Sequence[Any]) -> list[Any]:
    """The strategy registries an opponent name must be in: the two-player one, the N-player one, or both when
    games of both kinds are played."""
    from moralgym.envs.n_player.games import SchellingGame
    from moralgym.envs.n_player.opponents import N_PLAYER_OPPONENTS
    from moralgym.envs.opponents import OPPONENTS

    kinds = {isinstance(game, SchellingGame) for game in games}
    return [registry for n_player, registry in ((False, OPPONENTS), (True, N_PLAYER_OPPONENTS)) if n_player in kinds]


def _strategies_for(games: Sequence[Any]) -> list[str]:
    """The strategy names that can sit in every one of ``games`` (``--opponents all``)."""
    from moralgym.agents.strategies import list_strategies
    from moralgym.agents.strategies.n_player import list_n_player_strategies
    from moralgym.envs.opponents import OPPONENTS

    registries = _strategy_registries(games)
    names = list_strategies() if any(r is OPPONENTS for r in registries) else list_n_player_strategies()
    return [name for name in names if all(name in registry for registry in registries)]


def _looks_like_path(text: str) -> bool:
    """``text`` is meant as a local path (not a hub id ``owner/name``)."""
    if text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1:
        return True
    return "/" in text and Path(text.split("/")[0]).is_dir()


def _check_model_path(text: str, what: str) -> None:
    if text != "default" and not Path(text).expanduser().exists() and _looks_like_path(text):
        raise CLIError(f"{what} {text}: no such file or directory")


def _is_llm_spec(text: str) -> bool:
    from moralgym.envs.opponents import is_opponent_name

    if is_opponent_name(text) or text.partition(":")[0] in ("q_learning", "qlearning", "q", "sb3"):
        return False
    return not text.endswith(".zip") and (text == "default" or "/" in text or Path(text).exists())


def _prompt_settings(options: LLMPromptArguments, adapter: str | None) -> tuple[dict[str, Any], list[str]]:
    """The LLM prompt settings (CLI value, else the adapter's run's, else the training config's default) and the
    lines saying so."""
    from moralgym.evaluation.llm_agent import RUN_PROMPT_SETTINGS, run_settings
    from moralgym.training.config import TrainingConfig

    # A run's config.json without one of these keys trained with the field's default: the same default here.
    defaults = {f.name: f.default for f in dataclasses.fields(TrainingConfig) if f.name in RUN_PROMPT_SETTINGS}
    cli = {
        "answer_prefix": options.answer_prefix,
        "phrasing": options.phrasing,
        "max_new_tokens": options.max_new_tokens,
        "eval_action_tokens": options.tokens,
    }
    flags = {"answer_prefix": "--answer-prefix", "phrasing": "--phrasing", "max_new_tokens": "--max-new-tokens"}
    flags["eval_action_tokens"] = "--tokens"
    found = run_settings(adapter) if adapter is not None else None
    recorded = found[1] if found else {}
    settings = {k: cli[k] if cli[k] is not None else recorded.get(k, defaults[k]) for k in defaults}
    lines = []
    if found:
        shown = ", ".join(f"{k}={recorded[k]!r}" for k in defaults if k in recorded)
        overrides = [
            f"{flags[k]} {cli[k]!r} overriding the run's {k}={recorded[k]!r}"
            for k in defaults
            if k in recorded and cli[k] is not None and cli[k] != recorded[k]
        ]
        lines.append(
            f"moralgym evaluate: using the run's settings ({found[0]}): {shown}"
            + ("; " + "; ".join(overrides) if overrides else "")
        )
    return settings, lines


def _check_out(out: Path, agent: str, source: str, overwrite: bool) -> None:
    """Refuse to write over another agent's evaluation in ``out`` (unless ``overwrite``)."""
    path = out / "evaluation.json"
    if overwrite or not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    other_agent, other_source = previous.get("agent"), previous.get("source")
    if other_agent == agent and (other_source is None or other_source == source):
        return
    what = f"{other_agent!r}" + (f" ({other_source})" if other_source and other_source != other_agent else "")
    raise CLIError(
        f"{out} holds the evaluation of another agent, {what}; choose a new --out or pass --overwrite to replace it"
    )


def _evaluate(args: EvaluateArguments, protocol: Any, prompt_options: LLMPromptArguments) -> int:
    from moralgym.envs.matrix_game import INITIAL_STATES
    from moralgym.envs.n_player.games import SchellingGame
    from moralgym.evaluation.harness import EvaluationConfig, evaluate, resolve_game, tournament
    from moralgym.evaluation.io import read_jsonl, write_csv, write_jsonl
    from moralgym.evaluation.llm_agent import MAIN_VARIANT, PROMPT_VARIANTS, PromptVariant, is_adapter_dir
    from moralgym.evaluation.report import slug

    # Everything that can be checked without loading a model is checked first.
    games = []
    for game in protocol.games:
        try:
            games.append(resolve_game(game, protocol.num_players))
        except (KeyError, ValueError, TypeError) as error:
            raise CLIError(error) from error
    registries = _strategy_registries(games)
    known = _strategies_for(games)
    opponents = known if protocol.opponents == ["all"] else protocol.opponents
    for name in [*opponents, *(args.tournament_agents if args.tournament else [])]:
        if not all(name in registry for registry in registries):
            if len(registries) == 1:
                raise CLIError(f"unknown opponent strategy {name!r}; known: {', '.join(known)}")
            raise CLIError(
                f"opponent strategy {name!r} cannot play both the two-player and the N-player games chosen; "
                f"strategies that can: {', '.join(known)}"
            )
    for value, flag in (
        (protocol.num_episodes, "--episodes"),
        (protocol.num_rounds, "--rounds"),
        (prompt_options.max_new_tokens, "--max-new-tokens"),
    ):
        if value is not None and value < 1:
            raise CLIError(f"{flag} must be a positive integer, got {value}")
    if protocol.initial_state not in INITIAL_STATES:
        raise CLIError(f"--initial_state must be one of {', '.join(INITIAL_STATES)}, got {protocol.initial_state!r}")
    try:  # the rest of EvaluationConfig's own checks, still before any model loads
        evaluation_config(protocol, EvaluationConfig, opponents=opponents, variants=None)
    except (KeyError, ValueError, TypeError) as error:
        raise CLIError(error) from error
    spec = args.agent.strip()
    is_llm = args.adapter is not None or args.model is not None or _is_llm_spec(spec)
    if not is_llm and protocol.variants and protocol.variants != ["all"]:
        raise CLIError(f"--variants chooses LLM prompts; {spec!r} is not an LLM agent")
    if not is_llm and any(v is not None for v in dataclasses.astuple(prompt_options)):
        raise CLIError(f"--answer-prefix/--phrasing/--tokens/--max-new-tokens are for LLM agents, not {spec!r}")

    reference = None
    llm: dict[str, Any] = {}
    if is_llm:
        for text, what in ((spec, "agent"), (args.model, "--model"), (args.adapter, "--adapter")):
            if text is not None:
                _check_model_path(text, what)
        adapter = args.adapter
        if adapter is not None and not is_adapter_dir(adapter):
            raise CLIError(f"--adapter {adapter}: no adapter_config.json there (not a PEFT adapter directory)")
        if adapter is None and is_adapter_dir(spec):
            adapter, model = spec, args.model
        elif args.model is not None and adapter is None and spec != args.model:
            raise CLIError(f"give the model once: {spec!r} or --model {args.model!r}")
        else:
            model = args.model or spec
        settings, lines = _prompt_settings(prompt_options, adapter)
        variants_table = dict(PROMPT_VARIANTS)
        default_variant = MAIN_VARIANT
        if (settings["eval_action_tokens"], settings["phrasing"]) != ("action34", "paper"):
            default_variant = settings["eval_action_tokens"] + (
                "" if settings["phrasing"] == "paper" else f"_{settings['phrasing']}"
            )
            variants_table[default_variant] = PromptVariant(
                {"tokens": settings["eval_action_tokens"], "phrasing": settings["phrasing"]}
            )
        if protocol.variants == ["all"]:
            variants = tuple(variants_table)
        elif protocol.variants:
            unknown = [v for v in protocol.variants if v not in variants_table]
            if unknown:
                raise CLIError(
                    f"unknown prompt variant(s) {', '.join(map(repr, unknown))}; known: {', '.join(variants_table)}"
                )
            variants = tuple(protocol.variants)
        else:
            variants = (default_variant,)
        from moralgym.agents.llm.prompts import PromptBuilder
        from moralgym.evaluation.llm_agent import agent_name, base_model_for

        try:
            prompt = PromptBuilder(
                tokens=settings["eval_action_tokens"],
                phrasing=settings["phrasing"],
                answer_prefix=settings["answer_prefix"],
            )
            for game in games:  # an N-player game needs an N-player wording of the phrasing: refused before loading
                if isinstance(game, SchellingGame):
                    prompt.for_game(game)
            base = base_model_for(adapter, model) if adapter else model
        except (KeyError, ValueError, TypeError) as error:
            raise CLIError(error) from error
        name = agent_name(base, adapter)
        source = str(Path(adapter).resolve()) if adapter else base
        llm = {"model": base, "adapter": str(adapter) if adapter else None, "prompt": {**settings}}
    else:
        from moralgym.evaluation.agents import make_agent, seat_for_game

        try:
            agent = make_agent(spec, seed=args.seed_train, num_players=protocol.num_players)
            for game in games:  # an agent that cannot sit in a game is refused here, not mid-run
                check = getattr(seat_for_game(agent, game), "check_game", None)  # a Q-table's kind of game
                if callable(check):
                    check(game)
        except (KeyError, ValueError, OSError) as error:
            raise CLIError(error) from error
        name, source, variants = agent.name, spec, None
    out = Path(args.out or Path("runs") / "evaluate" / slug(name))
    _check_out(out, name, source, args.overwrite)

    if is_llm:
        from moralgym.agents.llm.policy import LLMPolicy
        from moralgym.evaluation.llm_agent import LLMAgent

        for line in lines:
            print(line)
        common = {"prompt": prompt, "max_new_tokens": settings["max_new_tokens"], "seed": protocol.seed}
        try:
            agent = LLMAgent.from_pretrained(base, adapter=adapter, name=name, variants=variants_table, **common)
        except (ValueError, OSError) as error:
            raise CLIError(error) from error
        if args.reference == "auto" and adapter is not None:
            # The same weights with the adapter disabled (no second copy), answering the same prompts.
            policy = LLMPolicy(agent.policy.model, agent.policy.tokenizer, adapter_name="__base__", **common)
            reference = LLMAgent(policy, name="base_model", variants=variants_table)
    if args.reference not in ("auto", "none"):
        from moralgym.evaluation.agents import make_agent

        try:
            reference = make_agent(args.reference)
        except (KeyError, ValueError, OSError) as error:
            raise CLIError(error) from error
    config = evaluation_config(protocol, EvaluationConfig, opponents=opponents, variants=variants)
    result = evaluate(agent, config, reference=reference)
    result.config.update({"source": source, **llm})
    paths = result.write(out)
    tournament_result = None
    if args.tournament and not is_llm:
        entrants: dict[str, Any] = {name: name for name in args.tournament_agents if name != agent.name}
        entrants[agent.name] = agent
        tournament_result = tournament(entrants, config)
        write_csv(out / "tournament.csv", tournament_result.table)
        write_jsonl(out / "tournament.jsonl", tournament_result.table)
    metrics_path = args.training_metrics
    if metrics_path is None and llm.get("adapter"):
        from moralgym.evaluation.llm_agent import run_dir_of

        run_dir = run_dir_of(llm["adapter"])
        if run_dir is not None and (run_dir / "metrics.jsonl").is_file():
            metrics_path = run_dir / "metrics.jsonl"
    if metrics_path is not None and not Path(metrics_path).is_file():
        raise CLIError(f"--training-metrics {metrics_path}: no such file")
    metrics = read_jsonl(metrics_path) if metrics_path else None
    if not args.no_report:
        try:
            paths["report"] = build_evaluation_report(out, result, tournament_result, metrics)
        except ImportError as error:  # matplotlib missing: the tables are written
            print(f"moralgym evaluate: no report ({error}; pip install 'moralgym[eval]')", file=sys.stderr)
    print(console_summary(result.summary))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def console_summary(summary: list[dict[str, Any]]) -> str:
    """The summary rows as the fixed-width table ``moralgym evaluate`` prints (cooperation, illegal rate, payoff,
    both regrets per agent, game, opponent and variant)."""
    lines = [
        f"{'agent':<28} {'game':<24} {'opponent':<12} {'variant':<10} {'coop':>6} {'illegal':>7} "
        f"{'payoff':>7} {'regDe':>6} {'regUt':>6}"
    ]
    for row in summary:
        lines.append(
            f"{str(row['agent'])[:28]:<28} {row['game']:<24} {str(row['opponent'])[:12]:<12} {str(row['variant'])[:10]:<10} "
            f"{row['cooperation_rate']:>6.2f} {row['illegal_rate']:>7.2f} {row['game_payoff']:>7.2f} "
            f"{row['regret_deontological']:>6.2f} {row['regret_utilitarian']:>6.2f}"
        )
    return "\n".join(lines)


@dataclass
class CompareArguments:
    """``moralgym compare RUN ...``: put evaluated runs side by side."""

    runs: list[str] = field(metadata=_help("directories written by 'moralgym evaluate'", cli=POSITIONAL))
    out: str = field(default="runs/compare", metadata=_help("output directory"))
    metrics: list[str] = field(
        default_factory=lambda: ["cooperation_rate", "regret_deontological", "regret_utilitarian"],
        metadata=_help("summary metrics to put side by side"),
    )
    variant: str | None = field(default=None, metadata=_help("only rows of this variant"))
    opponent: str | None = field(default=None, metadata=_help("only rows against this opponent"))


def main_compare(argv: list[str] | None = None) -> int:
    parser = dataclass_parser(
        CompareArguments,
        prog="moralgym compare",
        dashed=True,
        description="Put evaluated runs side by side. --config FILE.yaml sets any option by its field name.",
    )
    (args,) = parser.parse(argv)
    try:
        return _compare(args)
    except CLIError as error:
        return _fail("compare", error)


def _compare(args: CompareArguments) -> int:
    from moralgym.evaluation.io import read_jsonl, write_csv, write_jsonl
    from moralgym.evaluation.report import REPORT_COLUMNS, html_table, plot_comparison, write_html_report

    every = []
    for run in args.runs:
        path = Path(run) / "summary.jsonl"
        if not Path(run).is_dir():
            raise CLIError(f"{run}: no such run directory")
        if not path.exists():
            raise CLIError(f"{run}: no summary.jsonl; run 'moralgym evaluate ... --out {run}' first")
        for row in read_jsonl(path):
            label = Path(run).name + (f" / {row['agent']} (ref)" if row.get("role") == "reference" else "")
            every.append({"label": label, "run_dir": str(run), **row})
    for key, wanted in (("variant", args.variant), ("opponent", args.opponent)):
        present = list(dict.fromkeys(str(row.get(key)) for row in every))
        if wanted is not None and wanted not in present:
            raise CLIError(f"no rows with --{key} {wanted!r}; the runs have: {', '.join(present)}")
    numeric = list(
        dict.fromkeys(
            k for row in every for k, v in row.items() if isinstance(v, (int, float)) and not k.endswith("_ci95")
        )
    )
    unknown = [m for m in args.metrics if m not in numeric]
    if unknown:
        raise CLIError(f"unknown metric(s) {', '.join(map(repr, unknown))}; known: {', '.join(numeric)}")
    rows = [
        row
        for row in every
        if (args.variant is None or row.get("variant") == args.variant)
        and (args.opponent is None or row.get("opponent") == args.opponent)
    ]
    if not rows:
        raise CLIError("no summary rows matched both --variant and --opponent")
    out = Path(args.out)
    write_jsonl(out / "comparison.jsonl", rows)
    write_csv(out / "comparison.csv", rows)
    # One bar per label: average over opponents/variants when several are left.
    figure = plot_comparison(_average_by(rows, ("label", "game"), args.metrics), out / "comparison.png", args.metrics)
    report = write_html_report(
        out / "report.html",
        "moralgym comparison",
        [("Runs side by side", html_table(rows, ("label", *REPORT_COLUMNS)))],
        [figure],
    )
    print(f"compared {len(args.runs)} runs ({len(rows)} rows); wrote {out / 'comparison.csv'}, {figure}, {report}")
    return 0


def _average_by(rows: list[dict], keys: tuple[str, ...], metrics: list[str]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(keys, key, strict=True))
        for metric in metrics:
            values = [m[metric] for m in members if isinstance(m.get(metric), (int, float))]
            entry[metric] = sum(values) / len(values) if values else float("nan")
            if len(members) == 1:
                entry[f"{metric}_ci95"] = members[0].get(f"{metric}_ci95", 0.0)
        out.append(entry)
    return out
