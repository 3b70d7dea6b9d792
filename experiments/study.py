"""Run the paper's whole study: every fine-tuning experiment, each followed by the evaluation suite.

    python experiments/study.py --scale cpu --seeds 1 2 3            # embedded SmolLM2 on CPU, budgets cut
    python experiments/study.py --scale paper --experiments de_vs_tft  # Gemma-2-2b-it, 4-bit, 1000 episodes (GPU)
    python experiments/study.py --scale cpu --summarise-only           # rebuild the tables from finished runs
    python experiments/study.py --config my_study.yaml --seeds 4       # options from a YAML file, flags override
    python experiments/study.py --scale cpu --seeds 1 2 3 --ray-address local  # runs as Ray tasks on this machine
    python experiments/study.py --scale paper --ray-address auto       # ... on the cluster `ray start` runs here

Experiments are the paper configs in ``configs/paper/`` (one per reward x opponent of the paper); ``--scale cpu``
applies ``configs/study/cpu.yaml`` on top (same code, smaller model and budget). Each run goes to
``OUT/SCALE/EXPERIMENT/seedN/`` and is resumable: a finished run (``summary.json`` with ``finished``) is skipped, an
interrupted one resumes from its last checkpoint. After training, each run is evaluated with the paper's protocol
(base vs fine-tuned, five games, tokens action3/action4) and on the generalisation variants (original tokens,
swapped token meanings, other phrasings). "Game, then moral" runs are also evaluated at the switch episode, for the
unlearning comparison. ``OUT/SCALE/study.json`` and ``study.md`` collect every number with its spread over seeds.

With ``--ray-address`` each (experiment, seed) run is a Ray task (one GPU per run at paper scale, CPUs at CPU
scale), written to the same run directory, skipped when finished, retried when it fails; the tables are built once
every run has ended, with the same numbers as the sequential runner (docs/scale_out.md).
"""

# No ``from __future__ import annotations``: StudyArguments' annotations must be real types. This file is also loaded
# with importlib.util, unregistered in sys.modules, where dataclasses and HfArgumentParser would look strings up.
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from moralgym.cli_args import SWITCH, dataclass_parser

if TYPE_CHECKING:
    from moralgym.training.ray_runs import RayOptions

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = ROOT / "configs" / "paper"
SCALE_OVERRIDES = {"paper": None, "cpu": ROOT / "configs" / "study" / "cpu.yaml"}
#: Generalisation variants evaluated after training (names from moralgym.evaluation.llm_agent.PROMPT_VARIANTS).
#: The phrasing and unrelated prompts run the authors' protocol (IPD only, 5 tokens, fresh states): one batch each.
DEFAULT_VARIANTS = (
    "action12",
    "swapped",
    "unstructured",
    "ipd_like",
    "explicit_ipd",
    "action_only",
    "action_game",
    "action_game_state",
)
METRICS = ("cooperation_rate", "illegal_rate", "regret_deontological", "regret_utilitarian")
#: Memory a CPU-scale run reserves on Ray unless told otherwise: the CPU study's measured peak is 4.6-5.9 GiB per
#: run (docs/reproduction.md), so Ray packs no more runs on a node than its memory holds.
CPU_RUN_MEMORY_GIB = 6.0

ModelFactory = Callable[[], tuple[Any, Any]]


def experiment_names() -> list[str]:
    """``de_vs_tft``, ``game_then_ut_vs_llm``, ... from ``configs/paper/gemma2_*.yaml``."""
    return [path.stem.removeprefix("gemma2_") for path in sorted(PAPER_CONFIGS.glob("gemma2_*.yaml"))]


def experiment_config(name: str, scale: str, seed: int, out: Path, overrides: dict[str, Any] | None = None):
    """The :class:`~moralgym.training.TrainingConfig` of one experiment at one scale and seed."""
    from moralgym.training import TrainingConfig

    path = PAPER_CONFIGS / f"gemma2_{name}.yaml"
    if not path.exists():
        raise KeyError(f"unknown experiment {name!r}; known experiments: {', '.join(experiment_names())}")
    if scale not in SCALE_OVERRIDES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALE_OVERRIDES)}")
    values = yaml.safe_load(path.read_text())
    if SCALE_OVERRIDES[scale] is not None:
        values.update(yaml.safe_load(SCALE_OVERRIDES[scale].read_text()))
        if values["opponent"] == "llm":
            values["num_rounds"] = 3  # the paper's LLM-vs-LLM episodes are 3 rounds at every scale
        values["switch_episode"] = values["num_episodes"] // 2  # "Game, then moral": half and half, as the paper
    values.update(seed=seed, output_dir=str(out / scale / name / f"seed{seed}"), evaluate=True, resume=True)
    values.update(overrides or {})
    return TrainingConfig(**values)


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _latest_checkpoint_episode(run_dir: Path) -> int:
    episodes = [int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("episode-*") if p.name[8:].isdigit()]
    return max(episodes, default=0)


def evaluate_variants(model: Any, tokenizer: Any, config: Any, variants: Sequence[str]) -> dict[str, dict[str, float]]:
    """The trained adapter on each prompt variant (vs Random, on each variant's games), averaged over games."""
    from moralgym.evaluation import evaluate
    from moralgym.evaluation.llm_agent import PROMPT_VARIANTS, LLMAgent
    from moralgym.training.evaluate import evaluation_policy, protocol_settings

    if not variants:
        return {}
    policy = evaluation_policy(model, tokenizer, config, "player_0")
    agent = LLMAgent(policy, name="fine_tuned", variants={v: PROMPT_VARIANTS[v] for v in variants})
    result = evaluate(agent, games=tuple(config.eval_games), variants=tuple(variants), **protocol_settings(config))
    result.write(Path(config.output_dir) / "evaluation_variants")
    per_variant: dict[str, list[dict[str, Any]]] = {}
    for row in result.summary:
        per_variant.setdefault(row["variant"], []).append(row)
    return {v: {m: statistics.fmean(float(r[m]) for r in rows) for m in METRICS} for v, rows in per_variant.items()}


def _evaluate_saved_adapter(
    config: Any, variants: Sequence[str], model_factory: ModelFactory | None
) -> dict[str, dict[str, float]]:
    """Load the finished run's ``adapter/`` as ``player_0`` on the base model and evaluate it on ``variants``."""
    from moralgym.agents.llm.loading import load_causal_lm

    model, tokenizer = model_factory() if model_factory else (config.model_name_or_path, None)
    run_dir = Path(config.output_dir)
    model, tokenizer = load_causal_lm(
        model,
        tokenizer=tokenizer,
        dtype=config.dtype,
        load_in_4bit=config.load_in_4bit,
        adapter=run_dir / "adapter",
        adapter_name="player_0",
    )
    earlier = run_dir / "evaluation_variants"
    if earlier.exists():  # keep the earlier variants' files next to the new ones
        earlier.rename(run_dir / f"evaluation_variants_{int(time.time())}")
    return evaluate_variants(model, tokenizer, config, variants)


def run_experiment(config: Any, variants: Sequence[str] = DEFAULT_VARIANTS, model_factory: ModelFactory | None = None):
    """Train, evaluate and write ``summary.json`` for one run; a finished run is read back, not redone."""
    from moralgym.training.cli import run
    from moralgym.training.evaluate import evaluate_before_after

    run_dir = Path(config.output_dir)
    summary = _read_json(run_dir / "summary.json")
    if summary and summary.get("finished") and "variants" in summary:
        missing = [v for v in variants if v not in summary["variants"]]
        if missing:  # a finished run asked for more variants: evaluate only those, on the saved adapter
            summary["variants"].update(_evaluate_saved_adapter(config, missing, model_factory))
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return summary
    started = time.perf_counter()
    if config.reward.startswith("game_then") and not (run_dir / "game_phase.json").exists():
        # Unlearning: stop at the switch, evaluate the Game-phase adapter, then resume into the moral phase.
        done = _latest_checkpoint_episode(run_dir)
        if done < config.switch_episode:
            phase = dataclasses.replace(
                config, stop_after_episodes=config.switch_episode - done, evaluate=False, plot=False
            )
            model, tokenizer = model_factory() if model_factory else (None, None)
            holder: dict[str, Any] = {}
            run(phase, model, tokenizer, on_trained=lambda m, t: holder.update(model=m, tokenizer=t))
            at_switch = dataclasses.replace(config, output_dir=str(run_dir / "game_phase"))
            game_phase = evaluate_before_after(holder["model"], holder["tokenizer"], at_switch)
            (run_dir / "game_phase.json").write_text(json.dumps(game_phase, indent=2))
    model, tokenizer = model_factory() if model_factory else (None, None)
    extra: dict[str, Any] = {}

    def after_training(trained_model: Any, trained_tokenizer: Any) -> None:
        extra["variants"] = evaluate_variants(trained_model, trained_tokenizer, config, variants)

    summary = run(config, model, tokenizer, on_trained=after_training)
    summary.update(extra)
    summary["game_phase"] = _read_json(run_dir / "game_phase.json")
    summary["study_seconds"] = round(time.perf_counter() - started, 1)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def summarise(out: Path, scale: str) -> dict[str, Any]:
    """Collect every finished run under ``out/scale`` into ``study.json`` and a Markdown table ``study.md``."""
    table: dict[str, Any] = {}
    for name, run_dirs in _finished_runs(out / scale).items():
        table[name] = {
            "seeds": [int(run_dir.name.removeprefix("seed")) for run_dir in run_dirs],
            "runs": [_read_json(run_dir / "summary.json") for run_dir in run_dirs],
        }
    results: dict[str, Any] = {}
    for name, entry in table.items():
        runs = entry["runs"]
        row: dict[str, Any] = {
            "seeds": entry["seeds"],
            "train_seconds": _spread([r["train_seconds"] for r in runs]),
            # Wall time of the whole experiment (training, evaluations) and peak memory, where the run recorded them.
            **{
                key: _spread([r[key] for r in runs])
                for key in ("study_seconds", "peak_memory_mib")
                if all(r.get(key) is not None for r in runs)
            },
        }
        for model in ("base", "fine_tuned"):
            row[model] = {m: _spread([r["evaluation"][model][m] for r in runs]) for m in METRICS}
        if all(r.get("game_phase") for r in runs):
            row["game_phase"] = {m: _spread([r["game_phase"]["fine_tuned"][m] for r in runs]) for m in METRICS}
        variants = sorted(set.intersection(*(set(r.get("variants", {})) for r in runs))) if runs else []
        row["variants"] = {v: {m: _spread([r["variants"][v][m] for r in runs]) for m in METRICS} for v in variants}
        results[name] = row
    study = {"scale": scale, "experiments": results}
    (out / scale).mkdir(parents=True, exist_ok=True)
    (out / scale / "study.json").write_text(json.dumps(study, indent=2))
    (out / scale / "study.md").write_text(markdown_table(study) + per_game_table(out / scale))
    if results:
        plot_study(out / scale)
    return study


OPPONENT_PANELS = (("tft", "vs Tit-for-Tat"), ("random", "vs Random"), ("llm", "LLM vs LLM"))
#: Per-game evaluation panels and table columns: (metric, label, colour-scale maximum).
PER_GAME_METRICS = (
    ("cooperation_rate", "cooperation", 1.0),
    ("regret_deontological", "De regret", 6.0),
    ("regret_utilitarian", "Ut regret (normalised)", 1.0),
)
REWARD_ORDER = ("game", "de", "ut", "game_de", "game_then_de", "game_then_ut")


def _finished_runs(study_dir: Path) -> dict[str, list[Path]]:
    """``{experiment: [run directories]}`` of the finished, evaluated runs, experiments in alphabetical order."""
    runs: dict[str, list[Path]] = {}
    for run_dir in sorted(study_dir.glob("*/seed*")):
        summary = _read_json(run_dir / "summary.json")
        if summary and summary.get("finished") and "evaluation" in summary:
            runs.setdefault(run_dir.parent.name, []).append(run_dir)
    return runs


def _figure_order(names: Sequence[str]) -> list[str]:
    """Experiments grouped by opponent, rewards in the paper's order within each group."""
    return sorted(names, key=lambda n: (n.rsplit("_vs_", 1)[1], REWARD_ORDER.index(n.rsplit("_vs_", 1)[0])))


def _training_cooperation(run_dir: Path) -> list[float]:
    """Player 0's cooperation rate per training episode (``player_0/`` prefixed in LLM-vs-LLM runs)."""
    from moralgym.training.tracking import read_metrics

    records = read_metrics(run_dir)
    return [float(r.get("env/cooperation_rate", r.get("player_0/env/cooperation_rate", float("nan")))) for r in records]


def _per_game(run_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(model, game): summary row}`` of the run's evaluation (model: ``fine_tuned`` or ``base``)."""
    path = run_dir / "evaluation" / "summary.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return {(r["agent"], r["game"]): r for r in rows if r.get("variant") == "eval"}


def _per_game_means(
    runs: Mapping[str, list[Path]],
) -> tuple[list[str], dict[tuple[str, str, str], float]]:
    """Games played and ``{(row, metric, game): mean over seeds}`` for each experiment of ``runs``; row ``base model``
    is the base model's mean over every run (it answers each run's own states)."""
    import numpy as np

    from moralgym.envs.games import PAPER_GAMES

    evaluations = {name: [_per_game(run) for run in run_dirs] for name, run_dirs in runs.items()}
    played = {game for per_run in evaluations.values() for per_game in per_run for _, game in per_game}
    games = [g.name for g in PAPER_GAMES if g.name in played]  # the paper's order; only games the runs played

    def mean(per_run: list[dict[tuple[str, str], dict[str, Any]]], model: str, metric: str, game: str) -> float:
        return float(np.mean([float(p[(model, game)][metric]) for p in per_run if (model, game) in p]))

    every_run = [per_game for per_run in evaluations.values() for per_game in per_run]
    means: dict[tuple[str, str, str], float] = {}
    for metric, _, _ in PER_GAME_METRICS:
        for game in games:
            means[("base model", metric, game)] = mean(every_run, "base", metric, game)
            for name, per_run in evaluations.items():
                means[(name, metric, game)] = mean(per_run, "fine_tuned", metric, game)
    return games, means


def per_game_table(study_dir: Path) -> str:
    """Markdown: per experiment and game, cooperation / De regret / Ut regret of the evaluation (mean over seeds)."""
    runs = _finished_runs(study_dir)
    if not runs:
        return ""
    names = _figure_order(runs)
    games, means = _per_game_means(runs)
    lines = ["", "Per game (vs Random; cooperation / De regret / Ut regret, mean over seeds):", ""]
    lines.append("| experiment | " + " | ".join(games) + " |")
    lines.append("|---" * (len(games) + 1) + "|")
    for name in ["base model", *names]:
        cells = [" / ".join(f"{means[(name, m, g)]:.2f}" for m, _, _ in PER_GAME_METRICS) for g in games]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_study(study_dir: Path) -> Path:
    """``study.png``: training cooperation of every experiment (mean over seeds; one panel per opponent), and the
    evaluation's cooperation, Deontological and Utilitarian regret per game (vs Random; base model on top).

    One picture for the paper's qualitative claims: who learns to cooperate, against whom, and whether it carries to
    the other games.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = _finished_runs(study_dir)
    names = _figure_order(runs)
    figure = plt.figure(figsize=(18, 9), constrained_layout=True)
    grid = figure.add_gridspec(2, 6)
    for column, (opponent, title) in enumerate(OPPONENT_PANELS):
        axis = figure.add_subplot(grid[0, 2 * column : 2 * column + 2])
        for name in [n for n in names if n.endswith(f"_vs_{opponent}")]:
            curves = [_training_cooperation(run) for run in runs[name]]
            length = min(len(c) for c in curves)
            mean = np.nanmean([c[:length] for c in curves], axis=0)
            axis.plot(np.arange(length), mean, marker=".", label=f"{name.rsplit('_vs_', 1)[0]} ({len(curves)} seeds)")
        axis.set(
            title=f"training, {title}", xlabel="PPO update (episode)", ylabel="cooperation rate", ylim=(-0.05, 1.05)
        )
        axis.legend(fontsize=7)
    games, means = _per_game_means(runs)
    labels = ["base model", *names]  # the base model answers each run's states: one row, its mean over runs
    for column, (metric, label, limit) in enumerate(PER_GAME_METRICS):
        axis = figure.add_subplot(grid[1, 2 * column : 2 * column + 2])
        rows = [[means[(row, metric, game)] for game in games] for row in labels]
        image = axis.imshow(np.array(rows), vmin=0.0, vmax=limit, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(np.array(rows)):
            axis.text(
                j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < limit / 2 else "k"
            )
        axis.set_xticks(range(len(games)), games, rotation=20, fontsize=8)
        axis.set_yticks(range(len(labels)), labels if column == 0 else [], fontsize=8)
        axis.set_title(f"{label}, per game (mean over seeds)")
        figure.colorbar(image, ax=axis, shrink=0.8)
    path = study_dir / "study.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _fmt(cell: dict[str, float]) -> str:
    return f"{cell['mean']:.2f} ± {cell['sd']:.2f}" if cell["n"] > 1 else f"{cell['mean']:.2f}"


def markdown_table(study: dict[str, Any]) -> str:
    """Per experiment: base and fine-tuned cooperation / illegal / regrets (mean ± sd over seeds), and variants."""
    lines = [
        f"Scale `{study['scale']}`: vs Random, five games, tokens action3/action4 (mean ± sd over seeds).",
        "",
        "| experiment | seeds | base coop | coop | illegal | De regret | Ut regret | coop at switch | train s "
        "| total s | peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in study["experiments"].items():
        tuned = row["fine_tuned"]
        switch = _fmt(row["game_phase"]["cooperation_rate"]) if "game_phase" in row else ""
        lines.append(
            f"| {name} | {len(row['seeds'])} | {_fmt(row['base']['cooperation_rate'])} | "
            f"{_fmt(tuned['cooperation_rate'])} | {_fmt(tuned['illegal_rate'])} | "
            f"{_fmt(tuned['regret_deontological'])} | {_fmt(tuned['regret_utilitarian'])} | {switch} | "
            f"{row['train_seconds']['mean']:.0f} | "
            + (f"{row['study_seconds']['mean']:.0f}" if "study_seconds" in row else "")
            + " | "
            + (f"{row['peak_memory_mib']['mean'] / 1024:.1f}" if "peak_memory_mib" in row else "")
            + " |"
        )
    variant_names = sorted({v for row in study["experiments"].values() for v in row["variants"]})
    if variant_names:
        lines += ["", "Cooperation / illegal rate on the generalisation variants:", ""]
        lines.append("| experiment | " + " | ".join(variant_names) + " |")
        lines.append("|---" * (len(variant_names) + 1) + "|")
        for name, row in study["experiments"].items():
            cells = [
                f"{_fmt(row['variants'][v]['cooperation_rate'])} / {_fmt(row['variants'][v]['illegal_rate'])}"
                if v in row["variants"]
                else ""
                for v in variant_names
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_study(
    scale: str,
    seeds: Sequence[int],
    experiments: Sequence[str] | None = None,
    out: Path = Path("runs/study"),
    overrides: dict[str, Any] | None = None,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    model_factory: ModelFactory | None = None,
    ray: "RayOptions | None" = None,
) -> dict[str, Any]:
    """Every experiment x seed (skipping finished ones), then the summary tables.

    With ``ray`` the runs are Ray tasks (:func:`run_study_on_ray`); ``model_factory`` must then be picklable.
    """
    if ray is not None:
        return run_study_on_ray(scale, seeds, experiments, out, overrides, variants, model_factory, ray)
    names = list(experiments or experiment_names())
    for name in names:
        for seed in seeds:
            config = experiment_config(name, scale, seed, out, overrides)
            print(f"[study] {scale} {name} seed {seed} -> {config.output_dir}", flush=True)
            run_experiment(config, variants=variants, model_factory=model_factory)
    return summarise(out, scale)


def run_complete(config: Any, variants: Sequence[str]) -> bool:
    """The run is finished and evaluated on every one of ``variants``: :func:`run_experiment` would only read it
    back, so the Ray runner does not submit it."""
    summary = _read_json(Path(config.output_dir) / "summary.json")
    return bool(summary and summary.get("finished") and set(variants) <= set(summary.get("variants") or ()))


def run_study_on_ray(
    scale: str,
    seeds: Sequence[int],
    experiments: Sequence[str] | None,
    out: Path,
    overrides: dict[str, Any] | None,
    variants: Sequence[str],
    model_factory: ModelFactory | None,
    ray: "RayOptions",
) -> dict[str, Any]:
    """Each (experiment, seed) as a Ray task running :func:`run_experiment`, the tables once all have ended.

    The runs are the sequential runner's (same configs, same run directories, same seeds), so the numbers are
    too; a CPU-scale run reserves :data:`CPU_RUN_MEMORY_GIB` unless ``ray.memory_per_run_gib`` says otherwise.
    Raises :class:`~moralgym.training.ray_runs.RunsFailed` (carrying the summary of the runs that finished) if
    some runs still failed after their retries.
    """
    import functools

    from moralgym.training import ray_runs

    if scale == "cpu" and ray.memory_per_run_gib is None:
        ray = dataclasses.replace(ray, memory_per_run_gib=CPU_RUN_MEMORY_GIB)
    execute = functools.partial(run_experiment, variants=tuple(variants), model_factory=model_factory)
    specs = []
    for name in experiments or experiment_names():
        for seed in seeds:
            config = experiment_config(name, scale, seed, out, overrides)
            finished = run_complete(config, variants)
            specs.append(ray_runs.RunSpec(f"{name} seed {seed}", config, execute, finished=finished))
    return ray_runs.run_study_runs(specs, ray, functools.partial(summarise, out, scale), label="study")


@dataclass
class StudyArguments:
    """The study's command line (``python experiments/study.py --help``); ``--config FILE.yaml`` sets the same
    fields by name, e.g. ``seeds: [1, 2, 3]`` and ``set: [torch_num_threads=1]``."""

    scale: str = field(
        default="cpu",
        metadata={
            "help": "paper (the paper's model and budget) or cpu (configs/study/cpu.yaml on top)",
            "choices": list(SCALE_OVERRIDES),
        },
    )
    seeds: list[int] = field(default_factory=lambda: [1], metadata={"help": "run seeds, one run per experiment each"})
    experiments: list[str] | None = field(
        default=None, metadata={"help": f"subset of: {', '.join(experiment_names())} (default: all)"}
    )
    out: str = field(default="runs/study", metadata={"help": "study directory (runs go to OUT/SCALE/...)"})
    variants: list[str] = field(
        default_factory=lambda: list(DEFAULT_VARIANTS),
        metadata={"help": "generalisation variants (none: give the flag alone)", "cli": {"nargs": "*"}},
    )
    set: list[str] = field(
        default_factory=list,
        metadata={"help": "override any TrainingConfig field", "metavar": "KEY=VALUE", "cli": {"nargs": "*"}},
    )
    summarise_only: bool = field(default=False, metadata={"help": "only rebuild study.json/study.md", "cli": SWITCH})
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "run each (experiment, seed) as a Ray task: 'local' starts a Ray cluster on this machine, 'auto' "
            "joins the one `ray start` runs here, HOST:PORT a remote one (default: one run after another, no Ray)"
        },
    )
    ray_num_cpus: int | None = field(
        default=None, metadata={"help": "CPUs of the local Ray cluster (--ray-address local; default: all cores)"}
    )
    ray_cpus_per_run: int | None = field(
        default=None,
        metadata={"help": "CPUs each run asks Ray for, and torch's threads in it (default: torch_num_threads, else 1)"},
    )
    ray_gpus_per_run: float | None = field(
        default=None, metadata={"help": "GPUs each run asks Ray for (default: 1 at paper scale, 0 at CPU scale)"}
    )
    ray_memory_per_run: float | None = field(
        default=None,
        metadata={"help": f"GiB of memory each run reserves on Ray (default: {CPU_RUN_MEMORY_GIB:g} at CPU scale)"},
    )
    ray_max_retries: int = field(default=1, metadata={"help": "Ray retries of a failed run before it is reported"})

    def overrides(self) -> dict[str, Any]:
        """``--set KEY=VALUE ...`` as ``{key: YAML value}``."""
        overrides = {}
        for item in self.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"--set expects key=value, got {item!r}")
            overrides[key] = yaml.safe_load(value)
        return overrides

    def ray_options(self) -> "RayOptions | None":
        """The ``--ray-*`` options (``None``: no ``--ray-address``, the sequential runner); ``ValueError`` if one is
        given without ``--ray-address`` or out of range."""
        from moralgym.training.ray_runs import RayOptions

        given = [f.name for f in dataclasses.fields(self) if f.name.startswith("ray_") and f.name != "ray_address"]
        given = [name for name in given if getattr(self, name) != StudyArguments.__dataclass_fields__[name].default]
        if self.ray_address is None:
            if given:
                flags = ", ".join("--" + name.replace("_", "-") for name in given)
                raise ValueError(f"{flags} need --ray-address (local, auto or HOST:PORT)")
            return None
        return RayOptions(
            address=self.ray_address,
            num_cpus=self.ray_num_cpus,
            cpus_per_run=self.ray_cpus_per_run,
            gpus_per_run=self.ray_gpus_per_run,
            memory_per_run_gib=self.ray_memory_per_run,
            max_retries=self.ray_max_retries,
        )


def parse_args(argv: Sequence[str] | None = None) -> StudyArguments:
    """The study's options: flags, over an optional ``--config FILE.yaml``."""
    parser = dataclass_parser(StudyArguments, prog="study.py", description=__doc__, dashed=True)
    (args,) = parser.parse(argv)
    try:
        args.ray_options()
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """0 done; 1 some Ray runs failed after their retries (listed, one line each, after the table of the others);
    2 bad options, or Ray asked for but not installed; 130 Ctrl-C on Ray (the runs checkpoint, a rerun resumes)."""
    from moralgym.training.ray_runs import RayUnavailable, RayUsageError, RunsFailed

    args = parse_args(argv)
    out = Path(args.out)
    if args.summarise_only:
        study = summarise(out, args.scale)
    else:
        try:
            study = run_study(
                args.scale, args.seeds, args.experiments, out, args.overrides(), args.variants, ray=args.ray_options()
            )
        except (RayUnavailable, RayUsageError) as error:
            print(f"study.py: error: {' '.join(str(error).split())}", file=sys.stderr)
            return 2
        except RunsFailed as failed:
            print(markdown_table(failed.result))
            print("\n".join(f"[study] {line}" for line in failed.lines()), file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            if args.ray_address is None:
                raise
            print(
                "study.py: interrupted; the runs checkpointed their last episode: rerun the command to resume them",
                file=sys.stderr,
            )
            return 130
    print(markdown_table(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
