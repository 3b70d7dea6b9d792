"""Provenance: every run's ``summary.json`` records the software stack and a hash of the base model's weights."""

from __future__ import annotations

import json
import platform

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

import moralgym  # noqa: E402
from moralgym.agents.llm.testing import tiny_model_and_tokenizer  # noqa: E402
from moralgym.provenance import PACKAGES, _version, provenance, versions, weights_sha256  # noqa: E402

FIELDS = {"python", "torch", "transformers", "peft", "trl", "numpy", "moralgym"}


def test_versions_name_the_stack_and_none_for_what_is_missing():
    found = versions()
    assert set(found) >= FIELDS and set(found) == {"python", *PACKAGES}
    assert found["python"] == platform.python_version()
    assert found["torch"] == torch.__version__ and found["moralgym"] == moralgym.__version__
    assert _version("surely-not-an-installed-distribution") is None


def test_weight_hash_sees_every_weight_but_not_the_adapters():
    from peft import LoraConfig, get_peft_model

    model, _ = tiny_model_and_tokenizer(seed=0)
    same, _ = tiny_model_and_tokenizer(seed=0)
    other, _ = tiny_model_and_tokenizer(seed=1)
    digest = weights_sha256(model)
    assert len(digest) == 64 and digest == weights_sha256(same) != weights_sha256(other)
    wrapped = get_peft_model(same, LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False))
    assert weights_sha256(wrapped) == digest  # LoRA weights and PEFT's renaming are not part of it
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    assert weights_sha256(model) != digest
    assert weights_sha256(other.to(torch.bfloat16)) != weights_sha256(tiny_model_and_tokenizer(seed=1)[0])


def test_a_tiny_runs_summary_records_versions_and_the_weight_hash(
    tmp_path, tiny_lm, tiny_model_dir, tiny_training_overrides, one_thread
):
    from moralgym.training.cli import run
    from moralgym.training.config import TrainingConfig

    model_dir = tiny_model_dir  # tiny_lm's model and tokenizer, saved
    expected = weights_sha256(tiny_lm[0])
    overrides = {**tiny_training_overrides, "num_episodes": 1, "num_rounds": 2}
    config = TrainingConfig(
        output_dir=str(tmp_path / "run"), model_name_or_path=str(model_dir), evaluate=False, plot=False, **overrides
    )
    run(config)
    record = json.loads((tmp_path / "run" / "summary.json").read_text())["provenance"]
    assert set(record["versions"]) >= FIELDS and record["versions"] == versions()
    assert record["platform"] == platform.platform()
    assert record["model_name_or_path"] == str(model_dir)
    assert record["weights_sha256"] == expected  # the base weights as saved: training only changed the adapter
    assert provenance()["versions"] == record["versions"] and "weights_sha256" not in provenance()
