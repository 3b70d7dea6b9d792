"""``moralgym train``: YAML + CLI parsing, every shipped config, an end-to-end tiny run (train, evaluate, plot),
GRPO, and a two-process data-parallel run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("yaml")

from moralgym.agents.llm.testing import tiny_model_and_tokenizer  # noqa: E402
from moralgym.training.cli import main, parse_config, run  # noqa: E402
from moralgym.training.tracking import read_metrics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


pytestmark = pytest.mark.usefixtures("one_thread")


def write_config(path: Path, **values) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(values))
    return path


def test_yaml_then_command_line_overrides(tmp_path):
    config_file = write_config(tmp_path / "c.yaml", reward="utilitarian", num_envs=3, learning_rate=1e-4)
    config = parse_config(["--config", str(config_file), "--num_envs", "5", "--resume"])
    assert (config.reward, config.num_envs, config.learning_rate, config.resume) == ("utilitarian", 5, 1e-4, True)


def test_bad_value_is_reported_with_the_field(tmp_path, capsys):
    config_file = write_config(tmp_path / "c.yaml", reward="greedy")
    assert main(["--config", str(config_file)]) == 2
    assert "reward" in capsys.readouterr().err


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(REPO / "configs")) for p in CONFIGS])
def test_every_shipped_config_parses(path):
    config = parse_config(["--config", str(path)])
    assert config.output_dir.startswith("runs/")


def test_paper_configs_cover_the_experiments():
    names = {p.stem for p in (REPO / "configs" / "paper").glob("*.yaml")}
    for reward in ("game", "de", "ut", "game_de", "game_then_de", "game_then_ut"):
        for opponent in ("tft", "llm"):
            assert f"gemma2_{reward}_vs_{opponent}" in names
    paper = parse_config(["--config", str(REPO / "configs" / "paper" / "gemma2_de_vs_tft.yaml")])
    assert (paper.learning_rate, paper.ppo_epochs, paper.gradient_accumulation_steps, paper.lora_r) == (
        1.41e-5,
        4,
        4,
        64,
    )
    assert paper.load_in_4bit and paper.batch_size == 5


def test_end_to_end_run_trains_evaluates_and_plots(tmp_path, tiny_model_dir, tiny_training_overrides):
    config_file = write_config(
        tmp_path / "c.yaml",
        output_dir=str(tmp_path / "run"),
        model_name_or_path=str(tiny_model_dir),
        evaluate=True,
        eval_episodes=1,
        eval_rounds=2,
        eval_games=["ipd", "chicken"],
        log_csv=True,
        **tiny_training_overrides,
    )
    summary = run(parse_config(["--config", str(config_file)]))
    run_dir = tmp_path / "run"
    assert summary["finished"] and len(read_metrics(run_dir)) == 2
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    assert (run_dir / "learning_curve.png").stat().st_size > 0
    assert (run_dir / "metrics.csv").exists()
    evaluation = json.loads((run_dir / "summary.json").read_text())["evaluation"]
    for model in ("base", "fine_tuned"):
        assert 0.0 <= evaluation[model]["illegal_rate"] <= 1.0
        assert set(evaluation["per_game"][model]) == {"ipd", "chicken"}


def test_grpo_algorithm_runs(tmp_path, tiny_training_overrides):
    from moralgym.training.config import TrainingConfig

    model, tokenizer = tiny_model_and_tokenizer(seed=1)
    settings = {**tiny_training_overrides, "num_episodes": 2}
    config = TrainingConfig(output_dir=str(tmp_path), algorithm="grpo", num_generations=2, plot=False, **settings)
    summary = run(config, model, tokenizer)
    records = read_metrics(tmp_path)
    assert len(records) == 2 and "env/illegal_rate" in records[0] and "grpo/loss" in records[0]
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert summary["algorithm"] == "grpo"


def test_two_processes_stay_in_sync(tmp_path, tiny_model_dir, tiny_training_overrides):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not found next to the interpreter")
    config_file = write_config(
        tmp_path / "c.yaml",
        output_dir=str(tmp_path / "run"),
        model_name_or_path=str(tiny_model_dir),
        plot=False,
        **tiny_training_overrides,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "-m", "moralgym.training.cli", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["processes"] == 2  # and check_in_sync() found identical adapters on both ranks
    records = read_metrics(tmp_path / "run")
    counts = sum(v for k, v in records[0].items() if "/count_" in k)
    assert counts == 2 * 2 * 3  # decisions of both processes (2 envs x 3 rounds each)
