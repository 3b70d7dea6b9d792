"""``experiments/study.py``'s command line: built from ``StudyArguments`` (HfArgumentParser), a YAML file too."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("study_cli", ROOT / "experiments" / "study.py")
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)


def test_defaults_are_the_dataclasss():
    args = study.parse_args([])
    assert args == study.StudyArguments()
    assert (args.scale, args.seeds, args.experiments, args.out) == ("cpu", [1], None, "runs/study")
    assert args.variants == list(study.DEFAULT_VARIANTS) and args.overrides() == {}


def test_the_historical_flags_still_parse():
    argv = ["--scale", "paper", "--seeds", "2", "3", "--experiments", "de_vs_tft", "--set", "lora_r=8", "plot=false"]
    args = study.parse_args([*argv, "--summarise-only", "--variants"])
    assert (args.scale, args.seeds, args.experiments, args.summarise_only) == ("paper", [2, 3], ["de_vs_tft"], True)
    assert args.variants == []  # the flag alone: no generalisation variants
    assert args.overrides() == {"lora_r": 8, "plot": False}


def test_a_yaml_file_sets_the_options_and_flags_override_it(tmp_path):
    options = tmp_path / "study.yaml"
    options.write_text("seeds: [4, 5]\nout: elsewhere\nset: [torch_num_threads=1]\nvariants: [swapped]\n")
    args = study.parse_args(["--config", str(options), "--seeds", "6"])
    assert (args.seeds, args.out, args.variants) == ([6], "elsewhere", ["swapped"])
    assert args.overrides() == {"torch_num_threads": 1}


def test_a_bad_option_is_one_line_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        study.parse_args(["--scale", "huge"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and "huge" in err


def test_main_summarises_with_the_parsed_options(tmp_path, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(study, "summarise", lambda out, scale: seen.update(out=out, scale=scale) or {})
    monkeypatch.setattr(study, "markdown_table", lambda table: "table")
    assert study.main(["--summarise-only", "--scale", "paper", "--out", str(tmp_path)]) == 0
    assert seen == {"out": tmp_path, "scale": "paper"} and "table" in capsys.readouterr().out
