"""``load_causal_lm``: one entry point for every form a user holds a model in.

Accepts ``"default"`` (the embedded SmolLM2-135M-Instruct, see :mod:`moralgym.agents.llm.default_model`), a hub id, a
local directory, or an already-loaded model (with its tokenizer), optionally with 4-bit quantisation and a PEFT
adapter. The tokenizer is always set up for batched decoding: left padding, and EOS as pad token when it has none
(the paper does the same for Gemma-2).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["load_causal_lm", "one_cpu_4bit_kernel", "resolve_dtype", "prepare_tokenizer"]

_DTYPES = {
    "auto": "auto",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp32": "float32",
    "float32": "float32",
    "fp16": "float16",
    "float16": "float16",
}


def resolve_dtype(dtype: Any) -> Any:
    """``None``/"auto"/"bf16"/"fp32"/"fp16" or a ``torch.dtype`` -> what ``from_pretrained(dtype=...)`` accepts."""
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        name = _DTYPES[dtype.lower()]
        return name if name == "auto" else getattr(torch, name)
    raise ValueError(f"dtype must be one of {sorted(_DTYPES)} or a torch.dtype, got {dtype!r}")


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding (so the last position of every row is its real last token) and a pad token."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                "the tokenizer has neither a pad token nor an EOS token to pad with; set tokenizer.pad_token"
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _quantization_config(dtype: Any) -> Any:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "load_in_4bit=True needs bitsandbytes; install it with `pip install moralgym[quantization]`"
        ) from error
    import torch
    from transformers import BitsAndBytesConfig

    compute = dtype if isinstance(dtype, torch.dtype) else torch.bfloat16
    # The paper's setting: NF4, bf16 compute, no double quantisation.
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def load_causal_lm(
    model: Any = "default",
    tokenizer: Any = None,
    *,
    dtype: Any = None,
    load_in_4bit: bool = False,
    adapter: str | os.PathLike | None = None,
    adapter_name: str = "default",
    device: Any = None,
    verbose: bool = True,
) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)`` ready for :class:`~moralgym.agents.llm.policy.LLMPolicy`.

    Args:
        model: ``"default"``, a hub id, a local path, or a loaded ``PreTrainedModel`` / ``PeftModel``.
        tokenizer: needed only with a loaded model whose tokenizer cannot be found from ``name_or_path``.
        dtype: ``None`` (the checkpoint's dtype), ``"auto"``, ``"bf16"``, ``"fp32"``, ``"fp16"`` or a ``torch.dtype``.
            bf16 works on CPU too (half the memory; slower than fp32 on CPUs without AMX).
        load_in_4bit: quantise to NF4 with bitsandbytes (``pip install moralgym[quantization]``).
        adapter: a PEFT adapter directory to load on top (``PeftModel.from_pretrained``) under ``adapter_name``.
        device: where to put the model (``"cpu"``, ``"cuda"``...); ``None`` keeps CPU (``device_map="auto"``
            for 4-bit).

    Raises:
        ValueError: an unknown model name (neither a directory nor loadable from the hub) or a bad dtype.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

    torch_dtype = resolve_dtype(dtype)
    if isinstance(model, (str, os.PathLike)):
        name = os.fspath(model)
        if name == "default":
            if load_in_4bit:
                from moralgym.agents.llm.default_model import ensure_default_model

                name = str(ensure_default_model(verbose))
            else:
                from moralgym.agents.llm.default_model import load_default_model

                loaded, tok = load_default_model(dtype=torch_dtype, verbose=verbose)
                name = None
        if name is not None:
            kwargs: dict[str, Any] = {}
            if torch_dtype is not None:
                kwargs["dtype"] = torch_dtype
            if load_in_4bit:
                kwargs["quantization_config"] = _quantization_config(torch_dtype)
                kwargs["device_map"] = device if device is not None else "auto"
            try:
                tok = AutoTokenizer.from_pretrained(name)
                loaded = AutoModelForCausalLM.from_pretrained(name, **kwargs)
            except (OSError, ValueError) as error:
                where = "local directory" if os.path.isdir(name) else "hub id"
                raise ValueError(
                    f"could not load model {name!r} as a {where}: {error}\n"
                    "Use 'default' (the embedded SmolLM2-135M-Instruct), a Hugging Face hub id, or a local directory "
                    "written by save_pretrained."
                ) from error
    elif isinstance(model, PreTrainedModel) or hasattr(model, "base_model"):
        loaded = model
        tok = tokenizer
        if tok is None:
            source = getattr(getattr(model, "config", None), "name_or_path", None)
            if not source:
                raise ValueError("pass tokenizer= with an already-loaded model whose config has no name_or_path")
            tok = AutoTokenizer.from_pretrained(source)
    else:
        raise TypeError(f"model must be 'default', a hub id, a path or a loaded model, got {type(model).__name__}")
    if tokenizer is not None:
        tok = tokenizer

    if adapter is not None:
        from peft import PeftModel

        loaded = PeftModel.from_pretrained(loaded, os.fspath(adapter), adapter_name=adapter_name)
    if device is not None and not load_in_4bit:
        loaded = loaded.to(device)
    if (
        torch_dtype is not None
        and torch_dtype != "auto"
        and not load_in_4bit
        and not isinstance(model, (str, os.PathLike))
    ):
        loaded = loaded.to(torch_dtype)
    if load_in_4bit:
        one_cpu_4bit_kernel(loaded)
    loaded.eval()
    return loaded, prepare_tokenizer(tok)


def one_cpu_4bit_kernel(model: Any) -> int:
    """Make every bitsandbytes ``Linear4bit`` of ``model`` compute with one kernel on CPU; returns how many.

    On a CPU with AVX512-BF16, bitsandbytes (0.50 here) repacks a ``Linear4bit``'s weight on its first eval-mode, no-grad
    forward and from then on uses a packed kernel that rounds differently from the dequantise-and-matmul path of a
    train-mode or gradient forward; every ``state_dict()`` call (a checkpoint, a weight hash) unpacks it again. The
    log-probs of a rollout then differ from the update's at the same weights (first-epoch PPO ratio != 1) and depend
    on when the last checkpoint was written, so a resumed run diverges from an uninterrupted one. Turning the
    packing off keeps every forward on the dequantise path. GPUs are unaffected (the packing is CPU-only).
    """
    count = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count
