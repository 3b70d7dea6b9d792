"""Tiny random-weight models for tests and smoke runs: a 2-layer Llama and a byte-level BPE tokenizer trained in
milliseconds on the game prompts, with a ChatML chat template. Nothing is downloaded."""

from __future__ import annotations

import functools
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@functools.lru_cache(maxsize=4)
def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from moralgym.agents.llm.prompts import PromptBuilder

    texts = []
    for tokens in ("action12", "action34"):
        builder = PromptBuilder(tokens=tokens)
        for game in ("ipd", "stag_hunt", "chicken", "bach_or_stravinsky", "defective_coordination"):
            for own in (0, 1):
                for other in (0, 1):
                    for bits in ((0, 0), (1, 1)):
                        texts.append(builder.user_text(game, [own, other], bits))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer.to_str()


def tiny_tokenizer(vocab_size: int = 512) -> Any:
    """A fast tokenizer that round-trips any text exactly (byte level), with a ChatML template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        pad_token="<pad>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def tiny_model(vocab_size: int, seed: int = 0, hidden_size: int = 32, layers: int = 2) -> Any:
    """A random Llama small enough for unit tests (a few thousand parameters per layer), float32, eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=1,
    )
    model = LlamaForCausalLM(config)
    return model.eval()


def tiny_model_and_tokenizer(seed: int = 0, **model_kwargs: Any) -> tuple[Any, Any]:
    tokenizer = tiny_tokenizer()
    return tiny_model(len(tokenizer), seed=seed, **model_kwargs), tokenizer
