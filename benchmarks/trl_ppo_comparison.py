"""Seconds per PPO update for the same decisions: moralgym's trainer vs the paper's own stack (TRL 0.11.4).

The paper (Tennant, Hailes, Musolesi, ICLR 2025) trained with TRL 0.11's ``PPOTrainer`` on a LoRA value-head
model; TRL has since removed it, and moralgym's PPO is its own. This script runs both on the quick start's updates,
alternately, in one invocation, so both sides see the same machine load:

1. moralgym plays and trains one episode of ``configs/quickstart.yaml`` (160 decisions) and times its update
   (scoring + the PPO step: ``time/scoring_s + time/update_s``);
2. the same 160 (query, response, reward) triples go to a worker process in the second environment
   (``benchmarks/trl_ppo_worker.py``), which times ``PPOTrainer.step`` on them with the same LoRA (r, alpha, all
   linear layers), learning rate and KL coefficient (trl 0.11.4's score scaling is broken: off), one epoch, and ``mini_batch_size``
   samples per backward pass accumulated to ONE optimizer step (160 in one minibatch does not fit in 23 GiB);
3. repeat for ``--updates`` episodes. Each side's peak RSS is its own process's.

The second environment needs ``torch``, ``transformers==4.46.*``, ``trl==0.11.4``, ``peft``, ``accelerate`` and
``rich`` (trl 0.11.4 imports it)::

    python -m venv /opt/trl011 && /opt/trl011/bin/pip install torch==2.13.0 transformers==4.46.3 trl==0.11.4 \\
        peft==0.13.2 accelerate==1.0.1 rich "numpy<2.3"
    python benchmarks/trl_ppo_comparison.py --trl_python /opt/trl011/bin/python [--updates 3] [--out FILE]

Extra arguments are ``moralgym train`` overrides for the moralgym side (e.g. ``--bf16 true``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trl_python", required=True, help="the Python of the environment holding trl 0.11.4")
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--mini_batch_size", type=int, default=16)
    parser.add_argument("--config", default=str(Path(__file__).parents[1] / "configs" / "quickstart.yaml"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trl_ppo_comparison.json"))
    args, overrides = parser.parse_known_args()

    import torch

    from moralgym.agents.llm.default_model import ensure_default_model
    from moralgym.agents.llm.loading import load_causal_lm
    from moralgym.training import ppo
    from moralgym.training.cli import parse_config
    from moralgym.training.memory import return_freed_memory
    from moralgym.training.ppo import MoralPPOTrainer

    return_freed_memory()  # as `moralgym train` does
    worker = subprocess.Popen(
        [args.trl_python, str(Path(__file__).with_name("trl_ppo_worker.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    rows: list[dict[str, Any]] = []
    trl_peak_mib = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            ["--config", args.config, "--output_dir", tmp, "--no_progress_bar", "--evaluate", "false", *overrides]
        )
        if config.torch_num_threads:
            torch.set_num_threads(config.torch_num_threads)
        model, tokenizer = load_causal_lm(config.model_name_or_path, dtype=config.dtype)
        trainer = MoralPPOTrainer(config, model, tokenizer)
        trainer.prepare()
        played: list[Any] = []
        original_play = ppo.play_episode

        def keep(*a: Any, **k: Any) -> Any:
            rollout = original_play(*a, **k)
            played.append(rollout.samples["player_0"])
            return rollout

        ppo.play_episode = keep
        settings = {
            "seed": config.seed,
            "lora_r": config.lora_r,
            "lora_alpha": config.lora_alpha,
            "learning_rate": config.learning_rate,
            "init_kl_coef": config.init_kl_coef,
            "mini_batch_size": args.mini_batch_size,
            "threads": torch.get_num_threads(),
        }
        for update in range(args.updates):
            metrics = trainer.train_episode()
            ours = metrics["time/scoring_s"] + metrics["time/update_s"]
            samples = played[-1]
            settings["batch_size"] = len(samples)
            request = {
                "model_dir": str(ensure_default_model(verbose=False)),
                "settings": settings,
                "queries": [list(s.decision.query_ids) for s in samples],
                "responses": [list(s.decision.response_ids) for s in samples],
                "scores": [float(s.reward) for s in samples],
            }
            worker.stdin.write(json.dumps(request) + "\n")
            worker.stdin.flush()
            answer = worker.stdout.readline()
            if not answer:
                raise SystemExit(f"the TRL worker ({args.trl_python}) stopped; its error is above")
            theirs = json.loads(answer)
            trl_peak_mib = max(trl_peak_mib, theirs["peak_rss_mib"])
            rows.append(
                {"update": update, "decisions": len(samples), "moralgym_s": ours, "trl_0_11_4_s": theirs["seconds"]}
            )
            print(
                f"update {update}: moralgym {ours:.1f} s, TRL 0.11.4 {theirs['seconds']:.1f} s ({len(samples)} decisions)"
            )
        trainer.close_loggers()
    worker.stdin.close()
    worker.wait()
    measured = rows[1:] if len(rows) > 1 else rows  # the first update also pays both sides' first-call costs
    ours = sum(r["moralgym_s"] for r in measured) / len(measured)
    theirs = sum(r["trl_0_11_4_s"] for r in measured) / len(measured)
    result = {
        "command": " ".join(["python benchmarks/trl_ppo_comparison.py", *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads()},
        "updates": rows,
        "seconds_per_update": {"moralgym": round(ours, 2), "trl_0_11_4": round(theirs, 2)},
        "trl_over_moralgym": round(theirs / ours, 1),
        "peak_rss_mib": {
            "moralgym": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "trl_0_11_4": round(trl_peak_mib, 1),
        },
        "mini_batch_size": args.mini_batch_size,
    }
    print(
        json.dumps(result["seconds_per_update"]), f"TRL/moralgym {result['trl_over_moralgym']}x", result["peak_rss_mib"]
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
