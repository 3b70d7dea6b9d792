"""Reports render: tables, PNG figures and an HTML report that embeds them; compare puts runs side by side."""

import csv
import json

from moralgym.evaluation import main_compare, main_evaluate
from moralgym.evaluation.io import read_jsonl

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_evaluate_writes_tables_figures_and_report(tmp_path):
    metrics = tmp_path / "train.jsonl"
    metrics.write_text(
        "\n".join(json.dumps({"episode": i, "reward": i / 10, "cooperation_rate": 0.5}) for i in range(30))
    )
    out = tmp_path / "run"
    assert (
        main_evaluate(
            [
                "tit_for_tat",
                "--out",
                str(out),
                "--episodes",
                "3",
                "--rounds",
                "3",
                "--tournament",
                "--tournament-agents",
                "always_defect",
                "random",
                "--training-metrics",
                str(metrics),
            ]
        )
        == 0
    )
    decisions = read_jsonl(out / "decisions.jsonl")
    assert len(decisions) == 5 * 3 * 3
    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and "regret_utilitarian_ci95" in rows[0]
    assert (out / "tournament.csv").exists()
    figures = sorted((out / "figures").glob("*.png"))
    names = {f.name for f in figures}
    assert {"action_types_random_default.png", "learning_curves.png", "tournament_game_payoff.png"} <= names
    assert all(_is_png(f) for f in figures)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures)
    assert "regret_deontological" in html


def test_compare_puts_runs_side_by_side(tmp_path):
    for name in ("allc", "alld"):
        main_evaluate([name, "--out", str(tmp_path / name), "--episodes", "2", "--rounds", "2", "--no-report"])
    out = tmp_path / "cmp"
    assert main_compare([str(tmp_path / "allc"), str(tmp_path / "alld"), "--out", str(out)]) == 0
    rows = read_jsonl(out / "comparison.jsonl")
    assert {row["label"] for row in rows} == {"allc", "alld"} and len(rows) == 10
    assert _is_png(out / "comparison.png")
    assert "data:image/png;base64," in (out / "report.html").read_text()
