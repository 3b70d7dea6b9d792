"""``moralgym evaluate`` / ``compare`` / ``play`` as a user meets them: an adapter is evaluated on the base model and
with the prompt its run trained with, another agent's results are not overwritten, and a mistake on the command line
is one line of error (exit code 2), not a traceback."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from moralgym.evaluation import main_compare, main_evaluate
from moralgym.evaluation.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]


def run_cli(function, argv, capsys):
    """(exit code, stdout, stderr) of a CLI entry point, whether it returns its code or raises SystemExit."""
    try:
        code = function([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, command):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"moralgym {command}: error: "), err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------------------------- a tiny trained run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory as ``moralgym train`` leaves it: ``adapter/`` (a LoRA adapter of a tiny model saved in its
    own directory, recorded in adapter_config.json), ``config.json`` and ``metrics.jsonl``."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    from moralgym.agents.llm.testing import tiny_model_and_tokenizer

    root = tmp_path_factory.mktemp("tiny")
    base_dir = root / "tiny_base"
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    lora = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    run_dir = root / "my_run"
    peft.get_peft_model(base, lora).save_pretrained(run_dir / "adapter")
    config = {
        "model_name_or_path": str(base_dir),
        "answer_prefix": "action",
        "phrasing": "paper",
        "max_new_tokens": 2,
        "eval_action_tokens": "action34",
        "run_name": None,
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "metrics.jsonl").write_text(
        "\n".join(
            json.dumps({"episode": i, "env/cooperation_rate": i / 4, "env/illegal_rate": 1 - i / 4, "env/reward": i})
            for i in range(4)
        )
    )
    assert json.loads((run_dir / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        base_dir
    )
    return run_dir


SMALL = ["--games", "ipd", "--episodes", "2", "--rounds", "2"]


def test_adapter_is_evaluated_on_its_recorded_base_with_the_runs_prompt(tiny_run, tmp_path, capsys):
    out = tmp_path / "eval"
    code, stdout, err = run_cli(main_evaluate, [tiny_run / "adapter", "--out", out, *SMALL], capsys)
    assert code == 0, err
    meta = json.loads((out / "evaluation.json").read_text())
    assert meta["agent"] == "my_run"  # named after the run, not "adapter"
    assert meta["model"] == str(tiny_run.parent / "tiny_base")
    assert meta["prompt"]["answer_prefix"] == "action" and meta["prompt"]["max_new_tokens"] == 2
    assert "run's settings" in stdout and "answer_prefix='action'" in stdout
    roles = {row["role"] for row in read_jsonl(out / "summary.jsonl")}
    assert roles == {"agent", "reference"}  # the recorded base, same prompts
    html = (out / "report.html").read_text()
    assert "my_run" in html and "learning curve" in html.lower()  # metrics.jsonl next to the adapter


def test_explicit_prompt_value_is_used_and_said_to_override_the_runs(tiny_run, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = [tiny_run / "adapter", "--out", out, "--answer-prefix", "", "--no-report", *SMALL]
    code, stdout, err = run_cli(main_evaluate, argv, capsys)
    assert code == 0, err
    assert "overriding the run's answer_prefix='action'" in stdout
    assert json.loads((out / "evaluation.json").read_text())["prompt"]["answer_prefix"] == ""


def test_explicit_model_other_than_the_recorded_base_is_an_error(tiny_run, tmp_path, capsys):
    other = tmp_path / "other_model"
    other.mkdir()
    argv = [tiny_run / "adapter", "--model", other, "--out", tmp_path / "eval", *SMALL]
    code, _, err = run_cli(main_evaluate, argv, capsys)
    assert_one_line_error(code, err, "evaluate")
    assert str(other) in err and str(tiny_run.parent / "tiny_base") in err


def test_the_default_model_recorded_as_its_cache_path_resolves_to_default(tmp_path):
    from moralgym.agents.llm.default_model import default_model_dir
    from moralgym.evaluation.llm_agent import recorded_base_model

    for recorded in (str(default_model_dir()), "/home/someone/.cache/moralgym/smollm2-135m-instruct/hf"):
        adapter = tmp_path / "adapter"
        adapter.mkdir(exist_ok=True)
        (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": recorded}))
        assert recorded_base_model(adapter) == "default"


# ----------------------------------------------------------------------------------------------- --out of another agent
def test_out_dir_holding_another_agents_results_is_refused(tmp_path, capsys):
    out = tmp_path / "shared"
    small = ["--games", "ipd", "--episodes", "1", "--rounds", "1", "--no-report"]
    assert run_cli(main_evaluate, ["tit_for_tat", "--out", out, *small], capsys)[0] == 0
    assert run_cli(main_evaluate, ["tit_for_tat", "--out", out, *small], capsys)[0] == 0  # same agent: fine
    code, _, err = run_cli(main_evaluate, ["always_defect", "--out", out, *small], capsys)
    assert_one_line_error(code, err, "evaluate")
    assert str(out) in err and "tit_for_tat" in err and "--overwrite" in err and "--out" in err
    assert json.loads((out / "evaluation.json").read_text())["agent"] == "tit_for_tat"  # untouched
    assert run_cli(main_evaluate, ["always_defect", "--out", out, "--overwrite", *small], capsys)[0] == 0
    assert json.loads((out / "evaluation.json").read_text())["agent"] == "always_defect"


# ----------------------------------------------------------------------------------------------- one-line errors
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["default", "--variants", "action34", "no_such_variant"], "no_such_variant"),
        (["tit_for_tat", "--games", "ipd", "tennis"], "tennis"),
        (["tit_for_tat", "--opponents", "nobody"], "nobody"),
        (["runs/no/such/run/adapter"], "runs/no/such/run/adapter"),
        (["tit_for_tat", "--gam", "ipd"], "--gam"),  # no abbreviations
        (["default", "--model", "/no/such/model"], "/no/such/model"),
        (["tit_for_tat", "--episodes", "0"], "--episodes"),
        (["tit_for_tat", "--initial-state", "sideways"], "sideways"),
        (["tit_for_tat", "--config", "/no/such/options.yaml"], "/no/such/options.yaml"),
    ],
)
def test_evaluate_mistakes_are_one_line_errors(argv, needle, capsys, tmp_path):
    code, _, err = run_cli(main_evaluate, [*argv, "--out", tmp_path / "x"], capsys)
    assert_one_line_error(code, err, "evaluate")
    assert needle in err


# ------------------------------------------------------------------------------------------- options from dataclasses
def test_the_protocol_options_are_evaluation_configs_fields_and_defaults():
    pytest.importorskip("transformers")
    from moralgym.evaluation.cli import evaluation_config, parse_evaluate_args
    from moralgym.evaluation.harness import EvaluationConfig

    args, protocol, prompt = parse_evaluate_args(["tit_for_tat"])
    assert [f.name for f in dataclasses.fields(protocol)] == [f.name for f in dataclasses.fields(EvaluationConfig)]
    assert evaluation_config(protocol) == EvaluationConfig()
    assert args.agent == "tit_for_tat" and not args.no_report and prompt.tokens is None


def test_a_changed_or_new_evaluation_config_default_is_the_commands(tmp_path, capsys, monkeypatch):
    """The command reads EvaluationConfig when it parses: nothing in the CLI repeats its defaults."""
    pytest.importorskip("transformers")
    from moralgym.evaluation import harness

    @dataclasses.dataclass
    class Changed(harness.EvaluationConfig):
        games: tuple[str, ...] = ("ipd",)
        num_episodes: int = 1
        num_rounds: int = 2
        note: str = "from EvaluationConfig"

    monkeypatch.setattr(harness, "EvaluationConfig", Changed)
    out = tmp_path / "eval"
    code, _, err = run_cli(
        main_evaluate, ["tit_for_tat", "--out", out, "--no-report", "--note", "from the CLI"], capsys
    )
    assert code == 0, err
    meta = json.loads((out / "evaluation.json").read_text())
    assert (meta["games"], meta["num_episodes"], meta["num_rounds"], meta["note"]) == (["ipd"], 1, 2, "from the CLI")


def test_switches_take_no_value_and_a_yaml_file_sets_options_by_field_name(tmp_path, capsys):
    pytest.importorskip("transformers")
    pytest.importorskip("yaml")
    options = tmp_path / "options.yaml"
    options.write_text("games: [ipd]\nnum_episodes: 1\nnum_rounds: 3\nseed: 7\n")
    out = tmp_path / "eval"
    argv = ["--no-report", "always_cooperate", "--config", options, "--out", out, "--rounds", "2"]
    code, _, err = run_cli(main_evaluate, argv, capsys)
    assert code == 0, err
    meta = json.loads((out / "evaluation.json").read_text())
    assert (meta["agent"], meta["games"], meta["num_episodes"], meta["num_rounds"], meta["seed"]) == (
        "always_cooperate",
        ["ipd"],
        1,
        2,  # the flag overrides the file
        7,
    )
    assert not (out / "report.html").exists()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    for name in ("allc", "alld"):
        main_evaluate([name, "--out", str(root / name), "--episodes", "1", "--rounds", "1", "--no-report"])
    return root


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--metrics", "cooperation_rate", "happiness"], "happiness"),
        (["--variant", "nope"], "nope"),
        (["--opponent", "nobody"], "nobody"),
        (["--metr", "cooperation_rate"], "--metr"),
    ],
)
def test_compare_mistakes_are_one_line_errors(two_runs, extra, needle, capsys, tmp_path):
    argv = [two_runs / "allc", two_runs / "alld", "--out", tmp_path / "c", *extra]
    code, _, err = run_cli(main_compare, argv, capsys)
    assert_one_line_error(code, err, "compare")
    assert needle in err


def test_compare_of_a_missing_run_dir_is_a_one_line_error(two_runs, capsys, tmp_path):
    code, _, err = run_cli(main_compare, [two_runs / "allc", tmp_path / "missing", "--out", tmp_path / "c"], capsys)
    assert_one_line_error(code, err, "compare")
    assert str(tmp_path / "missing") in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--model", "/no/such/model"], "/no/such/model"),
        (["--adapter", "/no/such/adapter"], "/no/such/adapter"),
        (["--episodes", "0"], "episodes"),
        (["--game", "tennis"], "tennis"),
        (["--opponent", "nobody"], "nobody"),
        (["--tokens", "nonsense_pair"], "nonsense_pair"),
        (["--epi", "3"], "--epi"),
    ],
)
def test_play_mistakes_are_one_line_errors(argv, needle, capsys):
    pytest.importorskip("transformers")
    from moralgym.agents.llm.play import main as main_play

    code, _, err = run_cli(main_play, argv, capsys)
    assert_one_line_error(code, err, "play")
    assert needle in err


def test_the_moralgym_command_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "moralgym.cli", "evaluate", str(tmp_path / "no_run" / "adapter")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().startswith("moralgym evaluate: error: ") and len(result.stderr.strip().splitlines()) == 1
    )


# ----------------------------------------------------------------------------------------------- the quick start's report
def test_training_evaluation_writes_the_report_with_figures(tmp_path):
    pytest.importorskip("peft")
    pytest.importorskip("matplotlib")
    import peft

    from moralgym.agents.llm.testing import tiny_model_and_tokenizer
    from moralgym.training.config import TrainingConfig
    from moralgym.training.evaluate import evaluate_before_after

    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    lora = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = peft.get_peft_model(model, lora, adapter_name="player_0")
    run_dir = tmp_path / "quick"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"episode": i, "env/cooperation_rate": i / 3, "env/illegal_rate": 0.1}) for i in range(3))
    )
    config = TrainingConfig(
        output_dir=str(run_dir), eval_episodes=1, eval_rounds=2, eval_games=["ipd", "chicken"], answer_prefix="action"
    )
    evaluate_before_after(model, tokenizer, config)
    html = (run_dir / "evaluation" / "report.html").read_text()
    assert "quick" in html and "fine_tuned" in html and "base" in html
    assert "learning curve" in html.lower()
    assert any((run_dir / "evaluation" / "figures").glob("*.png"))
