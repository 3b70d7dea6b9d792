"""Tiny, offline stand-ins for a causal LM and its tokenizer, for tests and examples that must not download.

Why a word-level tokenizer trained on moralgym's own prompts: every action token (``action1``, ``X``...) is then a
single token, prompts are short, and a 2-layer model with a 16-wide hidden state runs a batch in milliseconds,
while exercising the same code paths (chat template, left padding, KV cache) as a real model.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from moralgym.agents.llm.prompts import ACTION_TOKENS, PERSONAS, PHRASINGS, TABLE_ORDERS, PromptBuilder
from moralgym.envs.games import PAPER_GAMES

__all__ = ["ForcedTokenLM", "tiny_causal_lm", "tiny_tokenizer"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|> {{ message['role'] }} {{ message['content'] }} <|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)
SPECIAL_TOKENS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]


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


def tiny_causal_lm(vocab_size: int, seed: int = 0, hidden_size: int = 16, layers: int = 2) -> Any:
    """A randomly initialised Llama with ``vocab_size`` tokens (deterministic for a given ``seed``)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Random init gives near-uniform next-token distributions; sharpen them so samples differ between prefixes.
    with torch.no_grad():
        model.lm_head.weight.mul_(50.0)
    return model.eval()


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
