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
    assert "per_game_random_default.png" in names
    assert all(_is_png(f) for f in figures)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures)
    assert "De regret (0..6)" in html


def test_report_is_a_page_to_look_at_not_a_dump(tmp_path):
    """Headline (agent vs reference on cooperation, illegal rate, both regrets), regret per game, the learning
    curve, and the settings as a clean key/value table: no Python reprs anywhere."""
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(
        "\n".join(
            json.dumps({"episode": i, "env/cooperation_rate": i / 20, "env/illegal_rate": 0.1, "env/reward": -i})
            for i in range(20)
        )
    )
    out = tmp_path / "run"
    argv = ["tit_for_tat", "--reference", "always_defect", "--out", str(out), "--games", "ipd", "chicken"]
    assert main_evaluate([*argv, "--episodes", "2", "--rounds", "2", "--training-metrics", str(metrics)]) == 0
    html = (out / "report.html").read_text()
    title = html.split("<h1>", 1)[1].split("</h1>", 1)[0]
    assert "tit_for_tat" in title
    headline = html.split("<table class='headline'>", 1)[1].split("</table>", 1)[0]
    for label in ("cooperation", "illegal answers", "De regret (0..6)", "Ut regret (0..1)"):
        assert f"<th>{label}</th>" in headline
    assert "tit_for_tat" in headline and "always_defect" in headline and "reference" in headline
    assert "Regret and behaviour per game" in html and "Learning curve" in html
    assert _is_png(out / "figures" / "per_game_random_default.png")
    settings = html.split("<h2>Settings</h2>", 1)[1].split("</table>", 1)[0]
    assert "<th>opponents</th><td>random</td>" in settings
    assert "<th>games</th><td>ipd, chicken</td>" in settings
    for dump in ("(&#x27;", "[&#x27;", "(&#39;", "[&#39;", "{&#x27;", "None"):
        assert dump not in html.split("<h2>All numbers</h2>", 1)[0], dump


def test_compare_puts_runs_side_by_side(tmp_path):
    for name in ("allc", "alld"):
        main_evaluate([name, "--out", str(tmp_path / name), "--episodes", "2", "--rounds", "2", "--no-report"])
    out = tmp_path / "cmp"
    assert main_compare([str(tmp_path / "allc"), str(tmp_path / "alld"), "--out", str(out)]) == 0
    rows = read_jsonl(out / "comparison.jsonl")
    assert {row["label"] for row in rows} == {"allc", "alld"} and len(rows) == 10
    assert _is_png(out / "comparison.png")
    assert "data:image/png;base64," in (out / "report.html").read_text()
