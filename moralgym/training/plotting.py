"""``learning_curve.png``: per-episode behaviour and PPO statistics of a run, from its ``metrics.jsonl``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from moralgym.training.tracking import read_metrics


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` episodes (NaNs ignored)."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out[i] = np.nanmean(chunk) if np.isfinite(chunk).any() else np.nan
    return out


def plot_learning_curve(run_dir: str | Path, config: Any = None, window: int | None = None) -> Path:
    """Plot cooperation/illegal rates, rewards and KL per episode; returns the PNG path.

    ``window``: moving-average width (default: 10 episodes, less for short runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise ValueError(f"no metrics in {run_dir}; train first")
    episodes = np.array([r["episode"] for r in records])
    if window is None:
        window = min(10, max(1, len(records) // 5))
    prefixes = sorted({k.split("env/")[0] for r in records[:1] for k in r if "env/cooperation_rate" in k})

    def series(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r.get(key) for r in records], dtype=float)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for prefix in prefixes:
        label = prefix.rstrip("/") or "agent"
        for name, style in (("cooperation_rate", "-"), ("illegal_rate", "--")):
            axes[0].plot(
                episodes,
                moving_average(series(f"{prefix}env/{name}"), window),
                style,
                label=f"{label} {name.replace('_', ' ')}",
            )
        for name in ("reward", "reward_game", "reward_deontological", "reward_utilitarian"):
            key = f"{prefix}env/{name}"
            if key in records[0]:
                trained = name == "reward"
                axes[1].plot(
                    episodes,
                    moving_average(series(key), window),
                    label=f"{label} {'trained reward' if trained else name[7:]}",
                    linestyle="--" if trained else "-",
                    color="black" if trained else None,
                    linewidth=2 if trained else 1,
                    zorder=3 if trained else 2,
                )
        axes[2].plot(episodes, series(f"{prefix}ppo/kl"), label=f"{label} KL(policy || base)")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].set_title(f"Behaviour (moving average, {window} episodes)")
    axes[1].set_title("Rewards per decision (moving average)")
    axes[2].set_title("KL to the base model (sum over response tokens)")
    for ax in axes:
        ax.set_xlabel("episode")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if config is not None:
        fig.suptitle(
            f"{config.model_name_or_path} vs {config.opponent}, reward {config.reward} "
            f"({config.num_envs} games x {config.num_rounds} rounds per update)"
        )
    fig.tight_layout()
    path = run_dir / "learning_curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
