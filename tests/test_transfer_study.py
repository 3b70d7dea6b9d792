"""The transfer study's plumbing on a tiny random model: every config runs two episodes, is evaluated on all ten
games and the prompt variants, and the summary answers both questions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("peft")

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("transfer_study", ROOT / "experiments" / "transfer_study.py")
transfer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(transfer)

TINY = {
    "num_episodes": 2,
    "num_envs": 2,
    "num_rounds": 2,
    "save_every": 1,
    "eval_episodes": 1,
    "eval_rounds": 2,
    "plot": False,
    "progress_bar": False,
    "lora_r": 2,
    "lora_target_modules": ["q_proj", "v_proj"],
    "gradient_checkpointing": False,
}


def tiny_factory():
    from moralgym.agents.llm.testing import tiny_model_and_tokenizer

    return tiny_model_and_tokenizer(seed=0)


def test_every_config_is_the_paper_setting_at_paper_scale_and_the_quick_start_at_cpu_scale():
    names = transfer.experiment_names()
    assert names == ["ipd_de", "ipd_game", "ipd_ut", "pgg_de", "pgg_game", "pgg_ut"]
    for name in names:
        paper = transfer.experiment_config(name, "paper", 1, Path("runs"))
        assert (paper.model_name_or_path, paper.load_in_4bit, paper.num_episodes) == (
            "google/gemma-2-2b-it",
            True,
            1000,
        )
        cpu = transfer.experiment_config(name, "cpu", 2, Path("runs"))
        assert (cpu.model_name_or_path, cpu.num_envs, cpu.seed, cpu.evaluate) == ("default", 32, 2, False)
        assert cpu.output_dir == str(Path("runs") / "cpu" / name / "seed2")
    pgg = transfer.experiment_config("pgg_ut", "cpu", 1, Path("runs"))
    assert (pgg.game, pgg.num_players, pgg.opponent, pgg.reward) == (
        "public_goods",
        4,
        "conditional_cooperator",
        "utilitarian",
    )
    ipd = transfer.experiment_config("ipd_de", "cpu", 1, Path("runs"))
    assert (ipd.game, ipd.opponent, ipd.reward) == ("ipd", "tit_for_tat", "deontological")
    with pytest.raises(KeyError, match="unknown experiment 'kant_pgg'.*ipd_de"):
        transfer.experiment_config("kant_pgg", "cpu", 1, Path("runs"))


def test_whole_transfer_study_on_a_tiny_model(tmp_path):
    study = transfer.run_study(
        "cpu", seeds=[1, 2], out=tmp_path, overrides=TINY, variants=("action12",), model_factory=tiny_factory
    )
    games = {*transfer.TWO_PLAYER_GAMES, *transfer.N_PLAYER_GAMES}
    assert set(study["experiments"]) == set(transfer.experiment_names())
    assert set(study["base"]) == games
    for row in study["experiments"].values():
        assert row["seeds"] == 2 and set(row["per_game"]) == games
        assert all(0.0 <= row["per_game"][g]["cooperation_rate"]["mean"] <= 1.0 for g in games)
        assert set(row["variants"]) == {"action12"}
    # N-player runs trained a 4-player game; the IPD runs a 2x2 one
    pgg_metrics = (tmp_path / "cpu" / "pgg_de" / "seed1" / "metrics.jsonl").read_text().splitlines()
    assert len(pgg_metrics) == TINY["num_episodes"]
    verdicts = study["verdicts"]
    assert len(verdicts) == 2 * len(transfer.REWARDS)
    assert all(
        v["answer"] in ("ipd", "pgg", "pgg in ipd", "ipd in public_goods", "no clear difference") for v in verdicts
    )
    text = (tmp_path / "cpu" / "transfer.md").read_text()
    assert "| pgg_ut | 2 |" in text and "| base model |" in text and "Verdicts" in text
    assert (tmp_path / "cpu" / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A finished study is read back, not redone.
    before = {p: p.read_text() for p in tmp_path.glob("cpu/*/seed*/summary.json")}
    again = transfer.run_study(
        "cpu", seeds=[1, 2], out=tmp_path, overrides=TINY, variants=("action12",), model_factory=tiny_factory
    )
    assert {p: p.read_text() for p in tmp_path.glob("cpu/*/seed*/summary.json")} == before
    assert json.loads((tmp_path / "cpu" / "transfer.json").read_text())["verdicts"] == again["verdicts"]


def test_verdicts_follow_the_numbers():
    def cell(mean, sd=0.1):
        return {"mean": mean, "sd": sd, "n": 3}

    def row(unseen_de, coop_ipd, coop_pgg):
        return {
            "unseen_mean": {"regret_deontological": cell(unseen_de), "regret_utilitarian": cell(0.5)},
            "per_game": {
                "ipd": {"cooperation_rate": cell(coop_ipd)},
                "public_goods": {"cooperation_rate": cell(coop_pgg)},
            },
        }

    experiments = {"ipd_de": row(2.0, 0.9, 0.3), "pgg_de": row(1.0, 0.8, 0.9)}
    regret, cooperation = transfer.verdicts(experiments, None)
    assert regret["answer"] == "pgg" and regret["difference"] == pytest.approx(1.0)
    assert cooperation["answer"] == "pgg in ipd"  # 0.8 in the IPD vs the IPD-trained 0.3 in public goods
    experiments = {"ipd_de": row(1.0, 0.9, 0.3), "pgg_de": row(1.05, 0.35, 0.9)}
    regret, cooperation = transfer.verdicts(experiments, None)
    assert regret["answer"] == "no clear difference" and cooperation["answer"] == "no clear difference"


def test_the_transfer_study_on_ray_has_the_sequential_numbers(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    import functools

    from moralgym.agents.llm.testing import tiny_model_and_tokenizer
    from moralgym.training.ray_runs import RayOptions

    factory = functools.partial(tiny_model_and_tokenizer, seed=0)  # picklable by reference: Ray sends it to workers
    common = dict(
        seeds=[1],
        experiments=["ipd_de", "pgg_de"],
        overrides={**TINY, "torch_num_threads": 1},  # bit-identity needs equal thread counts
        variants=("action12",),
        model_factory=factory,
    )
    sequential = transfer.run_study("cpu", out=tmp_path / "sequential", **common)
    from moralgym.training import ray_runs

    submitted = []
    real = ray_runs.run_on_ray
    monkeypatch.setattr(ray_runs, "run_on_ray", lambda specs, *a, **k: submitted.extend(specs) or real(specs, *a, **k))
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        on_ray = transfer.run_study(
            "cpu", out=tmp_path / "ray", ray=RayOptions(cpus_per_run=1, memory_per_run_gib=0.5), **common
        )
    finally:
        ray.shutdown()
    for name in ("ipd_de", "pgg_de"):
        assert on_ray["experiments"][name]["per_game"] == sequential["experiments"][name]["per_game"]
        assert on_ray["experiments"][name]["variants"] == sequential["experiments"][name]["variants"]
        adapters = [
            (tmp_path / where / "cpu" / name / "seed1" / "adapter" / "adapter_model.safetensors").read_bytes()
            for where in ("sequential", "ray")
        ]
        assert adapters[0] == adapters[1]
    assert on_ray["verdicts"] == sequential["verdicts"]
    assert sorted(spec.label for spec in submitted if not spec.finished) == ["ipd_de seed 1", "pgg_de seed 1"]
