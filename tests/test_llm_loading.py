"""load_causal_lm: paths, loaded models, dtypes, adapters, and clear errors."""

import importlib.util

import numpy as np
import pytest
import torch

from moralgym.agents.llm.loading import load_causal_lm, resolve_dtype
from moralgym.agents.llm.policy import LLMPolicy
from moralgym.agents.llm.testing import tiny_causal_lm, tiny_tokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = tiny_tokenizer()
    tokenizer.pad_token = None  # load_causal_lm must fall back to EOS
    tiny_causal_lm(len(tokenizer), seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_local_path_loads_with_left_padding_and_a_pad_token(saved):
    model, tokenizer = load_causal_lm(saved)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == tokenizer.eos_token
    assert not model.training and model.dtype == torch.float32


def test_bf16_on_cpu_plays(saved):
    model, tokenizer = load_causal_lm(str(saved), dtype="bf16")
    assert model.dtype == torch.bfloat16
    decisions = LLMPolicy(model, tokenizer).decide(["ipd"] * 3, np.zeros((3, 2), dtype=int))
    assert all(np.isfinite(d.logprobs).all() for d in decisions)


def test_a_loaded_model_passes_through_and_can_be_cast(saved):
    tokenizer = tiny_tokenizer()
    model = tiny_causal_lm(len(tokenizer))
    same, tok = load_causal_lm(model, tokenizer)
    assert same is model and tok is tokenizer
    cast, _ = load_causal_lm(model, tokenizer, dtype="bf16")
    assert cast.dtype == torch.bfloat16


def test_adapter_directory_is_loaded_with_peft(saved, tmp_path):
    peft = pytest.importorskip("peft")
    base, _ = load_causal_lm(saved)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    model, _ = load_causal_lm(saved, adapter=tmp_path / "adapter")
    assert isinstance(model, peft.PeftModel) and model.active_adapter == "default"


def test_unknown_model_and_bad_dtype_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="could not load model"):
        load_causal_lm(str(tmp_path / "nothing-here"))
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("fp8")
    with pytest.raises(TypeError):
        load_causal_lm(42)


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_4bit_without_bitsandbytes_says_what_to_install(saved):
    with pytest.raises(ImportError, match=r"pip install moralgym\[quantization\]"):
        load_causal_lm(saved, load_in_4bit=True)
