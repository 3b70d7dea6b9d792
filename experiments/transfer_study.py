"""The transfer study: does moral fine-tuning on a public goods game carry to other games better than on the IPD?

    python experiments/transfer_study.py --scale cpu --seeds 1 2            # embedded SmolLM2 on CPU, minutes a run
    python experiments/transfer_study.py --scale paper --seeds 1 2 3 4 5    # Gemma-2-2b-it, 4-bit (GPU)
    python experiments/transfer_study.py --scale cpu --summarise-only       # rebuild the tables from finished runs
    python experiments/transfer_study.py --scale paper --ray-address auto   # every run a Ray task (one GPU each)

Six experiments (``configs/transfer/``): the Game (control), Deontological and Utilitarian rewards, each trained on
the Iterated Prisoner's Dilemma against Tit-for-Tat (the paper's setting) and on a 4-player linear public goods game
against three conditional cooperators (the N-player Tit-for-Tat). ``--scale cpu`` applies
``configs/transfer/cpu.yaml`` (the quick start's recipe) on top. Every fine-tuned model, and the base model once per
study, is evaluated with the paper's protocol (vs Random co-players, 10 episodes x 5 rounds, tokens action3/action4,
one seed for every agent) on the five 2x2 games and the five N-player games (4 players), and on the paper's prompt
variants (IPD). Runs go to ``OUT/SCALE/EXPERIMENT/seedN/`` and resume; finished runs are read back.

``OUT/SCALE/transfer.json`` / ``transfer.md`` / ``transfer.png`` hold every number with its spread over seeds and the
two verdicts (docs/transfer.md): which training game gives the lower regret on the games neither was trained on, and
whether public-goods-trained agents cooperate more in the IPD than IPD-trained ones in the public goods game.
"""

# No ``from __future__ import annotations``: TransferArguments' annotations must be real types (HfArgumentParser).
import functools
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from moralgym.cli_args import SWITCH, dataclass_parser

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "transfer"
SCALE_OVERRIDES = {"paper": None, "cpu": CONFIGS / "cpu.yaml"}
TRAINING_GAMES = {"ipd": "ipd", "pgg": "public_goods"}  # experiment prefix -> the game it trains on
REWARDS = {"game": "Game", "de": "Deontological", "ut": "Utilitarian"}
TWO_PLAYER_GAMES = ("ipd", "stag_hunt", "chicken", "bach_or_stravinsky", "defective_coordination")
N_PLAYER_GAMES = ("public_goods", "n_player_ipd", "threshold_public_good", "volunteers_dilemma", "n_player_snowdrift")
EVAL_PLAYERS = 4
#: Games neither training game is: where the two training games are compared on equal terms.
UNSEEN = tuple(g for g in (*TWO_PLAYER_GAMES, *N_PLAYER_GAMES) if g not in TRAINING_GAMES.values())
METRICS = ("cooperation_rate", "illegal_rate", "regret_deontological", "regret_utilitarian")
DEFAULT_VARIANTS = ("action12", "swapped", "unstructured", "ipd_like", "explicit_ipd")
BASE = "base"

ModelFactory = Callable[[], tuple[Any, Any]]


def _load_study_module() -> Any:
    """``experiments/study.py`` (not a package): its prompt-variant evaluation, spreads and ``--set`` parsing are
    the same here."""
    spec = importlib.util.spec_from_file_location("moralgym_study", ROOT / "experiments" / "study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STUDY = _load_study_module()


def experiment_names() -> list[str]:
    """``ipd_de``, ``pgg_ut``, ... from ``configs/transfer/{ipd,pgg}_*.yaml``."""
    return sorted(p.stem for p in CONFIGS.glob("*_*.yaml") if p.stem.split("_")[0] in TRAINING_GAMES)


def experiment_config(name: str, scale: str, seed: int, out: Path, overrides: dict[str, Any] | None = None):
    """The :class:`~moralgym.training.TrainingConfig` of one experiment at one scale and seed. The study evaluates
    each run itself (every game, :func:`evaluate_on_every_game`), so the training run's own evaluation is off."""
    from moralgym.training import TrainingConfig

    path = CONFIGS / f"{name}.yaml"
    if name not in experiment_names():
        raise KeyError(f"unknown experiment {name!r}; known experiments: {', '.join(experiment_names())}")
    if scale not in SCALE_OVERRIDES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALE_OVERRIDES)}")
    values = yaml.safe_load(path.read_text())
    if SCALE_OVERRIDES[scale] is not None:
        values.update(yaml.safe_load(SCALE_OVERRIDES[scale].read_text()))
    values.update(seed=seed, output_dir=str(out / scale / name / f"seed{seed}"), evaluate=False, resume=True)
    values.update(overrides or {})
    return TrainingConfig(**values)


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def evaluate_on_every_game(
    model: Any, tokenizer: Any, config: Any, adapter_name: str | None, out_dir: Path
) -> dict[str, dict[str, float]]:
    """``{game: {metric: value}}`` of one model (an adapter, or None: the plain base model) on the ten games with the paper's
    protocol (vs Random co-players, the config's ``eval_*`` settings); tables written to ``out_dir``."""
    from moralgym.evaluation import evaluate
    from moralgym.training.evaluate import evaluation_agent, evaluation_policy, protocol_settings

    model.eval()
    policy = evaluation_policy(model, tokenizer, config, adapter_name)
    result = evaluate(
        evaluation_agent(policy, "fine_tuned" if adapter_name else "base", config),
        games=(*TWO_PLAYER_GAMES, *N_PLAYER_GAMES),
        num_players=EVAL_PLAYERS,
        **protocol_settings(config),
    )
    result.write(out_dir)
    return {row["game"]: {m: float(row[m]) for m in METRICS} for row in result.summary}


def run_experiment(
    config: Any, variants: Sequence[str] = DEFAULT_VARIANTS, model_factory: ModelFactory | None = None
) -> dict[str, Any]:
    """Train one run, evaluate it on every game and prompt variant, write ``summary.json``; a finished run is read
    back, not redone (an interrupted one resumes from its checkpoint)."""
    from moralgym.training.cli import run

    run_dir = Path(config.output_dir)
    summary = _read_json(run_dir / "summary.json")
    if _is_done(config):
        return summary
    started = time.perf_counter()
    model, tokenizer = model_factory() if model_factory else (None, None)
    extra: dict[str, Any] = {}

    def after_training(trained_model: Any, trained_tokenizer: Any) -> None:
        extra["transfer"] = evaluate_on_every_game(
            trained_model, trained_tokenizer, config, "player_0", run_dir / "transfer_evaluation"
        )
        study = _load_study_module()  # loaded here, not the global: a Ray worker gets this function by value
        extra["variants"] = study.evaluate_variants(trained_model, trained_tokenizer, config, variants)

    summary = run(config, model, tokenizer, on_trained=after_training)
    summary.update(extra, study_seconds=round(time.perf_counter() - started, 1))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def evaluate_base(config: Any, out: Path, model_factory: ModelFactory | None = None) -> dict[str, Any]:
    """The base model on every game, once per study (``OUT/SCALE/base/summary.json``): every fine-tuned model is
    compared with it. Re-evaluated only if the protocol (model, tokens, episodes, rounds, seed) changed."""
    from moralgym.agents.llm.loading import load_causal_lm

    protocol = {
        key: getattr(config, key)
        for key in ("model_name_or_path", "eval_action_tokens", "eval_episodes", "eval_rounds", "eval_seed")
    }
    protocol.update(answer_prefix=config.answer_prefix, max_new_tokens=config.max_new_tokens, penalty=config.penalty)
    path = out / "summary.json"
    done = _read_json(path)
    if done and done.get("protocol") == json.loads(json.dumps(protocol)):
        return done
    model, tokenizer = model_factory() if model_factory else (config.model_name_or_path, None)
    model, tokenizer = load_causal_lm(
        model, tokenizer=tokenizer, dtype=config.dtype, load_in_4bit=config.load_in_4bit, verbose=False
    )
    summary = {"protocol": protocol, "transfer": evaluate_on_every_game(model, tokenizer, config, None, out)}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2))
    return summary


# ------------------------------------------------------------------------------------------------ summary


def _finished(study_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``{experiment: [summary of each finished, evaluated run]}``, experiments in :func:`experiment_names` order."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for name in experiment_names():
        for run_dir in sorted((study_dir / name).glob("seed*")):
            summary = _read_json(run_dir / "summary.json")
            if summary and summary.get("finished") and "transfer" in summary:
                runs.setdefault(name, []).append(summary)
    return runs


def own_regret(reward: str) -> str:
    """The regret an experiment is judged by: its own moral reward's; the Game control by the Deontological one."""
    return "regret_utilitarian" if reward == "ut" else "regret_deontological"


def _experiment_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    per_game = {
        game: {m: STUDY._spread([r["transfer"][game][m] for r in runs]) for m in METRICS}
        for game in runs[0]["transfer"]
    }
    unseen = {
        m: STUDY._spread([statistics.fmean(r["transfer"][g][m] for g in UNSEEN) for r in runs])
        for m in ("cooperation_rate", "regret_deontological", "regret_utilitarian")
    }
    variants = sorted(set.intersection(*(set(r.get("variants") or {}) for r in runs)))
    return {
        "seeds": len(runs),
        "train_seconds": STUDY._spread([r["train_seconds"] for r in runs]),
        "per_game": per_game,
        "unseen_mean": unseen,
        "variants": {v: {m: STUDY._spread([r["variants"][v][m] for r in runs]) for m in METRICS} for v in variants},
    }


def verdicts(experiments: dict[str, Any], base: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The two questions, per reward, answered from the means and their spread over seeds.

    1. Lower regret on the games neither training game is (:data:`UNSEEN`), by the reward's own regret.
    2. Cooperation of the public-goods-trained agent in the IPD vs the IPD-trained agent in the public goods game.

    A difference smaller than the larger of the two standard deviations is called "no clear difference".
    """
    found = []
    for reward in REWARDS:
        ipd, pgg = experiments.get(f"ipd_{reward}"), experiments.get(f"pgg_{reward}")
        if not (ipd and pgg):
            continue
        regret = own_regret(reward)
        a, b = ipd["unseen_mean"][regret], pgg["unseen_mean"][regret]
        found.append(_compare(f"{REWARDS[reward]}: {regret} on unseen games", "ipd", a, "pgg", b, lower_wins=True))
        a, b = pgg["per_game"]["ipd"]["cooperation_rate"], ipd["per_game"]["public_goods"]["cooperation_rate"]
        verdict = _compare(
            f"{REWARDS[reward]}: cooperation of pgg-trained in ipd vs ipd-trained in public_goods",
            "pgg in ipd",
            a,
            "ipd in public_goods",
            b,
            lower_wins=False,
        )
        if base:
            verdict["base"] = {
                "ipd": base["ipd"]["cooperation_rate"],
                "public_goods": base["public_goods"]["cooperation_rate"],
            }
        found.append(verdict)
    return found


def _compare(question: str, name_a: str, a: dict[str, float], name_b: str, b: dict[str, float], lower_wins: bool):
    difference = a["mean"] - b["mean"]
    noise = max(a["sd"], b["sd"])
    if abs(difference) <= noise or (a["n"] < 2 and b["n"] < 2 and difference == 0):
        answer = "no clear difference"
    else:
        a_wins = difference < 0 if lower_wins else difference > 0
        answer = f"{name_a if a_wins else name_b}"
    return {"question": question, name_a: a, name_b: b, "difference": difference, "largest_sd": noise, "answer": answer}


def summarise(out: Path, scale: str) -> dict[str, Any]:
    """Collect every finished run under ``out/scale`` into ``transfer.json``, ``transfer.md`` and ``transfer.png``."""
    study_dir = out / scale
    experiments = {name: _experiment_row(runs) for name, runs in _finished(study_dir).items()}
    base_summary = _read_json(study_dir / BASE / "summary.json")
    base = base_summary["transfer"] if base_summary else None
    study = {
        "scale": scale,
        "unseen_games": list(UNSEEN),
        "base": base,
        "experiments": experiments,
        "verdicts": verdicts(experiments, base),
    }
    study_dir.mkdir(parents=True, exist_ok=True)
    (study_dir / "transfer.json").write_text(json.dumps(study, indent=2))
    (study_dir / "transfer.md").write_text(markdown(study))
    if experiments:
        plot(study, study_dir / "transfer.png")
    return study


def _fmt(cell: dict[str, float]) -> str:
    return f"{cell['mean']:.2f} ± {cell['sd']:.2f}" if cell["n"] > 1 else f"{cell['mean']:.2f}"


def markdown(study: dict[str, Any]) -> str:
    """Per experiment and game: cooperation / own regret (mean ± sd over seeds); the unseen-game means; verdicts."""
    games = [*TWO_PLAYER_GAMES, *N_PLAYER_GAMES]
    lines = [
        f"Scale `{study['scale']}`: vs Random co-players, tokens action3/action4, N-player games with "
        f"{EVAL_PLAYERS} players (mean ± sd over seeds).",
        "",
        "Cooperation rate per game:",
        "",
        "| experiment | seeds | " + " | ".join(games) + " |",
        "|---" * (len(games) + 2) + "|",
    ]
    if study["base"]:
        lines.append(
            "| base model | | " + " | ".join(f"{study['base'][g]['cooperation_rate']:.2f}" for g in games) + " |"
        )
    for name, row in study["experiments"].items():
        cells = [_fmt(row["per_game"][g]["cooperation_rate"]) for g in games]
        lines.append(f"| {name} | {row['seeds']} | " + " | ".join(cells) + " |")
    lines += ["", "Own regret per game (Deontological for `*_de` and `*_game`, Utilitarian for `*_ut`):", ""]
    lines += ["| experiment | " + " | ".join(games) + " |", "|---" * (len(games) + 1) + "|"]
    for name, row in study["experiments"].items():
        regret = own_regret(name.split("_", 1)[1])
        base = study["base"]
        base_cells = f" (base {statistics.fmean(base[g][regret] for g in games):.2f} mean)" if base else ""
        cells = [_fmt(row["per_game"][g][regret]) for g in games]
        lines.append(f"| {name}{base_cells} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Means over the games neither training game is ({', '.join(study['unseen_games'])}):",
        "",
        "| experiment | cooperation | De regret | Ut regret | illegal (all games) | train s |",
        "|---|---|---|---|---|---|",
    ]
    if study["base"]:
        b = study["base"]
        lines.append(
            "| base model | "
            + " | ".join(
                f"{statistics.fmean(b[g][m] for g in study['unseen_games']):.2f}"
                for m in ("cooperation_rate", "regret_deontological", "regret_utilitarian")
            )
            + f" | {statistics.fmean(b[g]['illegal_rate'] for g in games):.2f} | |"
        )
    for name, row in study["experiments"].items():
        unseen = row["unseen_mean"]
        illegal = statistics.fmean(row["per_game"][g]["illegal_rate"]["mean"] for g in games)
        lines.append(
            f"| {name} | {_fmt(unseen['cooperation_rate'])} | {_fmt(unseen['regret_deontological'])} | "
            f"{_fmt(unseen['regret_utilitarian'])} | {illegal:.2f} | {row['train_seconds']['mean']:.0f} |"
        )
    lines += ["", "Verdicts (a difference within the larger sd over seeds is called no clear difference):", ""]
    for verdict in study["verdicts"]:
        lines.append(
            f"- {verdict['question']}: **{verdict['answer']}** (difference {verdict['difference']:+.2f}, "
            f"largest sd {verdict['largest_sd']:.2f})"
        )
    return "\n".join(lines) + "\n"


def plot(study: dict[str, Any], path: Path) -> Path:
    """Heat maps of cooperation, Deontological and Utilitarian regret per game (rows: base model, experiments)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    games = [*TWO_PLAYER_GAMES, *N_PLAYER_GAMES]
    names = list(study["experiments"])
    labels = (["base model"] if study["base"] else []) + names
    figure, axes = plt.subplots(1, 3, figsize=(20, 0.6 * len(labels) + 2.5), constrained_layout=True)
    for axis, metric in zip(axes, ("cooperation_rate", "regret_deontological", "regret_utilitarian"), strict=True):
        rows = ([[study["base"][g][metric] for g in games]] if study["base"] else []) + [
            [study["experiments"][n]["per_game"][g][metric]["mean"] for g in games] for n in names
        ]
        values = np.array(rows)
        image = axis.imshow(values, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w")
        axis.set_xticks(range(len(games)), games, rotation=30, ha="right", fontsize=8)
        axis.set_yticks(range(len(labels)), labels, fontsize=8)
        axis.axvline(len(TWO_PLAYER_GAMES) - 0.5, color="k", linewidth=1)
        axis.set_title(f"{metric} (mean over seeds)")
        figure.colorbar(image, ax=axis, shrink=0.8)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


# ------------------------------------------------------------------------------------------------ runner


def run_study(
    scale: str,
    seeds: Sequence[int],
    experiments: Sequence[str] | None = None,
    out: Path = Path("runs/transfer"),
    overrides: dict[str, Any] | None = None,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    model_factory: ModelFactory | None = None,
    ray: Any = None,
) -> dict[str, Any]:
    """The base model once, every experiment x seed (finished runs skipped), then the summary.

    ``ray`` (a :class:`~moralgym.training.ray_runs.RayOptions`): the runs are Ray tasks, as in
    ``experiments/study.py --ray-address`` (docs/scale_out.md); the base model is evaluated here first.
    """
    names = list(experiments or experiment_names())
    configs = [experiment_config(name, scale, seed, out, overrides) for name in names for seed in seeds]
    evaluate_base(replace(configs[0], output_dir=str(out / scale / BASE)), out / scale / BASE, model_factory)
    if ray is not None:
        from moralgym.training import ray_runs

        execute = functools.partial(run_experiment, variants=tuple(variants), model_factory=model_factory)
        specs = [
            ray_runs.RunSpec(Path(c.output_dir).parent.name + f" seed {c.seed}", c, execute, finished=_is_done(c))
            for c in configs
        ]
        return ray_runs.run_study_runs(specs, ray, functools.partial(summarise, out, scale), label="transfer")
    for config in configs:
        print(f"[transfer] {scale} -> {config.output_dir}", flush=True)
        run_experiment(config, variants=variants, model_factory=model_factory)
    return summarise(out, scale)


def _is_done(config: Any) -> bool:
    summary = _read_json(Path(config.output_dir) / "summary.json")
    return bool(summary and summary.get("finished") and "transfer" in summary)


@dataclass
class TransferArguments:
    """The transfer study's command line (``python experiments/transfer_study.py --help``)."""

    scale: str = field(
        default="cpu",
        metadata={
            "help": "paper (Gemma-2-2b-it, GPU) or cpu (configs/transfer/cpu.yaml on top)",
            "choices": ["paper", "cpu"],
        },
    )
    seeds: list[int] = field(
        default_factory=lambda: [1, 2], metadata={"help": "run seeds, one run per experiment each"}
    )
    experiments: list[str] | None = field(
        default=None, metadata={"help": f"subset of: {', '.join(experiment_names())} (default: all)"}
    )
    out: str = field(default="runs/transfer", metadata={"help": "study directory (runs go to OUT/SCALE/...)"})
    variants: list[str] = field(
        default_factory=lambda: list(DEFAULT_VARIANTS),
        metadata={
            "help": "prompt variants evaluated after training (none: give the flag alone)",
            "cli": {"nargs": "*"},
        },
    )
    set: list[str] = field(
        default_factory=list,
        metadata={"help": "override any TrainingConfig field", "metavar": "KEY=VALUE", "cli": {"nargs": "*"}},
    )
    summarise_only: bool = field(default=False, metadata={"help": "only rebuild transfer.json/md/png", "cli": SWITCH})
    ray_address: str | None = field(
        default=None,
        metadata={"help": "run each (experiment, seed) as a Ray task: local, auto or HOST:PORT (docs/scale_out.md)"},
    )
    ray_cpus_per_run: int | None = field(
        default=None,
        metadata={"help": "CPUs each run asks Ray for, and its torch threads (default: torch_num_threads)"},
    )
    ray_max_retries: int = field(default=1, metadata={"help": "Ray retries of a failed run before it is reported"})

    def ray_options(self) -> Any:
        if self.ray_address is None:
            return None
        from moralgym.training.ray_runs import RayOptions

        return RayOptions(
            address=self.ray_address, cpus_per_run=self.ray_cpus_per_run, max_retries=self.ray_max_retries
        )

    def overrides(self) -> dict[str, Any]:
        """``--set KEY=VALUE ...`` as ``{key: YAML value}``, read as the paper study reads them."""
        return STUDY.StudyArguments(set=self.set).overrides()


def main(argv: Sequence[str] | None = None) -> int:
    parser = dataclass_parser(TransferArguments, prog="transfer_study.py", description=__doc__, dashed=True)
    (args,) = parser.parse(argv)
    out = Path(args.out)
    if args.summarise_only:
        study = summarise(out, args.scale)
    else:
        study = run_study(
            args.scale, args.seeds, args.experiments, out, args.overrides(), args.variants, ray=args.ray_options()
        )
    print(markdown(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
