"""``moralgym train`` loses nothing and is never silently wrong: it refuses to overwrite a run, resumes the same run
or refuses, verifies checkpoints (falling back to the newest valid one), checkpoints on Ctrl-C, and reports bad input
as one line before the model loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
yaml = pytest.importorskip("yaml")

from moralgym.training.checkpoints import CHECKPOINTS_DIR, MANIFEST_FILE, STATE_FILE, checkpoint_dirs  # noqa: E402
from moralgym.training.cli import main  # noqa: E402
from moralgym.training.config import RESULT_NEUTRAL_FIELDS, TrainingConfig  # noqa: E402
from moralgym.training.tracking import read_metrics  # noqa: E402

#: The tiny training settings, with a checkpoint every episode, seed 3 and the deontological reward.
SAFETY = dict(num_episodes=3, num_rounds=2, plot=False, save_every=1, seed=3, reward="deontological")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_model_dir, tiny_training_overrides):
    """A config file pointing at the tiny saved model (output_dir is always given on the command line)."""
    directory = tmp_path_factory.mktemp("safety")
    settings = {**tiny_training_overrides, **SAFETY, "model_name_or_path": str(tiny_model_dir)}
    (directory / "c.yaml").write_text(yaml.safe_dump(settings))
    return directory


def train(workdir: Path, out: Path, *extra: str) -> int:
    return main(["--config", str(workdir / "c.yaml"), "--output_dir", str(out), *extra])


def untimed(records):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def adapter_bytes(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "adapter").iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def reference(workdir):
    """The uninterrupted 3-episode run every resumed run must equal."""
    out = workdir / "reference"
    assert train(workdir, out) == 0
    return out


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the model would be loaded (the error must come before the heavy work)."""
    import moralgym.agents.llm.loading as loading

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the error was reported")

    monkeypatch.setattr(loading, "load_causal_lm", refuse)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


# ------------------------------------------------------------------------------------- 1. no silent overwrite


@pytest.mark.parametrize("existing", ["finished", "checkpoints_only", "metrics_only"])
def test_an_output_dir_holding_a_run_is_refused_before_the_model_loads(workdir, reference, tmp_path, existing, capsys):
    out = tmp_path / "run"
    if existing == "finished":
        shutil.copytree(reference, out)
    elif existing == "checkpoints_only":
        shutil.copytree(reference / CHECKPOINTS_DIR, out / CHECKPOINTS_DIR)
    else:
        out.mkdir()
        shutil.copy(reference / "metrics.jsonl", out / "metrics.jsonl")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    import moralgym.agents.llm.loading as loading

    loaded = []
    real = loading.load_causal_lm
    loading.load_causal_lm = lambda *a, **k: loaded.append(1) or real(*a, **k)
    try:
        code = train(workdir, out, "--num_episodes", "1")
    finally:
        loading.load_causal_lm = real
    assert code == 2 and not loaded
    err = one_line_error(capsys)
    assert str(out) in err and "--resume" in err and "--output_dir" in err and "--overwrite" in err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing replaced, nothing added


def test_overwrite_clears_the_previous_run_first(workdir, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "notes.txt").write_text("mine")  # not a run file: kept
    assert train(workdir, out, "--overwrite", "--num_episodes", "1", "--save_every", "0") == 0
    assert [r["episode"] for r in read_metrics(out)] == [0]
    assert not (out / CHECKPOINTS_DIR).exists()  # the first run's checkpoints do not sit beside the new results
    assert json.loads((out / "config.json").read_text())["num_episodes"] == 1
    assert json.loads((out / "summary.json").read_text())["episodes"] == 1
    assert (out / "notes.txt").read_text() == "mine"


def test_resume_and_overwrite_exclude_each_other(workdir, tmp_path, capsys, no_model_load):
    assert train(workdir, tmp_path / "run", "--overwrite", "--resume") == 2
    err = one_line_error(capsys)
    assert "--resume" in err and "--overwrite" in err


# ------------------------------------------------------------------------------------- 2. resume = same run


@pytest.fixture(scope="module")
def stopped(workdir):
    """Seed 3 / deontological stopped after 2 of 3 episodes: checkpoints episode-1 and episode-2."""
    out = workdir / "stopped"
    assert train(workdir, out, "--stop_after_episodes", "2") == 0
    assert [d.name for d in checkpoint_dirs(out)] == ["episode-000001", "episode-000002"]
    return out


def test_resume_with_a_changed_config_is_refused_listing_old_and_new(workdir, stopped, tmp_path, capsys, no_model_load):
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    before = (out / "config.json").read_bytes(), (out / "metrics.jsonl").read_bytes()
    capsys.readouterr()
    assert train(workdir, out, "--resume", "--seed", "9", "--reward", "utilitarian") == 2
    err = one_line_error(capsys)
    assert "seed 3 -> 9" in err and "reward 'deontological' -> 'utilitarian'" in err
    assert ((out / "config.json").read_bytes(), (out / "metrics.jsonl").read_bytes()) == before


def test_result_neutral_changes_are_allowed_and_the_resumed_run_is_the_same_run(workdir, stopped, reference, tmp_path):
    out = tmp_path / "moved"  # output_dir itself changed: the run directory was moved
    shutil.copytree(stopped, out)
    assert train(workdir, out, "--resume", "--log_csv", "true", "--save_every", "5", "--progress_bar", "true") == 0
    assert untimed(read_metrics(out)) == untimed(read_metrics(reference))
    assert adapter_bytes(out) == adapter_bytes(reference)
    assert (out / "metrics.csv").exists()


def test_num_episodes_may_grow_but_not_fall_below_the_checkpoint(workdir, stopped, tmp_path, capsys, no_model_load):
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    capsys.readouterr()
    assert train(workdir, out, "--resume", "--num_episodes", "1") == 2
    assert "num_episodes" in one_line_error(capsys)


def test_result_neutral_fields_are_named_and_exclude_what_changes_the_result():
    fields = set(TrainingConfig.__dataclass_fields__)
    assert fields >= RESULT_NEUTRAL_FIELDS
    for name in ("seed", "reward", "learning_rate", "model_name_or_path", "num_envs", "dedup", "max_contexts_per_pass"):
        assert name not in RESULT_NEUTRAL_FIELDS
    assert {
        "output_dir",
        "progress_bar",
        "torch_num_threads",
        "report_to",
        "resume",
        "overwrite",
    } <= RESULT_NEUTRAL_FIELDS


def test_resume_without_a_checkpoint_says_it_starts_fresh(workdir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(workdir, out, "--resume", "--num_episodes", "1") == 0
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "starting fresh" in err and str(out) in err


def test_gradients_accumulated_across_an_episode_boundary_survive_a_resume(workdir, tmp_path):
    """gradient_accumulation_steps 2 with one backward pass per episode: the checkpoint after episode 1 holds a
    half-accumulated gradient, which the resumed run must continue from."""
    extra = ["--gradient_accumulation_steps", "2", "--num_episodes", "2"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert train(workdir, full, *extra) == 0
    assert train(workdir, part, *extra, "--stop_after_episodes", "1") == 0
    assert train(workdir, part, *extra, "--resume") == 0
    assert untimed(read_metrics(part)) == untimed(read_metrics(full))
    assert adapter_bytes(part) == adapter_bytes(full)


# ------------------------------------------------------------------------------------- 3. verified checkpoints


def test_checkpoints_carry_a_manifest_of_sizes_and_hashes(stopped):
    import hashlib

    for directory in checkpoint_dirs(stopped):
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        assert STATE_FILE in manifest["files"] and "adapter_player_0/adapter_model.safetensors" in manifest["files"]
        for name, entry in manifest["files"].items():
            data = (directory / name).read_bytes()
            assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert not [p for p in (stopped / CHECKPOINTS_DIR).iterdir() if not p.name.startswith("episode-")]  # no temp


@pytest.mark.parametrize("damaged", [STATE_FILE, "adapter_player_0/adapter_model.safetensors"])
def test_a_damaged_latest_checkpoint_is_named_and_the_previous_one_used(
    workdir, stopped, reference, tmp_path, damaged, capsys
):
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    bad = out / CHECKPOINTS_DIR / "episode-000002" / damaged
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # truncated
    capsys.readouterr()
    assert train(workdir, out, "--resume") == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "episode-000002" in line]
    assert warning and damaged in warning[0] and "episode-000001" in warning[0]
    assert untimed(read_metrics(out)) == untimed(read_metrics(reference))
    assert adapter_bytes(out) == adapter_bytes(reference)


def test_no_valid_checkpoint_is_refused_naming_the_files(workdir, stopped, tmp_path, capsys, no_model_load):
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    for directory in checkpoint_dirs(out):
        (directory / STATE_FILE).write_bytes(b"garbage")
    capsys.readouterr()
    assert train(workdir, out, "--resume") == 2
    err = one_line_error(capsys)
    assert STATE_FILE in err and "episode-000001" in err and "--overwrite" in err


# ------------------------------------------------------------------------------------- 4. Ctrl-C


@pytest.mark.parametrize("where", ["mid_update", "mid_rollout"])
def test_ctrl_c_checkpoints_the_last_completed_episode_and_resume_replays_it(
    workdir, reference, tmp_path, monkeypatch, capsys, where
):
    import moralgym.training.ppo as ppo

    out = tmp_path / "run"
    if where == "mid_update":  # the optimizer of episode 1 has stepped: the live state is past the boundary
        real = ppo.MoralPPOTrainer._optimizer_step

        def step_then_interrupt(self, learner):
            real(self, learner)
            if self.episode == 1:
                raise KeyboardInterrupt

        monkeypatch.setattr(ppo.MoralPPOTrainer, "_optimizer_step", step_then_interrupt)
    else:
        real_play = ppo.play_episode

        def interrupt_rollout(*args, **kwargs):
            if kwargs["episode"] == 1:
                raise KeyboardInterrupt
            return real_play(*args, **kwargs)

        monkeypatch.setattr(ppo, "play_episode", interrupt_rollout)
    capsys.readouterr()
    try:
        code = train(workdir, out, "--save_every", "0")
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped moralgym train")
    assert code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert "--resume" in err[-1] and str(out) in err[-1] and "c.yaml" in err[-1]
    assert [d.name for d in checkpoint_dirs(out)] == ["episode-000001"]
    assert [r["episode"] for r in read_metrics(out)] == [0]
    monkeypatch.undo()
    assert train(workdir, out, "--save_every", "0", "--resume") == 0
    assert untimed(read_metrics(out)) == untimed(read_metrics(reference))
    assert adapter_bytes(out) == adapter_bytes(reference)


# ------------------------------------------------------------------------------------- 5. one-line errors


def _argv(workdir: Path, tmp_path: Path, case: str) -> tuple[list[str], str]:
    config = str(workdir / "c.yaml")
    out = ["--output_dir", str(tmp_path / "run")]
    if case == "yaml_syntax":
        (tmp_path / "bad.yaml").write_text("seed: [1\nreward: game\n")
        return ["--config", str(tmp_path / "bad.yaml"), *out], "not valid YAML"
    if case == "missing_config":
        return ["--config", str(tmp_path / "nope.yaml"), *out], "nope.yaml"
    if case == "config_without_value":
        return ["--config"], "--config"
    if case == "unknown_yaml_key":
        (tmp_path / "extra.yaml").write_text("sede: 3\n")
        return ["--config", str(tmp_path / "extra.yaml"), *out], "sede"
    if case == "model_dir_relative":
        return ["--config", config, *out, "--model_name_or_path", "./no_such_model"], "no such model directory"
    if case == "model_dir_absolute":
        return ["--config", config, *out, "--model_name_or_path", str(tmp_path / "x" / "m")], "no such model directory"
    if case == "model_dir_home":
        return ["--config", config, *out, "--model_name_or_path", "~/no_such_model_dir"], "no such model directory"
    if case == "init_adapter":
        return ["--config", config, *out, "--init_adapter", str(tmp_path / "none")], "init_adapter"
    if case == "unwritable_output":
        (tmp_path / "a_file").write_text("x")
        return ["--config", config, "--output_dir", str(tmp_path / "a_file" / "run")], "output_dir"
    if case == "negative_seed":
        return ["--config", config, *out, "--seed", "-1"], "seed"
    if case == "float_seed":
        return ["--config", config, *out, "--seed", "1.5"], "seed"
    if case == "huge_seed":
        return ["--config", config, *out, "--seed", str(2**40)], "seed"
    if case == "yaml_float_seed":
        (tmp_path / "s.yaml").write_text(yaml.safe_dump({"seed": 2.5}))
        return ["--config", str(tmp_path / "s.yaml"), *out], "seed"
    if case == "nan":
        return ["--config", config, *out, "--vf_coef", "nan"], "vf_coef"
    if case == "inf":
        return ["--config", config, *out, "--learning_rate", "inf"], "learning_rate"
    if case == "abbreviation":
        return ["--config", config, *out, "--learning_rat", "0.1"], "--learning_rat"
    raise AssertionError(case)


CASES = [
    "yaml_syntax",
    "missing_config",
    "config_without_value",
    "unknown_yaml_key",
    "model_dir_relative",
    "model_dir_absolute",
    "model_dir_home",
    "init_adapter",
    "unwritable_output",
    "negative_seed",
    "float_seed",
    "huge_seed",
    "yaml_float_seed",
    "nan",
    "inf",
    "abbreviation",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_with_exit_code_2_before_the_model_loads(workdir, tmp_path, case, capsys, no_model_load):
    argv, expected = _argv(workdir, tmp_path, case)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own exit: usage + error on two lines
        code = exit.code
    err = one_line_error(capsys)
    assert code == 2 and expected in err and err.startswith("moralgym train: "), err
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_traceback(workdir, tmp_path, no_model_load):
    with pytest.raises(ValueError, match="vf_coef"):
        main(["--config", str(workdir / "c.yaml"), "--vf_coef", "nan", "--debug"])


def test_the_moralgym_command_reports_one_line_and_debug_reraises(tmp_path, monkeypatch, capsys):
    from moralgym import cli

    assert cli.main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in one_line_error(capsys)
    monkeypatch.setitem(cli.COMMANDS, "boom", ("json:loads", "raises TypeError"))  # json.loads([]) -> TypeError
    assert cli.main(["boom"]) == 1
    err = one_line_error(capsys)
    assert err.startswith("moralgym boom: ") and "TypeError" in err and "--debug" in err
    with pytest.raises(TypeError):
        cli.main(["--debug", "boom"])
    with pytest.raises(FileNotFoundError):
        cli.main(["--debug", "train", "--config", str(tmp_path / "nope.yaml")])


def test_overwrite_keeps_the_earlier_run_when_the_model_fails_to_load(workdir, reference, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (tmp_path / "empty_model").mkdir()  # a directory, so the path check passes; loading it fails
    capsys.readouterr()
    assert train(workdir, out, "--overwrite", "--model_name_or_path", str(tmp_path / "empty_model")) == 1
    assert "--debug" in one_line_error(capsys)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_files_named_per_seat_or_per_evaluation_count_as_run_files(tmp_path):
    # An N-player run with three learning seats writes adapter_player_2/; a transfer study transfer_evaluation/.
    from moralgym.training.cli import clear_run, existing_run_files

    for name in ("adapter_player_2", "transfer_evaluation", "evaluation_variants_17"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    assert sorted(existing_run_files(tmp_path)) == ["adapter_player_2", "evaluation_variants_17", "transfer_evaluation"]
    clear_run(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
