"""``moralgym train --config CONFIG.yaml [--key value ...]``: parse, build, train, evaluate, plot.

The script layer is thin on purpose: parsing is :class:`trl.TrlParser` over :class:`PPOConfig` (a YAML file sets
defaults, command-line flags override them), training is :class:`MoralPPOTrainer` (or the GRPO path), evaluation
is :func:`moralgym.training.evaluate.evaluate_before_after`, and the plot is
:func:`moralgym.training.plotting.plot_learning_curve`.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from moralgym.training.config import PPOConfig

USAGE = "moralgym train --config CONFIG.yaml [--resume] [--<field> VALUE ...]   (fields: moralgym train --help)"


def parse_config(argv: Sequence[str] | None = None) -> PPOConfig:
    """YAML (``--config``) + command-line overrides -> a validated :class:`PPOConfig`."""
    from trl import TrlParser

    parser = TrlParser((PPOConfig,), usage=USAGE)
    (config,) = parser.parse_args_and_config(list(argv) if argv is not None else None)
    return config


def peak_memory_mib() -> float:
    """Peak resident memory of this process (``ru_maxrss``, KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(
    config: PPOConfig,
    model: Any = None,
    tokenizer: Any = None,
    on_trained: Callable[[Any, Any], None] | None = None,
) -> dict[str, Any]:
    """Train (and evaluate, plot) one configured run; returns the summary also written to ``summary.json``.

    ``on_trained(model, tokenizer)``, if given, is called on the main process once training stops (finished or
    stopped early), before the evaluation: the experiment scripts use it to evaluate more without reloading.
    """
    started = time.perf_counter()
    output_dir = Path(config.output_dir)
    if config.algorithm == "grpo":
        from moralgym.training.grpo import train_grpo

        trainer = None
        result = train_grpo(config, model, tokenizer)
        model, tokenizer = result["model"], result["tokenizer"]
        is_main = True
        last = result["last"]
        seat = result["seat"]
    else:
        from moralgym.training.ppo import MoralPPOTrainer

        trainer = MoralPPOTrainer(config, model, tokenizer)
        last = trainer.train()
        model, tokenizer, is_main = trainer.model, trainer.tokenizer, trainer.is_main
        seat = "player_0"
    train_s = time.perf_counter() - started
    summary: dict[str, Any] = {
        "output_dir": str(output_dir),
        "algorithm": config.algorithm,
        "episodes": config.num_episodes,
        "finished": trainer is None or trainer.episode >= config.num_episodes,
        "train_seconds": round(train_s, 1),
        "last_episode": {k: v for k, v in last.items() if not k.startswith("time/")},
    }
    if trainer is not None:
        summary["processes"] = trainer.world_size
        summary["time_split_seconds"] = {k: round(v, 1) for k, v in trainer.timers.items()}
    if is_main:
        from moralgym.provenance import provenance

        # Versions of the stack and a hash of the base weights (adapters excluded): see moralgym.provenance.
        summary["provenance"] = {"model_name_or_path": config.model_name_or_path, **provenance(model)}
    if is_main and on_trained is not None:
        on_trained(model, tokenizer)
    if is_main and summary["finished"]:
        if config.evaluate:
            from moralgym.training.evaluate import evaluate_before_after

            t0 = time.perf_counter()
            evaluation = evaluate_before_after(model, tokenizer, config, seat=seat)
            summary["evaluation"] = evaluation
            summary["evaluation_seconds"] = round(time.perf_counter() - t0, 1)
        if config.plot:
            from moralgym.training.plotting import plot_learning_curve

            try:
                summary["learning_curve"] = str(plot_learning_curve(output_dir, config))
            except ImportError as error:  # matplotlib missing: the metrics are still there
                print(f"[moralgym] no learning curve: {error}", file=sys.stderr)
    summary["total_seconds"] = round(time.perf_counter() - started, 1)
    summary["peak_memory_mib"] = round(peak_memory_mib(), 1)
    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        print(format_summary(summary))
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"[moralgym] run finished in {summary['total_seconds']} s (training {summary['train_seconds']} s), "
        f"peak memory {summary['peak_memory_mib']} MiB -> {summary['output_dir']}"
    ]
    evaluation = summary.get("evaluation")
    if evaluation:
        lines.append(
            "[moralgym] evaluation (paper protocol: vs random, "
            f"{evaluation['episodes']} episodes x {evaluation['rounds']} rounds, tokens "
            f"{evaluation['tokens']}, games {', '.join(evaluation['games'])}):"
        )
        lines.append(f"  {'model':<12}{'cooperation':>12}{'illegal':>10}{'De regret':>11}{'Ut regret':>11}")
        for name in ("base", "fine_tuned"):
            m = evaluation[name]
            lines.append(
                f"  {name:<12}{m['cooperation_rate']:>12.3f}{m['illegal_rate']:>10.3f}"
                f"{m['regret_deontological']:>11.3f}{m['regret_utilitarian']:>11.3f}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``moralgym train``; returns a process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(f"usage: {USAGE}\nquick start: moralgym train --config configs/quickstart.yaml", file=sys.stderr)
        return 2
    try:
        config = parse_config(argv)
    except ValueError as error:
        print(f"moralgym train: {error}", file=sys.stderr)
        return 2
    run(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
