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

from moralgym.evaluation.metrics import ACTION_TYPES, action_type_colour, n_player_action_type_labels

#: Summary columns shown in report tables.
REPORT_COLUMNS = (
    "agent",
    "role",
    "game",
    "num_players",
    "opponent",
    "variant",
    "num_decisions",
    "cooperation_rate",
    "illegal_rate",
    "game_payoff",
    "regret_deontological",
    "regret_utilitarian",
    "regret_game",
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "run"


def summary_action_types(summary: Sequence[dict[str, Any]]) -> tuple[list[str], int | None]:
    """The action types the summary rows count, in stacking order, and the largest number of players among its
    N-player rows (``None`` without any): the six two-player types for two-player rows, then the N-player
    ``<move>|<k>`` of the largest ``N`` (which include every smaller ``N``'s)."""
    players = [int(row["num_players"]) for row in summary if row.get("num_players") is not None]
    labels = list(ACTION_TYPES) if len(players) < len(summary) else []
    if players:
        labels += n_player_action_type_labels(max(players))
    return labels, max(players) if players else None


def plot_action_types(summary: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Stacked shares of the action types (the six two-player ones; in N-player games own move | others who
    cooperated last round): one panel per agent (the reference next to it), one bar per game."""
    plt = _pyplot()
    action_types, num_players = summary_action_types(summary)
    games = list(dict.fromkeys(row["game"] for row in summary))
    labels = list(dict.fromkeys(_bar_label(row) for row in summary))
    width = min(10.5, 2.4 + (0.75 * len(games) + 0.6) * len(labels))
    fig, axes = plt.subplots(1, len(labels), figsize=(width, 3.6), sharey=True, squeeze=False)
    for ax, label in zip(axes[0], labels, strict=True):
        rows = {row["game"]: row for row in summary if _bar_label(row) == label}
        x = np.arange(len(games))
        bottom = np.zeros(len(games))
        for action_type in action_types:
            heights = np.array([rows[g].get(f"share_{action_type}", 0.0) if g in rows else 0.0 for g in games])
            ax.bar(
                x,
                heights,
                0.75,
                bottom=bottom,
                color=action_type_colour(action_type, num_players),
                label=action_type,
                edgecolor="white",
                linewidth=0.4,
            )
            bottom += heights
        ax.set_xticks(x, [game_label(g) for g in games], fontsize=8)
        ax.set_ylim(0, 1.0)
        ax.set_title(label, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0, 0].set_ylabel("share of decisions")
    handles, names = axes[0, 0].get_legend_handles_labels()
    their = "their last" if num_players is None else "others' C last"
    fig.legend(handles, names, loc="center right", fontsize=8, title=f"own action | {their}", frameon=False)
    default = (
        "action | opponent's previous move" if num_players is None else "action | others who cooperated last round"
    )
    fig.suptitle(title or default, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_size_inches()[0], 1))
    return _save(fig, path, layout=False)


#: Short game names for axis labels (two lines at most, no rotation needed).
GAME_LABELS = {
    "ipd": "Prisoner's\nDilemma",
    "stag_hunt": "Stag Hunt",
    "chicken": "Chicken",
    "bach_or_stravinsky": "Bach or\nStravinsky",
    "defective_coordination": "Defective\nCoordination",
}


def game_label(name: str) -> str:
    """A game's axis label: ``GAME_LABELS`` or its name with spaces, on two lines when long."""
    if name in GAME_LABELS:
        return GAME_LABELS[name]
    words = str(name).replace("_", " ").split()
    if len(" ".join(words)) <= 12 or len(words) < 2:
        return " ".join(words)
    half = (len(words) + 1) // 2
    return " ".join(words[:half]) + "\n" + " ".join(words[half:])


#: Metric -> label in figures and tables.
METRIC_LABELS = {
    "cooperation_rate": "cooperation",
    "illegal_rate": "illegal answers",
    "game_payoff": "game payoff",
    "regret_deontological": "De regret (0..6)",
    "regret_utilitarian": "Ut regret (0..1)",
    "regret_game": "Game regret",
    "others_cooperation_rate": "others' cooperation",
    "total_payoff": "collective payoff",
    "num_players": "players",
    "num_decisions": "decisions",
    "num_episodes": "episodes",
}
#: The headline metrics (lower regret is better).
HEADLINE_METRICS = (
    "cooperation_rate",
    "illegal_rate",
    "regret_deontological",
    "regret_utilitarian",
    "regret_game",
    "game_payoff",
)


def plot_per_game(
    summary: Sequence[dict[str, Any]],
    path: str | Path,
    metrics: Sequence[str] = ("regret_deontological", "regret_utilitarian", "cooperation_rate", "illegal_rate"),
    title: str = "",
) -> Path:
    """One panel per metric, one group of bars per game, one bar per agent (reference included), 95% CI whiskers."""
    plt = _pyplot()
    games = list(dict.fromkeys(row["game"] for row in summary))
    labels = list(dict.fromkeys(_bar_label(row) for row in summary))
    columns = 2 if len(metrics) > 1 else 1
    lines = -(-len(metrics) // columns)
    width = min(10.0, 1.5 + columns * (0.55 * len(games) * max(1, len(labels)) ** 0.5 + 0.5))
    fig, axes = plt.subplots(lines, columns, figsize=(width, 2.7 * lines + 0.5), squeeze=False)
    colours = ["#2166ac", "#b2abd2", "#f4a582", "#1b7837", "#762a83"]
    width = 0.8 / max(1, len(labels))
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for k, label in enumerate(labels):
            rows = {row["game"]: row for row in summary if _bar_label(row) == label}
            x = np.arange(len(games)) + (k - (len(labels) - 1) / 2) * width
            values = np.array([rows.get(g, {}).get(metric, np.nan) for g in games], dtype=float)
            errors = np.array([rows.get(g, {}).get(f"{metric}_ci95", 0.0) or 0.0 for g in games], dtype=float)
            ax.bar(x, values, width * 0.92, yerr=errors, capsize=2, color=colours[k % len(colours)], label=label)
        ax.set_xticks(np.arange(len(games)), [game_label(g) for g in games], fontsize=8)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
        if metric in ("cooperation_rate", "illegal_rate"):
            ax.set_ylim(0, 1.05)
        elif metric == "regret_utilitarian":
            ax.set_ylim(0, 1.0)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(labels), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11, y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_size_inches()[1]))
    return _save(fig, path, layout=False)


def _bar_label(row: dict[str, Any]) -> str:
    return str(row.get("agent", "agent")) + (" (reference)" if row.get("role") == "reference" else "")


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    out = np.empty_like(values)
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out[i] = np.nanmean(chunk) if np.isfinite(chunk).any() else np.nan
    return out


def plot_learning_curves(metrics: Sequence[dict[str, Any]], path: str | Path, window: int | None = None) -> Path:
    """The learning curve of a training run's metrics JSONL against its episode/step column (moving average over
    ``window`` rows, default 10 or a fifth of the run): a ``moralgym train`` run's behaviour (cooperation and
    illegal rates) and rewards per decision, else every reward/regret/cooperation/illegal/loss column."""
    plt = _pyplot()
    x_key = next(
        (k for k in ("episode", "step", "global_step", "update", "iteration") if metrics and k in metrics[0]), None
    )
    keys = list(dict.fromkeys(k for row in metrics for k in row))
    numeric = [
        key
        for key in keys
        if key != x_key
        and all(
            isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
            for row in metrics
            if key in row
        )
    ]
    behaviour = [k for k in numeric if k.endswith(("env/cooperation_rate", "env/illegal_rate"))]
    rewards = [k for k in numeric if re.search(r"env/reward(_game|_deontological|_utilitarian)?$", k)]
    if behaviour:
        panels = [("behaviour", behaviour), ("reward per decision", rewards)] if rewards else [("behaviour", behaviour)]
    else:
        preferred = [k for k in numeric if re.search("reward|return|regret|cooperat|illegal|loss", k)] or numeric
        panels = [(key, [key]) for key in preferred[:6]]
    window = window or min(10, max(1, len(metrics) // 5))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), 3.4), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels, strict=False):
        for key in series:
            rows = [row for row in metrics if key in row]
            x = np.array([row.get(x_key, i) for i, row in enumerate(rows)], dtype=float)
            y = np.array([np.nan if row[key] is None else row[key] for row in rows], dtype=float)
            label = key.replace("env/", "").replace("_rate", "").replace("reward_", "").replace("_", " ")
            if key.endswith("env/reward"):
                label = "trained reward"
            (line,) = ax.plot(x, _moving_average(y, window), linewidth=1.8, label=label)
            if window > 1:
                ax.plot(x, y, color=line.get_color(), alpha=0.25, linewidth=0.8)
        if title == "behaviour":
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("share of decisions")
        ax.set_title(title + (f" (moving average over {window})" if window > 1 else ""), fontsize=10)
        ax.set_xlabel(x_key or "row")
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if len(series) > 1 or behaviour:
            ax.legend(fontsize=8, frameon=False)
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


def _save(fig: Any, path: str | Path, layout: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def html_table(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str] = REPORT_COLUMNS,
    labels: dict[str, str] | None = None,
    css_class: str = "",
) -> str:
    """An HTML table of ``columns`` (those present), numbers to 3 decimals with ``± ci95`` when available;
    ``labels`` renames column headers."""
    rows = list(rows)
    labels = labels or {}
    columns = [c for c in columns if any(c in row for row in rows)]
    head = "".join(f"<th>{html.escape(labels.get(c, c))}</th>" for c in columns)
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
                cells.append(f"<td class='num'>{html.escape(text)}</td>")
            else:
                cells.append(f"<td>{html.escape(format_value(value))}</td>")
        role = html.escape(str(row.get("role", "")))
        body.append(f"<tr class='{role}'>" + "".join(cells) + "</tr>")
    attribute = f" class='{html.escape(css_class)}'" if css_class else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def format_value(value: Any) -> str:
    """A setting's value as a person writes it: lists joined with commas, no Python reprs, ``-`` for nothing."""
    if value is None or value == "" or (isinstance(value, (list, tuple, dict)) and not value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    return str(value)


#: evaluation.json key -> settings-table label, in display order.
SETTING_LABELS = {
    "agent": "agent",
    "model": "model",
    "adapter": "adapter",
    "reference": "reference (same prompts)",
    "games": "games",
    "num_players": "players per N-player game",
    "opponents": "opponents",
    "variants": "prompt variants",
    "num_episodes": "episodes per game",
    "num_rounds": "rounds per episode",
    "seed": "evaluation seed",
    "penalty": "Deontological penalty",
    "illegal_reward": "illegal-answer reward",
    "initial_state": "round-one previous moves",
    "seconds": "evaluation time (s)",
}
PROMPT_LABELS = {
    "answer_prefix": "answer prefix",
    "phrasing": "phrasing",
    "eval_action_tokens": "action tokens",
    "max_new_tokens": "tokens sampled per answer",
}


def settings_rows(config: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, value)`` pairs of an evaluation's settings (``evaluation.json``) for a key/value table."""
    rows = [
        (label, format_value(config[key]))
        for key, label in SETTING_LABELS.items()
        if key in config
        and not (key == "variants" and config[key] == ["default"])  # a non-LLM agent's
        and not (key == "num_players" and config[key] is None)  # only two-player games
    ]
    prompt = config.get("prompt") or {}
    for key, label in PROMPT_LABELS.items():
        if key in prompt:
            value = prompt[key]
            rows.append((label, f"“{value}”" if key == "answer_prefix" and value else format_value(value)))
    for variant, protocol in (config.get("variant_protocols") or {}).items():
        own_games = list(protocol.get("games") or []) != list(config.get("games") or [])
        if not (own_games or protocol.get("max_new_tokens") or protocol.get("fresh_states")):
            continue  # run as the settings above say
        parts = [f"games {format_value(protocol.get('games'))}"]
        if protocol.get("max_new_tokens"):
            parts.append(f"{protocol['max_new_tokens']} tokens")
        if protocol.get("fresh_states"):
            parts.append("fresh state per query")
        rows.append((f"variant {variant}", ", ".join(parts)))
    shown = set(SETTING_LABELS) | {"prompt", "variant_protocols", "run", "source"}
    rows += [(key.replace("_", " "), format_value(value)) for key, value in config.items() if key not in shown]
    return rows


def key_value_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='settings'><tbody>{body}</tbody></table>"


def headline_rows(summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per agent (and reference) x opponent x variant: the headline metrics averaged over games."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in summary:
        key = (row.get("agent"), row.get("role", "agent"), row.get("opponent"), row.get("variant"))
        groups.setdefault(key, []).append(row)
    out = []
    for (agent, role, opponent, variant), rows in groups.items():
        entry: dict[str, Any] = {"agent": agent, "role": role, "opponent": opponent, "variant": variant}
        entry["games"] = len(rows)
        for metric in HEADLINE_METRICS:
            values = [float(r[metric]) for r in rows if isinstance(r.get(metric), (int, float))]
            if values:
                entry[metric] = float(np.mean(values))
        out.append(entry)
    return out


def figure_html(figure: Path, report_path: Path, caption: str = "", inline: bool = True) -> str:
    """An ``<figure>`` for a PNG: embedded (base64) or by its path relative to the report."""
    figure = Path(figure)
    if inline:
        source = "data:image/png;base64," + base64.b64encode(figure.read_bytes()).decode("ascii")
    else:
        source = html.escape(str(figure.relative_to(report_path.parent)))
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure><img alt='{html.escape(figure.stem)}' src='{source}'>{text}</figure>"


_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;max-width:1100px;margin:2em auto;
padding:0 1.5em;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.1em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
p.subtitle{color:#555;margin-top:.2em}
table{border-collapse:collapse;font-size:13px;margin:.6em 0}
th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:left}
thead th{background:#f4f6f8;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.headline{font-size:15px}table.headline td.num{min-width:6em}
tr.reference td{color:#666}table.settings th{font-weight:500;color:#555;width:14em;background:none}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#666;font-size:12px}
details summary{cursor:pointer;color:#2166ac}div.wide{overflow-x:auto}.note{color:#666;font-size:13px}
"""


def write_html_report(
    path: str | Path,
    title: str,
    sections: Sequence[tuple[str, str]],
    figures: Sequence[Path] = (),
    inline: bool = True,
    subtitle: str = "",
) -> Path:
    """One self-contained HTML file: a title, text/table ``sections`` ``(heading, html)``, then ``figures``.

    ``inline=True`` embeds PNGs as base64 (the file stands alone); otherwise images use paths relative to it.
    """
    path = Path(path)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f"<p class='subtitle'>{html.escape(subtitle)}</p>")
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{content}" if heading else content)
    if figures:
        parts.append("<h2>Figures</h2>")
    for figure in figures:
        parts.append(figure_html(Path(figure), path, Path(figure).name, inline))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _plural(count: Any, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def build_evaluation_report(
    out: str | Path,
    result: Any,
    tournament_result: Any = None,
    training_metrics: Sequence[dict[str, Any]] | None = None,
    title: str | None = None,
) -> Path:
    """``out/report.html`` for an :class:`~moralgym.evaluation.harness.EvaluationResult`, figures in
    ``out/figures`` (embedded too): a headline table (agent vs reference), regret and behaviour per game, the
    learning curve when ``training_metrics`` are given, action types, the tournament, the settings and every
    number."""
    out = Path(out)
    config = dict(result.config)
    summary = list(result.summary)
    agent = str(config.get("agent") or config.get("run") or "agent")
    reference = config.get("reference")
    figures_dir = out / "figures"
    for old in figures_dir.glob("*.png") if figures_dir.is_dir() else []:
        old.unlink()  # figures of an earlier report would otherwise be left behind
    opponents = format_value(config.get("opponents")) or "-"
    games = config.get("games") or list(dict.fromkeys(r["game"] for r in summary))
    episodes, rounds = config.get("num_episodes", "?"), config.get("num_rounds", "?")
    subtitle = " · ".join(
        part
        for part in (
            f"vs {opponents}",
            _plural(len(games), "game"),
            f"{_plural(episodes, 'episode')} × {_plural(rounds, 'round')}",
            f"seed {config.get('seed', '?')}",
            f"variant {format_value(config.get('variants'))}"
            if config.get("variants") not in (None, ["default"])
            else "",
            f"reference: {reference} (same prompts)" if reference else "",
        )
        if part
    )
    headline = headline_rows(summary)
    n_player = any(row.get("num_players") is not None for row in summary)
    columns = ["agent", "role", "opponent", "variant", *HEADLINE_METRICS]
    if len({r["opponent"] for r in headline}) == 1:
        columns.remove("opponent")
    if len({r["variant"] for r in headline}) == 1:
        columns.remove("variant")
    if not reference:
        columns.remove("role")
    sections = [
        (
            "",
            html_table(headline, columns, labels=METRIC_LABELS, css_class="headline")
            + f"<p class='note'>Means over {_plural(len(games), 'game')}; regrets: lower is better (De: 0 - Deontological "
            "reward, 0..6; Ut: shortfall from the best joint payoff, 0..1"
            + ("; Game, N-player games: shortfall from the best reply to the others' moves" if n_player else "")
            + ").</p>",
        )
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in summary:
        groups.setdefault((row["opponent"], row["variant"]), []).append(row)
    many = len(groups) > 1
    per_game, action_types = [], []
    for (opponent, variant), rows in groups.items():
        suffix = f"{slug(opponent)}_{slug(variant)}"
        where = f"vs {opponent}, variant {variant}" if many else ""
        metrics = ["regret_deontological", "regret_utilitarian", "cooperation_rate", "illegal_rate"]
        if any("regret_game" in row for row in rows):
            metrics.insert(2, "regret_game")
        per_game.append(
            figure_html(
                plot_per_game(rows, figures_dir / f"per_game_{suffix}.png", metrics=metrics, title=where),
                out / "report.html",
            )
        )
        caption = "own action | opponent's previous move (C|D: cooperated after the opponent defected)"
        if any(row.get("num_players") is not None for row in rows):
            caption += "; in N-player games own action | how many others cooperated (C|0: after all others defected)"
        action_types.append(
            figure_html(
                plot_action_types(rows, figures_dir / f"action_types_{suffix}.png", title=where or " "),
                out / "report.html",
                caption,
            )
        )
    sections.append(("Regret and behaviour per game", "".join(per_game)))
    if training_metrics:
        curve = plot_learning_curves(training_metrics, figures_dir / "learning_curves.png")
        sections.append(("Learning curve (training run)", figure_html(curve, out / "report.html")))
    sections.append(("Action types", "".join(action_types)))
    if tournament_result is not None:
        heat = [
            plot_heatmap(
                tournament_result.matrix("game_payoff"),
                tournament_result.agents,
                figures_dir / "tournament_game_payoff.png",
                title="mean game payoff per round (row agent), all games",
            ),
            plot_heatmap(
                tournament_result.matrix("cooperation_rate"),
                tournament_result.agents,
                figures_dir / "tournament_cooperation.png",
                title="cooperation rate (row agent)",
            ),
        ]
        table = html_table(
            tournament_result.table,
            columns=("agent", "opponent", "game", "cooperation_rate", "game_payoff"),
            labels=METRIC_LABELS,
        )
        sections.append(
            (
                "Tournament",
                "".join(figure_html(f, out / "report.html") for f in heat) + f"<details><summary>"
                f"table</summary>{table}</details>",
            )
        )
    sections.append(("Settings", key_value_table(settings_rows(config))))
    details = html_table(summary, labels=METRIC_LABELS)
    sections.append(
        (
            "All numbers",
            "<p class='note'>Mean ± 95% CI over episodes, per game; every column is in summary.csv / summary.jsonl, "
            f"every decision in decisions.jsonl.</p><div class='wide'>{details}</div>",
        )
    )
    return write_html_report(out / "report.html", title or f"{agent}: evaluation", sections, subtitle=subtitle)
