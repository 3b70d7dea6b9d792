"""``moralgym.cli_args``: command lines built from dataclasses (HfArgumentParser), with the argparse spellings the
commands have always accepted, ``--config FILE.yaml`` the TrlParser way, and one-line errors."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

pytest.importorskip("transformers")
pytest.importorskip("yaml")

from moralgym.cli_args import POSITIONAL, SWITCH, dataclass_parser  # noqa: E402


@dataclass
class Options:
    target: str = field(metadata={"help": "what to act on", "cli": POSITIONAL})
    n_items: int = field(default=3, metadata={"help": "how many", "aliases": ["--items"]})
    names: list[str] = field(default_factory=lambda: ["a", "b"], metadata={"help": "names", "cli": {"nargs": "*"}})
    quiet: bool = field(default=False, metadata={"help": "say less", "cli": SWITCH})
    label: str | None = field(default=None, metadata={"help": "a label (default: none)"})


@dataclass
class More:
    _argument_group_name = "more"

    ratio: float = field(default=0.5, metadata={"help": "a ratio"})
    verbose: bool = field(default=True, metadata={"help": "talk"})


def parse(argv, **kwargs):
    return dataclass_parser((Options, More), prog="tool", **kwargs).parse(argv)


def test_fields_become_options_with_their_defaults():
    options, more = parse(["x"])
    assert options == Options(target="x") and more == More()


def test_positional_switch_aliases_and_empty_lists():
    options, more = parse(["--quiet", "x", "--items", "7", "--names", "--label", "L", "--no-verbose"])
    assert options == Options(target="x", n_items=7, names=[], quiet=True, label="L")  # --quiet took no value
    assert more.verbose is False
    assert parse(["x", "--n_items", "2"])[0].n_items == parse(["x", "--n-items", "2"])[0].n_items == 2


def test_dashed_spellings_come_first_and_groups_have_their_section(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(["--help"], dashed=True)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--items N_ITEMS, --n-items N_ITEMS, --n_items N_ITEMS" in out
    assert "\nmore:\n" in out and "(default: 0.5)" in out
    assert "(default: None)" not in out  # a None default is explained by the help instead


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["x", "--item", "3"], "--item"),  # never abbreviated
        (["x", "--n_items", "three"], "three"),
        ([], "target"),
        (["x", "--config"], "--config needs a YAML file"),
        (["x", "--config", "/no/such/file.yaml"], "/no/such/file.yaml"),
    ],
)
def test_mistakes_are_one_line_errors_with_exit_code_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tool: error: ") and needle in err


def test_yaml_sets_defaults_and_flags_override_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MORALGYM_TEST_VAR", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text("n_items: 9\nnames: [p, q]\nratio: 0.25\nenv:\n  MORALGYM_TEST_VAR: from-yaml\n")
    options, more = parse(["x", "--config", str(config), "--items", "4"])
    assert (options.n_items, options.names, more.ratio) == (4, ["p", "q"], 0.25)
    assert os.environ["MORALGYM_TEST_VAR"] == "from-yaml"  # TrlParser's 'env' mapping


@pytest.mark.parametrize(
    "text, needle",
    [
        ("n_itemz: 9\n", "unknown field(s) in the config file"),
        ("n_items: [1\n", "not valid YAML"),
        ("- 1\n", "mapping"),
    ],
)
def test_bad_yaml_files_are_one_line_errors(text, needle, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        parse(["x", "--config", str(config)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and needle in err
