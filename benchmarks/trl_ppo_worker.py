"""The paper's stack side of ``benchmarks/trl_ppo_comparison.py``: TRL 0.11.4's ``PPOTrainer`` on a LoRA value-head
model, run by the *other* Python environment (torch, transformers 4.46, trl 0.11.4, peft, accelerate, rich).

Reads one JSON object per line on stdin: ``{"queries": [[ids]], "responses": [[ids]], "scores": [float]}`` (one
update's decisions, as the moralgym side trained on them), runs ``PPOTrainer.step`` on them and answers one JSON
line: ``{"seconds": ..., "peak_rss_mib": ...}``. The model is built once, from the first line's ``model_dir``.

Why the config and tokenizer are built by hand: transformers 4.46 reads a ``config.json`` written by transformers 5
with the rope base under ``rope_parameters``, which it does not know, and silently falls back to ``rope_theta``
10000; and its ``tokenizer_config.json`` names a tokenizer class (``TokenizersBackend``) 4.46 does not have.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def build_trainer(model_dir: str, settings: dict) -> object:
    import torch
    from peft import LoraConfig
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import AutoModelForCausalLMWithValueHead, PPOConfig, PPOTrainer

    torch.manual_seed(settings["seed"])
    raw = json.loads(Path(model_dir, "config.json").read_text())
    rope = raw.get("rope_parameters") or {}
    config = LlamaConfig(
        **{k: raw[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers")},
        **{k: raw[k] for k in ("num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings")},
        **{k: raw[k] for k in ("rms_norm_eps", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")},
        rope_theta=rope.get("rope_theta", raw.get("rope_theta", 10000.0)),
        hidden_act=raw["hidden_act"],
    )
    base = LlamaForCausalLM.from_pretrained(model_dir, config=config, torch_dtype=torch.float32)
    # The tokenizer_config.json of transformers 5 names a class 4.46 lacks; the tokenizer itself is tokenizer.json.
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(Path(model_dir, "tokenizer.json")))
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(raw["pad_token_id"])
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(raw["eos_token_id"])
    lora = LoraConfig(
        r=settings["lora_r"],
        lora_alpha=settings["lora_alpha"],
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    model = AutoModelForCausalLMWithValueHead.from_pretrained(base, peft_config=lora, summary_dropout_prob=0.0)
    ppo_config = PPOConfig(
        batch_size=settings["batch_size"],
        mini_batch_size=settings["mini_batch_size"],
        gradient_accumulation_steps=settings["batch_size"] // settings["mini_batch_size"],
        ppo_epochs=1,
        learning_rate=settings["learning_rate"],
        init_kl_coef=settings["init_kl_coef"],
        # trl 0.11.4's score scaling fails on its own running std (a float, then ``.to()``-ed): off; it costs nothing
        # measurable either way (one mean and std of 160 numbers).
        use_score_scaling=False,
        seed=settings["seed"],
    )
    return PPOTrainer(ppo_config, model, ref_model=None, tokenizer=tokenizer)


def main() -> None:
    import torch

    trainer = None
    for line in sys.stdin:
        request = json.loads(line)
        if trainer is None:
            torch.set_num_threads(request["settings"]["threads"])
            trainer = build_trainer(request["model_dir"], request["settings"])
        queries = [torch.tensor(q, dtype=torch.long) for q in request["queries"]]
        responses = [torch.tensor(r, dtype=torch.long) for r in request["responses"]]
        scores = [torch.tensor(float(s)) for s in request["scores"]]
        started = time.perf_counter()
        trainer.step(queries, responses, scores)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "peak_rss_mib": peak}), flush=True)


if __name__ == "__main__":
    main()
