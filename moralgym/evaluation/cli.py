"""``moralgym evaluate AGENT`` and ``moralgym compare RUN ...``: thin argument parsing over the library.

``evaluate`` writes into ``--out`` (default ``runs/evaluate/<agent>``): ``decisions.jsonl`` (one row per decision),
``summary.jsonl`` / ``summary.csv`` (one row per agent x game x opponent x variant), ``evaluation.json`` (settings),
``figures/*.png``, optionally ``tournament.csv`` and ``report.html`` (figures inline).
``compare`` reads the ``summary.jsonl`` of each run directory and writes ``comparison.csv``/``.jsonl``,
``comparison.png`` and ``report.html`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from moralgym.envs.games import PAPER_GAMES
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


class _Parser(argparse.ArgumentParser):
    """No abbreviated options, and a usage error is one line (``moralgym <command>: error: ...``), exit code 2."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _message(error: BaseException) -> str:
    """An exception's text on one line (a KeyError's without its quotes)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split())


def _fail(command: str, error: BaseException) -> int:
    print(f"moralgym {command}: error: {_message(error)}", file=sys.stderr)
    return 2


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="moralgym evaluate",
        description="Evaluate an agent the paper's way (vs Random, 10 episodes x 5 rounds, five games, seed 100).",
    )
    parser.add_argument(
        "agent",
        help="strategy name, 'q_learning:<reward>[:<opponent>]', 'sb3:<algo>:<path.zip>', "
        "'default', a model id, a model directory or an adapter directory (e.g. runs/quickstart/adapter)",
    )
    parser.add_argument("--out", default=None, help="output directory (default runs/evaluate/<agent>)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the results of another agent already in --out"
    )
    parser.add_argument("--games", nargs="+", default=[g.name for g in PAPER_GAMES], help="games to play")
    parser.add_argument("--opponents", nargs="+", default=["random"], help="opponent strategies ('all' = every one)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="prompt variants for LLM agents (default: the run's evaluation prompt, else action34; 'all' = every "
        "variant)",
    )
    parser.add_argument("--episodes", type=int, default=10, help="episodes per game")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per episode")
    parser.add_argument("--seed", type=int, default=100, help="evaluation seed (same states for every agent)")
    parser.add_argument(
        "--penalty",
        type=float,
        default=3.0,
        help="Deontological penalty at evaluation (training value 3; the authors' eval code used 4)",
    )
    parser.add_argument("--illegal-reward", type=float, default=-6.0, help="reward of an illegal answer")
    parser.add_argument(
        "--reference",
        default="auto",
        help="agent answering the same prompts ('none'; 'auto' = the base model under an adapter)",
    )
    parser.add_argument("--adapter", default=None, help="LoRA adapter directory on top of an LLM agent")
    parser.add_argument(
        "--model", default=None, help="an adapter's base model (default: the one in its adapter_config.json)"
    )
    llm = parser.add_argument_group("LLM prompt (default: the adapter's run config.json, else the paper's)")
    llm.add_argument("--answer-prefix", default=None, help="text the answer is pre-filled with (run's, else '')")
    llm.add_argument("--phrasing", default=None, help="prompt phrasing of the default variant (run's, else paper)")
    llm.add_argument("--tokens", default=None, help="action tokens of the default variant (run's, else action34)")
    llm.add_argument("--max-new-tokens", type=int, default=None, help="tokens sampled per answer (run's, else 2)")
    parser.add_argument("--tournament", action="store_true", help="also run a round robin vs classic strategies")
    parser.add_argument("--tournament-agents", nargs="+", default=list(DEFAULT_TOURNAMENT))
    parser.add_argument(
        "--training-metrics",
        default=None,
        help="training metrics JSONL to plot learning curves (default: the adapter's run metrics.jsonl)",
    )
    parser.add_argument("--seed-train", type=int, default=0, help="seed for baselines trained on the fly")
    parser.add_argument("--no-report", action="store_true", help="write tables only")
    return parser


def main_evaluate(argv: list[str] | None = None) -> int:
    args = _evaluate_parser().parse_args(argv)
    try:
        return _evaluate(args)
    except CLIError as error:
        return _fail("evaluate", error)


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


def _prompt_settings(args: argparse.Namespace, adapter: str | None) -> tuple[dict[str, Any], list[str]]:
    """The LLM prompt settings (CLI value, else the adapter's run's, else the default) and the lines saying so."""
    from moralgym.evaluation.llm_agent import run_settings

    defaults = {"answer_prefix": "", "phrasing": "paper", "max_new_tokens": 2, "eval_action_tokens": "action34"}
    cli = {
        "answer_prefix": args.answer_prefix,
        "phrasing": args.phrasing,
        "max_new_tokens": args.max_new_tokens,
        "eval_action_tokens": args.tokens,
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


def _evaluate(args: argparse.Namespace) -> int:
    from moralgym.agents.strategies import list_strategies
    from moralgym.envs.games import get_game
    from moralgym.envs.opponents import is_opponent_name
    from moralgym.evaluation.harness import EvaluationConfig, evaluate, tournament
    from moralgym.evaluation.io import read_jsonl, write_csv, write_jsonl
    from moralgym.evaluation.llm_agent import MAIN_VARIANT, PROMPT_VARIANTS, PromptVariant, is_adapter_dir
    from moralgym.evaluation.report import slug

    # Everything that can be checked without loading a model is checked first.
    for game in args.games:
        try:
            get_game(game)
        except (KeyError, ValueError, TypeError) as error:
            raise CLIError(error) from error
    opponents = list_strategies() if args.opponents == ["all"] else args.opponents
    for name in [*opponents, *(args.tournament_agents if args.tournament else [])]:
        if not is_opponent_name(name):
            raise CLIError(f"unknown opponent strategy {name!r}; known: {', '.join(list_strategies())}")
    for value, flag in (
        (args.episodes, "--episodes"),
        (args.rounds, "--rounds"),
        (args.max_new_tokens, "--max-new-tokens"),
    ):
        if value is not None and value < 1:
            raise CLIError(f"{flag} must be a positive integer, got {value}")
    spec = args.agent.strip()
    is_llm = args.adapter is not None or args.model is not None or _is_llm_spec(spec)
    if not is_llm and args.variants and args.variants != ["all"]:
        raise CLIError(f"--variants chooses LLM prompts; {spec!r} is not an LLM agent")
    if not is_llm and any(v is not None for v in (args.answer_prefix, args.phrasing, args.tokens, args.max_new_tokens)):
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
        settings, lines = _prompt_settings(args, adapter)
        variants_table = dict(PROMPT_VARIANTS)
        default_variant = MAIN_VARIANT
        if (settings["eval_action_tokens"], settings["phrasing"]) != ("action34", "paper"):
            default_variant = settings["eval_action_tokens"] + (
                "" if settings["phrasing"] == "paper" else f"_{settings['phrasing']}"
            )
            variants_table[default_variant] = PromptVariant(
                {"tokens": settings["eval_action_tokens"], "phrasing": settings["phrasing"]}
            )
        if args.variants == ["all"]:
            variants = tuple(variants_table)
        elif args.variants:
            unknown = [v for v in args.variants if v not in variants_table]
            if unknown:
                raise CLIError(
                    f"unknown prompt variant(s) {', '.join(map(repr, unknown))}; known: {', '.join(variants_table)}"
                )
            variants = tuple(args.variants)
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
            base = base_model_for(adapter, model) if adapter else model
        except (KeyError, ValueError, TypeError) as error:
            raise CLIError(error) from error
        name = agent_name(base, adapter)
        source = str(Path(adapter).resolve()) if adapter else base
        llm = {"model": base, "adapter": str(adapter) if adapter else None, "prompt": {**settings}}
    else:
        from moralgym.evaluation.agents import make_agent

        try:
            agent = make_agent(spec, seed=args.seed_train)
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
        common = {"prompt": prompt, "max_new_tokens": settings["max_new_tokens"], "seed": args.seed}
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
    config = EvaluationConfig(
        games=tuple(args.games),
        opponents=tuple(opponents),
        variants=variants,
        n_episodes=args.episodes,
        n_rounds=args.rounds,
        seed=args.seed,
        penalty=args.penalty,
        illegal_reward=args.illegal_reward,
    )
    result = evaluate(agent, config, reference=reference)
    result.config.update({"source": source, **llm})
    paths = result.write(out)
    tournament_result = None
    if args.tournament and not is_llm:
        entrants: dict[str, Any] = {name: name for name in args.tournament_agents if name != agent.name}
        entrants[agent.name] = agent
        tournament_result = tournament(
            entrants,
            games=config.games,
            n_episodes=args.episodes,
            n_rounds=args.rounds,
            seed=args.seed,
            penalty=args.penalty,
            illegal_reward=args.illegal_reward,
        )
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
    print(_console_summary(result.summary))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _console_summary(summary: list[dict[str, Any]]) -> str:
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


def main_compare(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="moralgym compare", description="Put evaluated runs side by side.")
    parser.add_argument("runs", nargs="+", help="directories written by 'moralgym evaluate'")
    parser.add_argument("--out", default="runs/compare", help="output directory")
    parser.add_argument(
        "--metrics", nargs="+", default=["cooperation_rate", "regret_deontological", "regret_utilitarian"]
    )
    parser.add_argument("--variant", default=None, help="only rows of this variant")
    parser.add_argument("--opponent", default=None, help="only rows against this opponent")
    args = parser.parse_args(argv)
    try:
        return _compare(args)
    except CLIError as error:
        return _fail("compare", error)


def _compare(args: argparse.Namespace) -> int:
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
