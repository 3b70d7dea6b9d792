"""``moralgym evaluate AGENT`` and ``moralgym compare RUN ...``: thin argument parsing over the library.

``evaluate`` writes into ``--out`` (default ``runs/evaluate/<agent>``): ``decisions.jsonl`` (one row per decision),
``summary.jsonl`` / ``summary.csv`` (one row per agent x game x opponent x variant), ``evaluation.json`` (settings),
``figures/*.png``, optionally ``tournament.csv`` and ``report.html`` (figures inline).
``compare`` reads the ``summary.jsonl`` of each run directory and writes ``comparison.csv``/``.jsonl``,
``comparison.png`` and ``report.html`` into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from moralgym.envs.games import PAPER_GAMES

DEFAULT_TOURNAMENT = (
    "tit_for_tat",
    "always_cooperate",
    "always_defect",
    "random",
    "grim_trigger",
    "win_stay_lose_shift",
)


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moralgym evaluate",
        description="Evaluate an agent the paper's way (vs Random, 10 episodes x 5 rounds, five games, seed 100).",
    )
    parser.add_argument(
        "agent",
        help="strategy name, 'q_learning:<reward>[:<opponent>]', 'sb3:<algo>:<path.zip>', "
        "'default', a model id or an adapter directory",
    )
    parser.add_argument("--out", default=None, help="output directory (default runs/evaluate/<agent>)")
    parser.add_argument("--games", nargs="+", default=[g.name for g in PAPER_GAMES], help="games to play")
    parser.add_argument("--opponents", nargs="+", default=["random"], help="opponent strategies ('all' = every one)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="prompt variants for LLM agents (default action34; 'all' = every variant)",
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
        help="agent answering the same prompts ('none'; 'auto' = base model for LLM agents)",
    )
    parser.add_argument("--adapter", default=None, help="LoRA adapter directory on top of an LLM agent")
    parser.add_argument("--tournament", action="store_true", help="also run a round robin vs classic strategies")
    parser.add_argument("--tournament-agents", nargs="+", default=list(DEFAULT_TOURNAMENT))
    parser.add_argument("--training-metrics", default=None, help="training metrics JSONL to plot learning curves")
    parser.add_argument("--seed-train", type=int, default=0, help="seed for baselines trained on the fly")
    parser.add_argument("--no-report", action="store_true", help="write tables only")
    return parser


def main_evaluate(argv: list[str] | None = None) -> int:
    from moralgym.agents.strategies import list_strategies
    from moralgym.evaluation.agents import make_agent
    from moralgym.evaluation.harness import EvaluationConfig, evaluate, tournament
    from moralgym.evaluation.io import read_jsonl, write_csv, write_jsonl
    from moralgym.evaluation.llm_agent import MAIN_VARIANT, LLMAgent
    from moralgym.evaluation.report import slug

    args = _evaluate_parser().parse_args(argv)
    llm_kwargs: dict[str, Any] = {"adapter": args.adapter} if args.adapter else {}
    agent = make_agent(args.agent, seed=args.seed_train, **llm_kwargs)
    is_llm = isinstance(agent, LLMAgent)
    out = Path(args.out or Path("runs") / "evaluate" / slug(agent.name))
    opponents = list_strategies() if args.opponents == ["all"] else args.opponents
    if args.variants == ["all"]:
        variants = None
    elif args.variants:
        variants = tuple(args.variants)
    else:
        variants = (MAIN_VARIANT,) if is_llm else None
    reference = None
    if args.reference == "auto":
        if is_llm and (args.agent != "default" or args.adapter):
            reference = make_agent("default")
            reference.name = "base_model"
    elif args.reference != "none":
        reference = make_agent(args.reference)
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
    metrics = read_jsonl(args.training_metrics) if args.training_metrics else None
    if not args.no_report:
        paths["report"] = build_evaluation_report(out, result, tournament_result, metrics)
    print(_console_summary(result.summary))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def build_evaluation_report(
    out: Path, result: Any, tournament_result: Any = None, training_metrics: list[dict] | None = None
) -> Path:
    """Figures into ``out/figures`` and ``out/report.html`` with them inline."""
    from moralgym.evaluation.report import (
        html_table,
        plot_action_types,
        plot_heatmap,
        plot_learning_curves,
        slug,
        write_html_report,
    )

    figures = []
    groups: dict[tuple, list[dict]] = {}
    for row in result.summary:
        groups.setdefault((row["opponent"], row["variant"]), []).append(row)
    for (opponent, variant), rows in groups.items():
        figures.append(
            plot_action_types(
                rows,
                out / "figures" / f"action_types_{slug(opponent)}_{slug(variant)}.png",
                title=f"vs {opponent}, variant {variant}",
            )
        )
    sections = [
        (
            "Settings",
            html_table([result.config], columns=[k for k in result.config if k != "games"])
            + f"<p>games: {', '.join(result.config.get('games', []))}</p>",
        ),
        ("Summary (mean ± 95% CI over episodes)", html_table(result.summary)),
    ]
    if tournament_result is not None:
        figures.append(
            plot_heatmap(
                tournament_result.matrix("game_payoff"),
                tournament_result.agents,
                out / "figures" / "tournament_game_payoff.png",
                title="mean game payoff per round (row agent), all games",
            )
        )
        figures.append(
            plot_heatmap(
                tournament_result.matrix("cooperation_rate"),
                tournament_result.agents,
                out / "figures" / "tournament_cooperation.png",
                title="cooperation rate (row agent)",
            )
        )
        sections.append(
            (
                "Tournament",
                html_table(
                    tournament_result.table, columns=("agent", "opponent", "game", "cooperation_rate", "game_payoff")
                ),
            )
        )
    if training_metrics:
        figures.append(plot_learning_curves(training_metrics, out / "figures" / "learning_curves.png"))
    return write_html_report(out / "report.html", f"moralgym evaluation: {result.config.get('run')}", sections, figures)


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
    from moralgym.evaluation.io import read_jsonl, write_csv, write_jsonl
    from moralgym.evaluation.report import REPORT_COLUMNS, html_table, plot_comparison, write_html_report

    parser = argparse.ArgumentParser(prog="moralgym compare", description="Put evaluated runs side by side.")
    parser.add_argument("runs", nargs="+", help="directories written by 'moralgym evaluate'")
    parser.add_argument("--out", default="runs/compare", help="output directory")
    parser.add_argument(
        "--metrics", nargs="+", default=["cooperation_rate", "regret_deontological", "regret_utilitarian"]
    )
    parser.add_argument("--variant", default=None, help="only rows of this variant")
    parser.add_argument("--opponent", default=None, help="only rows against this opponent")
    args = parser.parse_args(argv)
    rows = []
    for run in args.runs:
        path = Path(run) / "summary.jsonl"
        if not path.exists():
            raise SystemExit(f"{run}: no summary.jsonl; run 'moralgym evaluate ... --out {run}' first")
        for row in read_jsonl(path):
            if args.variant and row.get("variant") != args.variant:
                continue
            if args.opponent and row.get("opponent") != args.opponent:
                continue
            label = Path(run).name + (f" / {row['agent']} (ref)" if row.get("role") == "reference" else "")
            rows.append({"label": label, "run_dir": str(run), **row})
    if not rows:
        raise SystemExit("no summary rows matched; check --variant/--opponent")
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
