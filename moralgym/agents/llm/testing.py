"""Tiny, offline stand-ins for a causal LM and its tokenizer, for tests and smoke runs that must not download.

Two tokenizers, both trained in milliseconds on moralgym's own prompts, each with a ChatML-style chat template:

- :func:`tiny_tokenizer`, word level: every action token (``action1``, ``X``...) is a single token and prompts are
  short, which makes prompt and policy tests easy to read;
- :func:`tiny_byte_tokenizer`, byte-level BPE: decodes any generated ids back to text and re-encodes it exactly,
  as training needs (responses are decoded, parsed and re-tokenised), like a real model's tokenizer.

:func:`tiny_causal_lm` is a randomly initialised 2-layer Llama that runs a batch in milliseconds while exercising
the same code paths (chat template, left padding, KV cache, grouped-query attention, LoRA) as a real model;
:func:`tiny_model_and_tokenizer` pairs it with the byte-level tokenizer (the training tests' setting).

:func:`tiny_gemma2_dir` writes a tiny random Gemma-2 (sliding-window and global layers, attention and final logit
soft-capping, ``query_pre_attn_scalar``) with a byte-level tokenizer carrying Gemma's chat template (which, like
Gemma-2's, rejects a system role) to a local model directory: the paper configs' model, loadable by path, 4-bit
included.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moralgym.agents.llm.prompts import ACTION_TOKENS, PERSONAS, PHRASINGS, TABLE_ORDERS, PromptBuilder
from moralgym.envs.games import PAPER_GAMES

__all__ = [
    "GEMMA_CHAT_TEMPLATE",
    "ForcedTokenLM",
    "tiny_byte_tokenizer",
    "tiny_causal_lm",
    "tiny_gemma2",
    "tiny_gemma2_dir",
    "tiny_gemma2_tokenizer",
    "tiny_model_and_tokenizer",
    "tiny_tokenizer",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|> {{ message['role'] }} {{ message['content'] }} <|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)
SPECIAL_TOKENS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
#: google/gemma-2-2b-it's chat template, verbatim: no system role (it raises), roles must alternate, "model" turns.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
GEMMA_SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"]


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


def _byte_level_corpus() -> Iterable[str]:
    for tokens in ("action12", "action34"):
        builder = PromptBuilder(tokens=tokens)
        for game in PAPER_GAMES:
            for own in (0, 1):
                for other in (0, 1):
                    for bits in ((0, 0), (1, 1)):
                        yield builder.user_text(game, [own, other], bits)


@lru_cache(maxsize=8)
def _tokenizer_json(level: str, special_tokens: tuple[str, ...], vocab_size: int | None = None) -> str:
    """The one tokenizer builder: a backend trained on moralgym's prompts, as ``tokenizers`` JSON (cached).

    ``level`` ``"word"``: a word-level vocabulary (whitespace split, words joined with spaces) over every built-in
    prompt variant, ``vocab_size`` unused; ``"byte"``: a byte-level BPE of ``vocab_size`` tokens trained on the
    paper prompts, which round-trips any text. ``special_tokens`` come first, ids 0, 1, ...
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if level == "word":
        backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
        trainer = trainers.WordLevelTrainer(special_tokens=list(special_tokens), show_progress=False)
        texts = _corpus()
    elif level == "byte":
        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(special_tokens),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        texts = _byte_level_corpus()
    else:
        raise ValueError(f"level must be 'word' or 'byte', got {level!r}")
    backend.train_from_iterator(texts, trainer=trainer)
    return backend.to_str()


def _fast_tokenizer(tokenizer_json: str, chat_template: str | None, **special_tokens: str) -> Any:
    """A left-padding ``PreTrainedTokenizerFast`` over ``tokenizer_json`` with ``chat_template`` (None: none)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json), **special_tokens)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.padding_side = "left"
    return tokenizer


def tiny_tokenizer(chat_template: bool = True) -> Any:
    """A ``PreTrainedTokenizerFast`` with a word-level vocabulary covering every built-in prompt variant."""
    return _fast_tokenizer(
        _tokenizer_json("word", tuple(SPECIAL_TOKENS)),
        CHAT_TEMPLATE if chat_template else None,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )


def tiny_byte_tokenizer(vocab_size: int = 512) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` that round-trips any text exactly, with a ChatML template."""
    return _fast_tokenizer(
        _tokenizer_json("byte", ("<pad>", "<|im_start|>", "<|im_end|>"), vocab_size),
        CHATML_TEMPLATE,
        pad_token="<pad>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
    )


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


def tiny_gemma2_tokenizer(vocab_size: int = 512) -> Any:
    """:func:`tiny_byte_tokenizer`'s byte-level BPE with Gemma's special tokens (``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2,
    ``<start_of_turn>``, ``<end_of_turn>``) and Gemma-2's chat template, which rejects a system message."""
    return _fast_tokenizer(
        _tokenizer_json("byte", tuple(GEMMA_SPECIAL_TOKENS), vocab_size),
        GEMMA_CHAT_TEMPLATE,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
    )


def tiny_gemma2(
    vocab_size: int,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    heads: tuple[int, int] = (4, 2),
    sliding_window: int = 512,
    special_ids: tuple[int, int, int] = (0, 2, 1),
    sharpen: float = 50.0,
) -> Any:
    """A randomly initialised ``Gemma2ForCausalLM``, deterministic for a given ``seed``, in eval mode.

    Gemma-2's architecture in miniature: layers alternate sliding-window and global attention (``layer_types``),
    attention logits are soft-capped at 50 and final logits at 30, queries are scaled by ``query_pre_attn_scalar``
    (the head dimension), embeddings are tied. ``sliding_window`` defaults to more than any moralgym prompt, so the
    window never cuts a context. ``special_ids``: (pad, bos, eos). ``sharpen`` scales the final norm so the logits
    reach the soft-cap (the default 50 gives raw logits of about 20, capped by tanh; random init gives near-uniform
    ones; 1.0 leaves the init alone).
    """
    from transformers import Gemma2Config, Gemma2ForCausalLM

    pad, bos, eos = special_ids
    head_dim = hidden_size // heads[0]
    config = Gemma2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads[0],
        num_key_value_heads=heads[1],
        head_dim=head_dim,
        query_pre_attn_scalar=head_dim,
        sliding_window=sliding_window,
        layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
        final_logit_softcapping=30.0,
        attn_logit_softcapping=50.0,
        max_position_embeddings=2 * sliding_window,
        tie_word_embeddings=True,
        pad_token_id=pad,
        bos_token_id=bos,
        eos_token_id=eos,
    )
    torch.manual_seed(seed)
    model = Gemma2ForCausalLM(config)
    if sharpen != 1.0:
        with torch.no_grad():  # Gemma's RMSNorm multiplies by (1 + weight)
            model.model.norm.weight.fill_(sharpen - 1.0)
    return model.eval()


def tiny_gemma2_dir(path: str | os.PathLike, seed: int = 0, **model_kwargs: Any) -> Path:
    """Write :func:`tiny_gemma2` and :func:`tiny_gemma2_tokenizer` to ``path`` with ``save_pretrained`` (safetensors,
    config, tokenizer with its chat template) and return it: a local stand-in for ``google/gemma-2-2b-it`` that
    ``load_causal_lm(path, load_in_4bit=True)`` and ``model_name_or_path`` accept."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_gemma2_tokenizer()
    model = tiny_gemma2(len(tokenizer), seed=seed, **model_kwargs)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


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
