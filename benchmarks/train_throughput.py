"""Training throughput of the PPO loop with the embedded default model (SmolLM2-135M-Instruct) on this machine.

Measures, after ``--warmup`` episodes: decisions per second, seconds per PPO update (episode), the share of time
spent generating (rollout), scoring (reference + old log-probs) and updating (forward/backward + Adam), and the
peak resident memory. Prints a table and writes JSON.

    python benchmarks/train_throughput.py --episodes 4 --num_envs 16 --out train_throughput.json
    python benchmarks/train_throughput.py --tiny        # seconds-long smoke run on a random tiny model
    python benchmarks/train_throughput.py --model google/gemma-2-2b-it --load_in_4bit --dtype bfloat16 \
        --lora_r 64 --answer_prefix ""                   # the paper's setting, on a GPU
    python benchmarks/train_throughput.py --random_gemma2_2b --out gemma2_2b_gpu.json   # the same, offline

``--random_gemma2_2b`` builds Gemma-2-2b's architecture (google/gemma-2-2b's published configuration: 26 layers,
hidden 2304, 8 query / 4 KV heads of 256, MLP 9216, vocabulary 256,000, sliding window 4096, soft-capping) with
random weights, saves it and loads it like a checkpoint in 4-bit NF4 with LoRA r 64 on the paper's batch (one game
of 5 rounds per update, no answer prefix): a random model costs exactly what the trained one costs, and the hub is
not needed. Token ids come from the default model's tokenizer (prompts of about the same length as Gemma's). It
adds the projected wall time of the paper's 1000-episode run. ``--gemma2_layers`` shrinks the model for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4, help="measured episodes (after warm-up)")
    parser.add_argument("--warmup", type=int, default=1, help="episodes not measured (first forward passes)")
    parser.add_argument("--num_envs", type=int, default=16)
    parser.add_argument("--num_rounds", type=int, default=5)
    parser.add_argument("--max_new_tokens", type=int, default=2)
    parser.add_argument("--lora_r", type=int, default=16)
    parser.add_argument("--ppo_epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no_dedup", action="store_true", help="one row per sample in the update (for comparison)")
    parser.add_argument("--tiny", action="store_true", help="random tiny model instead of the default model")
    parser.add_argument("--model", default="default", help="'default', a hub id or a local path")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto")
    parser.add_argument("--load_in_4bit", action="store_true", help="NF4 base weights (bitsandbytes)")
    parser.add_argument("--answer_prefix", default="action", help="assistant turn pre-filled ('' = the paper's)")
    parser.add_argument("--random_gemma2_2b", action="store_true", help="Gemma-2-2b architecture, random weights")
    parser.add_argument("--gemma2_layers", type=int, default=26, help="layers of --random_gemma2_2b (smoke tests)")
    parser.add_argument("--paper_episodes", type=int, default=1000, help="episodes of the projected paper run")
    parser.add_argument("--out", default="train_throughput.json")
    args = parser.parse_args(argv)
    if args.random_gemma2_2b:  # the paper's setting: 4-bit, LoRA r 64, one game of 5 rounds, bare answer
        args.load_in_4bit, args.dtype, args.lora_r, args.answer_prefix, args.num_envs = True, "bfloat16", 64, "", 1

    import torch

    from moralgym.training.config import TrainingConfig
    from moralgym.training.ppo import MoralPPOTrainer

    if args.threads:
        torch.set_num_threads(args.threads)
    model = tokenizer = None
    if args.tiny:
        from moralgym.agents.llm.testing import tiny_model_and_tokenizer

        model, tokenizer = tiny_model_and_tokenizer()
    with tempfile.TemporaryDirectory() as output_dir:
        if args.random_gemma2_2b:
            args.model = random_gemma2_2b(f"{output_dir}/gemma2-2b-random", args.gemma2_layers)
        config = TrainingConfig(
            output_dir=output_dir,
            num_episodes=args.warmup + args.episodes,
            num_envs=args.num_envs,
            num_rounds=args.num_rounds,
            model_name_or_path=args.model,
            dtype=args.dtype,
            load_in_4bit=args.load_in_4bit,
            answer_prefix=args.answer_prefix,
            max_new_tokens=args.max_new_tokens,
            lora_r=args.lora_r,
            lora_alpha=2 * args.lora_r,
            lora_dropout=0.0,
            value_head_dropout=0.0,
            learning_rate=3e-4,
            ppo_epochs=args.ppo_epochs,
            gradient_accumulation_steps=1,
            dedup=not args.no_dedup,
            progress_bar=False,
            plot=False,
            save_every=0,
        )
        started = time.perf_counter()
        trainer = MoralPPOTrainer(config, model, tokenizer)
        load_s = time.perf_counter() - started
        trainer.prepare()
        episodes = []
        for _ in range(config.num_episodes):
            metrics = trainer.train_episode()
            episodes.append(metrics)
        trainer.close_loggers()
    measured = episodes[args.warmup :]
    total = sum(m["time/episode_s"] for m in measured)
    parts = {
        "generate": sum(m["time/generate_s"] for m in measured),
        "scoring": sum(m["time/scoring_s"] for m in measured),
        "update": sum(m["time/update_s"] for m in measured),
    }
    decisions = sum(m["ppo/samples"] for m in measured)
    result = {
        "model": "tiny-random"
        if args.tiny
        else ("default (SmolLM2-135M-Instruct)" if args.model == "default" else args.model),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "load_seconds": round(load_s, 2),
        "episodes_measured": len(measured),
        "decisions_per_second": round(decisions / total, 2),
        "seconds_per_update": round(total / len(measured), 2),
        "time_share": {k: round(v / total, 3) for k, v in parts.items()},
        "distinct_contexts_per_update": round(sum(m["ppo/distinct_contexts"] for m in measured) / len(measured), 1),
        "samples_per_update": measured[0]["ppo/samples"],
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if torch.cuda.is_available():
        result["device"] = torch.cuda.get_device_name()
        result["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if args.random_gemma2_2b:
        result["model"] = f"Gemma-2-2b architecture, random weights, {args.gemma2_layers} layers, 4-bit NF4, LoRA r 64"
        result["projected_paper_run_hours"] = round(args.paper_episodes * result["seconds_per_update"] / 3600, 2)
    print(f"{result['model']} on {result['machine']}")
    print(
        f"  {result['samples_per_update']} decisions/update ({config.num_envs} games x {config.num_rounds} rounds), "
        f"{result['distinct_contexts_per_update']} distinct contexts"
    )
    print(f"  decisions/s        {result['decisions_per_second']}")
    print(f"  s per PPO update   {result['seconds_per_update']}")
    print("  time share         " + ", ".join(f"{k} {v:.0%}" for k, v in result["time_share"].items()))
    print(f"  peak memory        {result['peak_memory_mib']} MiB")
    if "peak_gpu_memory_mib" in result:
        print(f"  peak GPU memory    {result['peak_gpu_memory_mib']} MiB on {result['device']}")
    if "projected_paper_run_hours" in result:
        print(f"  {args.paper_episodes} episodes     {result['projected_paper_run_hours']} h (projected)")
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=2)
    return result


def random_gemma2_2b(directory: str, layers: int = 26) -> str:
    """Save Gemma-2-2b's architecture with random bf16 weights and the default model's tokenizer to ``directory``."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from moralgym.agents.llm.loading import load_causal_lm

    _, tokenizer = load_causal_lm("default", verbose=False)
    config = Gemma2Config(  # google/gemma-2-2b's config.json
        vocab_size=256000,
        hidden_size=2304,
        intermediate_size=9216,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=256,
        query_pre_attn_scalar=256,
        hidden_activation="gelu_pytorch_tanh",
        sliding_window=4096,
        max_position_embeddings=8192,
        final_logit_softcapping=30.0,
        attn_logit_softcapping=50.0,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dtype="bfloat16",
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Gemma2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    del model
    return directory


if __name__ == "__main__":
    main()
