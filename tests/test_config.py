"""``TrainingConfig`` is made of argument groups (run, model, ..., evaluation after training, GRPO) yet stays flat:
flat YAML keys, a flat config.json in the groups' order, ``--resume`` checks by field name, ``--help`` by group."""

from __future__ import annotations

import dataclasses

import pytest

from moralgym.training.config import (
    RESULT_NEUTRAL_FIELDS,
    TRAINING_ARGUMENT_GROUPS,
    GRPOArguments,
    TrainingConfig,
    TrainingEvaluationArguments,
)

GROUP_FIELDS = [[f.name for f in dataclasses.fields(group)] for group in TRAINING_ARGUMENT_GROUPS]


def test_the_groups_partition_the_fields_in_config_json_order():
    flat = [name for names in GROUP_FIELDS for name in names]
    assert len(flat) == len(set(flat))
    assert [f.name for f in dataclasses.fields(TrainingConfig)] == flat
    assert list(TrainingConfig().to_dict()) == flat  # config.json: every field, flat, group by group
    assert all(issubclass(TrainingConfig, group) for group in TRAINING_ARGUMENT_GROUPS)


def test_grpo_and_evaluation_knobs_have_their_own_dataclasses():
    assert {f.name for f in dataclasses.fields(GRPOArguments)} == {"num_generations", "grpo_beta"}
    evaluation = {f.name for f in dataclasses.fields(TrainingEvaluationArguments)}
    assert evaluation == {"evaluate"} | {name for names in GROUP_FIELDS for name in names if name.startswith("eval_")}
    config = TrainingConfig(num_generations=3, eval_seed=7)  # still attributes of the run's config
    assert (config.num_generations, config.eval_seed) == (3, 7)


#: RESULT_NEUTRAL_FIELDS as written out before the fields were split into groups.
NEUTRAL_BEFORE_THE_GROUPS = frozenset(
    (
        *("output_dir", "run_name", "report_to", "log_csv", "plot", "progress_bar", "torch_num_threads"),
        *("save_every", "stop_after_episodes", "resume", "overwrite", "evaluate", "eval_games"),
        *("eval_action_tokens", "eval_episodes", "eval_rounds", "eval_opponent", "eval_seed"),
    )
)


def test_result_neutral_fields_are_unchanged():
    # gradient_checkpointing came later: its gradients are bit-identical (tests/test_training_memory.py); so did
    # eval_kv_cache_mib, an evaluation field (the evaluation runs after training; its KV budget changes no training)
    assert NEUTRAL_BEFORE_THE_GROUPS | {"gradient_checkpointing", "eval_kv_cache_mib"} == RESULT_NEUTRAL_FIELDS
    assert "mmap_threshold_mib" not in RESULT_NEUTRAL_FIELDS  # treated as result-relevant (docs/benchmarks.md)
    saved = TrainingConfig().to_dict()
    assert TrainingConfig(eval_episodes=3, evaluate=True).result_changes(saved) == {}
    assert TrainingConfig(num_generations=3).result_changes(saved) == {"num_generations": (4, 3)}


def test_from_parts_joins_and_validates():
    parts = [group() for group in TRAINING_ARGUMENT_GROUPS]
    assert TrainingConfig.from_parts(*parts) == TrainingConfig()
    with pytest.raises(ValueError, match="output_dir is given by two argument groups"):
        TrainingConfig.from_parts(*parts, parts[0])
    parts[0].num_episodes = 0
    with pytest.raises(ValueError, match="num_episodes must be a positive integer"):
        TrainingConfig.from_parts(*parts)


def test_the_training_cli_is_built_from_the_groups(tmp_path, capsys):
    pytest.importorskip("trl")
    pytest.importorskip("yaml")
    from moralgym.training.cli import parse_config

    config_file = tmp_path / "c.yaml"
    config_file.write_text("algorithm: grpo\nnum_generations: 3\neval_episodes: 2\nlearning_rate: 0.001\n")
    config = parse_config(["--config", str(config_file), "--grpo_beta", "0.5"])
    assert config == TrainingConfig(
        algorithm="grpo", num_generations=3, eval_episodes=2, learning_rate=0.001, grpo_beta=0.5
    )
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    help_text = capsys.readouterr().out
    for group, names in zip(TRAINING_ARGUMENT_GROUPS, GROUP_FIELDS, strict=True):
        section = help_text.split(f"\n{group._argument_group_name}:\n", 1)[1].split("\n\n", 1)[0]
        for name in names:  # every field, in its group's section
            assert f"--{name}" in section, (group.__name__, name)
    from moralgym.training.cli import RAY_FLAGS

    assert "--config A.yaml --config B.yaml" in help_text  # the run-list mode, and each of its flags
    assert all(flag in help_text.split("Several runs:", 1)[1] for flag in RAY_FLAGS)
