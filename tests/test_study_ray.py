"""The study and ``moralgym train`` run lists as Ray tasks, on a local 2-CPU Ray cluster: the same numbers as the
sequential runner, finished runs skipped, a failed run retried, one that keeps failing reported (docs/scale_out.md)."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("peft")
pytest.importorskip("trl")

from moralgym.agents.llm.testing import tiny_model_and_tokenizer  # noqa: E402
from moralgym.training import ray_runs  # noqa: E402
from moralgym.training.cli import main as train_main  # noqa: E402
from moralgym.training.config import TrainingConfig  # noqa: E402
from moralgym.training.ray_runs import RayOptions, RunSpec, run_on_ray  # noqa: E402
from moralgym.training.tracking import read_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("study_on_ray", ROOT / "experiments" / "study.py")
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)

#: test_study.py's tiny study on one torch thread: bit-identity holds at equal thread counts (docs/training.md), and
#: a Ray run uses torch_num_threads CPUs (and threads).
TINY = {
    "num_episodes": 2,  # the "Game, then moral" run switches after episode 1
    "num_envs": 1,
    "save_every": 1,
    "eval_episodes": 1,
    "eval_rounds": 2,
    "eval_games": ["ipd", "chicken"],
    "plot": False,
    "progress_bar": False,
    "lora_r": 2,
    "lora_target_modules": ["q_proj", "v_proj"],
    "torch_num_threads": 1,
}
EXPERIMENTS = ["de_vs_tft", "game_then_ut_vs_tft"]
VARIANTS = ("action12",)
#: Picklable (Ray sends it to the workers, which import moralgym): test_study.py's tiny model.
TINY_FACTORY = functools.partial(tiny_model_and_tokenizer, seed=0)
#: The tiny runs need little memory; the CPU-scale default (study.CPU_RUN_MEMORY_GIB) would not fit small CI nodes.
ON_RAY = RayOptions(memory_per_run_gib=0.5)
#: Fields that measure the machine, not the result.
TIMINGS = {"train_seconds", "study_seconds", "peak_memory_mib", "evaluation_seconds", "total_seconds"}


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the module (starting one takes seconds): the runners use it as they find it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def recording(monkeypatch) -> list[ray_runs.RayReport]:
    """The reports of every ``run_on_ray`` call from here on (what was submitted, skipped, failed)."""
    reports: list[ray_runs.RayReport] = []
    real = ray_runs.run_on_ray

    def run_and_record(*args, **kwargs):
        reports.append(real(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(ray_runs, "run_on_ray", run_and_record)
    return reports


def without_timings(value):
    if isinstance(value, dict):
        return {
            k: without_timings(v)
            for k, v in value.items()
            if k not in TIMINGS and k != "output_dir" and "time" not in k
        }
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def run_results(run_dir: Path) -> dict:
    """What a run computed: its summary's numbers, its metrics per episode, its adapter's bytes."""
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "summary": without_timings(summary),
        "metrics": without_timings(metrics),
        "adapter": (run_dir / "adapter" / "adapter_model.safetensors").read_bytes(),
    }


def test_the_study_on_ray_has_the_sequential_numbers_and_skips_finished_runs(tmp_path, ray_cluster, monkeypatch):
    common = dict(experiments=EXPERIMENTS, overrides=TINY, variants=VARIANTS, model_factory=TINY_FACTORY)
    sequential = study.run_study("cpu", [1], out=tmp_path / "sequential", **common)
    reports = recording(monkeypatch)
    on_ray = study.run_study("cpu", [1], out=tmp_path / "ray", ray=ON_RAY, **common)

    assert [o.status for o in reports[0].outcomes] == ["finished"] * 2
    assert without_timings(on_ray) == without_timings(sequential) and set(on_ray["experiments"]) == set(EXPERIMENTS)
    assert without_timings(json.loads((tmp_path / "ray" / "cpu" / "study.json").read_text())) == without_timings(
        json.loads((tmp_path / "sequential" / "cpu" / "study.json").read_text())
    )
    for name in EXPERIMENTS:
        run = Path("cpu") / name / "seed1"
        assert run_results(tmp_path / "ray" / run) == run_results(tmp_path / "sequential" / run), run
    assert "game_phase" in on_ray["experiments"]["game_then_ut_vs_tft"]  # the unlearning run's switch evaluation

    # A second call submits nothing: every run is finished; the summaries stay byte-identical.
    before = {p: p.read_text() for p in (tmp_path / "ray").glob("cpu/*/seed*/summary.json")}
    study.run_study("cpu", [1], out=tmp_path / "ray", ray=ON_RAY, **common)
    assert [o.status for o in reports[1].outcomes] == ["skipped"] * 2
    assert {p: p.read_text() for p in (tmp_path / "ray").glob("cpu/*/seed*/summary.json")} == before


def flaky_run(config: TrainingConfig) -> dict:
    """Fails on its first attempt, succeeds on the next; counts its attempts in output_dir/attempts."""
    directory = Path(config.output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    import torch

    with open(directory / "attempts", "a") as attempts:
        attempts.write(f"{torch.get_num_threads()}\n")
    if len((directory / "attempts").read_text().split()) == 1:
        raise RuntimeError("injected failure on the first attempt\nwith a second line")
    (directory / "summary.json").write_text(json.dumps({"finished": True}))
    return {"finished": True}


def broken_run(config: TrainingConfig) -> dict:
    """Fails on every attempt."""
    directory = Path(config.output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "attempts", "a") as attempts:
        attempts.write("1\n")
    raise ValueError("injected failure, every attempt")


def test_a_failed_run_is_retried_and_one_that_keeps_failing_is_reported(tmp_path, ray_cluster, capsys):
    # Ray pickles these test functions by value: the workers cannot import this test module.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        specs = [
            RunSpec("flaky", TrainingConfig(output_dir=str(tmp_path / "flaky")), flaky_run),
            RunSpec("broken", TrainingConfig(output_dir=str(tmp_path / "broken")), broken_run),
            RunSpec("done", TrainingConfig(output_dir=str(tmp_path / "done")), broken_run, finished=True),
        ]
        report = run_on_ray(specs, RayOptions(max_retries=1, cpus_per_run=2))
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    flaky, broken, done = report.outcomes
    assert (flaky.status, flaky.summary) == ("finished", {"finished": True})
    assert (tmp_path / "flaky" / "attempts").read_text() == "2\n2\n"  # retried once, on 2 torch threads each time
    assert (broken.status, broken.error) == ("failed", "ValueError: injected failure, every attempt")
    assert (tmp_path / "broken" / "attempts").read_text() == "1\n" * 2  # max_retries=1: two attempts
    assert done.status == "skipped" and not (tmp_path / "done").exists()  # never submitted
    out = capsys.readouterr().out
    assert (
        "[ray] submitted 2 runs (1 finished before, skipped) to Ray (2 CPUs, 0 GPUs); each run: 2 CPUs, 0 GPUs\n" in out
    )
    assert f"[ray]   broken ({tmp_path / 'broken'}): ValueError: injected failure, every attempt\n" in out
    assert "flaky: finished in" in out

    failed = ray_runs.RunsFailed(report.failed)
    assert failed.lines() == [
        "1 run(s) failed after their retries:",
        f"  broken ({tmp_path / 'broken'}): ValueError: injected failure, every attempt",
    ]


def test_the_study_command_exits_1_listing_failed_runs_after_the_others(tmp_path, ray_cluster, capsys):
    # No such model directory: each run's preflight refuses it in its task (a cheap failure, the same every attempt).
    argv = ["--experiments", "de_vs_tft", "--out", str(tmp_path), "--variants", "--set", "model_name_or_path=/no/model"]
    assert study.main([*argv, "--ray-address", "local", "--ray-max-retries", "0", "--ray-memory-per-run", "0.5"]) == 1
    captured = capsys.readouterr()
    assert "| experiment |" in captured.out  # the table (of no finished run) still printed
    failed = [line for line in captured.err.splitlines() if line.startswith("[study]")]
    assert failed[0] == "[study] 1 run(s) failed after their retries:"
    assert failed[1].startswith("[study]   de_vs_tft seed 1 (") and "UsageError: model_name_or_path" in failed[1]


def test_the_study_ray_options(tmp_path):
    args = study.parse_args(["--ray-address", "auto", "--ray-cpus-per-run", "4", "--ray_max_retries", "3"])
    assert args.ray_options() == RayOptions(address="auto", cpus_per_run=4, max_retries=3)
    assert study.parse_args([]).ray_options() is None  # the sequential runner
    assert study.parse_args(["--ray-address", "local", "--ray-num-cpus", "2"]).ray_options().num_cpus == 2
    paper = study.experiment_config("de_vs_tft", "paper", 1, tmp_path)
    assert ray_runs.run_resources(paper, RayOptions()) == {"num_cpus": 1, "num_gpus": 1}  # one GPU per paper run
    cpu = study.experiment_config("de_vs_tft", "cpu", 1, tmp_path, {"torch_num_threads": 2})
    assert ray_runs.run_resources(cpu, RayOptions(memory_per_run_gib=6)) == {
        "num_cpus": 2,
        "num_gpus": 0,
        "memory": 6 * 2**30,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ray-num-cpus", "2"], "--ray-num-cpus need --ray-address"),
        (["--ray-address", "auto", "--ray-num-cpus", "2"], "num_cpus sizes a local Ray cluster"),
        (["--ray-address", "local", "--ray-cpus-per-run", "0"], "cpus_per_run must be at least 1"),
    ],
)
def test_a_bad_ray_option_is_one_line_with_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        study.parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err


def test_without_ray_asking_for_it_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    with pytest.raises(ray_runs.RayUnavailable, match=r'pip install "moralgym\[ray\]"'):
        ray_runs.import_ray()
    assert study.main(["--experiments", "de_vs_tft", "--out", str(tmp_path), "--ray-address", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("study.py: error: running on Ray needs Ray") and "moralgym[ray]" in err[0]
    )
    assert not (tmp_path / "cpu").exists()  # nothing ran


def test_importing_the_training_package_does_not_import_ray():
    code = (
        "import sys, moralgym.training, moralgym.training.ray_runs, moralgym.training.cli; print('ray' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------ moralgym train lists
def write_config(path: Path, **values) -> str:
    import yaml

    path.write_text(yaml.safe_dump(values))
    return str(path)


def tiny_configs(tmp_path: Path, model_dir: Path, overrides, *seeds: int) -> list[str]:
    settings = {**overrides, "model_name_or_path": str(model_dir), "plot": False, "num_envs": 1}
    return [
        write_config(tmp_path / f"seed{seed}.yaml", output_dir=str(tmp_path / f"run{seed}"), seed=seed, **settings)
        for seed in seeds
    ]


def test_train_runs_a_list_of_configs_on_ray(
    tmp_path, ray_cluster, tiny_model_dir, tiny_training_overrides, monkeypatch
):
    one, two = tiny_configs(tmp_path, tiny_model_dir, tiny_training_overrides, 1, 2)
    reports = recording(monkeypatch)
    assert train_main(["--config", one, "--config", two, "--ray_address", "local", "--save_every", "1"]) == 0
    assert [o.status for o in reports[0].outcomes] == ["finished", "finished"]
    for seed in (1, 2):
        summary = json.loads((tmp_path / f"run{seed}" / "summary.json").read_text())
        assert summary["finished"] and summary["episodes"] == 2
    first = (tmp_path / "run1" / "metrics.jsonl").read_text()
    assert first != (tmp_path / "run2" / "metrics.jsonl").read_text()  # each config its own seed, its own run

    # Again without --resume: refused, as a single config would be; with it, the finished runs are skipped.
    assert train_main(["--config", one, "--config", two, "--save_every", "1"]) == 2
    assert train_main(["--config", one, "--config", two, "--save_every", "1", "--resume"]) == 0
    assert [o.status for o in reports[-1].outcomes] == ["skipped", "skipped"]
    assert (tmp_path / "run1" / "metrics.jsonl").read_text() == first


def test_a_retried_train_run_continues_its_failed_attempt(tmp_path, tiny_model_dir, tiny_training_overrides):
    from moralgym.training.cli import run, train_in_ray_task

    settings = {**tiny_training_overrides, "model_name_or_path": str(tiny_model_dir), "plot": False, "save_every": 1}
    config = TrainingConfig(**settings, output_dir=str(tmp_path / "run1"))
    run(dataclasses.replace(config, stop_after_episodes=1))  # the failed attempt: one episode, its checkpoint
    summary = train_in_ray_task(config)  # the retry: continues from episode 1 (--resume), not refused
    assert summary["finished"] and [r["episode"] for r in read_metrics(tmp_path / "run1")] == [0, 1]


def test_a_train_list_is_checked_before_any_run_starts(tmp_path, tiny_model_dir, tiny_training_overrides, capsys):
    one, two = tiny_configs(tmp_path, tiny_model_dir, tiny_training_overrides, 1, 2)
    # One --output_dir for every config: two runs would write into one directory.
    assert train_main(["--config", one, "--config", two, "--output_dir", str(tmp_path / "shared")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{one} and {two} both write to output_dir" in err[0]
    # A bad value in one config is named with its file; nothing ran.
    bad = write_config(tmp_path / "bad.yaml", output_dir=str(tmp_path / "bad"), reward="greedy")
    assert train_main(["--config", one, "--config", bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"moralgym train: {bad}: ") and "reward" in err[0]
    assert train_main(["--config", one, "--ray_max_retries", "many"]) == 2
    assert "--ray_max_retries expects an integer, got 'many'" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in ("run1", "run2", "shared", "bad"))


def test_a_train_list_with_a_failed_run_exits_1_listing_it(
    tmp_path, tiny_model_dir, tiny_training_overrides, capsys, monkeypatch
):
    one, two = tiny_configs(tmp_path, tiny_model_dir, tiny_training_overrides, 1, 2)

    def one_fails(specs, options, log):
        assert [s.label for s in specs] == [one, two] and options == RayOptions(address="auto", max_retries=3)
        fine = ray_runs.RunOutcome(one, specs[0].config.output_dir, "finished", summary={})
        failed = ray_runs.RunOutcome(two, specs[1].config.output_dir, "failed", error="RuntimeError: CUDA error")
        return ray_runs.RayReport([fine, failed])

    monkeypatch.setattr(ray_runs, "run_on_ray", one_fails)
    monkeypatch.setattr(ray_runs, "import_ray", lambda: None)
    assert train_main(["--config", one, "--config", two, "--ray_address=auto", "--ray_max_retries", "3"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "moralgym train: 1 run(s) failed after their retries:",
        f"moralgym train:   {two} ({tmp_path / 'run2'}): RuntimeError: CUDA error",
    ]
