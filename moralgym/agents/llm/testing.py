"""Tiny, offline stand-ins for a causal LM and its tokenizer, for tests and smoke runs that must not download.

Two tokenizers, both trained in milliseconds on moralgym's own prompts, each with a ChatML-style chat template:

- :func:`tiny_tokenizer`, word level: every action token (``action1``, ``X``...) is a single token and prompts are
  short, which makes prompt and policy tests easy to read;
- :func:`tiny_byte_tokenizer`, byte-level BPE: decodes any generated ids back to text and re-encodes it exactly,
  as training needs (responses are decoded, parsed and re-tokenised), like a real model's tokenizer.

:func:`tiny_causal_lm` is a randomly initialised 2-layer Llama that runs a batch in milliseconds while exercising
the same code paths (chat template, left padding, KV cache, grouped-query attention, LoRA) as a real model;
:func:`tiny_model_and_tokenizer` pairs it with the byte-level tokenizer (the training tests' setting).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from moralgym.agents.llm.prompts import ACTION_TOKENS, PERSONAS, PHRASINGS, TABLE_ORDERS, PromptBuilder
from moralgym.envs.games import PAPER_GAMES

__all__ = ["ForcedTokenLM", "tiny_byte_tokenizer", "tiny_causal_lm", "tiny_model_and_tokenizer", "tiny_tokenizer"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|> {{ message['role'] }} {{ message['content'] }} <|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)
SPECIAL_TOKENS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus() -> Iterable[str]:
    for tokens in ACTION_TOKENS:
        for phrasing in PHRASINGS:
            for persona in (None, *PERSONAS):
                builder = PromptBuilder(tokens=tokens, phrasing=phrasing, persona=persona)
                for game in PAPER_GAMES:
                    for own in range(3):
                        for other in range(3):
                            yield builder.user_text(game, [own, other], (0, 1))
    yield "user assistant system banana gibberish"
    yield " ".join(TABLE_ORDERS)


@lru_cache(maxsize=1)
def _backend_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    backend.train_from_iterator(_corpus(), trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS))
    return backend.to_str()


def tiny_tokenizer(chat_template: bool = True) -> Any:
    """A ``PreTrainedTokenizerFast`` with a word-level vocabulary covering every built-in prompt variant."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_backend_json()),
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


@lru_cache(maxsize=4)
def _byte_level_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = []
    for tokens in ("action12", "action34"):
        builder = PromptBuilder(tokens=tokens)
        for game in PAPER_GAMES:
            for own in (0, 1):
                for other in (0, 1):
                    for bits in ((0, 0), (1, 1)):
                        texts.append(builder.user_text(game, [own, other], bits))
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return backend.to_str()


def tiny_byte_tokenizer(vocab_size: int = 512) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` that round-trips any text exactly, with a ChatML template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_byte_level_json(vocab_size)),
        pad_token="<pad>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def tiny_causal_lm(
    vocab_size: int,
    seed: int = 0,
    hidden_size: int = 16,
    layers: int = 2,
    heads: tuple[int, int] = (2, 1),
    special_ids: tuple[int, int, int] = (1, 2, 3),
    tie_word_embeddings: bool = False,
    sharpen: float = 50.0,
) -> Any:
    """A randomly initialised Llama with ``vocab_size`` tokens, deterministic for a given ``seed``, in eval mode.

    ``heads``: (query, key/value) heads, grouped-query by default. ``special_ids``: (pad, bos, eos) ids of the
    tokenizer it goes with. ``sharpen`` scales the output layer: random init gives near-uniform next-token
    distributions, and sharper ones make samples differ between prefixes (1.0 leaves the init alone).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    pad, bos, eos = special_ids
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads[0],
        num_key_value_heads=heads[1],
        max_position_embeddings=1024,
        tie_word_embeddings=tie_word_embeddings,
        pad_token_id=pad,
        bos_token_id=bos,
        eos_token_id=eos,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if sharpen != 1.0:
        with torch.no_grad():
            model.lm_head.weight.mul_(sharpen)
    return model.eval()


def tiny_model_and_tokenizer(seed: int = 0, **model_kwargs: Any) -> tuple[Any, Any]:
    """The training tests' pair: :func:`tiny_byte_tokenizer` and a 32-wide, 4/2-head, tied-embedding tiny Llama."""
    tokenizer = tiny_byte_tokenizer()
    settings = dict(hidden_size=32, heads=(4, 2), special_ids=(0, 1, 2), tie_word_embeddings=True, sharpen=1.0)
    return tiny_causal_lm(len(tokenizer), seed=seed, **{**settings, **model_kwargs}), tokenizer


class ForcedTokenLM(torch.nn.Module):
    """Wraps a causal LM and adds ``bias`` to its logits (e.g. to make it always answer one chosen token)."""

    def __init__(self, model: Any, bias: torch.Tensor | np.ndarray) -> None:
        super().__init__()
        self.inner = model
        self.register_buffer("bias", torch.as_tensor(bias, dtype=torch.float32))
        self.config = model.config

    def forward(self, **kwargs: Any) -> Any:
        out = self.inner(**kwargs)
        out.logits = out.logits + self.bias.to(out.logits.dtype)
        return out

    @classmethod
    def always(cls, model: Any, token_id: int, strength: float = 1e4) -> ForcedTokenLM:
        bias = torch.zeros(model.config.vocab_size)
        bias[token_id] = strength
        return cls(model, bias)
