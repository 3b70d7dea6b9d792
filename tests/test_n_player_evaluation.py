"""The evaluation harness, metrics, reports and CLI on N-player games, checked against values worked by hand.

The games: the 3-player linear public goods game with endowment 1 and multiplier 1.6, where a cooperator with k
cooperating others earns C[k] = 1.6 (k + 1) / 3 and a defector D[k] = 1 + 1.6 k / 3:

    k        0       1       2
    C[k]   0.5333  1.0667  1.6
    D[k]   1       1.5333  2.0667      best collective payoff: all three contribute, 3 x 1.6 = 4.8

and the 4-player Volunteer's Dilemma with benefit 3 and cost 1: C[k] = 2, D[k] = 3 if k >= 1 else 0; the best
collective payoff is one volunteer, 2 + 3 x 3 = 11. Regrets, with the illegal reward -6:

    Deontological = 0 - R_De = 3 k' / (N - 1) after a defection (k' others cooperated last round), 6 if illegal
    Utilitarian   = (U_max - R_Ut) / (U_max + 6), R_Ut the collective payoff (-6 if illegal)
    Game          = max(C[k], D[k]) - R_Game, k the others cooperating this round (R_Game = -6 if illegal)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from moralgym.agents.seats import NPlayerStrategySeat, SeatStep, StrategySeat
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL
from moralgym.envs.n_player import from_matrix_game, get_n_player_game
from moralgym.evaluation import EvaluationConfig, evaluate, play_match, tournament
from moralgym.evaluation.metrics import action_type_colour, game_regret

C3 = [1.6 / 3, 3.2 / 3, 1.6]
D3 = [1.0, 1 + 1.6 / 3, 1 + 3.2 / 3]


class Script:
    """An agent that plays ``moves[round]`` in every game of an episode."""

    def __init__(self, moves: list[int], name: str = "script") -> None:
        self.moves, self.name, self.round = moves, name, 0

    def reset(self, n: int, seed: int | None = None) -> None:
        self.round = 0

    def act(self, games, observations, seat):
        move = self.moves[self.round % len(self.moves)]
        self.round += 1
        return SeatStep(np.full(len(observations), move))


def test_public_goods_rows_and_summary_match_hand_computed_values():
    # Co-players: Always Cooperate (shown C before round one) and Always Defect (shown D); the agent plays D, C,
    # then an illegal answer (the others then see, and are paid against, its last legal move C).
    agent = Script([DEFECT, COOPERATE, ILLEGAL])
    co_players = [NPlayerStrategySeat("always_cooperate"), NPlayerStrategySeat("always_defect")]
    rows = play_match(agent, co_players, "public_goods", num_players=3, num_episodes=2, num_rounds=3)
    assert len(rows) == 6 and {r["opponent"] for r in rows} == {"always_cooperate+always_defect"}
    first = [r for r in rows if r["episode"] == 0]
    expected = [
        # action type, outcome, own payoff, collective payoff, De, Ut, Game regret
        ("D|1", "cooperators_1", D3[1], D3[1] + C3[0] + D3[1], 1.5, (4.8 - 3.6) / 10.8, 0.0),
        ("C|1", "cooperators_2", C3[1], C3[1] + C3[1] + D3[2], 0.0, (4.8 - 4.2) / 10.8, D3[1] - C3[1]),
        ("illegal|1", "illegal", 0.0, 0.0 + C3[1] + D3[2], 6.0, 1.0, D3[1] + 6.0),
    ]
    for row, (kind, outcome, payoff, total, de, ut, game) in zip(first, expected, strict=True):
        assert (row["action_type"], row["outcome"], row["num_players"]) == (kind, outcome, 3)
        assert (row["others_previous_cooperated"], row["others_cooperated"]) == (1, 1)
        assert row["game_payoff"] == pytest.approx(payoff) and row["total_payoff"] == pytest.approx(total)
        assert row["regret_deontological"] == pytest.approx(de)
        assert row["regret_utilitarian"] == pytest.approx(ut)
        assert row["regret_game"] == pytest.approx(game)
    assert first[2]["reward_utilitarian"] == -6.0 and first[2]["illegal"]
    assert first[1]["payoffs"] == pytest.approx([C3[1], C3[1], D3[2]])
    summary = evaluate(
        agent, games=("public_goods",), num_players=3, opponents=(co_players,), num_episodes=2, num_rounds=3
    ).summary
    (row,) = summary
    assert (row["num_players"], row["num_decisions"], row["num_episodes"]) == (3, 6, 2)
    assert row["cooperation_rate"] == pytest.approx(1 / 3) and row["illegal_rate"] == pytest.approx(1 / 3)
    assert row["others_cooperation_rate"] == pytest.approx(0.5)
    assert row["regret_deontological"] == pytest.approx(7.5 / 3)
    assert row["regret_utilitarian"] == pytest.approx((1.2 / 10.8 + 0.6 / 10.8 + 1.0) / 3)
    assert row["regret_game"] == pytest.approx(8.0 / 3)  # (0 + 0.4667 + 7.5333) / 3
    assert row["regret_game_ci95"] == 0.0  # both episodes are the same
    assert [row[f"share_{t}"] for t in ("C|1", "D|1", "illegal|1", "C|2")] == pytest.approx([1 / 3] * 3 + [0.0])
    assert row["share_cooperators_2"] == pytest.approx(1 / 3) and row["share_illegal"] == pytest.approx(1 / 3)


def test_volunteers_dilemma_regrets_by_hand():
    agent = Script([DEFECT, COOPERATE])
    result = evaluate(
        agent,
        games=("volunteers_dilemma",),
        num_players=4,
        opponents=("always_defect", "always_cooperate"),
        num_episodes=2,
        num_rounds=2,
    )
    by_opponent = {row["opponent"]: row for row in result.summary}
    # vs three defectors: D earns 0 (nobody volunteers: collective 0), C earns 2 (collective 2 + 3 x 3 = 11).
    alone = by_opponent["always_defect"]
    assert alone["regret_utilitarian"] == pytest.approx((11 / 17 + 0.0) / 2)
    assert alone["regret_game"] == pytest.approx((2.0 + 0.0) / 2)  # best reply to nobody volunteering: volunteer
    assert alone["regret_deontological"] == 0.0  # nobody cooperated last round
    assert alone["total_payoff"] == pytest.approx(11 / 2) and alone["others_cooperation_rate"] == 0.0
    # vs three volunteers: D earns 3 (collective 3 + 3 x 2 = 9, De -3 x 3/3), C earns 2 (collective 8).
    crowd = by_opponent["always_cooperate"]
    assert crowd["regret_utilitarian"] == pytest.approx((2 / 17 + 3 / 17) / 2)
    assert crowd["regret_game"] == pytest.approx((0.0 + 1.0) / 2)
    assert crowd["regret_deontological"] == pytest.approx(3.0 / 2)
    rows = [r for r in result.decisions if r["opponent"] == "always_cooperate" and r["episode"] == 0]
    assert [r["action_type"] for r in rows] == ["D|3", "C|3"]
    assert [r["outcome"] for r in rows] == ["cooperators_3", "cooperators_4"]


def test_game_regret_and_colours_by_hand():
    game = get_n_player_game("public_goods", 3)
    regrets = game_regret(np.array([C3[0], D3[0], C3[2], -6.0]), np.array([0, 0, 2, 1]), game)
    assert regrets == pytest.approx([1.0 - C3[0], 0.0, D3[2] - 1.6, D3[1] + 6.0])
    assert action_type_colour("C|2", 3) == "#1b7837" and action_type_colour("C|0", 3) == "#7fbf7b"  # C|C, C|D
    # Halfway from D|C #b2182b to D|D #ef8a62, channel by channel, halves rounded to even: (178 + 239) / 2 -> 208.
    assert action_type_colour("D|1", 3) == "#d05146"
    with pytest.raises(ValueError, match="needs num_players >= 2"):
        action_type_colour("C|1")


def test_random_co_players_by_default_with_one_seed_for_every_agent():
    config = EvaluationConfig(games=("pgg",), num_players=4, num_episodes=4, num_rounds=3)
    assert config.games == ("public_goods",) and config.opponents == ("random",)
    results = [evaluate(NPlayerStrategySeat(name), config) for name in ("always_cooperate", "always_defect")]
    seen = [[(r["episode"], r["round"], r["others_cooperated"]) for r in result.decisions] for result in results]
    assert seen[0] == seen[1]  # the same Random co-player moves for every agent
    counts = {k for _, _, k in seen[0]}
    assert len(counts) > 2  # three independent co-player streams, not one copied into every seat
    assert {r["opponent"] for r in results[0].decisions} == {"random"}
    assert [r["cooperated"] for r in results[0].decisions] == [True] * 12
    again = evaluate(NPlayerStrategySeat("always_cooperate"), config)
    assert again.decisions == results[0].decisions


def test_a_two_player_strategy_plays_its_n_player_namesake():
    result = evaluate("tit_for_tat", games=("public_goods", "ipd"), num_players=3, num_episodes=4, num_rounds=3)
    rows = [r for r in result.decisions if r["game"] == "public_goods"]
    assert {r["agent"] for r in result.decisions} == {"tit_for_tat"}
    # Tit-for-Tat in a group is the conditional cooperator: C iff both others cooperated last round.
    assert all(r["cooperated"] == (r["others_previous_cooperated"] == 2) for r in rows)
    assert {r["game"] for r in result.summary} == {"public_goods", "ipd"}
    assert [r.get("num_players") for r in result.summary] == [3, None]
    with pytest.raises(ValueError, match="no N-player namesake"):
        evaluate("generous_tit_for_tat", games=("public_goods",), num_episodes=1, num_rounds=1)
    with pytest.raises(ValueError, match="N-player strategy and cannot play the two-player game 'ipd'"):
        evaluate("conditional_cooperator", games=("ipd",), num_episodes=1, num_rounds=1)


def test_at_two_players_the_n_player_metrics_are_the_two_player_ones():
    ipd = from_matrix_game("ipd")
    kwargs = {"num_episodes": 6, "num_rounds": 4, "seed": 3}
    two = play_match(StrategySeat("tit_for_tat"), StrategySeat("random"), "ipd", **kwargs)
    many = play_match(StrategySeat("tit_for_tat"), StrategySeat("random"), ipd, **kwargs)
    for a, b in zip(two, many, strict=True):
        assert (a["action"], a["game_payoff"]) == (b["action"], b["game_payoff"])
        assert a["regret_deontological"] == b["regret_deontological"]
        assert a["regret_utilitarian"] == pytest.approx(b["regret_utilitarian"])
        rename = {"C|C": "C|1", "C|D": "C|0", "D|C": "D|1", "D|D": "D|0"}
        assert rename[a["action_type"]] == b["action_type"]


def test_n_player_tournament_by_hand():
    result = tournament(["always_cooperate", "always_defect"], games=("public_goods",), num_players=3, num_rounds=2)
    # The column agent fills both other seats: C with 2 / 0 cooperating others, D with 2 / 0.
    assert result.matrix("game_payoff") == pytest.approx(np.array([[C3[2], C3[0]], [D3[2], D3[0]]]))
    assert result.matrix("regret_game") == pytest.approx(np.array([[D3[2] - C3[2], D3[0] - C3[0]], [0.0, 0.0]]))


def test_every_co_player_seat_holds_its_own_copy():
    # A seat keeps the state of the games it plays (here a round counter): the same object listed for two seats
    # is copied, so both co-players play C, D, ... in step rather than taking turns on one script.
    script = Script([COOPERATE, DEFECT], name="script")
    rows = play_match(
        Script([COOPERATE]), [script, script], "public_goods", num_players=3, num_episodes=1, num_rounds=2
    )
    assert [r["others_cooperated"] for r in rows] == [2, 0] and rows[0]["opponent"] == "script"
    rows = play_match(Script([COOPERATE]), script, "public_goods", num_players=3, num_episodes=1, num_rounds=2)
    assert [r["others_cooperated"] for r in rows] == [2, 0]


def test_an_llm_agent_decides_an_n_player_game_with_its_policy():
    from moralgym.evaluation.llm_agent import LLMAgent

    asked = []

    class Policy:
        def decide(self, games, observations, seats=None):
            asked.append((games[0], np.asarray(observations).shape))
            return [type("Decision", (), {"action": COOPERATE, "text": "action3"})() for _ in games]

    rows = play_match(
        LLMAgent(Policy(), name="llm"), NPlayerStrategySeat("random"), "public_goods", num_players=3, num_episodes=2
    )
    assert len(rows) == 2 * 5 and {row["action"] for row in rows} == {COOPERATE} and rows[0]["num_players"] == 3
    assert len(asked) == 5 and asked[0][0].num_players == 3 and asked[0][1] == (2, 2)


def test_config_errors_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match="num_players=4 sets the size of N-player games.*add an N-player game"):
        EvaluationConfig(num_players=4)
    with pytest.raises(ValueError, match="num_players must be an integer >= 2"):
        EvaluationConfig(games=("public_goods",), num_players=1)
    with pytest.raises(KeyError, match="known two-player games: ipd.*N-player games: public_goods"):
        EvaluationConfig(games=("tennis",))
    with pytest.raises(ValueError, match="got 1 co-players for the 2 other seats"):
        play_match(Script([0]), [NPlayerStrategySeat("random")], "public_goods", num_players=3, num_episodes=1)
    assert EvaluationConfig(games=("public_goods",)).games == ("public_goods",)


def test_report_and_written_tables_of_an_n_player_evaluation(tmp_path):
    pytest.importorskip("matplotlib")
    from moralgym.evaluation.report import build_evaluation_report

    result = evaluate("grim_trigger", games=("public_goods", "ipd"), num_players=4, num_episodes=2, num_rounds=2)
    result.write(tmp_path)
    report = build_evaluation_report(tmp_path, result).read_text()
    assert "Game regret" in report and "players per N-player game" in report
    rows = [json.loads(line) for line in (tmp_path / "summary.jsonl").read_text().splitlines()]
    assert {row["game"]: row.get("num_players") for row in rows} == {"public_goods": 4, "ipd": None}
    assert (tmp_path / "figures" / "action_types_random_default.png").is_file()


def test_cli_evaluates_an_n_player_game(tmp_path, capsys):
    pytest.importorskip("transformers")
    from moralgym.evaluation.cli import main_evaluate

    out = tmp_path / "eval"
    code = main_evaluate(
        ["tit_for_tat", "--games", "public_goods", "--num_players", "3", "--episodes", "2", "--rounds", "2"]
        + ["--no-report", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    meta = json.loads((out / "evaluation.json").read_text())
    assert (meta["games"], meta["num_players"]) == (["public_goods"], 3)
    (row,) = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert row["num_players"] == 3 and "regret_game" in row
    capsys.readouterr()
    assert main_evaluate(["tit_for_tat", "--num-players", "3", "--out", str(out), "--overwrite"]) == 2
    assert "sets the size of N-player games" in capsys.readouterr().err
    args = ["--games", "public_goods", "--out", str(tmp_path / "x"), "--no-report"]
    assert main_evaluate(["generous_tit_for_tat", *args]) == 2
    assert "no N-player namesake" in capsys.readouterr().err
    assert main_evaluate(["tit_for_tat", "--opponents", "alternator", *args]) == 2
    assert "unknown opponent strategy 'alternator'; known: always_cooperate" in capsys.readouterr().err
    assert main_evaluate(["tit_for_tat", "--opponents", "conditional_cooperator", *args]) == 0
    capsys.readouterr()
    assert main_evaluate(["default", "--phrasing", "ipd_like", *args]) == 2  # refused before any model loads
    assert "the phrasing 'ipd_like' has no N-player wording" in capsys.readouterr().err


DOCS = Path(__file__).resolve().parents[1] / "docs"


def section_examples(doc: str, heading: str) -> list[str]:
    """The ```python blocks of the section of ``doc`` under ``heading``, up to the next heading of its level or
    above (a ``#`` line inside a code block is a comment, not a heading)."""
    level = len(heading.split(" ")[0])
    lines = (DOCS / doc).read_text().splitlines()
    start = lines.index(heading) + 1
    blocks, block, fence = [], None, None
    for line in lines[start:]:
        if line.startswith("```"):
            fence = None if fence else line[3:]
            if fence == "python":
                block = []
            elif block is not None:
                blocks.append("\n".join(block) + "\n")
                block = None
        elif block is not None:
            block.append(line)
        elif not fence and re.match(rf"#{{1,{level}}} ", line):
            break
    return blocks


@pytest.mark.parametrize(
    ("doc", "heading", "count"),
    [
        ("architecture.md", "### N-player games", 1),
        ("evaluation.md", "## N-player games", 1),
        ("baselines.md", "## N-player games", 2),
    ],
)
def test_the_n_player_doc_examples_run(doc, heading, count):
    blocks = section_examples(doc, heading)
    assert len(blocks) == count
    for index, block in enumerate(blocks):
        if "stable_baselines3" in block:
            pytest.importorskip("stable_baselines3")
        exec(compile(block, f"docs/{doc}[{heading}, python block {index}]", "exec"), {"__name__": "__docs__"})
