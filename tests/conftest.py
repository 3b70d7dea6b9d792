"""Shared fixtures: tiny offline models, tokenizers, model directories and training settings.

Nothing here imports torch (or anything that does) at import time: the env and strategy tests run without it. Each
fixture imports what it needs when it is first used and skips its tests when that is not installed.

The models and tokenizers are shared (session-scoped): a test may read, run and save them, never change them (no
``get_peft_model`` on them, no in-place weight edits, no ``.to(dtype)``); a test that needs a model of its own calls
:func:`moralgym.agents.llm.testing.tiny_model_and_tokenizer` itself.
"""

from __future__ import annotations

from types import MappingProxyType

import pytest

#: The tiny training run's settings: a few episodes of a few rounds on two envs, a rank-4 LoRA, no dropout (so runs
#: repeat exactly), a high learning rate (so one update visibly changes the adapter), no checkpoints, no progress bar,
#: one thread. Modules override what they test (``{**tiny_training_overrides, "save_every": 1}``).
TINY_TRAINING_OVERRIDES = MappingProxyType(
    dict(
        num_episodes=2,
        num_envs=2,
        num_rounds=3,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        value_head_dropout=0.0,
        answer_prefix="action",
        learning_rate=0.01,
        ppo_epochs=1,
        gradient_accumulation_steps=1,
        progress_bar=False,
        save_every=0,
        torch_num_threads=1,
    )
)


@pytest.fixture(scope="session")
def tiny_training_overrides() -> MappingProxyType:
    """:data:`TINY_TRAINING_OVERRIDES`, read-only: training-config fields for a run of seconds on the tiny model."""
    return TINY_TRAINING_OVERRIDES


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for the module (2 shared cores; tiny models gain nothing from more), restored after.

    Opt in per module with ``pytestmark = pytest.mark.usefixtures("one_thread")``, or per test by naming it.
    """
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_lm():
    """``(model, tokenizer)`` from ``tiny_model_and_tokenizer(seed=0)``: the training tests' tiny Llama (tied
    embeddings, grouped-query attention) and byte-level tokenizer. Shared: do not modify."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from moralgym.agents.llm.testing import tiny_model_and_tokenizer

    return tiny_model_and_tokenizer(seed=0)


@pytest.fixture(scope="session")
def tiny_word_tokenizer():
    """``tiny_tokenizer()``: word level, every action token one token, ChatML-style template. Shared: do not modify."""
    pytest.importorskip("transformers")
    from moralgym.agents.llm.testing import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_lm):
    """:func:`tiny_lm` saved with ``save_pretrained`` (model and tokenizer), so CLIs can load it by path."""
    directory = tmp_path_factory.mktemp("tiny_model")
    model, tokenizer = tiny_lm
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_gemma2_dir(tmp_path_factory):
    """A tiny random Gemma-2 and its tokenizer (Gemma's chat template) saved to a directory: the paper configs'
    model in miniature, loadable by path, 4-bit included. See :func:`moralgym.agents.llm.testing.tiny_gemma2_dir`."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from moralgym.agents.llm.testing import tiny_gemma2_dir

    return tiny_gemma2_dir(tmp_path_factory.mktemp("tiny_gemma2"))
