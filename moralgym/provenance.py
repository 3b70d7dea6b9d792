"""What produced a run: the software stack (:func:`versions`) and the base model's weights (:func:`weights_sha256`).

``moralgym train`` records both in every ``summary.json`` under ``"provenance"``, so a figure can be traced to the
exact stack and weights behind it (the pinned, tested stack is ``constraints.txt``: ``pip install -c constraints.txt``).
"""

from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata
from typing import Any

__all__ = ["PACKAGES", "provenance", "versions", "weights_sha256"]

#: The distributions whose versions decide a run's numbers (a missing one is recorded as ``None``).
PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "numpy", "moralgym")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """``{"python": ..., "torch": ..., ..., "moralgym": ...}``: installed versions, ``None`` where not installed."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        found[name] = _version(name)
    if found["moralgym"] is None and "moralgym" in sys.modules:  # running from a source tree, not installed
        found["moralgym"] = getattr(sys.modules["moralgym"], "__version__", None)
    return found


def _base_key(key: str) -> str | None:
    """A PEFT state-dict key -> the plain model's key; ``None`` for adapter weights (LoRA, ``modules_to_save``)."""
    parts = key.split(".")
    if any(part.startswith("lora_") or part == "modules_to_save" for part in parts):
        return None
    if key.startswith("base_model.model."):
        parts = parts[2:]
    return ".".join(part for part in parts if part not in ("base_layer", "original_module"))


def weights_sha256(model: Any) -> str | None:
    """SHA-256 of the *base* model's weights, the same for a plain model and for it wrapped with PEFT adapters.

    It hashes, for every ``state_dict()`` entry in sorted key order (adapter weights skipped, PEFT prefixes and
    ``base_layer`` removed from the names): the key, the dtype, the shape and the raw bytes of the tensor. So it
    changes with any weight, its dtype or 4-bit quantisation, and not with the adapters trained on top. About a
    second for a 135M-parameter model. ``None`` for an object without ``state_dict`` or with meta tensors.
    """
    import torch

    state = getattr(model, "state_dict", None)
    if state is None:
        return None
    entries: dict[str, Any] = {}
    for key, tensor in state().items():
        base = _base_key(key)
        if base is not None and isinstance(tensor, torch.Tensor):
            entries[base] = tensor
    digest = hashlib.sha256()
    for key in sorted(entries):
        tensor = entries[key]
        if tensor.is_meta:
            return None
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(data.view(torch.uint8).numpy())
    return digest.hexdigest()


def provenance(model: Any = None) -> dict[str, Any]:
    """``{"versions": versions(), "platform": ..., "model": name_or_path, "weights_sha256": ...}`` (model optional)."""
    record: dict[str, Any] = {"versions": versions(), "platform": platform.platform()}
    if model is not None:
        config = getattr(model, "config", None)
        record["model"] = getattr(config, "name_or_path", None) or None
        record["weights_sha256"] = weights_sha256(model)
    return record
