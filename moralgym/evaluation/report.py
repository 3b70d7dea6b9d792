"""Figures (matplotlib, Agg backend) and a self-contained HTML report with the figures inline (base64 PNG).

Figures: stacked action-type bars per game and variant (as the paper's figures), learning curves from a training
run's metrics JSONL, a tournament heat-map, and grouped bars comparing runs. Each ``plot_*`` writes one PNG and
returns its path.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moralgym.evaluation.metrics import ACTION_TYPE_COLOURS, ACTION_TYPES

#: Summary columns shown in report tables.
REPORT_COLUMNS = (
    "agent",
    "role",
    "game",
    "opponent",
    "variant",
    "n_decisions",
    "cooperation_rate",
    "illegal_rate",
    "game_payoff",
    "regret_deontological",
    "regret_utilitarian",
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "run"


def plot_action_types(summary: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Stacked shares of the six action types: one group of bars per game, one bar per agent (role)."""
    plt = _pyplot()
    games = list(dict.fromkeys(row["game"] for row in summary))
    labels = list(dict.fromkeys(_bar_label(row) for row in summary))
    width = 0.8 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(games) * max(1, len(labels)) ** 0.5, 4.0))
    for k, label in enumerate(labels):
        rows = {row["game"]: row for row in summary if _bar_label(row) == label}
        x = np.arange(len(games)) + (k - (len(labels) - 1) / 2) * width
        bottom = np.zeros(len(games))
        for action_type in ACTION_TYPES:
            heights = np.array([rows[g].get(f"share_{action_type}", 0.0) if g in rows else 0.0 for g in games])
            ax.bar(
                x,
                heights,
                width * 0.95,
                bottom=bottom,
                color=ACTION_TYPE_COLOURS[action_type],
                label=action_type if k == 0 else None,
                edgecolor="white",
                linewidth=0.3,
            )
            bottom += heights
        if len(labels) > 1:
            for xi in x:
                ax.text(xi, 1.01, label, rotation=90, ha="center", va="bottom", fontsize=6)
    ax.set_xticks(np.arange(len(games)), games, rotation=20, ha="right")
    ax.set_ylim(0, 1.35 if len(labels) > 1 else 1.0)
    ax.set_ylabel("share of decisions")
    ax.set_title(title or "action | opponent's previous move")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, title="action type")
    return _save(fig, path)


def _bar_label(row: dict[str, Any]) -> str:
    return str(row.get("agent", "agent")) + (" (reference)" if row.get("role") == "reference" else "")


def plot_learning_curves(metrics: Sequence[dict[str, Any]], path: str | Path, window: int = 10) -> Path:
    """Every numeric column of a training metrics JSONL against its step/episode column (moving average)."""
    plt = _pyplot()
    x_key = next(
        (k for k in ("episode", "step", "global_step", "update", "iteration") if metrics and k in metrics[0]), None
    )
    numeric = [
        key
        for key in dict.fromkeys(k for row in metrics for k in row)
        if key != x_key
        and all(
            isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
            for row in metrics
            if key in row
        )
    ]
    preferred = [k for k in numeric if re.search("reward|return|regret|cooperat|illegal|loss", k)] or numeric
    keys = preferred[:8]
    fig, axes = plt.subplots(len(keys) or 1, 1, figsize=(6, 1.8 * max(1, len(keys))), squeeze=False, sharex=True)
    for ax, key in zip(axes[:, 0], keys, strict=False):
        rows = [row for row in metrics if key in row]
        x = np.array([row.get(x_key, i) for i, row in enumerate(rows)], dtype=float)
        y = np.array([row[key] for row in rows], dtype=float)
        ax.plot(x, y, color="#bbbbbb", linewidth=0.8)
        if len(y) >= window > 1:
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            ax.plot(x[window - 1 :], smooth, color="#2166ac", linewidth=1.5)
        ax.set_ylabel(key, fontsize=8)
    axes[-1, 0].set_xlabel(x_key or "row")
    fig.suptitle("training metrics")
    return _save(fig, path)


def plot_heatmap(matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row agent's metric against each column opponent, values written in the cells."""
    plt = _pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * n, 1.0 + 0.6 * n))
    image = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("opponent")
    ax.set_ylabel("agent")
    finite = matrix[np.isfinite(matrix)]
    middle = float(finite.mean()) if finite.size else 0.0
    for i in range(n):
        for j in range(n):
            if np.isfinite(matrix[i, j]):
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if matrix[i, j] > middle else "white",
                )
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    return _save(fig, path)


def plot_comparison(
    rows: Sequence[dict[str, Any]],
    path: str | Path,
    metrics: Sequence[str] = ("cooperation_rate", "regret_deontological", "regret_utilitarian"),
    label_key: str = "label",
) -> Path:
    """Grouped bars: one panel per metric, one group per game, one bar per run, with 95% CI whiskers."""
    plt = _pyplot()
    games = list(dict.fromkeys(row["game"] for row in rows))
    labels = list(dict.fromkeys(row[label_key] for row in rows))
    width = 0.8 / max(1, len(labels))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], metrics, strict=True):
        for k, label in enumerate(labels):
            by_game = {row["game"]: row for row in rows if row[label_key] == label}
            x = np.arange(len(games)) + (k - (len(labels) - 1) / 2) * width
            values = [by_game.get(g, {}).get(metric, np.nan) for g in games]
            errors = [by_game.get(g, {}).get(f"{metric}_ci95", 0.0) or 0.0 for g in games]
            ax.bar(
                x,
                np.array(values, dtype=float),
                width * 0.95,
                yerr=errors,
                capsize=2,
                label=label,
                color=colours(k % 10),
            )
        ax.set_xticks(np.arange(len(games)), games, rotation=25, ha="right", fontsize=8)
        ax.set_title(metric)
    axes[0, -1].legend(fontsize=7, loc="best")
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def html_table(rows: Iterable[dict[str, Any]], columns: Sequence[str] = REPORT_COLUMNS) -> str:
    """An HTML table of ``columns`` (those present), numbers to 3 decimals with ``± ci95`` when available."""
    rows = list(rows)
    columns = [c for c in columns if any(c in row for row in rows)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if isinstance(value, float):
                text = f"{value:.3f}"
                ci = row.get(f"{column}_ci95")
                if isinstance(ci, float) and ci > 0:
                    text += f" ± {ci:.3f}"
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_html_report(
    path: str | Path,
    title: str,
    sections: Sequence[tuple[str, str]],
    figures: Sequence[Path],
    inline: bool = True,
) -> Path:
    """One self-contained HTML file: text/table ``sections`` ``(heading, html)`` then every figure.

    ``inline=True`` embeds PNGs as base64 (the file stands alone); otherwise images use paths relative to it.
    """
    path = Path(path)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
    ]
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{content}")
    if figures:
        parts.append("<h2>Figures</h2>")
    for figure in figures:
        figure = Path(figure)
        if inline:
            source = "data:image/png;base64," + base64.b64encode(figure.read_bytes()).decode("ascii")
        else:
            source = html.escape(str(figure.relative_to(path.parent)))
        parts.append(
            f"<figure><img alt='{html.escape(figure.stem)}' src='{source}'>"
            f"<figcaption>{html.escape(figure.name)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
