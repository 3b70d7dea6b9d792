"""The reproduction study's plumbing on a tiny random model: every experiment, one short run each, resumable."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("peft")

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("study", ROOT / "experiments" / "study.py")
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)

TINY = {
    "num_episodes": 2,  # "Game, then moral" runs switch after episode 1
    "num_envs": 1,
    "save_every": 1,
    "eval_episodes": 1,
    "eval_rounds": 2,
    "eval_games": ["ipd", "chicken"],
    "plot": False,
    "progress_bar": False,
    "lora_r": 2,
    "lora_target_modules": ["q_proj", "v_proj"],
}


def tiny_factory():
    from moralgym.agents.llm.testing import tiny_model_and_tokenizer

    return tiny_model_and_tokenizer(seed=0)


def test_every_paper_experiment_has_a_config():
    names = study.experiment_names()
    rewards = ("game", "de", "ut", "game_de", "game_then_de", "game_then_ut")
    for reward in rewards:
        assert f"{reward}_vs_tft" in names and f"{reward}_vs_llm" in names
    assert {"game_vs_random", "de_vs_random", "ut_vs_random", "game_de_vs_random"} <= set(names)
    paper = study.experiment_config("de_vs_tft", "paper", 1, Path("runs"))
    assert (paper.model_name_or_path, paper.load_in_4bit, paper.num_episodes) == ("google/gemma-2-2b-it", True, 1000)
    cpu = study.experiment_config("game_then_ut_vs_llm", "cpu", 2, Path("runs"))
    assert cpu.model_name_or_path == "default" and cpu.switch_episode == cpu.num_episodes // 2 and cpu.num_rounds == 3
    with pytest.raises(KeyError, match="unknown experiment 'kant_vs_tft'.*de_vs_tft"):
        study.experiment_config("kant_vs_tft", "cpu", 1, Path("runs"))


def test_whole_study_plumbing_on_a_tiny_model(tmp_path):
    result = study.run_study(
        "cpu", seeds=[1], out=tmp_path, overrides=TINY, variants=("action12", "swapped"), model_factory=tiny_factory
    )
    names = study.experiment_names()
    assert set(result["experiments"]) == set(names)
    for name, row in result["experiments"].items():
        assert row["seeds"] == [1]
        assert 0.0 <= row["fine_tuned"]["cooperation_rate"]["mean"] <= 1.0
        assert set(row["variants"]) == {"action12", "swapped"}
        assert ("game_phase" in row) == name.startswith("game_then")
        # Seconds are rounded to 0.1 s, so a tiny run's training may read 0.0; the whole experiment includes it.
        assert row["study_seconds"]["mean"] >= row["train_seconds"]["mean"] >= 0 and row["peak_memory_mib"]["mean"] > 0
    assert "| de_vs_tft | 1 |" in (tmp_path / "cpu" / "study.md").read_text()
    assert (tmp_path / "cpu" / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the study's figure
    assert "| base model | " in (tmp_path / "cpu" / "study.md").read_text()  # the per-game table
    curve = study._training_cooperation(tmp_path / "cpu" / "de_vs_llm" / "seed1")  # player_0's, LLM vs LLM
    assert len(curve) == TINY["num_episodes"] and all(0.0 <= c <= 1.0 for c in curve)
    per_game = study._per_game(tmp_path / "cpu" / "de_vs_tft" / "seed1")
    assert set(per_game) == {(model, game) for model in ("base", "fine_tuned") for game in TINY["eval_games"]}
    assert all(0.0 <= row["cooperation_rate"] <= 1.0 for row in per_game.values())

    # A finished study is skipped, not redone: the summaries stay byte-identical.
    before = {p: p.read_text() for p in tmp_path.glob("cpu/*/seed1/summary.json")}
    study.run_study(
        "cpu", seeds=[1], out=tmp_path, overrides=TINY, variants=("action12", "swapped"), model_factory=tiny_factory
    )
    assert {p: p.read_text() for p in tmp_path.glob("cpu/*/seed1/summary.json")} == before

    # Asking a finished run for one more variant evaluates only that one, on the saved adapter; nothing retrains.
    run_dir = tmp_path / "cpu" / "de_vs_tft" / "seed1"
    metrics_before = (run_dir / "metrics.jsonl").read_text()
    more = study.run_study(
        "cpu",
        seeds=[1],
        experiments=["de_vs_tft"],
        out=tmp_path,
        overrides=TINY,
        variants=("action12", "swapped", "unstructured"),
        model_factory=tiny_factory,
    )
    row = more["experiments"]["de_vs_tft"]
    assert set(row["variants"]) == {"action12", "swapped", "unstructured"}
    assert row["variants"]["action12"] == result["experiments"]["de_vs_tft"]["variants"]["action12"]  # kept as is
    assert (run_dir / "metrics.jsonl").read_text() == metrics_before
    assert len(list(run_dir.glob("evaluation_variants*"))) == 2  # the earlier variants' files are kept
    assert json.loads((tmp_path / "cpu" / "study.json").read_text())["scale"] == "cpu"
