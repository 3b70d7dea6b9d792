"""Before/after evaluation of a trained adapter with the paper's protocol (docs/reproduction.md), via :mod:`moralgym.evaluation`.

The fine-tuned model plays a Random opponent (10 episodes x 5 rounds per game, five games, tokens action3/action4,
fixed evaluation seed); the base model -- the same weights with every adapter disabled, no second copy -- answers
the very same prompts (same states, token orders and sampling uniforms) as the reference. Both use the training
run's answer prefix and number of sampled tokens. ``evaluation/`` gets the tables, ``report.html`` and its figures
(with the run's learning curve).

An N-player run (docs/training.md "N-player games") is evaluated with the harness's N-player protocol on its
training game at its ``num_players``: the adapter that plays seat 0 sits in seat 0, every other seat holds a
co-player of ``eval_opponent`` (the paper's Random), ``eval_episodes`` x ``eval_rounds``, one evaluation seed for
the base and the fine-tuned model alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moralgym.training.config import TrainingConfig

METRICS = ("cooperation_rate", "illegal_rate", "regret_deontological", "regret_utilitarian", "game_payoff")
#: The N-player protocol's further summary metrics: the others' cooperation, the collective payoff, the Game regret.
N_PLAYER_METRICS = (*METRICS, "others_cooperation_rate", "total_payoff", "regret_game")


def evaluation_games(config: TrainingConfig) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The games of the evaluation after training and the harness settings they need: ``eval_games`` for a
    two-player run; the training game at ``num_players`` for an N-player run."""
    if getattr(config, "is_n_player", False):
        return (config.game,), {"num_players": config.num_players}
    return tuple(config.eval_games), {}


def evaluation_policy(model: Any, tokenizer: Any, config: TrainingConfig, adapter_name: str | None) -> Any:
    """The paper protocol's LLM policy for one adapter of ``model`` (``"__base__"`` or None: the base model): the
    evaluation's tokens and seed, the training run's prompt wording, answer prefix and answer length, the prefix
    cache on with ``eval_kv_cache_mib`` for its kept KV. Every evaluation after training (this module's, the experiment scripts') builds its policy here."""
    from moralgym.agents.llm.policy import LLMPolicy
    from moralgym.agents.llm.prompts import PromptBuilder
    from moralgym.training.memory import MIB

    prompt = PromptBuilder(
        tokens=config.eval_action_tokens, phrasing=config.phrasing, answer_prefix=config.answer_prefix
    )
    return LLMPolicy(
        model,
        tokenizer,
        prompt=prompt,
        max_new_tokens=config.max_new_tokens,
        seed=config.eval_seed,
        adapter_name=adapter_name,
        prefix_cache=True,
        kv_cache_bytes=config.eval_kv_cache_mib * MIB,
    )


def evaluation_agent(policy: Any, name: str, config: TrainingConfig) -> Any:
    """``policy`` as the harness's agent ``name``, its variant labelled with the evaluation's tokens and wording."""
    from moralgym.evaluation.llm_agent import LLMAgent

    return LLMAgent(
        policy, name=name, variants={"eval": {"tokens": config.eval_action_tokens, "phrasing": config.phrasing}}
    )


def protocol_settings(config: TrainingConfig) -> dict[str, Any]:
    """The harness keywords of the paper's protocol from the config's ``eval_*`` fields and the run's rewards."""
    return {
        "opponents": (config.eval_opponent,),
        "num_episodes": config.eval_episodes,
        "num_rounds": config.eval_rounds,
        "seed": config.eval_seed,
        "penalty": config.penalty,
        "illegal_reward": config.illegal_reward,
    }


def evaluate_before_after(
    model: Any, tokenizer: Any, config: TrainingConfig, agent: str = "player_0"
) -> dict[str, Any]:
    """Evaluate the adapter that plays seat ``agent`` and the base model; writes ``evaluation/`` under the run
    directory and returns ``{"base": {...}, "fine_tuned": {...}, "per_game": {...}, ...}`` with the metrics averaged
    over games.

    The protocol's settings are the config's :class:`~moralgym.training.config.TrainingEvaluationArguments`
    (``eval_*``); the prompt's wording, answer prefix and length, and the rewards' penalty, are the training run's.
    The games: :func:`evaluation_games`."""
    from moralgym.evaluation import evaluate

    model.eval()
    adapter = config.adapter_of(agent) if hasattr(config, "adapter_of") else agent  # a shared adapter's name
    games, players = evaluation_games(config)
    metrics = N_PLAYER_METRICS if players else METRICS
    tuned = evaluation_policy(model, tokenizer, config, adapter)
    base = evaluation_policy(model, tokenizer, config, "__base__")  # every adapter disabled, no copy
    result = evaluate(
        evaluation_agent(tuned, "fine_tuned", config),
        reference=evaluation_agent(base, "base", config),
        games=games,
        **players,
        **protocol_settings(config),
    )
    model.set_adapter(adapter)
    run_dir = Path(config.output_dir)
    run_name = getattr(config, "run_name", None) or run_dir.resolve().name
    result.config.update(
        {
            "model": config.model_name_or_path,
            "adapter": str(run_dir / "adapter"),
            "prompt": {
                "answer_prefix": config.answer_prefix,
                "phrasing": config.phrasing,
                "eval_action_tokens": config.eval_action_tokens,
                "max_new_tokens": config.max_new_tokens,
            },
        }
    )
    result.write(run_dir / "evaluation")
    write_report(run_dir, result, run_name)
    per_game: dict[str, dict[str, dict[str, float]]] = {}
    for row in result.summary:
        per_game.setdefault(row["agent"], {})[row["game"]] = {m: float(row[m]) for m in metrics if m in row}
    overall = {
        name: {m: sum(g[m] for g in rows.values()) / len(rows) for m in metrics if all(m in g for g in rows.values())}
        for name, rows in per_game.items()
    }
    return {
        "games": list(games),
        **players,
        "episodes": config.eval_episodes,
        "rounds": config.eval_rounds,
        "tokens": config.eval_action_tokens,
        "opponent": config.eval_opponent,
        "seed": config.eval_seed,
        "base": overall.get("base", {}),
        "fine_tuned": overall.get("fine_tuned", {}),
        "per_game": per_game,
    }


def write_report(run_dir: Path, result: Any, run_name: str) -> Path | None:
    """``evaluation/report.html`` (and its figures) with the run's learning curve; ``None`` without matplotlib."""
    import sys

    from moralgym.evaluation.io import read_jsonl
    from moralgym.evaluation.report import build_evaluation_report

    metrics_path = run_dir / "metrics.jsonl"
    metrics = read_jsonl(metrics_path) if metrics_path.is_file() else None
    try:
        return build_evaluation_report(
            run_dir / "evaluation", result, training_metrics=metrics, title=f"{run_name}: fine-tuned vs base"
        )
    except ImportError as error:  # matplotlib missing: the tables are written
        print(f"[moralgym] no evaluation report: {error}", file=sys.stderr)
        return None
